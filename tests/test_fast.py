"""The fast kernels (companion.fast, the default path of forward/backward) compute the same
numbers as the readable loops over cell_forward / cell_backward (fast=False): to 1e-12 in
float64, for every cell in the table and every variant (RNN tanh/ReLU, LSTM with and without
peepholes, both GRU reset forms), with and without initial state, upstream gradients and
final-state gradients, at T=1 and B=1."""

import numpy as np
import pytest

from companion import cells

# (init_params keywords, forward keywords) of each variant worth checking separately.
VARIANTS = {
    "rnn": [({}, {"nonlinearity": "tanh"}), ({}, {"nonlinearity": "relu"})],
    "lstm": [({}, {}), ({"peephole": True}, {})],
    "gru": [({}, {"reset": "after"}), ({}, {"reset": "before"})],
}
CASES = [
    (kind, init, options)
    for kind in cells.KINDS
    for init, options in VARIANTS.get(kind, [({}, {})])
]
SIZES = [(5, 3, 4, 6), (1, 2, 3, 4), (4, 1, 2, 3), (1, 1, 1, 1)]  # (T, B, D, H): T=1, B=1


def _ids(case):
    kind, init, options = case
    return "-".join([kind, *(f"{k}={v}" for k, v in {**init, **options}.items())])


def _random_inputs(cell, sizes, seed, *, init):
    T, B, D, H = sizes
    rng = np.random.default_rng(seed)
    params = cell.module.init_params(D, H, seed=seed, **init)
    for key in params:  # make every parameter matter (peepholes are small by default)
        if key.startswith("weight_peep"):
            params[key] = rng.standard_normal(H)
    x = rng.standard_normal((T, B, D))
    states = tuple(0.5 * rng.standard_normal((B, H)) for _ in cell.state_names)
    d_outputs = rng.standard_normal((T, B, H))
    d_final = tuple(rng.standard_normal((B, H)) for _ in cell.state_names)
    return params, x, states, d_outputs, d_final


def _run(cell, params, x, state, d_outputs, d_final, *, fast, options):
    outputs, final, cache = cell.module.forward(x, params, state, fast=fast, **options)
    dx, d_state0, grads = cell.module.backward(d_outputs, cache, d_final)
    return {
        "outputs": outputs,
        "final": cell.unpack_state(final),
        "dx": dx,
        "d_state0": cell.unpack_state(d_state0),
        "grads": grads,
        "hs": cache["hs"],
        "cs": cache.get("cs"),
    }


def _assert_same(fast, loop, tol):
    for name in ("outputs", "dx", "hs"):
        np.testing.assert_allclose(fast[name], loop[name], rtol=tol, atol=tol, err_msg=name)
    for name in ("final", "d_state0"):
        assert len(fast[name]) == len(loop[name])
        for k, (a, b) in enumerate(zip(fast[name], loop[name], strict=True)):
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=f"{name}[{k}]")
    assert set(fast["grads"]) == set(loop["grads"])
    for key, value in loop["grads"].items():
        assert fast["grads"][key].shape == value.shape
        np.testing.assert_allclose(fast["grads"][key], value, rtol=tol, atol=tol, err_msg=key)
    if loop["cs"] is not None:
        np.testing.assert_allclose(fast["cs"], loop["cs"], rtol=tol, atol=tol, err_msg="cs")


@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: "T{}-B{}-D{}-H{}".format(*s))
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_fast_equals_loop(case, sizes):
    kind, init, options = case
    cell = cells.get(kind)
    params, x, states, d_outputs, d_final = _random_inputs(cell, sizes, 0, init=init)
    args = (params, x, cell.pack_state(states), d_outputs, cell.pack_state(d_final))
    _assert_same(_run(cell, *args, fast=True, options=options),
                 _run(cell, *args, fast=False, options=options), 1e-12)


