"""Fast Elman RNN kernels (contract in :mod:`companion.fast`; the readable loop is in
:mod:`companion.rnn`).  Three NumPy calls a step forward (matmul, add, activation) and three
backward (add, multiply, matmul)."""

from __future__ import annotations

import numpy as np

from companion.fast import _buffers


def forward(x, state, params, *, nonlinearity="tanh"):
    """``x`` ``(T, B, D)``, ``state`` ``(h0,)``; returns ``(outputs, (h_T,), cache)``."""
    (h0,) = state
    steps, batch, input_size = x.shape
    hidden = h0.shape[1]
    hs = _buffers.empty((steps + 1, batch, hidden), x.dtype)
    hs[0] = h0
    x_proj = _buffers.empty((steps, batch, hidden), x.dtype)
    x_proj_flat = x_proj.reshape(steps * batch, hidden)
    np.matmul(x.reshape(steps * batch, input_size), params["weight_ih"].T, out=x_proj_flat)
    x_proj_flat += params["bias_ih"] + params["bias_hh"]
    w_hh_t = params["weight_hh"].T
    activate = np.tanh if nonlinearity == "tanh" else _relu
    for t in range(steps):
        a_t = np.matmul(hs[t], w_hh_t, out=hs[t + 1])
        a_t += x_proj[t]
        activate(a_t, out=a_t)
    cache = {"x": x, "hs": hs, "params": params, "nonlinearity": nonlinearity}
    return _buffers.copy(hs[1:]), (hs[steps].copy(),), cache


def _relu(a, out):
    return np.maximum(a, 0, out=out)


def backward(d_outputs, d_state, cache):
    """Returns ``(dx, (dh0,), grads)``; ``d_state`` is ``(dh_T,)`` and is overwritten."""
    x, hs, params = cache["x"], cache["hs"], cache["params"]
    steps, batch, input_size = x.shape
    hidden = hs.shape[2]
    (dh,) = d_state
    if cache["nonlinearity"] == "tanh":
        derivative = np.multiply(hs[1:], hs[1:], out=_buffers.empty(hs[1:].shape, x.dtype))
        np.subtract(1, derivative, out=derivative)
    else:
        derivative = (hs[1:] > 0).astype(x.dtype)
    da = _buffers.empty((steps, batch, hidden), x.dtype)
    w_hh = params["weight_hh"]
    for t in range(steps - 1, -1, -1):
        if d_outputs is not None:
            dh += d_outputs[t]
        np.multiply(dh, derivative[t], out=da[t])
        np.matmul(da[t], w_hh, out=dh)  # now dL/dh_{t-1}

    da_flat = da.reshape(steps * batch, hidden)
    dx = _buffers.empty((steps, batch, input_size), x.dtype)
    np.matmul(da_flat, params["weight_ih"], out=dx.reshape(steps * batch, input_size))
    db = da_flat.sum(axis=0)
    grads = {
        "weight_ih": da_flat.T @ x.reshape(steps * batch, input_size),
        "weight_hh": da_flat.T @ hs[:-1].reshape(steps * batch, hidden),
        "bias_ih": db,
        "bias_hh": db.copy(),
    }
    return dx, (dh,), grads
