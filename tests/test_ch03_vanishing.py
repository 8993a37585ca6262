"""Chapter 3's teaching references agree with the companion's fuller gradient tools."""

import math

import numpy as np
import pytest

from companion import gradients, rnn
from companion.exercises import ch03_vanishing


@pytest.mark.parametrize("seed", range(4))
def test_teaching_jacobian_norms_agree_with_companion_gradients(seed):
    rng = np.random.default_rng(seed)
    T, D, H = 7 + seed, 3, 5
    params = rnn.init_params(D, H, seed=seed)
    params["weight_hh"] = rng.normal(scale=(0.6 + 0.4 * seed) / np.sqrt(H), size=(H, H))
    x = rng.normal(size=(T, 1, D))
    h0 = np.tanh(rng.normal(size=(1, H)))
    _, _, cache = rnn.forward(x, params, h0)
    hs = cache["hs"][:, 0, :]  # (T+1, H)
    ours = ch03_vanishing.jacobian_norms(params["weight_hh"], hs)
    theirs = gradients.jacobian_norms("rnn", x[:, 0, :], params, h0[0]).dhT_dh
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)


def test_jacobian_norms_of_a_scaled_orthogonal_matrix_without_saturation_are_powers():
    # With h = 0 every tanh' is 1, so dh_T/dh_k = W^(T-k) and its norm is rho^(T-k).
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    norms = ch03_vanishing.jacobian_norms(0.9 * q, np.zeros((11, 6)))
    np.testing.assert_allclose(norms, 0.9 ** np.arange(10, -1, -1), rtol=1e-12)


def _as_dict(dW_ih, dW_hh, db):
    return {"weight_ih": dW_ih, "weight_hh": dW_hh, "bias": db}


@pytest.mark.parametrize("case", range(4))
def test_teaching_clip_grad_norm_agrees_with_companion_gradients(case):
    cases = ch03_vanishing._clip_cases(np.random.default_rng(case))
    for arguments in cases:
        *grads, max_norm = arguments.values()
        *ours, our_norm = ch03_vanishing.clip_grad_norm(*grads, max_norm)
        theirs, their_norm = gradients.clip_grad_norm(_as_dict(*grads), max_norm)
        assert our_norm == pytest.approx(their_norm, rel=1e-12, nan_ok=True)
        for mine, key in zip(ours, ["weight_ih", "weight_hh", "bias"], strict=True):
            np.testing.assert_allclose(mine, theirs[key], rtol=1e-5, equal_nan=True)


def test_clip_grad_norm_agrees_with_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    grads = [rng.normal(size=(4, 3)), rng.normal(size=(4, 4)), rng.normal(size=4)]
    *ours, total = ch03_vanishing.clip_grad_norm(*grads, 0.7)
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for tensor, g in zip(tensors, grads, strict=True):
        tensor.grad = torch.tensor(g)
    torch_total = torch.nn.utils.clip_grad_norm_(tensors, 0.7)
    assert total == pytest.approx(float(torch_total), rel=1e-12)
    for mine, tensor in zip(ours, tensors, strict=True):
        np.testing.assert_allclose(mine, tensor.grad.numpy(), rtol=1e-5)
    clipped_norm = math.sqrt(sum(float(np.sum(g**2)) for g in ours))
    assert clipped_norm == pytest.approx(0.7, rel=1e-12)
