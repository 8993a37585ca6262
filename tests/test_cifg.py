"""companion.cifg (coupled input-forget gate LSTM) against an autograd reference written with
torch operations (tests/_torch_ref.py: torch_cifg) and against finite differences."""

import numpy as np
import pytest
import torch

from companion import cifg, lstm
from companion.gradients import numerical_gradient
from tests._torch_ref import (
    assert_close,
    assert_matches,
    cifg_step,
    companion_sequence,
    random_case,
    torch_cifg,
)

SEEDS = range(6)
EDGE_SIZES = [(1, 3, 4, 5), (5, 1, 2, 3), (1, 1, 1, 1), (7, 2, 6, 3)]  # T=1, B=1, D != H


def _args(case):
    return (case["params"], case["x"], case["state"], case["d_outputs"], case["d_final"])


@pytest.mark.parametrize("seed", SEEDS)
def test_sequence_matches_autograd(seed):
    case = random_case("cifg", seed, with_state=seed % 2 == 0, with_final_grad=seed % 3 != 0)
    assert_matches(companion_sequence(cifg, *_args(case)), torch_cifg(*_args(case)), 1e-10)


@pytest.mark.parametrize("sizes", EDGE_SIZES)
def test_edge_sizes_match_autograd(sizes):
    T, B, D, H = sizes
    case = random_case("cifg", 5, steps=T, batch=B, input_size=D, hidden_size=H)
    assert_matches(companion_sequence(cifg, *_args(case)), torch_cifg(*_args(case)), 1e-10)


