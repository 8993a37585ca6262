"""The grader's public names in one place (the implementation is in :mod:`companion.grading`).

``python -m companion grade PATH ...`` is the command line (see :mod:`companion.__main__`).
"""

from companion.grading.notebooks import Submission, collect, find_checks, read
from companion.grading.output import (
    RECORD_FIELDS,
    OutputError,
    check_output_path,
    csv_text,
    format_table,
    gradescope_text,
    json_text,
    records,
    short_message,
)
from companion.grading.run import (
    DEFAULT_TIMEOUT,
    ERROR,
    FAILED,
    NOT_STARTED,
    PASSED,
    Options,
    Report,
    Row,
    exit_code,
    grade_all,
    lesson_exercises,
    lesson_id,
    lesson_ids,
    points_possible,
)

__all__ = [
    "DEFAULT_TIMEOUT", "ERROR", "FAILED", "NOT_STARTED", "PASSED", "RECORD_FIELDS", "Options",
    "OutputError", "Report", "Row", "Submission", "check_output_path", "collect", "csv_text",
    "exit_code", "find_checks", "format_table", "grade_all", "gradescope_text", "json_text",
    "lesson_exercises", "lesson_id", "lesson_ids", "points_possible", "read", "records",
    "short_message",
]
