"""The exercise registry and the check that gives a learner immediate, specific feedback.

An :class:`Exercise` bundles a reference solution, a generator of random test cases, the
names and symbolic shapes of its outputs, and *mutants*: realistic wrong answers (a
forgotten factor, a swapped activation, a transposed weight...) each with its own hint.

``check(exercise_id, candidate)`` runs the candidate on fresh random cases and reports the
most specific problem first:

1. the candidate is a stub (body ``raise NotImplementedError``): print "not started";
2. the candidate raised: show its exception, with the learner's own frames only;
3. it returned ``None``, the wrong number of outputs, or an output of the wrong type;
4. an output has the wrong shape (named, with the expected symbolic shape), or holds
   floats where it should hold integers (ids, counts);
5. it modified one of its inputs in place, or emitted a warning (overflow...), or (in the
   exercises about overflow) switched warnings off to hide one;
6. its values are wrong: if a registered mutant reproduces them, give that mutant's
   hint; otherwise say where the values differ.

A correct answer prints one line saying what was checked; a wrong one is shown as a
formatted failure and recorded, without raising (``strict=True`` or the environment variable
``COMPANION_STRICT_CHECKS=1`` make it raise :class:`ExerciseFailed`).

The work is split in two so that the grader can use the very same logic across processes:
:func:`evaluate` runs the candidate on the cases and keeps only plain data per case (a
:class:`Behaviour`), and :func:`verdict` turns cases and behaviours into ``(status, message)``
without ever calling the candidate. ``check`` is ``make_cases`` + ``evaluate`` + ``verdict``.
"""

from __future__ import annotations

import ast
import copy
import html
import inspect
import os
import signal
import sysconfig
import textwrap
import threading
import traceback
import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LIBRARY_DIRS = tuple(
    os.path.abspath(path)
    for path in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"],
                 sysconfig.get_paths()["platlib"]}
)

NOT_STARTED = "not started"
PASSED = "passed"
FAILED = "failed"


class ExerciseFailed(AssertionError):
    """A candidate solution is wrong; the message says what, most specific first."""

    def _render_traceback_(self) -> list[str]:
        """What IPython and Jupyter show instead of a traceback: the message is the feedback,
        and the frames of the checking machinery would only hide it."""
        return [f"\x1b[1;31mExerciseFailed\x1b[0m: {self}"]


@dataclass(frozen=True)
class Output:
    """One output of an exercise: its name and symbolic shape, e.g. ``("dh_prev", "(B, H)")``;
    ``integer`` for outputs that must hold integers (ids, counts: an array of floats cannot
    index a vocabulary)."""

    name: str
    shape: str
    integer: bool = False


@dataclass(frozen=True)
class Mutant:
    """A realistic wrong answer and the hint it earns.

    ``fn`` has the signature of the reference. ``name`` is a short identifier used in tests.
    """

    name: str
    fn: Callable
    hint: str


@dataclass
class Exercise:
    """A registered exercise.

    Parameters
    ----------
    id:
        The registry key; also the name of the learner's function in the lesson.
    title:
        A few words for tables and messages.
    reference:
        The reference solution, with the stub's signature. It is the very function the
        book shows in the collapsed solution.
    make_cases:
        ``make_cases(rng) -> list[dict]``: fresh random arguments, one dict per case,
        in the order of the reference's parameters. Sizes differ per dimension so that a
        transposed matrix cannot pass by accident.
    outputs:
        One :class:`Output` per returned value (a single output is returned bare, several
        as a tuple).
    mutants:
        Realistic wrong answers, each with its own hint.
    hints:
        General hints, from gentle (level 1) to explicit.
    equation:
        Where the book derives what the exercise implements, e.g. "eq. (2.3), chapter 2".
    what:
        What a pass proves, printed on success.
    time_limit:
        Seconds one call of the learner's function may take before the check reports an
        endless loop (enforced with ``SIGALRM`` where the platform and thread allow it).
    forbid_silencing:
        For exercises whose point is a formula that does not overflow: refuse a function
        whose own code switches warnings off (``np.errstate``, ``np.seterr``,
        ``warnings.filterwarnings``...), which would hide the overflow the check looks for.
    """

    id: str
    title: str
    reference: Callable
    make_cases: Callable[[np.random.Generator], list[dict]]
    outputs: tuple[Output, ...]
    mutants: tuple[Mutant, ...]
    hints: tuple[str, ...]
    equation: str
    what: str
    points: int = 1
    rtol: float = 1e-7
    atol: float = 1e-10
    warnings_are_errors: bool = True
    lesson: str = ""
    time_limit: float = 30.0
    forbid_silencing: bool = False


