"""The exercise checks, specified: for every registered exercise the reference passes, every
mutant fails with its own hint, mutants are pairwise distinguishable, and the generic
mistakes (stub, exception, None, wrong count/type/shape, in-place mutation) get the right
message."""

import copy
import inspect
import itertools
import re
import types

import numpy as np
import pytest

from companion import exercises
from companion.exercises import ExerciseFailed, check, hint, results, solution, use
from companion.exercises.core import (
    Behaviour,
    CheckFailure,
    behaviour_signature,
    distinct_digits,
    evaluate,
    same_behaviour,
    verdict,
)

from .lesson_tools import _CHECK_STATUS, BOOK_COLUMN

ALL_IDS = exercises.ids()
MUTANTS = [(eid, m) for eid in ALL_IDS for m in exercises.get(eid).mutants]


def clone(func, name=None):
    """A new function object with the same code (the check refuses the reference itself)."""
    return types.FunctionType(
        func.__code__, func.__globals__, name or func.__name__, func.__defaults__,
        func.__closure__,
    )


def test_every_exercise_has_at_least_four_mutants_and_hints():
    for eid in ALL_IDS:
        exercise = exercises.get(eid)
        assert len(exercise.mutants) >= 4, eid
        assert exercise.hints, eid
        assert len({m.hint for m in exercise.mutants}) == len(exercise.mutants), eid


@pytest.mark.parametrize("eid", ALL_IDS)
def test_reference_passes(eid, capsys):
    for _ in range(3):  # fresh random cases every time
        check(eid, clone(solution(eid)))
    out = capsys.readouterr().out
    assert out.count(f"✓ {eid}: passed") == 3
    assert results()[eid]["status"] == "passed"


@pytest.mark.parametrize("eid", ALL_IDS)
def test_reference_object_itself_is_refused(eid):
    with pytest.raises(ExerciseFailed, match="reference solution itself"):
        check(eid, solution(eid), strict=True)


@pytest.mark.parametrize(("eid", "mutant"), MUTANTS, ids=[f"{e}-{m.name}" for e, m in MUTANTS])
def test_mutant_fails_with_its_own_hint(eid, mutant):
    for _ in range(3):
        with pytest.raises(ExerciseFailed) as failure:
            check(eid, mutant.fn, strict=True)
        assert mutant.hint in str(failure.value)
        other_hints = [m.hint for m in exercises.get(eid).mutants if m is not mutant]
        assert not any(h in str(failure.value) for h in other_hints)
    assert results()[eid]["status"] == "failed"


@pytest.mark.parametrize("eid", ALL_IDS)
def test_mutants_are_pairwise_distinguishable(eid):
    exercise = exercises.get(eid)
    cases = exercise.make_cases(np.random.default_rng(0))
    functions = [("reference", exercise.reference)] + [(m.name, m.fn) for m in exercise.mutants]
    signatures = {}
    for name, func in functions:
        signatures[name] = [behaviour_signature(exercise, func, copy.deepcopy(c)) for c in cases]
    for (name_a, sig_a), (name_b, sig_b) in itertools.combinations(signatures.items(), 2):
        indistinguishable = all(
            same_behaviour(exercise, a, b) for a, b in zip(sig_a, sig_b, strict=True)
        )
        assert not indistinguishable, f"{eid}: {name_a} and {name_b} behave the same"


@pytest.mark.parametrize("eid", ALL_IDS)
def test_stub_reports_not_started_without_raising(eid, capsys):
    namespace = {}
    exec(f"def {eid}(*args):\n    '''Your code here.'''\n    raise NotImplementedError\n",
         namespace)
    assert check(eid, namespace[eid]) is None
    printed = capsys.readouterr().out
    assert f"{eid}: not started" in printed
    assert results()[eid]["status"] == "not started"
    wide = [line for line in printed.splitlines() if len(line) > BOOK_COLUMN]
    assert not wide, f"wider than the book's column ({BOOK_COLUMN} characters): {wide}"
    # the solved-lesson tests set the whole status aside before comparing with the book
    assert _CHECK_STATUS.sub("", printed).strip() == ""


def test_use_falls_back_to_the_reference_until_the_candidate_passes(capsys):
    def sigmoid(z):
        raise NotImplementedError

    check("sigmoid", sigmoid)
    assert use("sigmoid", sigmoid) is solution("sigmoid")
    mine = clone(solution("sigmoid"), "sigmoid")
    check("sigmoid", mine)
    assert use("sigmoid", mine) is mine


