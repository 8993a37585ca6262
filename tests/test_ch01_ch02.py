"""The reference solutions of chapters 1 and 2 compute what torch and the companion core compute:
the readable solutions the book shows are right, not only self-consistent."""

import numpy as np
import pytest
import torch

from companion import rnn
from companion.exercises.cases import random_params
from companion.exercises.ch01_rnn import rnn_cell_forward, rnn_forward
from companion.exercises.ch02_bptt import (
    WavyFunction,
    numerical_gradient,
    rnn_backward,
    rnn_cell_backward,
)
from companion.interop import to_torch

SIZES = [(5, 3, 4, 2), (1, 2, 3, 4), (7, 1, 2, 6)]  # (T, B, D, H), T = 1 and B = 1 included


def _case(sizes, seed):
    rng = np.random.default_rng(seed)
    T, B, D, H = sizes
    return (rng.standard_normal((T, B, D)), np.tanh(rng.standard_normal((B, H))),
            random_params(rng, D, H), rng.standard_normal((T, B, H)))


@pytest.mark.parametrize("sizes", SIZES)
def test_rnn_forward_equals_torch_and_the_core(sizes):
    x, h0, params, _ = _case(sizes, 0)
    outputs, h_T = rnn_forward(x, h0, params)
    module = to_torch(params, torch.nn.RNN(sizes[2], sizes[3]).double())
    with torch.no_grad():
        expected, expected_h = module(torch.tensor(x), torch.tensor(h0)[None])
    np.testing.assert_allclose(outputs, expected.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(h_T, expected_h[0].numpy(), rtol=0, atol=1e-12)
    core_outputs, core_h, _ = rnn.forward(x, params, h0)
    np.testing.assert_allclose(outputs, core_outputs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(h_T, core_h, rtol=0, atol=1e-12)


def test_rnn_cell_forward_equals_the_core_cell():
    x, h0, params, _ = _case((1, 3, 4, 5), 1)
    h_t = rnn_cell_forward(x[0], h0, params["weight_ih"], params["weight_hh"],
                           params["bias_ih"], params["bias_hh"])
    np.testing.assert_allclose(h_t, rnn.cell_forward(x[0], h0, params)[0], rtol=0, atol=1e-13)


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("loss_at", ["every step", "last step"])
def test_rnn_backward_equals_autograd(sizes, loss_at):
    x, h0, params, d_outputs = _case(sizes, 2)
    if loss_at == "last step":
        d_outputs[:-1] = 0.0
    outputs, _ = rnn_forward(x, h0, params)
    dx, dh0, grads = rnn_backward(d_outputs, x, h0, outputs, params)

    module = to_torch(params, torch.nn.RNN(sizes[2], sizes[3]).double())
    x_t = torch.tensor(x, requires_grad=True)
    h0_t = torch.tensor(h0)[None].requires_grad_(True)
    out, _ = module(x_t, h0_t)
    (out * torch.tensor(d_outputs)).sum().backward()
    np.testing.assert_allclose(dx, x_t.grad.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(dh0, h0_t.grad[0].numpy(), rtol=0, atol=1e-12)
    for name, value in grads.items():
        expected = getattr(module, f"{name}_l0").grad.numpy()
        np.testing.assert_allclose(value, expected, rtol=0, atol=1e-12, err_msg=name)

    core = rnn.backward(d_outputs, rnn.forward(x, params, h0)[2])
    np.testing.assert_allclose(dx, core[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(dh0, core[1], rtol=0, atol=1e-12)


def test_rnn_cell_backward_equals_the_core_cell():
    x, h0, params, d_outputs = _case((1, 3, 4, 5), 3)
    h_t, cache = rnn.cell_forward(x[0], h0, params)
    ours = rnn_cell_backward(d_outputs[0], x[0], h0, h_t, params["weight_ih"],
                             params["weight_hh"])
    dx, dh_prev, grads = rnn.cell_backward(d_outputs[0], cache)
    expected = (dx, dh_prev, grads["weight_ih"], grads["weight_hh"], grads["bias_ih"])
    for got, want in zip(ours, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)


def test_numerical_gradient_is_second_order_accurate():
    rng = np.random.default_rng(4)
    shape = (3, 4)
    f = WavyFunction(rng.uniform(0.5, 1.5, shape), rng.uniform(2, 4, shape),
                     rng.standard_normal(shape))
    x = rng.standard_normal(shape)
    x_before = x.copy()
    errors = [np.max(np.abs(numerical_gradient(f, x, eps) - f.gradient(x)))
              for eps in (1e-2, 1e-3)]
    assert np.array_equal(x, x_before)
    assert 50 < errors[0] / errors[1] < 200  # error ~ eps**2: ten times smaller eps, 100x
    assert errors[1] < 1e-4
