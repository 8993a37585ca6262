"""Fast LSTM kernels (contract in :mod:`companion.fast`; the readable loop is in
:mod:`companion.lstm`), with or without peepholes.

Internally the gate blocks are kept in the order **o, i, f, g** (torch's is i, f, g, o), so that
the three sigmoid gates (o, i, f) are contiguous and the three blocks multiplied by the cell
gradient (i, f, g) are contiguous too.  The sigmoid rows of the weights are pre-scaled by 1/2,
so one ``tanh`` call a step gives ``tanh(a/2)`` for o, i, f and ``tanh(a)`` for g, and
``sigmoid(a) = (1 + tanh(a/2)) / 2``.  (With peepholes the output gate needs the new cell, so
it gets its own ``tanh`` call.)
"""

from __future__ import annotations

import numpy as np

from companion._gates import sigmoid_via_tanh_

PEEPHOLE_KEYS = ("weight_peep_i", "weight_peep_f", "weight_peep_o")
INTERNAL_ORDER = (3, 0, 1, 2)  # torch block indices of o, i, f, g


def internal_rows(hidden: int) -> np.ndarray:
    """Row indices that reorder torch's blocks (i, f, g, o) into the internal o, i, f, g."""
    return np.concatenate([np.arange(k * hidden, (k + 1) * hidden) for k in INTERNAL_ORDER])


def forward(x, state, params):
    """``x`` ``(T, B, D)``, ``state`` ``(h0, c0)``; returns ``(outputs, (h_T, c_T), cache)``.

    ``cache`` adds to ``x``, ``params``, ``hs`` and ``cs`` (``c_0 .. c_T``): ``tanh_cs``
    ``(T, B, H)`` and ``acts`` ``(T, B, 4H)``, the gate activations in the order o, i, f, g.
    """
    h0, c0 = state
    steps, batch, input_size = x.shape
    H = h0.shape[1]
    dtype = x.dtype
    peep = PEEPHOLE_KEYS[0] in params

    rows = internal_rows(H)
    scale = np.ones(4 * H, dtype)
    scale[: 3 * H] = 0.5  # o, i, f: sigmoid(a) = (1 + tanh(a / 2)) / 2
    w_ih = params["weight_ih"][rows] * scale[:, None]
    w_hh_t = np.ascontiguousarray((params["weight_hh"][rows] * scale[:, None]).T)
    bias = (params["bias_ih"] + params["bias_hh"])[rows] * scale
    if peep:
        half_p_i, half_p_f, half_p_o = (0.5 * params[key] for key in PEEPHOLE_KEYS)

    hs = np.empty((steps + 1, batch, H), dtype)
    cs = np.empty((steps + 1, batch, H), dtype)
    tanh_cs = np.empty((steps, batch, H), dtype)
    hs[0], cs[0] = h0, c0
    # acts starts as the input projections of all steps: one (T*B, D) @ (D, 4H) matmul.
    acts = x.reshape(steps * batch, input_size) @ w_ih.T
    acts += bias
    acts = acts.reshape(steps, batch, 4 * H)
    recurrent = np.empty((batch, 4 * H), dtype)
    scratch = np.empty((batch, H), dtype)

    for t in range(steps):
        a = acts[t]
        a += np.matmul(hs[t], w_hh_t, out=recurrent)
        o, i, f, g = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        c_prev, c = cs[t], cs[t + 1]
        if peep:
            i += np.multiply(half_p_i, c_prev, out=scratch)
            f += np.multiply(half_p_f, c_prev, out=scratch)
            np.tanh(a[:, H:], out=a[:, H:])
            a_if = a[:, H : 3 * H]
        else:
            np.tanh(a, out=a)
            a_if = a[:, : 3 * H]
        a_if *= 0.5
        a_if += 0.5  # now o (unless peephole), i, f hold sigmoids
        np.multiply(f, c_prev, out=c)
        c += np.multiply(i, g, out=scratch)
        if peep:
            o += np.multiply(half_p_o, c, out=scratch)
            sigmoid_via_tanh_(o)
        np.tanh(c, out=tanh_cs[t])
        np.multiply(o, tanh_cs[t], out=hs[t + 1])

    cache = {"x": x, "params": params, "hs": hs, "cs": cs, "tanh_cs": tanh_cs, "acts": acts}
    return hs[1:].copy(), (hs[steps].copy(), cs[steps].copy()), cache


def backward(d_outputs, d_state, cache):
    """Returns ``(dx, (dh0, dc0), grads)``; ``d_state`` is ``(dh_T, dc_T)``, overwritten."""
    x, params, hs, cs = cache["x"], cache["params"], cache["hs"], cache["cs"]
    tanh_cs, acts = cache["tanh_cs"], cache["acts"]
    steps, batch, input_size = x.shape
    H = hs.shape[2]
    dtype = x.dtype
    peep = PEEPHOLE_KEYS[0] in params
    dh, dc = d_state

    # Everything that does not depend on the backward recursion, for all steps at once.
    o, i, f, g = (acts[:, :, k * H : (k + 1) * H] for k in range(4))
    c_prevs = cs[:-1]
    dh_to_dc = o * (1 - tanh_cs * tanh_cs)  # d c_t / d h_t factor
    dh_to_da_o = tanh_cs * o * (1 - o)
    dc_to_da = np.empty((steps, batch, 3, H), dtype)  # for a_i, a_f, a_g
    np.multiply(g, i * (1 - i), out=dc_to_da[:, :, 0])
    np.multiply(c_prevs, f * (1 - f), out=dc_to_da[:, :, 1])
    np.multiply(i, 1 - g * g, out=dc_to_da[:, :, 2])
    f = np.ascontiguousarray(f)

    rows = internal_rows(H)
    w_hh = np.ascontiguousarray(params["weight_hh"][rows])
    if peep:
        p_i, p_f, p_o = (params[key] for key in PEEPHOLE_KEYS)
    da = np.empty((steps, batch, 4 * H), dtype)  # pre-activation gradients, order o, i, f, g
    da_blocks = da.reshape(steps, batch, 4, H)
    scratch = np.empty((batch, H), dtype)

    for t in range(steps - 1, -1, -1):
        if d_outputs is not None:
            dh += d_outputs[t]
        da_o = np.multiply(dh, dh_to_da_o[t], out=da_blocks[t, :, 0])
        dc += np.multiply(dh, dh_to_dc[t], out=scratch)
        if peep:
            dc += np.multiply(da_o, p_o, out=scratch)
        np.multiply(dc[:, None, :], dc_to_da[t], out=da_blocks[t, :, 1:])
        dc *= f[t]  # now dL/dc_{t-1}
        if peep:
            dc += np.multiply(da_blocks[t, :, 1], p_i, out=scratch)
            dc += np.multiply(da_blocks[t, :, 2], p_f, out=scratch)
        np.matmul(da[t], w_hh, out=dh)  # now dL/dh_{t-1}

    da_flat = da.reshape(steps * batch, 4 * H)
    dx = (da_flat @ params["weight_ih"][rows]).reshape(steps, batch, input_size)
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
        grads["weight_peep_i"] = np.einsum("tbh,tbh->h", da_blocks[:, :, 1], c_prevs)
        grads["weight_peep_f"] = np.einsum("tbh,tbh->h", da_blocks[:, :, 2], c_prevs)
        grads["weight_peep_o"] = np.einsum("tbh,tbh->h", da_blocks[:, :, 0], cs[1:])
    return dx, (dh, dc), grads
