"""Exercises with autograded checks.

In a lesson::

    from companion.exercises import check, hint, use

    def sigmoid(z):
        raise NotImplementedError  # your code here

    check("sigmoid", sigmoid)      # "not started", a specific failure (shown), or "passed"
    hint("sigmoid")                # a nudge; hint("sigmoid", 2) a bigger one
    my_sigmoid = use("sigmoid", sigmoid)  # yours once it passes, the reference until then

Each lesson's exercises live in their own module and register themselves on import.
"""

from companion.exercises import warmup  # noqa: F401, I001  (registers the warm-up exercises)
from companion.exercises import ch01_rnn, ch02_bptt  # noqa: F401  (chapters 1 and 2)
from companion.exercises import ch03_vanishing  # noqa: F401  (chapter 3)
from companion.exercises import ch04_lstm, ch05_gru  # noqa: F401  (chapters 4 and 5)
from companion.exercises import ch06_practice, ch07_project  # noqa: F401  (chapters 6 and 7)
from companion.exercises.core import (
    FAILED,
    NOT_STARTED,
    PASSED,
    Behaviour,
    CheckFailure,
    Exercise,
    ExerciseFailed,
    Mutant,
    Output,
    check,
    evaluate,
    get,
    hint,
    hint_text,
    ids,
    register,
    results,
    show_solution,
    solution,
    use,
    verdict,
)

__all__ = [
    "FAILED", "NOT_STARTED", "PASSED", "Behaviour", "CheckFailure", "Exercise",
    "ExerciseFailed", "Mutant", "Output", "check", "evaluate", "get", "hint", "hint_text", "ids",
    "register", "results", "show_solution", "solution", "use", "verdict",
]