def _first_array_argument(case):
    """(position, name) of the first argument that is an array or a dict holding arrays."""
    for position, (name, value) in enumerate(case.items()):
        if isinstance(value, np.ndarray) or (
            isinstance(value, dict) and any(isinstance(v, np.ndarray) for v in value.values())
        ):
            return position, name
    raise AssertionError("no array argument to modify")


def _replace_first_array_output(exercise, result, transform):
    """The reference's result with its first array output (or first array in a dict output)
    passed through ``transform``; returns (new result, the name the check should report)."""
    outputs = [result] if len(exercise.outputs) == 1 else list(result)
    for index, (spec, value) in enumerate(zip(exercise.outputs, outputs, strict=True)):
        if isinstance(value, dict):
            key = sorted(value)[0]
            outputs[index] = {**value, key: transform(value[key])}
            name = f"{spec.name}[{key!r}]"
            break
        if isinstance(value, np.ndarray | np.generic | float | int):  # arrays and scalars
            outputs[index] = transform(value)
            name = spec.name
            break
    else:
        raise AssertionError("no array output")
    new = outputs[0] if len(exercise.outputs) == 1 else tuple(outputs)
    return new, name


@pytest.mark.parametrize("eid", ALL_IDS)
def test_learner_exception_is_reported_with_their_frames_only(eid):
    def inner_helper(value):
        return value / 0 if False else {}["missing"]

    def candidate(*args):
        return inner_helper(args[0])

    with pytest.raises(ExerciseFailed) as failure:
        check(eid, candidate, strict=True)
    message = str(failure.value)
    assert "raised KeyError" in message
    assert "inner_helper" in message and "candidate" in message
    assert "companion/exercises" not in message


@pytest.mark.parametrize("eid", ALL_IDS)
def test_none_is_reported(eid):
    with pytest.raises(ExerciseFailed, match="returned None.*forget `return`"):
        check(eid, lambda *args: None, strict=True)


@pytest.mark.parametrize("eid", ALL_IDS)
def test_wrong_shape_names_the_output_and_its_expected_shape(eid):
    reference = solution(eid)
    exercise = exercises.get(eid)
    reported = {}

    def candidate(*args):
        result, reported["name"] = _replace_first_array_output(
            exercise, reference(*args), lambda a: np.asarray(a)[..., None]
        )
        return result

    with pytest.raises(ExerciseFailed) as failure:
        check(eid, candidate, strict=True)
    message = str(failure.value)
    assert f"`{reported['name']}` has shape" in message
    spec = next(o for o in exercise.outputs if reported["name"].startswith(o.name))
    assert spec.shape in message or "(the shape of params[" in message


@pytest.mark.parametrize("eid", ALL_IDS)
def test_torch_tensor_output_is_a_type_error(eid):
    torch = pytest.importorskip("torch")
    reference = solution(eid)
    exercise = exercises.get(eid)

    def candidate(*args):
        result, _ = _replace_first_array_output(
            exercise, reference(*args), lambda a: torch.as_tensor(np.asarray(a))
        )
        return result

    with pytest.raises(ExerciseFailed, match="should be a NumPy array.*torch tensor"):
        check(eid, candidate, strict=True)


@pytest.mark.parametrize("eid", ALL_IDS)
def test_in_place_modification_is_reported(eid):
    reference = solution(eid)
    exercise = exercises.get(eid)
    position, name = _first_array_argument(exercise.make_cases(np.random.default_rng(0))[0])

    def candidate(*args):
        result = reference(*copy.deepcopy(args))
        target = args[position]
        if isinstance(target, dict):
            target = next(v for v in target.values() if isinstance(v, np.ndarray))
        target[...] = 0.0
        return result

    with pytest.raises(ExerciseFailed, match=f"modified its input `{name}` in place"):
        check(eid, candidate, strict=True)


def test_wrong_values_without_a_matching_mutant_say_where():
    with pytest.raises(ExerciseFailed, match=r"largest error .* at index .*got .*expected"):
        check("tanh_prime", lambda z: 1 - np.tanh(z) ** 2 + 0.1, strict=True)


def test_hints_are_progressive_and_the_last_points_at_the_solution(capsys):
    assert hint("sigmoid") is None  # printed, not returned: no duplicate in a notebook
    first = capsys.readouterr().out
    hint("sigmoid", level=99)
    last = capsys.readouterr().out
    assert first.startswith("Hint 1/") and "last hint" in last
    with pytest.raises(ValueError, match="level must be an integer >= 1"):
        hint("sigmoid", level=0)


def test_unknown_id_lists_the_known_ones():
    with pytest.raises(KeyError, match="no exercise with id 'sigmod'.*sigmoid"):
        check("sigmod", lambda z: z)


