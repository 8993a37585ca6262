"""companion.gru against torch.nn.GRU / nn.GRUCell (reset="after") and a direct torch autograd
implementation of Cho et al. (2014) (reset="before")."""

import numpy as np
import pytest

from companion import gru
from tests._torch_ref import (
    assert_close,
    assert_matches,
    companion_sequence,
    random_case,
    torch_cell,
    torch_gru_reset_before,
    torch_sequence,
)

SEEDS = range(6)
EDGE_SIZES = [(1, 3, 4, 5), (5, 1, 2, 3), (1, 1, 1, 1), (7, 2, 6, 3)]  # T=1, B=1, D != H


def _args(case):
    return (case["params"], case["x"], case["state"], case["d_outputs"], case["d_final"])


@pytest.mark.parametrize("seed", SEEDS)
def test_reset_after_matches_torch(seed):
    case = random_case("gru", seed, with_state=seed % 2 == 0, with_final_grad=seed % 3 != 0)
    assert_matches(companion_sequence(gru, *_args(case)), torch_sequence("gru", *_args(case)),
                   1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_reset_before_matches_direct_autograd(seed):
    case = random_case("gru", seed, with_state=seed % 2 == 1, with_final_grad=seed % 3 != 1)
    ours = companion_sequence(gru, *_args(case), reset="before")
    assert_matches(ours, torch_gru_reset_before(*_args(case)), 1e-10)


@pytest.mark.parametrize("reset", ["after", "before"])
@pytest.mark.parametrize("sizes", EDGE_SIZES)
def test_edge_sizes(sizes, reset):
    T, B, D, H = sizes
    case = random_case("gru", 5, steps=T, batch=B, input_size=D, hidden_size=H)
    ref = torch_sequence("gru", *_args(case)) if reset == "after" else \
        torch_gru_reset_before(*_args(case))
    assert_matches(companion_sequence(gru, *_args(case), reset=reset), ref, 1e-10)


def test_the_two_reset_forms_differ():
    case = random_case("gru", 1, steps=4, batch=2, input_size=3, hidden_size=4)
    after = gru.forward(case["x"], case["params"], case["state"], reset="after")[0]
    before = gru.forward(case["x"], case["params"], case["state"], reset="before")[0]
    assert not np.allclose(after, before)


@pytest.mark.parametrize("reset", ["after", "before"])
def test_float32_in_float32_out(reset):
    case = random_case("gru", 3, steps=8, batch=3, input_size=5, hidden_size=4,
                       dtype=np.float32)
    ours = companion_sequence(gru, *_args(case), reset=reset)
    for value in (ours["outputs"], ours["dx"], *ours["final"], *ours["d_state0"],
                  *ours["grads"].values()):
        assert value.dtype == np.float32
    if reset == "after":
        ref = torch_sequence("gru", *_args(case))  # torch in float32
    else:  # the direct implementation runs in float64 on the same (float32-valued) numbers
        ref = torch_gru_reset_before(*(_float64(a) for a in _args(case)))
        ours["grads"] = {k: v.astype(np.float64) for k, v in ours["grads"].items()}
        ours["outputs"] = ours["outputs"].astype(np.float64)
    assert_matches(ours, ref, 1e-5)


def _float64(value):
    if isinstance(value, dict):
        return {k: v.astype(np.float64) for k, v in value.items()}
    return None if value is None else value.astype(np.float64)


@pytest.mark.parametrize("seed", range(3))
def test_cell_matches_torch_cell(seed):
    case = random_case("gru", seed)
    x_t, h_prev, dh = case["x"][0], case["state"], case["d_final"]
    h_t, cache = gru.cell_forward(x_t, h_prev, case["params"])
    dx, dh_prev, grads = gru.cell_backward(dh, cache)
    ref = torch_cell("gru", case["params"], x_t, h_prev, dh)
    assert_close(h_t, ref["new_state"][0], 1e-10, "h_t")
    assert_close(dx, ref["dx"], 1e-10, "dx_t")
    assert_close(dh_prev, ref["d_state_prev"][0], 1e-10, "dh_prev")
    for key, value in ref["grads"].items():
        assert_close(grads[key], value, 1e-10, key)


@pytest.mark.parametrize("reset", ["after", "before"])
def test_cells_unrolled_equal_sequence(reset):
    case = random_case("gru", 8, steps=5, batch=2, input_size=3, hidden_size=4)
    params, x = case["params"], case["x"]
    outputs, h_T, cache = gru.forward(x, params, case["state"], reset=reset)
    dx, dh0, grads = gru.backward(case["d_outputs"], cache, case["d_final"])
    h, caches = case["state"], []
    for t in range(x.shape[0]):
        h, step_cache = gru.cell_forward(x[t], h, params, reset=reset)
        assert_close(h, outputs[t], 1e-12, f"h_{t + 1}")
        caches.append(step_cache)
    dh = case["d_final"]
    total = {key: np.zeros_like(value) for key, value in params.items()}
    for t in range(x.shape[0] - 1, -1, -1):
        dx_t, dh, step_grads = gru.cell_backward(dh + case["d_outputs"][t], caches[t])
        assert_close(dx_t, dx[t], 1e-12, f"dx_{t}")
        for key in total:
            total[key] += step_grads[key]
    assert_close(dh, dh0, 1e-12, "dh0")
    for key in params:
        assert_close(grads[key], total[key], 1e-12, key)


def test_update_convention_z_one_keeps_state():
    """h_t = (1 - z) * n + z * h_prev: a saturated update gate copies the old state."""
    params = gru.init_params(2, 3, seed=0)
    params["bias_ih"][3:6] = 1000.0  # z -> 1
    h_prev = np.array([[0.3, -0.2, 0.9]])
    h_t, cache = gru.cell_forward(np.ones((1, 2)), h_prev, params)
    np.testing.assert_allclose(h_t, h_prev)
    assert ((cache["z"] >= 0) & (cache["z"] <= 1)).all()


@pytest.mark.parametrize("reset", ["after", "before"])
def test_extreme_preactivations_are_stable(reset):
    params = gru.init_params(2, 3, seed=0)
    x = np.full((3, 2, 2), 1000.0)
    x[:, 1] *= -1
    outputs, _, cache = gru.forward(x, params, reset=reset)
    dx, _, grads = gru.backward(np.ones_like(outputs), cache)
    sigmoid_gates = cache["acts"][:, :2]  # gate-major (T, 3, B, H): r and z
    assert ((sigmoid_gates >= 0) & (sigmoid_gates <= 1)).all()
    assert np.isfinite(dx).all() and all(np.isfinite(g).all() for g in grads.values())
    h_t, cell_cache = gru.cell_forward(x[0], None, params, reset=reset)
    assert all(((cell_cache[g] >= 0) & (cell_cache[g] <= 1)).all() for g in "rz")
    gru.cell_backward(np.ones_like(h_t), cell_cache)


def test_init_and_gate_views():
    params = gru.init_params(4, 2, seed=3)
    assert params["weight_ih"].shape == (6, 4) and params["bias_hh"].shape == (6,)
    view = gru.gates(params)
    assert list(view) == ["r", "z", "n"]
    np.testing.assert_array_equal(view["n"].W_h, params["weight_hh"][4:6])
