"""companion.rnn against torch.nn.RNN / nn.RNNCell (float64 to 1e-10, float32 to ~1e-5)."""

import numpy as np
import pytest

from companion import rnn
from tests._torch_ref import (
    assert_close,
    assert_matches,
    companion_sequence,
    random_case,
    torch_cell,
    torch_sequence,
)

SEEDS = range(6)
EDGE_SIZES = [(1, 3, 4, 5), (5, 1, 2, 3), (1, 1, 1, 1), (7, 2, 6, 3)]  # T=1, B=1, D != H


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("seed", SEEDS)
def test_sequence_matches_torch(seed, nonlinearity):
    case = random_case("rnn", seed, with_state=seed % 2 == 0, with_final_grad=seed % 3 != 0)
    args = (case["params"], case["x"], case["state"], case["d_outputs"], case["d_final"])
    ours = companion_sequence(rnn, *args, nonlinearity=nonlinearity)
    ref = torch_sequence("rnn", *args, nonlinearity=nonlinearity)
    assert_matches(ours, ref, 1e-10)


@pytest.mark.parametrize("sizes", EDGE_SIZES)
def test_edge_sizes_match_torch(sizes):
    T, B, D, H = sizes
    case = random_case("rnn", 7, steps=T, batch=B, input_size=D, hidden_size=H)
    args = (case["params"], case["x"], case["state"], case["d_outputs"], case["d_final"])
    assert_matches(companion_sequence(rnn, *args), torch_sequence("rnn", *args), 1e-10)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_float32_in_float32_out(nonlinearity):
    case = random_case("rnn", 3, steps=6, batch=3, input_size=5, hidden_size=4, dtype=np.float32)
    args = (case["params"], case["x"], case["state"], case["d_outputs"], case["d_final"])
    ours = companion_sequence(rnn, *args, nonlinearity=nonlinearity)
    assert ours["outputs"].dtype == np.float32 and ours["dx"].dtype == np.float32
    assert ours["final"][0].dtype == np.float32 and ours["d_state0"][0].dtype == np.float32
    assert_matches(ours, torch_sequence("rnn", *args, nonlinearity=nonlinearity), 1e-5)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("seed", range(3))
def test_cell_matches_torch_cell(seed, nonlinearity):
    case = random_case("rnn", seed)
    x_t, h_prev = case["x"][0], case["state"]
    dh = case["d_final"]
    h_t, cache = rnn.cell_forward(x_t, h_prev, case["params"], nonlinearity=nonlinearity)
    dx, dh_prev, grads = rnn.cell_backward(dh, cache)
    ref = torch_cell("rnn", case["params"], x_t, h_prev, dh, nonlinearity=nonlinearity)
    assert_close(h_t, ref["new_state"][0], 1e-10, "h_t")
    assert_close(dx, ref["dx"], 1e-10, "dx_t")
    assert_close(dh_prev, ref["d_state_prev"][0], 1e-10, "dh_prev")
    for key, value in ref["grads"].items():
        assert_close(grads[key], value, 1e-10, key)


def test_cells_unrolled_equal_sequence():
    case = random_case("rnn", 11, steps=5)
    outputs, h_T, _ = rnn.forward(case["x"], case["params"], case["state"])
    h = case["state"]
    for t in range(case["x"].shape[0]):
        h, _ = rnn.cell_forward(case["x"][t], h, case["params"])
        assert_close(h, outputs[t], 1e-12, f"h_{t + 1}")
    assert_close(h, h_T, 1e-12, "h_T")


def test_none_state_is_zeros_and_none_grad_is_zeros():
    case = random_case("rnn", 4)
    B, H = case["x"].shape[1], case["params"]["weight_hh"].shape[1]
    a = rnn.forward(case["x"], case["params"])
    b = rnn.forward(case["x"], case["params"], np.zeros((B, H)))
    np.testing.assert_array_equal(a[0], b[0])
    dx_none, _, _ = rnn.backward(None, a[2])
    np.testing.assert_array_equal(dx_none, np.zeros_like(case["x"]))


def test_init_params_shapes_bounds_and_seed():
    params = rnn.init_params(3, 5, seed=0)
    assert {k: v.shape for k, v in params.items()} == {
        "weight_ih": (5, 3), "weight_hh": (5, 5), "bias_ih": (5,), "bias_hh": (5,)}
    assert all(np.abs(v).max() <= 1 / np.sqrt(5) for v in params.values())
    again = rnn.init_params(3, 5, seed=0)
    assert all(np.array_equal(params[k], again[k]) for k in params)
    assert rnn.init_params(3, 5, dtype=np.float32)["weight_hh"].dtype == np.float32
    view = rnn.gates(params)["h"]
    assert view.W_x.shape == (5, 3) and np.shares_memory(view.W_h, params["weight_hh"])


def test_relu_is_not_tanh():
    case = random_case("rnn", 2, steps=4)
    tanh_out = rnn.forward(case["x"], case["params"], nonlinearity="tanh")[0]
    relu_out = rnn.forward(case["x"], case["params"], nonlinearity="relu")[0]
    assert (relu_out >= 0).all() and not np.allclose(tanh_out, relu_out)


def test_large_preactivations_do_not_overflow():
    params = rnn.init_params(2, 3, seed=0)
    x = np.full((4, 2, 2), 1000.0)
    for nonlinearity in ("tanh", "relu"):
        outputs, _, cache = rnn.forward(x, params, nonlinearity=nonlinearity)
        rnn.backward(np.ones_like(outputs), cache)
        assert np.isfinite(outputs).all()
