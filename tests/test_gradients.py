"""companion.gradients: finite differences, gradcheck, Jacobian norms, gradient clipping."""

import math

import numpy as np
import pytest
import torch

from companion import cells, gru, rnn
from companion.gradients import (
    GradcheckReport,
    clip_grad_norm,
    gradcheck,
    jacobian_norms,
    numerical_gradient,
)
from companion.interop import to_torch
from companion.models import recurrent_layer

COMPANION = {kind: cell.module for kind, cell in cells.CELLS.items()}

# --------------------------------------------------------------------------- finite differences


def test_numerical_gradient_of_a_quadratic_and_restores_x():
    A = np.array([[2.0, 1.0], [1.0, 3.0]])
    x = np.array([0.5, -1.5])
    original = x.copy()
    grad = numerical_gradient(lambda v: 0.5 * v @ A @ v, x)
    np.testing.assert_allclose(grad, A @ original, rtol=1e-8)
    np.testing.assert_array_equal(x, original)


def test_numerical_gradient_refuses_float32_and_says_why():
    x = np.array([40.0, 0.5], dtype=np.float32)
    assert x[0] + np.float32(1e-6) == x[0]  # what it protects from: the step is lost
    with pytest.raises(ValueError, match=r"x must be float64, got float32: .*round-off"):
        numerical_gradient(lambda v: float(v.sum()), x)


def test_numerical_gradient_rejects_integer_arrays():
    with pytest.raises(ValueError, match="floating"):
        numerical_gradient(lambda v: float(v.sum()), np.arange(3))


@pytest.mark.parametrize(("kind", "kwargs"), [
    ("rnn", {"nonlinearity": "tanh"}), ("rnn", {"nonlinearity": "relu"}), ("lstm", {}),
    ("gru", {"reset": "after"}), ("gru", {"reset": "before"}),
])
def test_gradcheck_passes_on_every_cell(kind, kwargs):
    module = COMPANION[kind]
    rng = np.random.default_rng(0)
    params = module.init_params(3, 4, seed=0)
    T, B = 3, 2
    inputs = {"x": rng.standard_normal((T, B, 3)), **params}
    d_outputs = rng.standard_normal((T, B, 4))

    def loss(arrays):
        p = {key: arrays[key] for key in params}
        return float(np.sum(module.forward(arrays["x"], p, **kwargs)[0] * d_outputs))

    _, _, cache = module.forward(inputs["x"], params, **kwargs)
    dx, _, grads = module.backward(d_outputs, cache)
    report = gradcheck(loss, inputs, {"x": dx, **grads})
    assert isinstance(report, GradcheckReport) and report.ok and bool(report), str(report)
    text = str(report)
    assert "weight_hh" in text and "all ok" in text and "FAIL" not in text


def test_gradcheck_reports_a_wrong_gradient():
    x = np.array([1.0, 2.0, 3.0])
    report = gradcheck(lambda arrays: float(np.sum(arrays["x"] ** 2)), {"x": x},
                       {"x": 2 * x + np.array([0.0, 0.0, 0.1])})
    assert not report.ok
    assert report["x"].max_abs_error == pytest.approx(0.1, rel=1e-6)
    assert "FAIL" in str(report) and "x" in str(report)
    with pytest.raises(ValueError, match=r"analytic\['x'\] must have shape \(3,\)"):
        gradcheck(lambda a: 0.0, {"x": x}, {"x": np.zeros(2)})


# --------------------------------------------------------------------------- Jacobian norms


def _torch_module(kind, params):
    D, H = params["weight_ih"].shape[1], params["weight_hh"].shape[1]
    return to_torch(params, recurrent_layer(kind, D, H).double())