@pytest.mark.parametrize("case", CASES, ids=_ids)
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("with_d_outputs", [False, True])
@pytest.mark.parametrize("with_final_grad", [False, True])
def test_fast_equals_loop_without_optional_arguments(case, with_state, with_d_outputs,
                                                       with_final_grad):
    kind, init, options = case
    cell = cells.get(kind)
    params, x, states, d_outputs, d_final = _random_inputs(cell, (4, 2, 3, 5), 1, init=init)
    state = cell.pack_state(states) if with_state else None
    d_final = cell.pack_state(d_final) if with_final_grad else None
    d_outputs = d_outputs if with_d_outputs else None
    fast = _run(cell, params, x, state, d_outputs, d_final, fast=True, options=options)
    loop = _run(cell, params, x, state, d_outputs, d_final, fast=False, options=options)
    _assert_same(fast, loop, 1e-12)
    if not with_d_outputs and not with_final_grad:  # no loss at all: every gradient is zero
        assert not np.any(fast["dx"]) and not any(np.any(g) for g in fast["grads"].values())


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_float32_paths_agree_and_stay_float32(case):
    kind, init, options = case
    cell = cells.get(kind)
    params, x, states, d_outputs, d_final = _random_inputs(cell, (6, 3, 4, 5), 2, init=init)
    params = {key: value.astype(np.float32) for key, value in params.items()}
    x, d_outputs = x.astype(np.float32), d_outputs.astype(np.float32)
    states = tuple(s.astype(np.float32) for s in states)
    args = (params, x, cell.pack_state(states), d_outputs, cell.pack_state(d_final))
    fast = _run(cell, *args, fast=True, options=options)
    loop = _run(cell, *args, fast=False, options=options)
    for result in (fast, loop):
        assert result["outputs"].dtype == np.float32 and result["dx"].dtype == np.float32
        assert all(g.dtype == np.float32 for g in result["grads"].values())
        assert all(s.dtype == np.float32 for s in (*result["final"], *result["d_state0"]))
    _assert_same(fast, loop, 2e-5)


@pytest.mark.parametrize("kind", cells.KINDS)
def test_fast_does_not_modify_its_arguments(kind):
    cell = cells.get(kind)
    params, x, states, d_outputs, d_final = _random_inputs(cell, (3, 2, 3, 4), 3, init={})
    copies = [{k: v.copy() for k, v in params.items()}, x.copy(), [s.copy() for s in states],
              d_outputs.copy(), [d.copy() for d in d_final]]
    _run(cell, params, x, cell.pack_state(states), d_outputs, cell.pack_state(d_final),
         fast=True, options={})
    for key in params:
        np.testing.assert_array_equal(params[key], copies[0][key])
    np.testing.assert_array_equal(x, copies[1])
    for given, copy in zip([*states, d_outputs, *d_final],
                           [*copies[2], copies[3], *copies[4]], strict=True):
        np.testing.assert_array_equal(given, copy)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_a_kept_cache_survives_other_calls_reusing_arrays(case):
    """The kernels take their large arrays from companion.fast._buffers, which reuses an array
    once nothing refers to it.  A forward's cache kept for a later backward, and the outputs and
    gradients a caller holds, must not be overwritten by other calls in between."""
    kind, init, options = case
    cell = cells.get(kind)
    sizes = (12, 16, 8, 64)  # every (T, B, H) array is over _buffers.MIN_BYTES in float64
    kept = _random_inputs(cell, sizes, 3, init=init)
    params, x, states, d_outputs, d_final = kept
    outputs, final, cache = cell.module.forward(x, params, cell.pack_state(states), **options)
    outputs_then = outputs.copy()
    held = None
    for seed in (4, 5):  # other sequences, forward and backward, while the cache waits
        p, x2, s2, d2, f2 = _random_inputs(cell, sizes, seed, init=init)
        _, _, other = cell.module.forward(x2, p, cell.pack_state(s2), **options)
        held = cell.module.backward(d2, other, cell.pack_state(f2))
        del other
    dx_held = held[0].copy()
    dx, d_state0, grads = cell.module.backward(d_outputs, cache, cell.pack_state(d_final))
    fast = {"outputs": outputs, "final": cell.unpack_state(final), "dx": dx,
            "d_state0": cell.unpack_state(d_state0), "grads": grads, "hs": cache["hs"],
            "cs": cache.get("cs")}
    loop = _run(cell, params, x, cell.pack_state(states), d_outputs, cell.pack_state(d_final),
                fast=False, options=options)
    np.testing.assert_array_equal(outputs, outputs_then)
    np.testing.assert_array_equal(held[0], dx_held)  # the other call's dx, still held
    _assert_same(fast, loop, 1e-12)

