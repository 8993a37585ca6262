"""What the grader runs inside a learner's kernel: evaluate the learner's function on the
grader's cases and write what it did, as plain data, to a file.

Nothing here is trusted: the learner's code runs in the same process and may have replaced
any of it. The grader reads the file with :func:`companion.grading.codec.load` (bounded,
no pickle) and computes the verdict itself, in its own process, against the reference.
"""

from __future__ import annotations

from companion.exercises import get
from companion.exercises.core import evaluate
from companion.grading import codec

MISSING = object()


def evaluate_to_file(exercise_id: str, candidate, cases_path: str, out_path: str,
                     time_limit: float) -> None:
    """Evaluate ``candidate`` (the learner's global named ``exercise_id``, or
    :data:`MISSING`) on the cases in ``cases_path`` and write the behaviours to
    ``out_path``."""
    if candidate is MISSING:
        codec.dump({"missing": True, "behaviours": []}, out_path)
        return
    cases = codec.load(cases_path)
    behaviours = evaluate(get(exercise_id), candidate, cases, time_limit=time_limit)
    records = [codec.behaviour_to_data(behaviour) for behaviour in behaviours]
    codec.dump({"missing": False, "behaviours": records}, out_path)


def source(exercise_id: str, cases_path: str, out_path: str, time_limit: float) -> str:
    """The code of the cell the grader runs in the kernel to evaluate one exercise."""
    return (
        "__import__('companion.grading.kernel_side', fromlist=['_']).evaluate_to_file("
        f"{exercise_id!r}, globals().get({exercise_id!r}, "
        "__import__('companion.grading.kernel_side', fromlist=['_']).MISSING), "
        f"{cases_path!r}, {out_path!r}, {time_limit!r})"
    )
