"""The cell table: every row's module honours the contract, and step/step_backward agree with
the modules' own sequence functions (so generic code can rely on them)."""

import subprocess
import sys

import numpy as np
import pytest

from companion import cells


@pytest.mark.parametrize("kind", cells.KINDS)
def test_row_matches_its_module(kind):
    cell = cells.get(kind)
    params = cell.module.init_params(3, 4, seed=0)
    assert params["weight_ih"].shape == (cell.gate_count * 4, 3)
    assert params["weight_hh"].shape == (cell.gate_count * 4, 4)
    assert tuple(cell.module.GATE_NAMES) == cell.gate_names
    assert cells.get(cell.module) is cell


@pytest.mark.parametrize("kind", cells.KINDS)
def test_steps_reproduce_the_sequence_functions(kind):
    cell = cells.get(kind)
    rng = np.random.default_rng(1)
    T, B, D, H = 5, 2, 3, 4
    params = cell.module.init_params(D, H, seed=1)
    x = rng.standard_normal((T, B, D))
    states = tuple(rng.standard_normal((B, H)) for _ in cell.state_names)
    d_outputs = rng.standard_normal((T, B, H))

    outputs, final, seq_cache = cell.module.forward(x, params, cell.pack_state(states))
    dx, d_state0, grads = cell.module.backward(d_outputs, seq_cache)

    caches, step_states, hs = [], states, []
    for t in range(T):
        step_states, cache = cell.step(x[t], step_states, params)
        caches.append(cache)
        hs.append(step_states[0])
    np.testing.assert_allclose(np.stack(hs), outputs, atol=1e-12)
    for ours, theirs in zip(step_states, cell.unpack_state(final), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-12)

    d_states = tuple(np.zeros((B, H)) for _ in cell.state_names)
    total = {key: np.zeros_like(value) for key, value in params.items()}
    for t in reversed(range(T)):
        d_states = (d_states[0] + d_outputs[t], *d_states[1:])
        dx_t, d_states, step_grads = cell.step_backward(d_states, caches[t])
        np.testing.assert_allclose(dx_t, dx[t], atol=1e-12)
        for key in total:
            total[key] += step_grads[key]
    for ours, theirs in zip(d_states, cell.unpack_state(d_state0), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-12)
    for key in params:
        np.testing.assert_allclose(total[key], grads[key], atol=1e-12)


@pytest.mark.parametrize("kind", cells.KINDS)
def test_a_step_from_no_state_starts_from_zeros(kind):
    cell = cells.get(kind)
    params = cell.module.init_params(3, 4, seed=2)
    x_t = np.random.default_rng(2).standard_normal((2, 3))
    zeros = tuple(np.zeros((2, 4)) for _ in cell.state_names)
    assert cell.pack_state(None) is None and cell.unpack_state(None) is None
    from_none, _ = cell.step(x_t, None, params)
    from_zeros, _ = cell.step(x_t, zeros, params)
    for ours, theirs in zip(from_none, from_zeros, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_unknown_kind_names_the_choices():
    with pytest.raises(ValueError, match=r"kind must be one of 'rnn', 'lstm', 'gru'.*got 'lsmt'"):
        cells.get("lsmt")


def test_the_table_does_not_import_torch():
    code = "import sys, companion.cells as c; [r.module for r in c.CELLS.values()]; " \
           "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