def _reference_norms(kind, params, x, v, ord):
    """torch.autograd.functional.jacobian of h_T w.r.t. the state at every step k."""
    cell = cells.get(kind)
    module = _torch_module(kind, params)
    steps, H = x.shape[0], params["weight_hh"].shape[1]
    x_t = torch.from_numpy(x)[:, None, :]

    def state_after(k):  # the state (h_k, [c_k]) as a tuple of (H,) tensors
        if k == 0:
            return tuple(torch.zeros(H, dtype=torch.float64) for _ in cell.state_names)
        with torch.no_grad():
            final = cell.unpack_state(module(x_t[:k])[1])
        return tuple(s[0, 0] for s in final)

    norms = {name: [] for name in cell.state_names}
    for k in range(steps + 1):
        if k == steps:
            jacobians = (np.eye(H), *(np.zeros((H, H)) for _ in cell.state_names[1:]))
        else:
            def h_T(*state, k=k):
                packed = cell.pack_state(tuple(s[None, None] for s in state))
                return cell.unpack_state(module(x_t[k:], packed)[1])[0][0, 0]
            jacobians = torch.autograd.functional.jacobian(h_T, state_after(k))
            jacobians = tuple(j.numpy() for j in jacobians)
        for name, jacobian in zip(cell.state_names, jacobians, strict=True):
            norms[name].append(np.linalg.norm(jacobian, ord=ord))
    x_leaf = x_t.clone().requires_grad_(True)
    h_final = cell.unpack_state(module(x_leaf)[1])[0]
    (h_final[0, 0] * torch.from_numpy(v)).sum().backward()
    dx_norms = np.linalg.norm(x_leaf.grad[:, 0].numpy(), axis=1)
    c_norms = np.array(norms["c"]) if cell.has_cell_state else None
    return np.array(norms["h"]), c_norms, dx_norms


