"""companion.lstm against torch.nn.LSTM / nn.LSTMCell; peepholes by finite differences."""

import numpy as np
import pytest

from companion import lstm
from companion.gradients import gradcheck
from tests._torch_ref import (
    assert_close,
    assert_matches,
    companion_sequence,
    random_case,
    torch_cell,
    torch_sequence,
)

SEEDS = range(8)
EDGE_SIZES = [(1, 3, 4, 5), (5, 1, 2, 3), (1, 1, 1, 1), (7, 2, 6, 3)]  # T=1, B=1, D != H


def _args(case):
    return (case["params"], case["x"], case["state"], case["d_outputs"], case["d_final"])


@pytest.mark.parametrize("seed", SEEDS)
def test_sequence_matches_torch(seed):
    case = random_case("lstm", seed, with_state=seed % 2 == 0, with_final_grad=seed % 3 != 0)
    assert_matches(companion_sequence(lstm, *_args(case)), torch_sequence("lstm", *_args(case)),
                   1e-10)


@pytest.mark.parametrize("sizes", EDGE_SIZES)
def test_edge_sizes_match_torch(sizes):
    T, B, D, H = sizes
    case = random_case("lstm", 5, steps=T, batch=B, input_size=D, hidden_size=H)
    assert_matches(companion_sequence(lstm, *_args(case)), torch_sequence("lstm", *_args(case)),
                   1e-10)


def test_partial_state_and_partial_final_grad():
    case = random_case("lstm", 9, steps=4, batch=2, input_size=3, hidden_size=5)
    h0, c0 = case["state"]
    dh_T, dc_T = case["d_final"]
    zeros = np.zeros_like(h0)
    ours = companion_sequence(lstm, case["params"], case["x"], (None, c0), case["d_outputs"],
                              (None, dc_T))
    ref = torch_sequence("lstm", case["params"], case["x"], (zeros, c0), case["d_outputs"],
                         (zeros, dc_T))
    assert_matches(ours, ref, 1e-10)


