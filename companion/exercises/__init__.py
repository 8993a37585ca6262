"""Exercises with autograded checks.

In a lesson::

    from companion.exercises import check, hint, use

    def sigmoid(z):
        raise NotImplementedError  # your code here

    check("sigmoid", sigmoid)      # "not started", a specific failure (shown), or "passed"
    hint("sigmoid")                # a nudge; hint("sigmoid", 2) a bigger one
    my_sigmoid = use("sigmoid", sigmoid)  # yours once it passes, the reference until then

Each chapter's exercises live in their own module, ``warmup.py`` then ``chNN_<topic>.py``
(``ch01_rnn.py``, ...), found here by name and imported in that order, so ``ids()`` lists the
exercises in the order of the book. Importing this package never imports torch.

To add an exercise: write its reference solution in the companion (the book shows it, with
``{literalinclude}`` and ``:pyobject:``, as the solution), and in the chapter's module
``register(Exercise(id=..., reference=..., make_cases=..., outputs=..., mutants=...,
lesson="lessons/NN_name.ipynb"))`` (see :class:`companion.exercises.core.Exercise`); then put
the stub, the ``check("<id>", ...)`` cell and the solution box in the lesson.
To add a chapter: create ``companion/exercises/chNN_<topic>.py`` that registers its
exercises; nothing else needs listing. The tests check every registered exercise.
"""

import importlib
import pkgutil
import re

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

_CHAPTER_MODULE = re.compile(r"warmup|ch\d\d_\w+")


def chapter_modules() -> list[str]:
    """Names of the chapter modules of this package, in the book's order (warm-up first)."""
    names = [info.name for info in pkgutil.iter_modules(__path__)
             if _CHAPTER_MODULE.fullmatch(info.name)]
    return sorted(names, key=lambda name: (name != "warmup", name))


for _name in chapter_modules():
    importlib.import_module(f"{__name__}.{_name}")  # each registers its exercises on import

__all__ = [
    "FAILED", "NOT_STARTED", "PASSED", "Behaviour", "CheckFailure", "Exercise",
    "ExerciseFailed", "Mutant", "Output", "check", "chapter_modules", "evaluate", "get", "hint",
    "hint_text", "ids", "register", "results", "show_solution", "solution", "use", "verdict",
]