@pytest.mark.parametrize("ord", [2, "fro"])
@pytest.mark.parametrize("kind", cells.KINDS)
def test_jacobian_norms_match_torch_autograd(kind, ord):
    rng = np.random.default_rng(1)
    params = COMPANION[kind].init_params(2, 3, seed=2)
    x = rng.standard_normal((4, 2))
    v = rng.standard_normal(3)
    result = jacobian_norms(kind, x, params, v=v, ord=ord)
    ref_h, ref_c, ref_x = _reference_norms(kind, params, x, v, ord)
    assert result.dhT_dh.shape == (5,) and result.dL_dx.shape == (4,) and result.ord == ord
    np.testing.assert_allclose(result.dhT_dh, ref_h, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(result.dL_dx, ref_x, rtol=1e-10, atol=1e-14)
    if cells.get(kind).has_cell_state:
        np.testing.assert_allclose(result.dhT_dc, ref_c, rtol=1e-10, atol=1e-14)
    else:
        assert result.dhT_dc is None


def test_jacobian_norms_accept_an_unbatched_cell_state():
    rng = np.random.default_rng(3)
    params = COMPANION["cifg"].init_params(2, 3, seed=0)
    x = rng.standard_normal((5, 2))
    h0, c0 = rng.standard_normal((2, 3))
    single = jacobian_norms("CIFG", x, params, (h0, c0))
    batched = jacobian_norms(COMPANION["cifg"], x[:, None], params, (h0[None], c0[None]))
    np.testing.assert_allclose(single.dhT_dc, batched.dhT_dc[:, 0], rtol=1e-12)
    assert not np.allclose(single.dhT_dh, jacobian_norms("cifg", x, params).dhT_dh)


def test_jacobian_norms_batched_rows_are_per_sample():
    rng = np.random.default_rng(2)
    params = gru.init_params(3, 4, seed=0)
    x = rng.standard_normal((6, 3, 3))
    h0 = rng.standard_normal((3, 4))
    batched = jacobian_norms(gru, x, params, h0, reset="before")
    assert batched.dhT_dh.shape == (7, 3) and batched.dL_dx.shape == (6, 3)
    for b in range(3):
        single = jacobian_norms("gru", x[:, b], params, h0[b], reset="before")
        np.testing.assert_allclose(batched.dhT_dh[:, b], single.dhT_dh, rtol=1e-12)
        np.testing.assert_allclose(batched.dL_dx[:, b], single.dL_dx, rtol=1e-12)


def test_jacobian_norms_at_t100_h32_and_vanishing_for_a_contracting_rnn():
    params = rnn.init_params(8, 32, seed=0)
    params["weight_hh"] *= 0.5
    x = np.random.default_rng(0).standard_normal((100, 8))
    for kind, module in COMPANION.items():
        p = params if kind == "rnn" else module.init_params(8, 32, seed=0)
        result = jacobian_norms(kind, x, p)
        assert result.dhT_dh.shape == (101,) and result.dhT_dh[-1] == pytest.approx(1.0)
    small = jacobian_norms("rnn", x, params).dhT_dh
    assert small[0] < 1e-10 < small[-2]


def test_jacobian_norms_rejects_bad_arguments():
    params = rnn.init_params(2, 3)
    with pytest.raises(ValueError, match="ord"):
        jacobian_norms("rnn", np.zeros((3, 2)), params, ord=1)
    with pytest.raises(ValueError, match="cell"):
        jacobian_norms("transformer", np.zeros((3, 2)), params)
    with pytest.raises(ValueError, match=r"v must have shape \(H=3,\)"):
        jacobian_norms("rnn", np.zeros((3, 2)), params, v=np.ones(4))
    with pytest.raises(ValueError, match=r"x must have shape \(T, B, D=2\)"):
        jacobian_norms("rnn", np.zeros((3, 5)), params)


# --------------------------------------------------------------------------- clipping


def _grads(scale=1.0):
    rng = np.random.default_rng(0)
    return {"weight_hh": scale * rng.standard_normal((4, 3)),
            "bias_hh": scale * rng.standard_normal(4)}


def test_clip_below_threshold_returns_equal_copies():
    grads = _grads()
    clipped, total = clip_grad_norm(grads, 1e6)
    assert total == pytest.approx(math.sqrt(sum(np.sum(g**2) for g in grads.values())))
    for key in grads:
        np.testing.assert_array_equal(clipped[key], grads[key])
        assert clipped[key] is not grads[key]


def test_clip_matches_torch_and_does_not_mutate():
    grads = _grads(10.0)
    before = {key: value.copy() for key, value in grads.items()}
    clipped, total = clip_grad_norm(grads, 1.0)
    tensors = [torch.nn.Parameter(torch.zeros(value.shape, dtype=torch.float64))
               for value in grads.values()]
    for tensor, value in zip(tensors, grads.values(), strict=True):
        tensor.grad = torch.from_numpy(value.copy())
    torch_total = torch.nn.utils.clip_grad_norm_(tensors, 1.0)
    assert total == pytest.approx(float(torch_total), rel=1e-12)
    for tensor, key in zip(tensors, grads, strict=True):
        np.testing.assert_allclose(clipped[key], tensor.grad.numpy(), rtol=1e-12)
        np.testing.assert_array_equal(grads[key], before[key])
    new_norm = math.sqrt(sum(np.sum(g**2) for g in clipped.values()))
    assert new_norm == pytest.approx(1.0, rel=1e-5)


def test_clip_huge_gradients_do_not_overflow_and_keep_dtype():
    grads = {"a": np.full(3, 1e200), "b": np.ones(2, dtype=np.float32)}
    clipped, total = clip_grad_norm(grads, 5.0)
    assert total == pytest.approx(math.sqrt(3) * 1e200)
    assert clipped["b"].dtype == np.float32
    np.testing.assert_allclose(clipped["a"], 5.0 / math.sqrt(3), rtol=1e-6)


@pytest.mark.parametrize(("bad", "expected"), [(np.inf, math.inf), (np.nan, math.nan)])
def test_clip_nonfinite(bad, expected):
    grads = _grads()
    grads["bias_hh"][1] = bad
    clipped, total = clip_grad_norm(grads, 1.0)
    assert (math.isnan(total) if math.isnan(expected) else total == expected)
    np.testing.assert_array_equal(clipped["weight_hh"], grads["weight_hh"])
    with pytest.raises(ValueError, match=r"non-finite values in grads \['bias_hh'\]"):
        clip_grad_norm(grads, 1.0, error_if_nonfinite=True)


@pytest.mark.parametrize("max_norm", [0, -1.0, math.inf, "1"])
def test_clip_rejects_bad_max_norm(max_norm):
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(_grads(), max_norm)