def test_partial_state_and_partial_final_grad():
    case = random_case("cifg", 9, steps=4, batch=2, input_size=3, hidden_size=5)
    h0, c0 = case["state"]
    dh_T, dc_T = case["d_final"]
    zeros = np.zeros_like(h0)
    ours = companion_sequence(cifg, case["params"], case["x"], (None, c0), case["d_outputs"],
                              (None, dc_T))
    ref = torch_cifg(case["params"], case["x"], (zeros, c0), case["d_outputs"], (zeros, dc_T))
    assert_matches(ours, ref, 1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_cell_matches_autograd(seed):
    case = random_case("cifg", seed)
    x_t, (h_prev, c_prev), (dh_t, dc_t) = case["x"][0], case["state"], case["d_final"]
    (h_t, c_t), cache = cifg.cell_forward(x_t, (h_prev, c_prev), case["params"])
    dx, dh_prev, dc_prev, grads = cifg.cell_backward(dh_t, dc_t, cache)

    leaves = {name: torch.tensor(value, requires_grad=True)
              for name, value in {"x_t": x_t, "h": h_prev, "c": c_prev, **case["params"]}.items()}
    h_ref, c_ref = cifg_step(leaves["x_t"], leaves["h"], leaves["c"], leaves)
    ((h_ref * torch.from_numpy(dh_t)).sum() + (c_ref * torch.from_numpy(dc_t)).sum()).backward()
    assert_close(h_t, h_ref.detach().numpy(), 1e-12, "h_t")
    assert_close(c_t, c_ref.detach().numpy(), 1e-12, "c_t")
    assert_close(dx, leaves["x_t"].grad.numpy(), 1e-12, "dx_t")
    assert_close(dh_prev, leaves["h"].grad.numpy(), 1e-12, "dh_prev")
    assert_close(dc_prev, leaves["c"].grad.numpy(), 1e-12, "dc_prev")
    for key in case["params"]:
        assert_close(grads[key], leaves[key].grad.numpy(), 1e-12, key)


def _richardson_gradient(loss, inputs, name, eps=2e-3):
    """Central differences at steps eps and eps/2 combined by Richardson extrapolation:
    (4 D(eps/2) - D(eps)) / 3 cancels the eps**2 error term, leaving O(eps**4) (about 1e-12
    here) plus round-off of about 1e-16 / eps: accurate enough to check to 1e-10."""
    coarse = numerical_gradient(lambda _: loss(inputs), inputs[name], eps)
    fine = numerical_gradient(lambda _: loss(inputs), inputs[name], eps / 2)
    return (4 * fine - coarse) / 3


def test_sequence_gradients_by_finite_differences():
    rng = np.random.default_rng(0)
    params = cifg.init_params(3, 4, seed=0)
    T, B = 4, 2
    inputs = {"x": rng.standard_normal((T, B, 3)), "h0": 0.5 * rng.standard_normal((B, 4)),
              "c0": rng.standard_normal((B, 4)), **params}
    d_outputs = rng.standard_normal((T, B, 4))
    dh_T, dc_T = rng.standard_normal((2, B, 4))

    def loss(arrays):
        p = {key: arrays[key] for key in params}
        outputs, (h_T, c_T), _ = cifg.forward(arrays["x"], p, (arrays["h0"], arrays["c0"]))
        return np.sum(outputs * d_outputs) + np.sum(h_T * dh_T) + np.sum(c_T * dc_T)

    _, _, cache = cifg.forward(inputs["x"], params, (inputs["h0"], inputs["c0"]))
    dx, (dh0, dc0), grads = cifg.backward(d_outputs, cache, (dh_T, dc_T))
    analytic = {"x": dx, "h0": dh0, "c0": dc0, **grads}
    for name, grad in analytic.items():
        assert_close(grad, _richardson_gradient(loss, inputs, name), 1e-10, name)


def test_cell_gradients_by_finite_differences():
    rng = np.random.default_rng(1)
    params = cifg.init_params(2, 3, seed=1)
    inputs = {"x_t": rng.standard_normal((2, 2)), "h_prev": rng.standard_normal((2, 3)),
              "c_prev": rng.standard_normal((2, 3)), **params}
    dh_t, dc_t = rng.standard_normal((2, 2, 3))

    def loss(arrays):
        p = {key: arrays[key] for key in params}
        (h_t, c_t), _ = cifg.cell_forward(arrays["x_t"], (arrays["h_prev"], arrays["c_prev"]),
                                          p)
        return np.sum(h_t * dh_t) + np.sum(c_t * dc_t)

    _, cache = cifg.cell_forward(inputs["x_t"], (inputs["h_prev"], inputs["c_prev"]), params)
    dx, dh_prev, dc_prev, grads = cifg.cell_backward(dh_t, dc_t, cache)
    analytic = {"x_t": dx, "h_prev": dh_prev, "c_prev": dc_prev, **grads}
    for name, grad in analytic.items():
        assert_close(grad, _richardson_gradient(loss, inputs, name), 1e-10, name)


def test_input_gate_is_one_minus_forget_gate():
    """A CIFG equals an LSTM whose input-gate pre-activation is minus its forget gate's
    (sigmoid(-a) = 1 - sigmoid(a)): the coupling, checked against companion.lstm."""
    rng = np.random.default_rng(2)
    params = cifg.init_params(3, 4, seed=3)
    H = 4
    f, g, o = (slice(k * H, (k + 1) * H) for k in range(3))
    as_lstm = {key: np.concatenate([-value[f], value[f], value[g], value[o]])
               for key, value in params.items()}
    x = rng.standard_normal((5, 2, 3))
    ours, (h_T, c_T), _ = cifg.forward(x, params)
    theirs, (h_ref, c_ref), _ = lstm.forward(x, as_lstm)
    assert_close(ours, theirs, 1e-12, "outputs")
    assert_close(c_T, c_ref, 1e-12, "c_T")


def test_float32_in_float32_out():
    case = random_case("cifg", 3, steps=8, batch=3, input_size=5, hidden_size=4,
                       dtype=np.float32)
    ours = companion_sequence(cifg, *_args(case))
    for value in (ours["outputs"], ours["dx"], *ours["final"], *ours["d_state0"]):
        assert value.dtype == np.float32
    assert all(grad.dtype == np.float32 for grad in ours["grads"].values())
    ref_case = {key: case[key] for key in ("params", "x", "state", "d_outputs", "d_final")}
    as64 = {key: np.asarray(value, np.float64) for key, value in ref_case["params"].items()}
    ref = torch_cifg(as64, case["x"].astype(np.float64),
                     tuple(s.astype(np.float64) for s in case["state"]), case["d_outputs"],
                     case["d_final"])
    for key in ("outputs", "dx"):
        assert_close(ours[key], ref[key], 1e-5, key)
    for key in as64:
        assert_close(ours["grads"][key], ref["grads"][key], 1e-5, key)


def test_init_params_shapes_and_forget_bias():
    params = cifg.init_params(3, 5, seed=0, forget_bias=1.0)
    assert params["weight_ih"].shape == (15, 3) and params["weight_hh"].shape == (15, 5)
    assert params["bias_ih"].shape == params["bias_hh"].shape == (15,)
    np.testing.assert_array_equal(params["bias_ih"][:5] + params["bias_hh"][:5], 1.0)
    plain = cifg.init_params(3, 5, seed=0)
    np.testing.assert_array_equal(plain["bias_ih"][5:], params["bias_ih"][5:])
    assert list(cifg.gates(params)) == ["f", "g", "o"]
    np.testing.assert_array_equal(cifg.gates(params)["o"].W_h, params["weight_hh"][10:])
    assert cifg.init_params(3, 5, dtype=np.float32)["bias_hh"].dtype == np.float32


def test_four_gate_params_are_refused():
    message = r"params\['weight_hh'\] must have shape \(3\*H, H\), got \(16, 4\)"
    with pytest.raises(ValueError, match=message):
        cifg.forward(np.zeros((2, 1, 3)), lstm.init_params(3, 4))


def test_extreme_preactivations_are_stable():
    params = cifg.init_params(2, 3, seed=0)
    x = np.full((3, 2, 2), 1000.0)
    x[:, 1] *= -1
    outputs, _, cache = cifg.forward(x, params)  # RuntimeWarnings are errors
    dx, _, grads = cifg.backward(np.ones_like(outputs), cache)
    assert np.isfinite(outputs).all() and np.isfinite(dx).all()
    assert all(np.isfinite(g).all() for g in grads.values())
