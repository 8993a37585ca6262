"""Fast CIFG kernels (contract in :mod:`companion.fast`; the readable loop is in
:mod:`companion.cifg`).

Gate blocks stay in the module's order **f, g, o**.  The weight rows are pre-scaled (-1 for the
sigmoid gates f and o, -2 for g; see :mod:`companion.fast._ops`) so that one ``exp``, one add
and one division a step give all three gates.  The cell update is written
``c_t = g_t + f_t (c_{t-1} - g_t)``, the same number as ``f c_{t-1} + (1 - f) g`` up to
round-off.  As in :mod:`companion.fast.lstm`, the gate activations are stored gate-major,
``(3, B, H)`` a step, so that every per-gate call runs on a contiguous array.
"""

from __future__ import annotations

import numpy as np

from companion.fast import _buffers
from companion.fast._ops import (
    SIGMOID_SCALE,
    TANH_SCALE,
    sigmoid_of_scaled_,
    tanh_from_sigmoid_,
)


def forward(x, state, params):
    """``x`` ``(T, B, D)``, ``state`` ``(h0, c0)``; returns ``(outputs, (h_T, c_T), cache)``.

    ``cache`` adds to ``x``, ``params``, ``hs`` and ``cs`` (``c_0 .. c_T``): ``tanh_cs``
    ``(T, B, H)`` and ``acts`` ``(T, 3, B, H)``, the gate activations f, g, o, gate-major.
    """
    h0, c0 = state
    steps, batch, input_size = x.shape
    H = h0.shape[1]
    dtype = x.dtype
    scale = np.full(3 * H, SIGMOID_SCALE, dtype)
    scale[H : 2 * H] = TANH_SCALE  # g
    w_ih = params["weight_ih"] * scale[:, None]
    w_hh_t = np.ascontiguousarray((params["weight_hh"] * scale[:, None]).T)
    bias = (params["bias_ih"] + params["bias_hh"]) * scale

    hs = _buffers.empty((steps + 1, batch, H), dtype)
    cs = _buffers.empty((steps + 1, batch, H), dtype)
    tanh_cs = _buffers.empty((steps, batch, H), dtype)
    hs[0], cs[0] = h0, c0
    projections = _buffers.empty((steps, batch, 3 * H), dtype)  # torch's layout, for the matmul
    flat = projections.reshape(steps * batch, 3 * H)
    np.matmul(x.reshape(steps * batch, input_size), w_ih.T, out=flat)
    flat += bias
    acts = _buffers.empty((steps, 3, batch, H), dtype)
    recurrent = np.empty((batch, 3 * H), dtype)
    recurrent_by_gate = recurrent.reshape(batch, 3, H).transpose(1, 0, 2)
    scratch = np.empty((batch, H), dtype)

    with np.errstate(over="ignore"):  # exp(-a) = inf for very negative a: sigmoid 0
        for t in range(steps):
            np.matmul(hs[t], w_hh_t, out=recurrent)
            recurrent += projections[t]
            a = acts[t]
            np.copyto(a, recurrent_by_gate)
            sigmoid_of_scaled_(a)
            f, g, o = a
            tanh_from_sigmoid_(g)
            np.subtract(cs[t], g, out=scratch)
            scratch *= f
            np.add(g, scratch, out=cs[t + 1])
            np.tanh(cs[t + 1], out=tanh_cs[t])
            np.multiply(o, tanh_cs[t], out=hs[t + 1])

    cache = {"x": x, "params": params, "hs": hs, "cs": cs, "tanh_cs": tanh_cs, "acts": acts}
    return _buffers.copy(hs[1:]), (hs[steps].copy(), cs[steps].copy()), cache


def backward(d_outputs, d_state, cache):
    """Returns ``(dx, (dh0, dc0), grads)``; ``d_state`` is ``(dh_T, dc_T)``, overwritten."""
    x, params, hs, cs = cache["x"], cache["params"], cache["hs"], cache["cs"]
    tanh_cs, acts = cache["tanh_cs"], cache["acts"]
    steps, batch, input_size = x.shape
    H = hs.shape[2]
    dtype = x.dtype
    dh, dc = d_state

    # local[t], gate-major like acts[t] (f, g, o): what the cell gradient dc (f, g) or dh (o)
    # is multiplied by: (c_prev - g) f (1 - f), (1 - f)(1 - g^2), tanh(c) o (1 - o).
    f, g, o = acts.transpose(1, 0, 2, 3)  # each (T, B, H)
    local = _buffers.empty(acts.shape, dtype)
    local_f, local_g, local_o = local.transpose(1, 0, 2, 3)
    temp = np.subtract(cs[:-1], g, out=_buffers.empty(g.shape, dtype))
    np.multiply(f, f, out=local_f)
    np.subtract(f, local_f, out=local_f)
    local_f *= temp
    np.multiply(g, g, out=local_g)
    np.subtract(1, local_g, out=local_g)
    np.subtract(1, f, out=temp)
    local_g *= temp
    np.multiply(o, o, out=local_o)
    np.subtract(o, local_o, out=local_o)
    local_o *= tanh_cs
    dh_to_dc = np.multiply(tanh_cs, tanh_cs, out=temp)
    np.subtract(1, dh_to_dc, out=dh_to_dc)
    dh_to_dc *= o  # o (1 - tanh(c)^2)

    w_hh = params["weight_hh"]
    # The loop overwrites local[t] with the pre-activation gradients of step t (gate-major)
    # and copies them, in torch's layout, into da[t] for the matmuls.
    da = _buffers.empty((steps, batch, 3 * H), dtype)
    da_by_gate = da.reshape(steps, batch, 3, H).transpose(0, 2, 1, 3)
    scratch = np.empty((batch, H), dtype)
    for t in range(steps - 1, -1, -1):
        if d_outputs is not None:
            dh += d_outputs[t]
        da_t = local[t]
        np.multiply(dh, da_t[2], out=da_t[2])
        dc += np.multiply(dh, dh_to_dc[t], out=scratch)
        np.multiply(dc, da_t[:2], out=da_t[:2])
        dc *= f[t]  # now dL/dc_{t-1}
        np.copyto(da_by_gate[t], da_t)
        np.matmul(da[t], w_hh, out=dh)  # now dL/dh_{t-1}

    da_flat = da.reshape(steps * batch, 3 * H)
    dx = _buffers.empty((steps, batch, input_size), dtype)
    np.matmul(da_flat, params["weight_ih"], out=dx.reshape(steps * batch, input_size))
    bias_grad = da_flat.sum(axis=0)
    grads = {
        "weight_ih": da_flat.T @ x.reshape(steps * batch, input_size),
        "weight_hh": da_flat.T @ hs[:-1].reshape(steps * batch, H),
        "bias_ih": bias_grad,
        "bias_hh": bias_grad.copy(),
    }
    return dx, (dh, dc), grads
