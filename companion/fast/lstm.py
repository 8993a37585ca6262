"""Fast LSTM kernels (contract in :mod:`companion.fast`; the readable loop is in
:mod:`companion.lstm`), with or without peepholes.

Internally the gate blocks are kept in the order **o, i, f, g** (torch's is i, f, g, o), so that
the three sigmoid gates (o, i, f) are contiguous and the three blocks multiplied by the cell
gradient (i, f, g) are contiguous too.  The weight rows are pre-scaled (by -1 for o, i, f and
-2 for g, see :mod:`companion.fast._ops`) so that one ``exp``, one add and one division a step
give all four gates: ``sigmoid(a) = 1 / (1 + exp(-a))`` and ``tanh(a) = 2 sigmoid(2a) - 1``.
(With peepholes the output gate needs the new cell, so it gets its own three calls.)

The gate activations of a step are stored **gate-major**, ``(4, B, H)``, so that each gate is
one contiguous ``(B, H)`` array: NumPy runs an elementwise call on a strided view (a column
block of a ``(B, 4H)`` array) through its general iterator, several microseconds dearer than
on a contiguous one, and a step makes about ten such calls.  The matmuls keep torch's
``(B, 4H)`` layout; one copy a step moves between the two (forward: the step's pre-activations
into ``acts``; backward: the step's gradients out of it, for the recurrent matmul).
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

PEEPHOLE_KEYS = ("weight_peep_i", "weight_peep_f", "weight_peep_o")
INTERNAL_ORDER = (3, 0, 1, 2)  # torch block indices of o, i, f, g


def internal_rows(hidden: int) -> np.ndarray:
    """Row indices that reorder torch's blocks (i, f, g, o) into the internal o, i, f, g."""
    return np.concatenate([np.arange(k * hidden, (k + 1) * hidden) for k in INTERNAL_ORDER])


def forward(x, state, params):
    """``x`` ``(T, B, D)``, ``state`` ``(h0, c0)``; returns ``(outputs, (h_T, c_T), cache)``.

    ``cache`` adds to ``x``, ``params``, ``hs`` and ``cs`` (``c_0 .. c_T``): ``tanh_cs``
    ``(T, B, H)`` and ``acts`` ``(T, 4, B, H)``, the gate activations o, i, f, g, gate-major.
    """
    h0, c0 = state
    steps, batch, input_size = x.shape
    H = h0.shape[1]
    dtype = x.dtype
    peep = PEEPHOLE_KEYS[0] in params

    rows = internal_rows(H)
    scale = np.full(4 * H, SIGMOID_SCALE, dtype)  # o, i, f
    scale[3 * H :] = TANH_SCALE  # g
    w_ih = params["weight_ih"][rows] * scale[:, None]
    w_hh_t = np.ascontiguousarray((params["weight_hh"][rows] * scale[:, None]).T)
    bias = (params["bias_ih"] + params["bias_hh"])[rows] * scale
    if peep:
        neg_p_i, neg_p_f, neg_p_o = (SIGMOID_SCALE * params[key] for key in PEEPHOLE_KEYS)

    hs = _buffers.empty((steps + 1, batch, H), dtype)
    cs = _buffers.empty((steps + 1, batch, H), dtype)
    tanh_cs = _buffers.empty((steps, batch, H), dtype)
    hs[0], cs[0] = h0, c0
    # The input projections of all steps: one (T*B, D) @ (D, 4H) matmul, in torch's layout.
    projections = _buffers.empty((steps, batch, 4 * H), dtype)
    flat = projections.reshape(steps * batch, 4 * H)
    np.matmul(x.reshape(steps * batch, input_size), w_ih.T, out=flat)
    flat += bias
    acts = _buffers.empty((steps, 4, batch, H), dtype)
    recurrent = np.empty((batch, 4 * H), dtype)
    recurrent_by_gate = recurrent.reshape(batch, 4, H).transpose(1, 0, 2)
    scratch = np.empty((batch, H), dtype)

    with np.errstate(over="ignore"):
        for t in range(steps):
            np.matmul(hs[t], w_hh_t, out=recurrent)
            recurrent += projections[t]
            a = acts[t]
            np.copyto(a, recurrent_by_gate)
            o, i, f, g = a
            c_prev, c = cs[t], cs[t + 1]
            if peep:  # i and f look at c_prev; o waits for the new cell
                np.add(i, np.multiply(neg_p_i, c_prev, out=scratch), out=i)
                np.add(f, np.multiply(neg_p_f, c_prev, out=scratch), out=f)
                sigmoid_of_scaled_(a[1:])
            else:
                sigmoid_of_scaled_(a)
            tanh_from_sigmoid_(g)
            np.multiply(f, c_prev, out=c)
            np.add(c, np.multiply(i, g, out=scratch), out=c)
            if peep:
                np.add(o, np.multiply(neg_p_o, c, out=scratch), out=o)
                sigmoid_of_scaled_(o)
            tanh_c = np.tanh(c, out=tanh_cs[t])
            np.multiply(o, tanh_c, out=hs[t + 1])

    cache = {"x": x, "params": params, "hs": hs, "cs": cs, "tanh_cs": tanh_cs, "acts": acts}
    return _buffers.copy(hs[1:]), (hs[steps].copy(), cs[steps].copy()), cache


