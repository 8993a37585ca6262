"""The reference solutions of chapters 4 and 5 compute what torch and the companion core compute:
the readable solutions the book shows are right, not only self-consistent."""

import numpy as np
import pytest
import torch

from companion import gru, lstm
from companion.exercises.cases import random_params
from companion.exercises.ch04_lstm import (
    lstm_cell_backward,
    lstm_cell_forward,
    lstm_forward,
    peephole_lstm_cell_forward,
)
from companion.exercises.ch05_gru import gru_cell_backward, gru_cell_forward
from companion.interop import to_torch

SIZES = [(5, 3, 4, 2), (1, 2, 3, 4), (7, 1, 2, 6)]  # (T, B, D, H), T = 1 and B = 1 included


def _case(sizes, seed, gates=4):
    rng = np.random.default_rng(seed)
    T, B, D, H = sizes
    return (rng.standard_normal((T, B, D)), np.tanh(rng.standard_normal((B, H))),
            rng.standard_normal((B, H)), random_params(rng, D, H, gates=gates),
            rng.standard_normal((B, H)), rng.standard_normal((B, H)))


@pytest.mark.parametrize("sizes", SIZES)
def test_lstm_forward_equals_torch_and_the_core(sizes):
    x, h0, c0, params, _, _ = _case(sizes, 0)
    outputs, h_T, c_T = lstm_forward(x, h0, c0, params)
    module = to_torch(params, torch.nn.LSTM(sizes[2], sizes[3]).double())
    with torch.no_grad():
        expected, (expected_h, expected_c) = module(
            torch.tensor(x), (torch.tensor(h0)[None], torch.tensor(c0)[None]))
    np.testing.assert_allclose(outputs, expected.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(h_T, expected_h[0].numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(c_T, expected_c[0].numpy(), rtol=0, atol=1e-12)
    core_outputs, (core_h, core_c), _ = lstm.forward(x, params, (h0, c0))
    np.testing.assert_allclose(outputs, core_outputs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(c_T, core_c, rtol=0, atol=1e-12)


@pytest.mark.parametrize("sizes", SIZES)
def test_lstm_cell_forward_equals_lstmcell_and_the_core(sizes):
    x, h0, c0, params, _, _ = _case(sizes, 1)
    h_t, c_t = lstm_cell_forward(x[0], h0, c0, params)
    cell = to_torch(params, torch.nn.LSTMCell(sizes[2], sizes[3]).double())
    with torch.no_grad():
        expected_h, expected_c = cell(torch.tensor(x[0]), (torch.tensor(h0), torch.tensor(c0)))
    np.testing.assert_allclose(h_t, expected_h.numpy(), rtol=0, atol=1e-13)
    np.testing.assert_allclose(c_t, expected_c.numpy(), rtol=0, atol=1e-13)
    (core_h, core_c), _ = lstm.cell_forward(x[0], (h0, c0), params)
    np.testing.assert_allclose(h_t, core_h, rtol=0, atol=1e-13)
    np.testing.assert_allclose(c_t, core_c, rtol=0, atol=1e-13)


@pytest.mark.parametrize("sizes", SIZES)
def test_lstm_cell_backward_equals_autograd_and_the_core(sizes):
    x, h0, c0, params, dh, dc = _case(sizes, 2)
    _, cache = lstm.cell_forward(x[0], (h0, c0), params)
    dx_t, dh_prev, dc_prev, grads = lstm_cell_backward(dh, dc, cache)

    cell = to_torch(params, torch.nn.LSTMCell(sizes[2], sizes[3]).double())
    x_t = torch.tensor(x[0], requires_grad=True)
    h_p = torch.tensor(h0, requires_grad=True)
    c_p = torch.tensor(c0, requires_grad=True)
    h_t, c_t = cell(x_t, (h_p, c_p))
    ((h_t * torch.tensor(dh)).sum() + (c_t * torch.tensor(dc)).sum()).backward()
    np.testing.assert_allclose(dx_t, x_t.grad.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(dh_prev, h_p.grad.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(dc_prev, c_p.grad.numpy(), rtol=0, atol=1e-12)
    for name, value in grads.items():
        np.testing.assert_allclose(value, getattr(cell, name).grad.numpy(), rtol=0, atol=1e-12,
                                   err_msg=name)

    core = lstm.cell_backward(dh, dc, cache)
    for got, want in zip((dx_t, dh_prev, dc_prev), core[:3], strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)


@pytest.mark.parametrize("sizes", SIZES)
def test_peephole_cell_equals_the_core(sizes):
    rng = np.random.default_rng(3)
    _, B, D, H = sizes
    params = random_params(rng, D, H, gates=4, peephole=True)
    x_t, h0, c0 = (rng.standard_normal((B, D)), rng.standard_normal((B, H)),
                   rng.standard_normal((B, H)))
    h_t, c_t = peephole_lstm_cell_forward(x_t, h0, c0, params)
    (core_h, core_c), _ = lstm.cell_forward(x_t, (h0, c0), params)
    np.testing.assert_allclose(h_t, core_h, rtol=0, atol=1e-13)
    np.testing.assert_allclose(c_t, core_c, rtol=0, atol=1e-13)
    # with zero peephole weights it is the plain LSTM
    zero = {**params, **{key: np.zeros(H) for key in lstm.PEEPHOLE_KEYS}}
    plain = {key: params[key] for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    for got, want in zip(peephole_lstm_cell_forward(x_t, h0, c0, zero),
                         lstm_cell_forward(x_t, h0, c0, plain), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)


@pytest.mark.parametrize("sizes", SIZES)
def test_gru_cell_forward_equals_grucell_gru_and_the_core(sizes):
    x, h0, _, params, _, _ = _case(sizes, 4, gates=3)
    h_t = gru_cell_forward(x[0], h0, params)
    cell = to_torch(params, torch.nn.GRUCell(sizes[2], sizes[3]).double())
    with torch.no_grad():
        expected = cell(torch.tensor(x[0]), torch.tensor(h0))
    np.testing.assert_allclose(h_t, expected.numpy(), rtol=0, atol=1e-13)
    np.testing.assert_allclose(h_t, gru.cell_forward(x[0], h0, params)[0], rtol=0, atol=1e-13)

    # a whole sequence, step by step, equals torch.nn.GRU
    h, outputs = h0, []
    for t in range(x.shape[0]):
        h = gru_cell_forward(x[t], h, params)
        outputs.append(h)
    module = to_torch(params, torch.nn.GRU(sizes[2], sizes[3]).double())
    with torch.no_grad():
        expected_outputs, _ = module(torch.tensor(x), torch.tensor(h0)[None])
    np.testing.assert_allclose(np.stack(outputs), expected_outputs.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("sizes", SIZES)
def test_gru_cell_backward_equals_autograd_and_the_core(sizes):
    x, h0, _, params, dh, _ = _case(sizes, 5, gates=3)
    _, cache = gru.cell_forward(x[0], h0, params)
    dx_t, dh_prev, grads = gru_cell_backward(dh, cache)

    cell = to_torch(params, torch.nn.GRUCell(sizes[2], sizes[3]).double())
    x_t = torch.tensor(x[0], requires_grad=True)
    h_p = torch.tensor(h0, requires_grad=True)
    (cell(x_t, h_p) * torch.tensor(dh)).sum().backward()
    np.testing.assert_allclose(dx_t, x_t.grad.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(dh_prev, h_p.grad.numpy(), rtol=0, atol=1e-12)
    for name, value in grads.items():
        np.testing.assert_allclose(value, getattr(cell, name).grad.numpy(), rtol=0, atol=1e-12,
                                   err_msg=name)
    core_dx, core_dh, core_grads = gru.cell_backward(dh, cache)
    np.testing.assert_allclose(dx_t, core_dx, rtol=0, atol=1e-13)
    np.testing.assert_allclose(dh_prev, core_dh, rtol=0, atol=1e-13)
    for name, value in grads.items():
        np.testing.assert_allclose(value, core_grads[name], rtol=0, atol=1e-13, err_msg=name)