def test_not_a_function_is_reported():
    with pytest.raises(ExerciseFailed, match="expected your function, got ndarray"):
        check("sigmoid", np.zeros(3), strict=True)


def test_an_endless_loop_is_reported_not_hung(monkeypatch):
    monkeypatch.setattr(exercises.get("tanh_prime"), "time_limit", 0.5)

    def tanh_prime(z):
        while True:
            try:
                pass
            except Exception:  # a learner's blanket except must not swallow the time limit
                pass

    with pytest.raises(ExerciseFailed, match=r"did not return within 0.5 s.*endless loop"):
        check("tanh_prime", tanh_prime, strict=True)


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (lambda z: (1 - np.tanh(z) ** 2).astype(complex), "real numbers, got dtype complex128"),
        (lambda z: (1 - np.tanh(z) ** 2).astype(object), "real numbers, got dtype object"),
        (lambda z: "1 - tanh(z)**2", "should be a NumPy array, got str"),
        (lambda z: True, "should be a NumPy array, got bool"),
    ],
)
def test_garbage_outputs_get_feedback_not_a_crash(returned, message):
    with pytest.raises(ExerciseFailed, match=re.escape(message)):
        check("tanh_prime", returned, strict=True)


def test_jupyter_shows_the_feedback_not_a_traceback_through_the_checker():
    with pytest.raises(ExerciseFailed) as failure:
        check("tanh_prime", lambda z: 1 - z**2, strict=True)
    rendered = failure.value._render_traceback_()  # IPython's hook for custom tracebacks
    assert len(rendered) == 1
    assert "ExerciseFailed" in rendered[0] and str(failure.value) in rendered[0]
    assert "core.py" not in rendered[0]


@pytest.mark.parametrize("eid", ALL_IDS)
def test_show_solution_prints_the_reference_source(eid, capsys):
    exercises.show_solution(eid)
    printed = capsys.readouterr().out
    assert printed.strip() == inspect.getsource(solution(eid)).strip()


# --- a failed check does not raise (Run All reaches the end), unless asked to -------------


def test_a_failed_check_shows_the_failure_records_it_and_returns(capsys, monkeypatch):
    monkeypatch.delenv("COMPANION_STRICT_CHECKS", raising=False)
    mutant = exercises.get("sigmoid").mutants[0]
    assert check("sigmoid", mutant.fn) is None
    out = capsys.readouterr().out
    assert out.startswith("✗ sigmoid: failed — ")
    assert mutant.hint in out and "(see eq. (W.1)" in out
    assert "Later cells use the reference solution" in out
    assert results()["sigmoid"]["status"] == "failed"
    assert mutant.hint in results()["sigmoid"]["message"]
    assert use("sigmoid", mutant.fn) is solution("sigmoid")
    said = capsys.readouterr().out.strip().splitlines()
    assert said == ["(sigmoid: using the reference solution, yours failed its check)"]


def test_the_environment_variable_makes_checks_raise(monkeypatch):
    monkeypatch.setenv("COMPANION_STRICT_CHECKS", "1")
    with pytest.raises(ExerciseFailed, match="tanh_prime: wrong values"):
        check("tanh_prime", lambda z: 1 - np.tanh(z) ** 2 + 0.1)
    monkeypatch.setenv("COMPANION_STRICT_CHECKS", "0")
    assert check("tanh_prime", lambda z: 1 - np.tanh(z) ** 2 + 0.1) is None
    with pytest.raises(ExerciseFailed):  # an explicit argument wins over the variable
        check("tanh_prime", lambda z: 1 - np.tanh(z) ** 2 + 0.1, strict=True)


def test_jupyter_renders_the_failure_as_one_escaped_box():
    failure = CheckFailure("sigmoid", "wrong values <b>\nHint: use exp(-|z|)\n(see eq. (W.1))")
    rendered = failure._repr_html_()
    assert "<b>" not in rendered and "&lt;b&gt;" in rendered
    assert "✗ sigmoid: failed" in rendered and "use exp(-|z|)" in rendered
    markdown = failure._repr_markdown_()
    assert markdown.startswith("**✗ sigmoid: failed**") and "> Hint: use exp(-|z|)" in markdown
    assert str(failure).startswith("✗ sigmoid: failed — wrong values <b>")


def test_a_failed_check_in_a_kernel_is_a_rich_display_not_an_error():
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook(cells=[new_code_cell(
        "import numpy as np\nfrom companion.exercises import check\n"
        "check('tanh_prime', lambda z: 1 - z ** 2)\nprint('the next line ran')")])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    outputs = notebook.cells[0].outputs
    assert [o.output_type for o in outputs] == ["display_data", "stream"]
    assert "✗ tanh_prime: failed" in outputs[0].data["text/html"]
    assert "✗ tanh_prime: failed" in outputs[0].data["text/plain"]
    assert outputs[1].text == "the next line ran\n"
    assert nbformat.validate(notebook) is None


