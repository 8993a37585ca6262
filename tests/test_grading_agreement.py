"""The grader's verdict equals ``check``'s on every exercise: the reference solution passes
and every mutant fails with the same message (and its own hint), when the function runs in a
real kernel and only plain data comes back to the grader's process.

One kernel (the grader's own worker machinery) serves every exercise of every lesson.
"""

import json
import types

import numpy as np
import pytest
from nbformat.v4 import new_code_cell

from companion import exercises
from companion.exercises.core import NOT_RUN, Behaviour, evaluate, verdict
from companion.grading import codec, worker

VARIANTS = [(eid, None) for eid in exercises.ids()] + [
    (eid, index) for eid in exercises.ids() for index in range(len(exercises.get(eid).mutants))
]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("agreement")
    request = worker.Request(cells=[], exercises=[], seed=0, timeout=120,
                             notebook_timeout=3600, workdir=str(workdir), key="test")
    runner = worker._Runner(request)
    assert runner.start(), runner.state.notes
    yield runner
    runner.stop()


def run_cell(runner, source):
    runner.notebook.cells.append(new_code_cell(source))
    try:
        assert runner.execute(len(runner.notebook.cells) - 1, 120) == "ok"
    finally:
        runner.notebook.cells.pop()


def clone(func, name):
    return types.FunctionType(func.__code__, func.__globals__, name, func.__defaults__,
                              func.__closure__)


def in_kernel(runner, eid, cases):
    runner._evaluate(eid, cases)
    evaluation = runner.state.evaluations.pop(eid)
    assert not evaluation.problem, evaluation.problem
    return [codec.behaviour_from_data(b) for b in evaluation.data["behaviours"]]


@pytest.mark.slow
@pytest.mark.parametrize(("eid", "index"), VARIANTS,
                         ids=[f"{e}-{'reference' if i is None else i}" for e, i in VARIANTS])
def test_the_grader_and_check_agree(kernel, eid, index):
    exercise = exercises.get(eid)
    if index is None:
        candidate = clone(exercise.reference, eid)
        run_cell(kernel, "import types\nfrom companion.exercises import get\n"
                         f"_r = get({eid!r}).reference\n"
                         f"{eid} = types.FunctionType(_r.__code__, _r.__globals__, {eid!r}, "
                         "_r.__defaults__, _r.__closure__)")
    else:
        candidate = exercise.mutants[index].fn
        run_cell(kernel, f"from companion.exercises import get\n"
                         f"{eid} = get({eid!r}).mutants[{index}].fn")
    cases = exercise.make_cases(np.random.default_rng([7, len(eid), index or 0]))
    graded = verdict(exercise, cases, in_kernel(kernel, eid, cases))
    checked = verdict(exercise, cases, evaluate(exercise, candidate, cases))  # what check does
    assert graded == checked
    if index is None:
        assert graded[0] == "passed"
    else:
        assert graded[0] == "failed" and exercise.mutants[index].hint in graded[1]


def test_behaviours_survive_the_codec_exactly():
    exercise = exercises.get("lstm_cell_forward")
    cases = exercise.make_cases(np.random.default_rng(0))
    for behaviour in evaluate(exercise, exercise.mutants[0].fn, cases) + [Behaviour(NOT_RUN)]:
        data = json.loads(json.dumps(codec.encode(codec.behaviour_to_data(behaviour))))
        back = codec.behaviour_from_data(codec.decode(data))
        assert back.kind == behaviour.kind and back.warned == behaviour.warned
        assert repr(back.outputs) == repr(behaviour.outputs)


@pytest.mark.parametrize("data", [
    {"__array__": "AAAA", "dtype": "|O", "shape": [1], "scalar": False},
    {"__array__": "AAAA", "dtype": "<f8", "shape": [100], "scalar": False},
    {"__object__": "os:system", "fields": {"__dict__": []}},
    {"__object__": "companion.exercises.core:_REGISTRY", "fields": {"__dict__": []}},
    {"__reduce__": "os.system"},
    {"__tuple__": "not a list"},
])
def test_the_codec_refuses_anything_but_plain_data(data):
    with pytest.raises(codec.DecodeError):
        codec.decode(data)


def test_a_too_large_result_is_refused(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(json.dumps(["x" * 1000] * 100))
    with pytest.raises(codec.DecodeError, match="more than"):
        codec.load(path, max_bytes=10_000)


@pytest.mark.parametrize("record", [
    {"kind": "passed"}, {"kind": "returned", "outputs": None, "warned": [1],
                         "args_after": None, "error": "", "error_type": "", "seconds": 0},
])
def test_malformed_behaviours_are_refused(record):
    with pytest.raises(codec.DecodeError):
        codec.behaviour_from_data(record)