def backward(d_outputs, d_state, cache):
    """Returns ``(dx, (dh0, dc0), grads)``; ``d_state`` is ``(dh_T, dc_T)``, overwritten."""
    x, params, hs, cs = cache["x"], cache["params"], cache["hs"], cache["cs"]
    tanh_cs, acts = cache["tanh_cs"], cache["acts"]
    steps, batch, input_size = x.shape
    H = hs.shape[2]
    dtype = x.dtype
    peep = PEEPHOLE_KEYS[0] in params
    dh, dc = d_state

    # The local derivatives, for all steps at once, in few passes over reused arrays.
    # local[t] holds, gate-major like acts[t] (o, i, f, g), what dh (gate o) or the cell
    # gradient dc (gates i, f, g) is multiplied by to give the pre-activation gradients:
    # tanh(c) o (1 - o), g i (1 - i), c_prev f (1 - f), i (1 - g^2).
    local = np.multiply(acts, acts, out=_buffers.empty(acts.shape, dtype))
    np.subtract(acts[:, :3], local[:, :3], out=local[:, :3])  # s (1 - s) for o, i, f
    np.subtract(1, local[:, 3], out=local[:, 3])  # 1 - g^2
    o, i, f, g = acts.transpose(1, 0, 2, 3)  # each (T, B, H)
    local[:, 0] *= tanh_cs
    local[:, 1] *= g
    local[:, 2] *= cs[:-1]
    local[:, 3] *= i
    dh_to_dc = np.multiply(tanh_cs, tanh_cs, out=_buffers.empty(tanh_cs.shape, dtype))
    np.subtract(1, dh_to_dc, out=dh_to_dc)
    dh_to_dc *= o  # o (1 - tanh(c)^2)

    rows = internal_rows(H)
    w_hh = np.ascontiguousarray(params["weight_hh"][rows])
    if peep:
        p_i, p_f, p_o = (params[key] for key in PEEPHOLE_KEYS)
    # The loop overwrites local[t] with the pre-activation gradients of step t (gate-major)
    # and copies them, in torch's layout, into da[t] for the matmuls.
    da = _buffers.empty((steps, batch, 4 * H), dtype)
    da_by_gate = da.reshape(steps, batch, 4, H).transpose(0, 2, 1, 3)
    scratch = np.empty((batch, H), dtype)

    for t in range(steps - 1, -1, -1):
        if d_outputs is not None:
            dh += d_outputs[t]
        da_t = local[t]
        da_o, da_ifg = da_t[0], da_t[1:]
        np.multiply(dh, da_o, out=da_o)
        dc += np.multiply(dh, dh_to_dc[t], out=scratch)
        if peep:
            dc += np.multiply(da_o, p_o, out=scratch)
        np.multiply(dc, da_ifg, out=da_ifg)
        dc *= f[t]  # now dL/dc_{t-1}
        if peep:
            dc += np.multiply(da_t[1], p_i, out=scratch)
            dc += np.multiply(da_t[2], p_f, out=scratch)
        np.copyto(da_by_gate[t], da_t)
        np.matmul(da[t], w_hh, out=dh)  # now dL/dh_{t-1}

    da_flat = da.reshape(steps * batch, 4 * H)
    dx = _buffers.empty((steps, batch, input_size), dtype)
    np.matmul(da_flat, params["weight_ih"][rows], out=dx.reshape(steps * batch, input_size))
    grads = {
        "weight_ih": np.empty_like(params["weight_ih"]),
        "weight_hh": np.empty_like(params["weight_hh"]),
        "bias_ih": np.empty_like(params["bias_ih"]),
    }
    grads["weight_ih"][rows] = da_flat.T @ x.reshape(steps * batch, input_size)
    grads["weight_hh"][rows] = da_flat.T @ hs[:-1].reshape(steps * batch, H)
    grads["bias_ih"][rows] = da_flat.sum(axis=0)
    grads["bias_hh"] = grads["bias_ih"].copy()
    if peep:
        grads["weight_peep_i"] = np.einsum("tbh,tbh->h", local[:, 1], cs[:-1])
        grads["weight_peep_f"] = np.einsum("tbh,tbh->h", local[:, 2], cs[:-1])
        grads["weight_peep_o"] = np.einsum("tbh,tbh->h", local[:, 0], cs[1:])
    return dx, (dh, dc), grads