# --- evaluation (plain data) and verdict (pure) -------------------------------------------


def test_evaluate_returns_plain_data_and_verdict_reproduces_check():
    exercise = exercises.get("sigmoid")
    cases = exercise.make_cases(np.random.default_rng(1))
    mutant = exercise.mutants[0]
    behaviours = evaluate(exercise, mutant.fn, cases)
    assert [b.kind for b in behaviours] == ["returned", "returned"]
    assert all(isinstance(b.outputs, np.ndarray) for b in behaviours)
    assert behaviours[1].warned and "overflow" in behaviours[1].warned[0]
    status, message = verdict(exercise, cases, behaviours)
    assert status == "failed" and mutant.hint in message


def test_verdict_on_each_kind_of_behaviour():
    exercise = exercises.get("tanh_prime")
    cases = exercise.make_cases(np.random.default_rng(2))
    n = len(cases)

    def of(kind, **fields):
        return verdict(exercise, cases, [Behaviour(kind, **fields)] * n)

    assert of("stub") == ("not started", "not started.")
    assert of("not implemented")[0] == "not started"
    assert of("not callable", error="int 1") == ("failed", "expected your function, got int 1")
    assert "reference solution itself" in of("reference")[1]
    assert "did not return within 3 s" in of("timed out", seconds=3.0)[1]
    status, message = of("raised", error_type="ZeroDivisionError", error="x/0\nZeroDivision")
    assert status == "failed" and message.startswith("your function raised ZeroDivisionError")
    with pytest.raises(ValueError, match="one behaviour per case"):
        verdict(exercise, cases, [])


# --- tolerances follow the answer's dtype; messages show the difference ------------------


@pytest.mark.parametrize("seed", range(20))
def test_a_correct_float32_answer_always_passes_and_one_off_by_1e_2_fails(seed):
    for eid in [e for e in ("tanh_prime", "sigmoid_prime", "lstm_cell_forward") if e in ALL_IDS]:
        exercise = exercises.get(eid)
        reference = exercise.reference

        def as_float32(*args, _reference=reference):
            cast = [a.astype(np.float32) if isinstance(a, np.ndarray) else
                    ({k: v.astype(np.float32) for k, v in a.items()} if isinstance(a, dict)
                     else a) for a in args]
            result = _reference(*cast)
            return tuple(np.asarray(r, np.float32) for r in result) if isinstance(
                result, tuple) else np.asarray(result, np.float32)

        cases = exercise.make_cases(np.random.default_rng(seed))
        assert verdict(exercise, cases, evaluate(exercise, as_float32, cases))[0] == "passed", eid

        def off(*args, _f=as_float32):
            result = _f(*args)
            return tuple(r + np.float32(1e-2) for r in result) if isinstance(
                result, tuple) else result + np.float32(1e-2)

        assert verdict(exercise, cases, evaluate(exercise, off, cases))[0] == "failed", eid


def test_failure_messages_print_digits_until_the_numbers_differ():
    assert distinct_digits(0.7767741, 0.7767742) == ("0.7767741", "0.7767742")
    assert distinct_digits(0.5, 0.25) == ("0.5", "0.25")
    exercise = exercises.get("tanh_prime")
    cases = exercise.make_cases(np.random.default_rng(3))
    status, message = verdict(exercise, cases, evaluate(
        exercise, lambda z: (1 - np.tanh(z) ** 2) * (1 + 1e-6), cases))
    assert status == "failed"
    got, expected = re.search(r"got (\S+), expected (\S+)", message).groups()
    assert got.rstrip(",") != expected


@pytest.mark.slow
def test_the_warm_up_lesson_with_wrong_answers_runs_to_the_end():
    """Run All (here nbclient, as nbconvert) reaches the last cell: each failed check shows
    its failure, later cells use the reference."""
    from nbclient import NotebookClient

    from .grading_tools import WARMUP_IDS, mutant_source, warmup

    notebook = warmup({eid: mutant_source(eid, 0) for eid in WARMUP_IDS}, full=True)
    NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code)
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    shown = [o.data["text/html"] for cell in code for o in cell.outputs
             if o.output_type == "display_data" and "text/html" in o.data]
    for eid in WARMUP_IDS:
        assert any(f"✗ {eid}: failed" in html for html in shown), eid
    last = "".join(o.get("text", "") for o in code[-1].outputs)
    assert "using the reference solution, yours failed its check" in last