def test_float32_in_float32_out():
    case = random_case("lstm", 3, steps=8, batch=3, input_size=5, hidden_size=4,
                       dtype=np.float32)
    ours = companion_sequence(lstm, *_args(case))
    for value in (ours["outputs"], ours["dx"], *ours["final"], *ours["d_state0"]):
        assert value.dtype == np.float32
    assert_matches(ours, torch_sequence("lstm", *_args(case)), 1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_cell_matches_torch_cell(seed):
    case = random_case("lstm", seed)
    x_t, state, d_state = case["x"][0], case["state"], case["d_final"]
    (h_t, c_t), cache = lstm.cell_forward(x_t, state, case["params"])
    dx, dh_prev, dc_prev, grads = lstm.cell_backward(*d_state, cache)
    ref = torch_cell("lstm", case["params"], x_t, state, d_state)
    assert_close(h_t, ref["new_state"][0], 1e-10, "h_t")
    assert_close(c_t, ref["new_state"][1], 1e-10, "c_t")
    assert_close(dx, ref["dx"], 1e-10, "dx_t")
    assert_close(dh_prev, ref["d_state_prev"][0], 1e-10, "dh_prev")
    assert_close(dc_prev, ref["d_state_prev"][1], 1e-10, "dc_prev")
    for key, value in ref["grads"].items():
        assert_close(grads[key], value, 1e-10, key)


@pytest.mark.parametrize("peephole", [False, True])
def test_cells_unrolled_equal_sequence(peephole):
    """The readable cell and the fast path agree, forward and backward (incl. peepholes)."""
    rng = np.random.default_rng(0)
    params = lstm.init_params(3, 4, seed=1, peephole=peephole)
    T, B = 5, 2
    x = rng.standard_normal((T, B, 3))
    state = (rng.standard_normal((B, 4)), rng.standard_normal((B, 4)))
    d_outputs = rng.standard_normal((T, B, 4))
    d_final = (rng.standard_normal((B, 4)), rng.standard_normal((B, 4)))
    outputs, final, cache = lstm.forward(x, params, state)
    dx, d_state0, grads = lstm.backward(d_outputs, cache, d_final)

    caches, s = [], state
    for t in range(T):
        s, step_cache = lstm.cell_forward(x[t], s, params)
        assert_close(s[0], outputs[t], 1e-12, f"h_{t + 1}")
        caches.append(step_cache)
    assert_close(s[1], final[1], 1e-12, "c_T")
    dh, dc = d_final
    total = {key: np.zeros_like(value) for key, value in params.items()}
    for t in range(T - 1, -1, -1):
        dx_t, dh, dc, step_grads = lstm.cell_backward(dh + d_outputs[t], dc, caches[t])
        assert_close(dx_t, dx[t], 1e-12, f"dx_{t}")
        for key in total:
            total[key] += step_grads[key]
    assert_close(dh, d_state0[0], 1e-12, "dh0")
    assert_close(dc, d_state0[1], 1e-12, "dc0")
    assert set(grads) == set(params)
    for key in params:
        assert_close(grads[key], total[key], 1e-12, key)


@pytest.mark.parametrize("seed", range(3))
def test_peephole_gradients_by_finite_differences(seed):
    rng = np.random.default_rng(seed)
    params = lstm.init_params(3, 4, seed=seed, peephole=True)
    for key in lstm.PEEPHOLE_KEYS:  # make the peepholes matter
        params[key] = rng.standard_normal(4)
    T, B = 4, 2
    inputs = {"x": rng.standard_normal((T, B, 3)), "h0": 0.5 * rng.standard_normal((B, 4)),
              "c0": rng.standard_normal((B, 4)), **params}
    d_outputs = rng.standard_normal((T, B, 4))
    dh_T, dc_T = rng.standard_normal((2, B, 4))

    def loss(arrays):
        p = {key: arrays[key] for key in params}
        outputs, (h_T, c_T), _ = lstm.forward(arrays["x"], p, (arrays["h0"], arrays["c0"]))
        return np.sum(outputs * d_outputs) + np.sum(h_T * dh_T) + np.sum(c_T * dc_T)

    outputs, _, cache = lstm.forward(inputs["x"], params, (inputs["h0"], inputs["c0"]))
    dx, (dh0, dc0), grads = lstm.backward(d_outputs, cache, (dh_T, dc_T))
    report = gradcheck(loss, inputs, {"x": dx, "h0": dh0, "c0": dc0, **grads}, rtol=1e-6,
                       atol=1e-8)
    assert report.ok, str(report)
    # The peepholes change the result: they are really used.
    plain = {key: params[key] for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    assert not np.allclose(lstm.forward(inputs["x"], plain)[0], outputs)


def test_peephole_cell_backward_by_finite_differences():
    rng = np.random.default_rng(3)
    params = lstm.init_params(2, 3, seed=0, peephole=True)
    inputs = {"x_t": rng.standard_normal((2, 2)), "h_prev": rng.standard_normal((2, 3)),
              "c_prev": rng.standard_normal((2, 3)), **params}
    dh_t, dc_t = rng.standard_normal((2, 2, 3))

    def loss(arrays):
        p = {key: arrays[key] for key in params}
        (h_t, c_t), _ = lstm.cell_forward(arrays["x_t"], (arrays["h_prev"], arrays["c_prev"]), p)
        return np.sum(h_t * dh_t) + np.sum(c_t * dc_t)

    _, cache = lstm.cell_forward(inputs["x_t"], (inputs["h_prev"], inputs["c_prev"]), params)
    dx, dh_prev, dc_prev, grads = lstm.cell_backward(dh_t, dc_t, cache)
    report = gradcheck(loss, inputs, {"x_t": dx, "h_prev": dh_prev, "c_prev": dc_prev, **grads},
                       rtol=1e-6, atol=1e-8)
    assert report.ok, str(report)


def test_init_params_forget_bias_and_peephole_keys():
    params = lstm.init_params(3, 5, seed=0, forget_bias=1.0, peephole=True)
    assert set(params) == {"weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_peep_i",
                           "weight_peep_f", "weight_peep_o"}
    assert params["weight_ih"].shape == (20, 3) and params["weight_peep_o"].shape == (5,)
    forget = slice(5, 10)
    np.testing.assert_array_equal(params["bias_ih"][forget] + params["bias_hh"][forget], 1.0)
    gate_view = lstm.gates(params)
    assert list(gate_view) == ["i", "f", "g", "o"]
    np.testing.assert_array_equal(gate_view["f"].b_x, 1.0)
    np.testing.assert_array_equal(gate_view["o"].W_h, params["weight_hh"][15:20])
    plain = lstm.init_params(3, 5, seed=0)
    np.testing.assert_array_equal(plain["weight_ih"], params["weight_ih"])  # same draws
    assert not lstm.has_peepholes(plain)
    assert lstm.init_params(3, 5, dtype=np.float32)["bias_hh"].dtype == np.float32


@pytest.mark.parametrize("peephole", [False, True])
def test_extreme_preactivations_are_stable(peephole):
    params = lstm.init_params(2, 3, seed=0, peephole=peephole)
    for sign in (1.0, -1.0):
        x = np.full((3, 2, 2), sign * 1000.0)
        x[:, 1] *= -1
        outputs, (h_T, c_T), cache = lstm.forward(x, params)  # RuntimeWarnings are errors
        dx, _, grads = lstm.backward(np.ones_like(outputs), cache)
        acts = cache["acts"]
        assert ((acts >= -1) & (acts <= 1)).all()
        sig = acts[:, :3]  # the fast kernel's (T, 4, B, H): o, i, f, g
        assert ((sig >= 0) & (sig <= 1)).all()
        assert np.isfinite(dx).all() and all(np.isfinite(g).all() for g in grads.values())
        (h1, c1), cell_cache = lstm.cell_forward(x[0], None, params)
        for gate in "ifo":
            assert ((cell_cache[gate] >= 0) & (cell_cache[gate] <= 1)).all()
        lstm.cell_backward(np.ones_like(h1), None, cell_cache)