_REGISTRY: dict[str, Exercise] = {}
_RESULTS: dict[str, dict] = {}


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the registry (ids are unique)."""
    if exercise.id in _REGISTRY and _REGISTRY[exercise.id] is not exercise:
        raise ValueError(f"exercise id {exercise.id!r} is already registered")
    _REGISTRY[exercise.id] = exercise
    return exercise


def ids() -> list[str]:
    """The ids of all registered exercises, in registration (lesson) order."""
    return list(_REGISTRY)


def get(exercise_id: str) -> Exercise:
    """The :class:`Exercise` registered under ``exercise_id``."""
    if not isinstance(exercise_id, str):
        raise TypeError(f"exercise_id must be a str, got {type(exercise_id).__name__}")
    try:
        return _REGISTRY[exercise_id]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"no exercise with id {exercise_id!r}; known ids: {known}") from None


def solution(exercise_id: str) -> Callable:
    """The reference solution of an exercise (same signature as the stub)."""
    return get(exercise_id).reference


def show_solution(exercise_id: str) -> None:
    """Print the reference solution's source: the code in the exercise's collapsed solution
    box in the book (JupyterLab cannot show that box's included file)."""
    print(inspect.getsource(solution(exercise_id)).rstrip())


def hint(exercise_id: str, level: int = 1) -> None:
    """Print hint number ``level`` (1 = gentlest) for an exercise."""
    print(hint_text(exercise_id, level))


def hint_text(exercise_id: str, level: int = 1) -> str:
    """The text :func:`hint` prints."""
    exercise = get(exercise_id)
    if not isinstance(level, int) or level < 1:
        raise ValueError(f"level must be an integer >= 1, got {level!r}")
    count = len(exercise.hints)
    text = exercise.hints[min(level, count) - 1]
    if level >= count:
        text += (
            f"\n(This is the last hint. The worked solution is in the collapsed box below the"
            f" exercise in the book, or run show_solution({exercise_id!r}).)"
        )
    return f"Hint {min(level, count)}/{count} for {exercise_id}: {text}"


def results() -> dict[str, dict]:
    """Outcome of the latest check of each exercise in this process.

    ``{exercise_id: {"status": "passed" | "failed" | "not started", "message": str,
    "points": int}}``: the learner's own record (the grader never reads it: it computes
    its verdicts in its own process, see :mod:`companion.grading`).
    """
    return {
        exercise_id: {key: value for key, value in record.items() if key != "candidate"}
        for exercise_id, record in _RESULTS.items()
    }


def use(exercise_id: str, candidate: Callable) -> Callable:
    """The function later cells should call: ``candidate`` once it has passed its check,
    the reference solution until then (so plots and experiments always work)."""
    record = _RESULTS.get(exercise_id)
    if record and record["status"] == PASSED and record.get("candidate") is candidate:
        return candidate
    why = "yours failed its check" if record and record["status"] == FAILED else (
        "until yours passes")
    print(f"({exercise_id}: using the reference solution, {why})")
    return get(exercise_id).reference


def _record(exercise: Exercise, status: str, message: str, candidate=None) -> None:
    _RESULTS[exercise.id] = {
        "status": status,
        "message": message,
        "points": exercise.points,
        "candidate": candidate,
    }


STRICT_ENV = "COMPANION_STRICT_CHECKS"


def check(exercise_id: str, candidate: Callable, *, strict: bool | None = None) -> None:
    """Check a learner's function against the reference on fresh random inputs.

    Prints one line when the candidate passes, three when it is still a stub (each short
    enough for the book's column). When it is wrong, shows
    a formatted failure (what is wrong, the hint, the equation to reread), records it and
    returns, so that "Run All" reaches the end of the lesson (later cells then use the
    reference, see :func:`use`). With ``strict=True``, or the environment variable
    ``COMPANION_STRICT_CHECKS=1``, a failure raises :class:`ExerciseFailed` instead.
    """
    __tracebackhide__ = True  # IPython and pytest hide this frame from tracebacks
    exercise = get(exercise_id)
    cases = exercise.make_cases(np.random.default_rng())
    status, message = verdict(exercise, cases, evaluate(exercise, candidate, cases))
    if status == NOT_STARTED:
        _record(exercise, NOT_STARTED, f"{exercise_id}: {message}")
        print(f"… {exercise_id}: {message}\n"
              "  Fill in the function, run its cell, then this one.\n"
              "  (Until then, later cells use the reference solution.)")
    elif status == PASSED:
        _record(exercise, PASSED, message, candidate)
        print(f"✓ {exercise_id}: passed — {message}")
    else:
        _record(exercise, FAILED, message)
        if strict if strict is not None else os.environ.get(STRICT_ENV) == "1":
            raise ExerciseFailed(f"{exercise_id}: {message}")
        _show(CheckFailure(exercise_id, message))
    return None


@dataclass(frozen=True)
class CheckFailure:
    """A failed check as shown in a notebook: the message (what is wrong, then the hint and
    the equation to reread) and what happens next. Jupyter renders the HTML form; a
    terminal prints the plain text."""

    exercise_id: str
    message: str

    def __str__(self) -> str:
        return f"✗ {self.exercise_id}: failed — {self.message}\n{self.next_step}"

    __repr__ = __str__

    @property
    def next_step(self) -> str:
        return ("(Later cells use the reference solution until yours passes. "
                f"Fix the function, rerun its cell and this one; hint({self.exercise_id!r}) "
                "gives a nudge.)")

    def _repr_html_(self) -> str:
        first, _, rest = self.message.partition("\n")
        body = f"<pre style='white-space:pre-wrap;margin:0.4em 0'>{html.escape(rest)}</pre>" \
            if rest else ""
        return (
            "<div class='companion-check-failed' style='border-left:4px solid #c62828;"
            "padding:0.4em 0.8em;background:rgba(198,40,40,0.06)'>"
            f"<strong>✗ {html.escape(self.exercise_id)}: failed</strong> — "
            f"{html.escape(first)}{body}<em>{html.escape(self.next_step)}</em></div>"
        )

    def _repr_markdown_(self) -> str:
        quoted = "\n".join(f"> {line}" if line else ">" for line in self.message.splitlines())
        return f"**✗ {self.exercise_id}: failed**\n\n{quoted}\n\n*{self.next_step}*"


def _show(failure: CheckFailure) -> None:
    """Display the failure as rich output under IPython (one output, no traceback), else
    print it."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(failure)
    else:
        print(failure)


class _NotStarted(Exception):
    def __init__(self, detail: str = ""):
        super().__init__(detail)
        self.detail = detail


# --- evaluation: run the candidate, keep only plain data ----------------------------------

RETURNED = "returned"
RAISED = "raised"
NOT_IMPLEMENTED = "not implemented"
TIMED_OUT = "timed out"
NOT_RUN = "not run"
STUB = "stub"
NOT_CALLABLE = "not callable"
REFERENCE = "reference"
SILENCES_WARNINGS = "silences warnings"
BEHAVIOUR_KINDS = (RETURNED, RAISED, NOT_IMPLEMENTED, TIMED_OUT, NOT_RUN, STUB, NOT_CALLABLE,
                   REFERENCE, SILENCES_WARNINGS)


@dataclass
class Behaviour:
    """What the learner's function did on one case, as plain data (no live objects).

    ``kind`` is one of :data:`BEHAVIOUR_KINDS`. For ``returned``: ``outputs`` (what it
    returned), ``warned`` (the warnings it emitted) and ``args_after`` (its arguments after
    the call, to detect in-place modification). For ``raised``: ``error`` (the exception's
    text with the learner's frames only). For ``timed out``: ``seconds``, the limit. For
    ``not callable``: ``error`` describes what was given instead of a function. For
    ``silences warnings``: ``error`` names the call that does it.
    """

    kind: str
    outputs: object = None
    warned: tuple[str, ...] = ()
    args_after: list | None = None
    error: str = ""
    error_type: str = ""
    seconds: float = 0.0


def evaluate(exercise: Exercise, candidate, cases: list[dict],
             time_limit: float | None = None) -> list[Behaviour]:
    """Run ``candidate`` on every case (on deep copies of its arguments) and describe what
    it did, one :class:`Behaviour` per case. After a case runs past ``time_limit``
    (default: the exercise's), the remaining cases are not run."""
    if not callable(candidate):
        given = f"{type(candidate).__name__} {candidate!r:.60}"
        return [Behaviour(NOT_CALLABLE, error=given) for _ in cases]
    if _is_stub(candidate):
        return [Behaviour(STUB) for _ in cases]
    if candidate is exercise.reference:
        return [Behaviour(REFERENCE) for _ in cases]
    silencer = _warning_silencer(candidate) if exercise.forbid_silencing else None
    if silencer:
        return [Behaviour(SILENCES_WARNINGS, error=silencer) for _ in cases]
    seconds = exercise.time_limit if time_limit is None else time_limit
    behaviours: list[Behaviour] = []
    for case in cases:
        if behaviours and behaviours[-1].kind in (TIMED_OUT, NOT_RUN):
            behaviours.append(Behaviour(NOT_RUN))
            continue
        behaviours.append(_behaviour(candidate, case, seconds))
    return behaviours


def _behaviour(candidate: Callable, case: dict, seconds: float) -> Behaviour:
    try:
        with _time_limit(seconds):
            return _call(candidate, case)
    except _TimedOut:
        return Behaviour(TIMED_OUT, seconds=seconds)
    except NotImplementedError:
        return Behaviour(NOT_IMPLEMENTED)
    except Exception as error:  # the learner's bug, reported, never ours
        return Behaviour(RAISED, error=_learner_traceback(error),
                         error_type=type(error).__name__)


# --- verdict: pure, from the cases and the behaviours --------------------------------------


def verdict(exercise: Exercise, cases: list[dict],
            behaviours: list[Behaviour]) -> tuple[str, str]:
    """``(status, message)`` for a candidate that behaved as ``behaviours`` on ``cases``.

    The most specific problem first (see the module's docstring); a registered mutant that
    behaves exactly like the candidate on every case gives its hint. Runs only the
    reference and the mutants, never the candidate: the behaviours may come from another
    process (the grader's kernel)."""
    if len(behaviours) != len(cases):
        raise ValueError(f"expected one behaviour per case ({len(cases)}), "
                         f"got {len(behaviours)}")
    first = behaviours[0] if behaviours else Behaviour(NOT_RUN)
    if first.kind == NOT_CALLABLE:
        return FAILED, f"expected your function, got {first.error}"
    if first.kind == STUB:
        return NOT_STARTED, f"{NOT_STARTED}."
    if first.kind == REFERENCE:
        return FAILED, "this is the reference solution itself; write your own function"
    if first.kind == SILENCES_WARNINGS:
        return FAILED, (
            f"your function switches warnings off (`{first.error}`), which would hide the "
            "overflow this check looks for. Remove it, and find a formula that does not "
            f"overflow instead.\n(see {exercise.equation})")
    try:
        for case, behaviour in zip(cases, behaviours, strict=True):
            _judge_case(exercise, case, behaviour, cases, behaviours)
    except _NotStarted as not_started:
        return NOT_STARTED, f"{NOT_STARTED}{not_started.detail}."
    except ExerciseFailed as failure:
        return FAILED, str(failure)
    return PASSED, f"{exercise.what} ({len(cases)} random cases)"


def _is_stub(func: Callable) -> bool:
    """True when the function body (after an optional docstring) is only
    ``raise NotImplementedError``."""
    try:
        source = textwrap.dedent(inspect.getsource(func))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return False
    defs = [node for node in tree.body if isinstance(node, ast.FunctionDef | ast.Lambda)]
    if not defs or not isinstance(defs[0], ast.FunctionDef):
        return False
    body = defs[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if len(body) != 1 or not isinstance(body[0], ast.Raise):
        return False
    raised = body[0].exc
    if isinstance(raised, ast.Call):
        raised = raised.func
    return isinstance(raised, ast.Name) and raised.id == "NotImplementedError"


_SILENCERS = ("errstate", "seterr", "filterwarnings", "simplefilter", "catch_warnings")


def _warning_silencer(func: Callable) -> str | None:
    """The name of the first call in ``func``'s own source that switches warnings off
    (``np.errstate(...)``, ``warnings.filterwarnings(...)``...), or None."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = node.func
            name = called.attr if isinstance(called, ast.Attribute) else getattr(
                called, "id", "")
            if name in _SILENCERS:
                return name
    return None


def _call(func: Callable, case: dict) -> Behaviour:
    """Call ``func`` on deep copies of the case's arguments, recording warnings and what
    the arguments look like afterwards (to detect in-place modification)."""
    args = [copy.deepcopy(value) for value in case.values()]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(over="warn", divide="warn", invalid="warn", under="ignore"):
            result = func(*args)
    warned = tuple(sorted({f"{w.category.__name__}: {w.message}" for w in caught}))
    return Behaviour(RETURNED, result, warned, args)


def _learner_traceback(error: BaseException) -> str:
    """The exception with the learner's frames only (none from the companion package)."""
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if not os.path.abspath(frame.filename).startswith((_PACKAGE_DIR, *_LIBRARY_DIRS))
    ]
    lines = traceback.format_list(frames)
    lines += traceback.format_exception_only(type(error), error)
    return "".join(lines).rstrip()


class _TimedOut(BaseException):
    """Raised inside the learner's function when it runs past the time limit (a
    BaseException, so that the learner's own ``except Exception`` cannot swallow it)."""


@contextmanager
def _time_limit(seconds: float):
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def on_alarm(signum, frame):
        raise _TimedOut()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _judge_case(exercise: Exercise, case: dict, got: Behaviour, cases: list[dict],
                behaviours: list[Behaviour]) -> None:
    """Raise the most specific problem of the candidate's behaviour on one case."""
    if got.kind == TIMED_OUT:
        raise ExerciseFailed(
            f"your function did not return within {got.seconds:g} s on "
            f"{_describe(case)}: is there an endless loop?"
        )
    if got.kind == NOT_IMPLEMENTED:
        raise _NotStarted(" (it still raises NotImplementedError)")
    if got.kind == RAISED:
        raise ExerciseFailed(
            f"your function raised {got.error_type} on {_describe(case)}:\n{got.error}"
        )
    if got.kind != RETURNED:
        raise ExerciseFailed(f"your function was not run on {_describe(case)} ({got.kind})")
    outputs = _structure(exercise, got.outputs)
    expected = _call(exercise.reference, case)
    expected_outputs = _structure(exercise, expected.outputs)
    _check_types_and_shapes(exercise, outputs, expected_outputs, case)
    _check_not_mutated(case, got.args_after)
    if exercise.warnings_are_errors and got.warned:
        hint = _matching_mutant_hint(exercise, cases, behaviours)
        raise ExerciseFailed(
            f"your function emitted a warning on {_describe(case)}: {got.warned[0]}"
            + (f"\nHint: {hint}" if hint else "")
            + f"\n(see {exercise.equation})"
        )
    if not _same_values(exercise, outputs, expected_outputs):
        hint = _matching_mutant_hint(exercise, cases, behaviours)
        where = _where_values_differ(exercise, outputs, expected_outputs)
        if hint:
            raise ExerciseFailed(f"wrong values. Hint: {hint}\n(see {exercise.equation}; {where})")
        raise ExerciseFailed(f"wrong values: {where}\n(see {exercise.equation})")


def _check_not_mutated(case: dict, args_after: list) -> None:
    for (name, before), after in zip(case.items(), args_after, strict=True):
        if _equal_exactly(before, after):
            continue
        if _nearly_equal(before, after):
            raise ExerciseFailed(
                f"your function left its input `{name}` not exactly as it was: adding and "
                "then subtracting a number leaves rounding errors. Save the old value and "
                "assign it back (`old = x[i]` ... `x[i] = old`), or work on a copy."
            )
        raise ExerciseFailed(
            f"your function modified its input `{name}` in place; "
            "compute new arrays instead (e.g. `a = a * 2`, not `a *= 2`)"
        )


def _nearly_equal(a, b) -> bool:
    """Equal to 1e-12 relative (arrays of floats only): changed by rounding, not on purpose."""
    try:
        a, b = np.asarray(a), np.asarray(b)
        return (a.shape == b.shape and np.issubdtype(a.dtype, np.floating)
                and bool(np.allclose(a, b, rtol=1e-12, atol=0.0, equal_nan=True)))
    except (TypeError, ValueError):
        return False


def _equal_exactly(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal_exactly(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_equal_exactly(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _structure(exercise: Exercise, result) -> tuple:
    """The outputs as a tuple, checking None and the number of outputs."""
    names = ", ".join(output.name for output in exercise.outputs)
    if result is None:
        raise ExerciseFailed(
            f"your function returned None; it should return {names}. Did you forget `return`?"
        )
    if len(exercise.outputs) == 1:
        return (result,)
    if not isinstance(result, tuple | list):
        raise ExerciseFailed(
            f"expected {len(exercise.outputs)} outputs ({names}) as a tuple, "
            f"got a single {_type_name(result)}"
        )
    if len(result) != len(exercise.outputs):
        raise ExerciseFailed(
            f"expected {len(exercise.outputs)} outputs ({names}), got {len(result)}"
        )
    return tuple(result)


def _check_types_and_shapes(exercise, outputs, expected_outputs, case) -> None:
    for spec, got, want in zip(exercise.outputs, outputs, expected_outputs, strict=True):
        if isinstance(want, dict):
            _check_dict_output(spec, got, want, case)
            continue
        want = np.asarray(want)
        _check_numeric(f"output `{spec.name}`", got)
        dtype = np.asarray(got).dtype
        if spec.integer and not np.issubdtype(dtype, np.integer):
            raise ExerciseFailed(
                f"output `{spec.name}` should hold integers, got dtype {dtype}: make it an "
                "integer array (np.zeros(..., dtype=int), or .astype(int))"
            )
        shape = np.shape(got)
        if shape != want.shape:
            raise ExerciseFailed(
                f"output `{spec.name}` has shape {shape}, expected {spec.shape} = {want.shape} "
                f"for {_describe(case)}"
            )


def _check_dict_output(spec, got, want, case) -> None:
    if not isinstance(got, dict):
        raise ExerciseFailed(
            f"output `{spec.name}` should be a dict with keys {sorted(want)}, "
            f"got {_type_name(got)}"
        )
    if set(got) != set(want):
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        raise ExerciseFailed(
            f"output `{spec.name}` has the wrong keys: missing {missing}, unexpected {extra}"
        )
    for key in want:
        _check_numeric(f"`{spec.name}[{key!r}]`", got[key])
        if np.shape(got[key]) != np.shape(want[key]):
            raise ExerciseFailed(
                f"`{spec.name}[{key!r}]` has shape {np.shape(got[key])}, expected "
                f"{np.shape(want[key])} (the shape of params[{key!r}]) for {_describe(case)}"
            )


@dataclass(frozen=True)
class Opaque:
    """Stands for a value that another process could not send as plain data (an object
    array, a torch tensor, any other object): its type, module and dtype if any."""

    type_name: str
    module: str = ""
    dtype: str = ""


def _check_numeric(name: str, value) -> None:
    """Outputs must be real numbers: a NumPy array or scalar, or a Python int/float."""
    if isinstance(value, Opaque):
        if value.dtype:
            raise ExerciseFailed(f"{name} should hold real numbers, got dtype {value.dtype}")
        raise ExerciseFailed(
            f"{name} should be a NumPy array, got {value.type_name}"
            + (" (call .detach().numpy() on a torch tensor)"
               if value.module.startswith("torch") else "")
        )
    if not isinstance(value, np.ndarray | np.generic | float | int) or isinstance(value, bool):
        raise ExerciseFailed(
            f"{name} should be a NumPy array, got {type(value).__name__}"
            + (" (call .detach().numpy() on a torch tensor)" if _is_tensor(value) else "")
        )
    dtype = np.asarray(value).dtype
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise ExerciseFailed(f"{name} should hold real numbers, got dtype {dtype}")
    if np.issubdtype(dtype, np.floating) and np.finfo(dtype).bits < 32:
        # the tolerances widen to the answer's precision: float16's would accept anything
        raise ExerciseFailed(f"{name} has dtype {dtype}, too coarse to be checked: return "
                             "float64 (or float32)")


def _type_name(value) -> str:
    return value.type_name if isinstance(value, Opaque) else type(value).__name__


def _is_tensor(value) -> bool:
    return type(value).__module__.startswith("torch")


def _named(outputs, names=None):
    for index, value in enumerate(outputs):
        name = names[index] if names else str(index)
        if isinstance(value, dict):
            for key in sorted(value):
                yield f"{name}[{key!r}]", value[key]
        else:
            yield name, value


LOW_PRECISION_FACTOR = 1000.0


def _tolerances(exercise: Exercise, got, want) -> tuple[float, float]:
    """``(rtol, atol)`` for comparing ``got`` with ``want``: the exercise's, widened to the
    precision of the less precise floating dtype of the two (e.g. float32's eps 1.2e-7 gives
    rtol 1.2e-4 and atol 1.2e-4 times the largest expected magnitude), so that a correct
    float32 answer passes and an answer off by 1e-2 fails. float64 keeps the exercise's."""
    eps = max((float(np.finfo(value.dtype).eps) for value in (got, want)
               if np.issubdtype(value.dtype, np.floating)), default=0.0)
    rtol = max(exercise.rtol, LOW_PRECISION_FACTOR * eps)
    finite = np.abs(want[np.isfinite(want)]) if want.size else want
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    atol = max(exercise.atol, LOW_PRECISION_FACTOR * eps * scale)
    return rtol, atol


def _close(exercise: Exercise, got, want) -> bool:
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return False
    rtol, atol = _tolerances(exercise, got, want)
    return bool(np.allclose(got.astype(float), want.astype(float), rtol=rtol, atol=atol,
                            equal_nan=True))


def _same_values(exercise: Exercise, outputs, expected_outputs) -> bool:
    return all(
        _close(exercise, a, b)
        for (_, a), (_, b) in zip(_named(outputs), _named(expected_outputs), strict=True)
    )


def _where_values_differ(exercise: Exercise, outputs, expected_outputs) -> str:
    names = [output.name for output in exercise.outputs]
    pairs = zip(_named(outputs, names), _named(expected_outputs, names), strict=True)
    for (name, got), (_, want) in pairs:
        if _close(exercise, got, want):
            continue
        got = np.asarray(got, dtype=float)
        want = np.asarray(want, dtype=float)
        error = np.abs(got - want)
        error = np.where(np.isnan(error), np.inf, error)
        index = np.unravel_index(int(np.argmax(error)), error.shape) if error.ndim else ()
        at = f" at index {tuple(int(i) for i in index)}" if index else ""
        shown_got, shown_want = distinct_digits(float(got[index]), float(want[index]))
        return (
            f"`{name}` differs from the reference; largest error {float(error[index]):.3g}"
            f"{at}: got {shown_got}, expected {shown_want}"
        )
    return "values differ"


def distinct_digits(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` printed with at least 6 significant digits, and more until the two
    texts differ (up to the 17 that identify a float64)."""
    for digits in range(6, 18):
        shown_a, shown_b = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if shown_a != shown_b:
            return shown_a, shown_b
    return repr(a), repr(b)


def _matching_mutant_hint(exercise: Exercise, cases: list[dict],
                          behaviours: list[Behaviour]) -> str | None:
    """The hint of the first mutant that behaves exactly like the candidate on *every*
    case of this check (one case alone can make two different mistakes coincide, e.g. two
    wrong samplers drawing the same character)."""
    for mutant in exercise.mutants:
        if all(_behaves_alike(exercise, mutant.fn, case, got)
               for case, got in zip(cases, behaviours, strict=True)):
            return mutant.hint
    return None


def _behaves_alike(exercise: Exercise, mutant_fn: Callable, case: dict,
                   got: Behaviour) -> bool:
    if got.kind != RETURNED:
        return False
    try:
        behaviour = _call(mutant_fn, case)
        mutant_outputs = _structure(exercise, behaviour.outputs)
        candidate_outputs = _structure(exercise, got.outputs)
        return (
            bool(behaviour.warned) == bool(got.warned)
            and _same_shapes(candidate_outputs, mutant_outputs)
            and _same_values(exercise, candidate_outputs, mutant_outputs)
        )
    except Exception:
        return False


def _same_shapes(a: Sequence, b: Sequence) -> bool:
    return [np.shape(x) for _, x in _named(a)] == [np.shape(x) for _, x in _named(b)]


def _describe(case: dict) -> str:
    parts = []
    for name, value in case.items():
        if isinstance(value, np.ndarray):
            parts.append(f"{name} of shape {value.shape}")
        elif isinstance(value, dict):
            parts.append(f"{name} (a dict)")
        elif isinstance(value, tuple):
            parts.append(f"{name} (a tuple of {len(value)})")
        else:
            parts.append(f"{name}={value!r}")
    return "inputs " + ", ".join(parts)


def behaviour_signature(exercise: Exercise, func: Callable, case: dict) -> tuple:
    """What ``func`` does on ``case`` (outputs and whether it warned), for tests that prove
    mutants are pairwise distinguishable."""
    behaviour = _call(func, case)
    return _structure(exercise, behaviour.outputs), bool(behaviour.warned)


def same_behaviour(exercise: Exercise, a: tuple, b: tuple) -> bool:
    """Whether two :func:`behaviour_signature` results are indistinguishable by the check."""
    (outputs_a, warned_a), (outputs_b, warned_b) = a, b
    return (
        warned_a == warned_b
        and _same_shapes(outputs_a, outputs_b)
        and _same_values(exercise, outputs_a, outputs_b)
    )