# --- wrong answers a learner writes that no declared mutant stands for ---------------------


def _sigmoid_with_errstate(z):
    with np.errstate(over="ignore"):  # right values in float64, overflow hidden
        return 1 / (1 + np.exp(-z))


def _sigmoid_with_filterwarnings(z):
    import warnings

    warnings.filterwarnings("ignore")
    return 1 / (1 + np.exp(-z))


@pytest.mark.parametrize("candidate", [_sigmoid_with_errstate, _sigmoid_with_filterwarnings])
def test_switching_warnings_off_does_not_pass_an_overflow_exercise(candidate):
    with pytest.raises(ExerciseFailed, match="switches warnings off") as failure:
        check("sigmoid", candidate, strict=True)
    assert "(see eq. (W.1)" in str(failure.value)


def test_only_the_overflow_exercises_refuse_silenced_warnings():
    refusing = {eid for eid in ALL_IDS if exercises.get(eid).forbid_silencing}
    assert refusing == {"sigmoid", "sigmoid_prime", "tanh_prime", "perplexity",
                        "sample_with_temperature"}


def _samples_as_floats(logits, temperature, u):
    probs, samples = solution("sample_with_temperature")(logits, temperature, u)
    return probs, samples.astype(float)


def _windows_as_floats(ids, batch_size, window):
    inputs, targets = solution("stateful_windows")(ids, batch_size, window)
    return inputs.astype(float), targets.astype(float)


@pytest.mark.parametrize(("eid", "candidate", "output"), [
    ("sample_with_temperature", _samples_as_floats, "samples"),
    ("stateful_windows", _windows_as_floats, "inputs"),
    ("param_count", lambda cell, D, H: 1.0 * solution("param_count")(cell, D, H), "n_params"),
])
def test_ids_and_counts_must_be_integers(eid, candidate, output):
    with pytest.raises(ExerciseFailed, match=f"output `{output}` should hold integers"):
        check(eid, candidate, strict=True)


def _cell_squeezed(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
    return np.tanh(x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh).squeeze()


def _samples_squeezed(logits, temperature, u):
    probs, samples = solution("sample_with_temperature")(logits, temperature, u)
    return probs, samples.squeeze()


@pytest.mark.parametrize(("eid", "candidate"), [("rnn_cell_forward", _cell_squeezed),
                                                 ("sample_with_temperature", _samples_squeezed)])
def test_dropping_the_batch_axis_of_one_sequence_fails(eid, candidate):
    """Every check has a case with a single sequence (B = 1), as the lessons' own calls."""
    with pytest.raises(ExerciseFailed, match="has shape"):
        check(eid, candidate, strict=True)


def _param_count_looping(cell, input_size, hidden_size):
    G = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    return np.array([G * (h * input_size + h * h + 2 * h) for h in hidden_size])


def test_param_count_takes_a_plain_int_as_the_lesson_passes():
    with pytest.raises(ExerciseFailed, match="raised TypeError"):
        check("param_count", _param_count_looping, strict=True)


def _windows_one_too_many(ids, batch_size, window):
    n = len(ids) // batch_size
    streams = ids[:batch_size * n].reshape(batch_size, n).T
    K = n // window  # the last window's targets run past the stream when window divides n
    inputs = np.stack([streams[k * window:(k + 1) * window] for k in range(K)])
    targets = np.stack([streams[k * window + 1:(k + 1) * window + 1] for k in range(K)])
    return inputs, targets


def test_one_window_too_many_fails_every_time():
    """A case with n a multiple of window is always drawn (it was left to chance)."""
    for _ in range(5):
        with pytest.raises(ExerciseFailed, match="raised ValueError"):
            check("stateful_windows", _windows_one_too_many, strict=True)


def _numerical_gradient_restoring(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        x[index] += eps
        plus = f(x)
        x[index] -= 2 * eps
        minus = f(x)
        x[index] += eps  # "restored", up to rounding
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def test_an_input_restored_up_to_rounding_gets_advice_on_restoring_it():
    with pytest.raises(ExerciseFailed, match="not exactly as it was") as failure:
        check("numerical_gradient", _numerical_gradient_restoring, strict=True)
    assert "old = x[i]" in str(failure.value) and "a *= 2" not in str(failure.value)


def test_a_float16_answer_is_too_coarse_to_be_checked():
    """The tolerances widen to the answer's precision; float16's would accept any constant in
    [0, 1] for the sigmoid."""
    def constant_half(z):
        return np.full(np.shape(z), 0.5, dtype=np.float16)

    with pytest.raises(ExerciseFailed, match="float16, too coarse"):
        check("sigmoid", constant_half, strict=True)
