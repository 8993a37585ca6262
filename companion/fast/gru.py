"""Fast GRU kernels, both reset forms (contract in :mod:`companion.fast`; the readable loop is
in :mod:`companion.gru`).

The rows of r and z are pre-scaled by -1 so that ``sigmoid(a) = 1 / (1 + exp(-a))`` takes one
``exp``, one add and one division for both gates (see :mod:`companion.fast._ops`); the input
projections of all steps are one matmul.
"reset after" needs one recurrent matmul a step, "reset before" two, one after the other.

As in :mod:`companion.fast.lstm`, the gate activations are stored **gate-major**,
``(T, 3, B, H)``, so that the per-gate calls of a step (the sigmoid of r and z, the tanh of n,
the update) and the backward's passes over all steps run on contiguous arrays; the matmuls keep
torch's ``(B, 3H)`` layout, and one add a step moves the r and z pre-activations from it into
``acts``.  (NumPy runs a call on a strided view, such as a column block of a ``(B, 3H)``
array, through its general iterator, which is slower than on a contiguous one.)
"""

from __future__ import annotations

import numpy as np

from companion.fast import _buffers
from companion.fast._ops import SIGMOID_SCALE, sigmoid_of_scaled_


def forward(x, state, params, *, reset="after"):
    """``x`` ``(T, B, D)``, ``state`` ``(h0,)``; returns ``(outputs, (h_T,), cache)``.

    ``cache`` adds to ``x``, ``params``, ``reset`` and ``hs``: ``acts`` ``(T, 3, B, H)``, the
    gate activations r, z, n, gate-major, and ``hn`` (after: :math:`W_{hn} h_{t-1} + b_{hn}`)
    or ``rh`` (before: :math:`r_t \\odot h_{t-1}`), each ``(T, B, H)``.
    """
    (h0,) = state
    steps, batch, input_size = x.shape
    H = h0.shape[1]
    dtype = x.dtype
    scale = np.ones(3 * H, dtype)
    scale[: 2 * H] = SIGMOID_SCALE
    w_ih = params["weight_ih"] * scale[:, None]
    w_hh = params["weight_hh"] * scale[:, None]
    b_hh = params["bias_hh"] * scale
    bias = params["bias_ih"] * scale
    bias[: 2 * H] += b_hh[: 2 * H]
    if reset == "before":
        bias[2 * H :] += b_hh[2 * H :]

    hs = _buffers.empty((steps + 1, batch, H), dtype)
    hs[0] = h0
    # The input projections of all steps: one (T*B, D) @ (D, 3H) matmul, in torch's layout.
    projections = _buffers.empty((steps, batch, 3 * H), dtype)
    flat = projections.reshape(steps * batch, 3 * H)
    np.matmul(x.reshape(steps * batch, input_size), w_ih.T, out=flat)
    flat += bias
    projections_by_gate = projections.reshape(steps, batch, 3, H).transpose(0, 2, 1, 3)
    acts = _buffers.empty((steps, 3, batch, H), dtype)
    scratch = np.empty((batch, H), dtype)
    cache = {"x": x, "params": params, "reset": reset, "hs": hs, "acts": acts}

    with np.errstate(over="ignore"):  # exp(-a) = inf for very negative a: sigmoid 0
        if reset == "after":
            w_hh_t = np.ascontiguousarray(w_hh.T)
            b_hn = b_hh[2 * H :]
            recurrent = np.empty((batch, 3 * H), dtype)
            recurrent_by_gate = recurrent.reshape(batch, 3, H).transpose(1, 0, 2)
            hn = cache["hn"] = _buffers.empty((steps, batch, H), dtype)
            for t in range(steps):
                a = acts[t]
                np.matmul(hs[t], w_hh_t, out=recurrent)
                np.add(recurrent[:, 2 * H :], b_hn, out=hn[t])
                np.add(projections_by_gate[t, :2], recurrent_by_gate[:2], out=a[:2])
                sigmoid_of_scaled_(a[:2])
                r, z, n = a
                np.multiply(r, hn[t], out=n)
                n += projections_by_gate[t, 2]
                np.tanh(n, out=n)
                _update(n, z, hs[t], out=hs[t + 1], scratch=scratch)
        else:
            w_rz_t = np.ascontiguousarray(w_hh[: 2 * H].T)
            w_hn_t = np.ascontiguousarray(w_hh[2 * H :].T)
            recurrent = np.empty((batch, 2 * H), dtype)
            recurrent_by_gate = recurrent.reshape(batch, 2, H).transpose(1, 0, 2)
            rh = cache["rh"] = _buffers.empty((steps, batch, H), dtype)
            for t in range(steps):
                a = acts[t]
                np.matmul(hs[t], w_rz_t, out=recurrent)
                np.add(projections_by_gate[t, :2], recurrent_by_gate, out=a[:2])
                sigmoid_of_scaled_(a[:2])
                r, z, n = a
                np.multiply(r, hs[t], out=rh[t])
                np.matmul(rh[t], w_hn_t, out=n)
                n += projections_by_gate[t, 2]
                np.tanh(n, out=n)
                _update(n, z, hs[t], out=hs[t + 1], scratch=scratch)
    return _buffers.copy(hs[1:]), (hs[steps].copy(),), cache


def _update(n, z, h_prev, *, out, scratch):
    """out = (1 - z) * n + z * h_prev, computed as n + z * (h_prev - n)."""
    np.subtract(h_prev, n, out=scratch)
    scratch *= z
    np.add(n, scratch, out=out)


def backward(d_outputs, d_state, cache):
    """Returns ``(dx, (dh0,), grads)``; ``d_state`` is ``(dh_T,)`` and is overwritten."""
    x, params, hs, acts = cache["x"], cache["params"], cache["hs"], cache["acts"]
    steps, batch, input_size = x.shape
    H = hs.shape[2]
    dtype = x.dtype
    (dh,) = d_state

    r, z, n = acts.transpose(1, 0, 2, 3)  # each (T, B, H)
    h_prevs = hs[:-1]
    # The local derivatives of all steps, in few passes and three new arrays.
    dh_to_da_n = np.multiply(n, n, out=_buffers.empty(n.shape, dtype))
    np.subtract(1, dh_to_da_n, out=dh_to_da_n)
    temp = np.subtract(1, z, out=_buffers.empty(z.shape, dtype))
    dh_to_da_n *= temp  # (1 - z)(1 - n^2)
    dh_to_da_z = np.subtract(h_prevs, n, out=_buffers.empty(n.shape, dtype))
    temp *= z
    dh_to_da_z *= temp  # (h_prev - n) z (1 - z)
    r_local = np.multiply(r, r, out=temp)
    np.subtract(r, r_local, out=r_local)  # r (1 - r), times hn or h_prev below
    w_hh = params["weight_hh"]
    da_hh = _buffers.empty((steps, batch, 3 * H), dtype)  # recurrent pre-activations' grads
    scratch = np.empty((batch, H), dtype)

    if cache["reset"] == "after":
        dn_to_da_r = np.multiply(r_local, cache["hn"], out=r_local)
        da_n = _buffers.empty((steps, batch, H), dtype)
        recurrent = np.empty((batch, H), dtype)
        for t in range(steps - 1, -1, -1):
            if d_outputs is not None:
                dh += d_outputs[t]
            np.multiply(dh, dh_to_da_n[t], out=da_n[t])
            np.multiply(dh, dh_to_da_z[t], out=da_hh[t, :, H : 2 * H])
            np.multiply(da_n[t], dn_to_da_r[t], out=da_hh[t, :, :H])
            np.multiply(da_n[t], r[t], out=da_hh[t, :, 2 * H :])
            np.matmul(da_hh[t], w_hh, out=recurrent)
            dh *= z[t]
            dh += recurrent
        h_inputs = h_prevs.reshape(steps * batch, H)
        dW_hh = da_hh.reshape(steps * batch, 3 * H).T @ h_inputs
        return _input_gradients(x, params, da_hh, da_n, dh, dW_hh)
    else:
        drh_to_da_r = np.multiply(r_local, h_prevs, out=r_local)
        w_rz, w_hn = w_hh[: 2 * H], w_hh[2 * H :]
        d_rh = np.empty((batch, H), dtype)
        for t in range(steps - 1, -1, -1):
            if d_outputs is not None:
                dh += d_outputs[t]
            da_n = np.multiply(dh, dh_to_da_n[t], out=da_hh[t, :, 2 * H :])
            np.multiply(dh, dh_to_da_z[t], out=da_hh[t, :, H : 2 * H])
            np.matmul(da_n, w_hn, out=d_rh)
            np.multiply(d_rh, drh_to_da_r[t], out=da_hh[t, :, :H])
            dh *= z[t]
            dh += np.multiply(d_rh, r[t], out=scratch)
            dh += da_hh[t, :, : 2 * H] @ w_rz
        flat = da_hh.reshape(steps * batch, 3 * H)
        dW_hh = np.concatenate([
            flat[:, : 2 * H].T @ h_prevs.reshape(steps * batch, H),
            flat[:, 2 * H :].T @ cache["rh"].reshape(steps * batch, H),
        ])
        # One pre-activation per gate: input and recurrent gradients agree.
        return _input_gradients(x, params, da_hh, da_hh[:, :, 2 * H :], dh, dW_hh)


def _input_gradients(x, params, da_hh, da_n, dh, dW_hh):
    """``dx`` and the parameter gradients from the pre-activation gradients of all steps:
    ``da_hh`` ``(T, B, 3H)`` (recurrent side) and ``da_n`` ``(T, B, H)``, the input side's
    candidate block (its r and z blocks are those of ``da_hh``)."""
    steps, batch, input_size = x.shape
    H = da_n.shape[2]
    da_rz = da_hh[:, :, : 2 * H].reshape(steps * batch, 2 * H)
    da_n = da_n.reshape(steps * batch, H)
    w_ih = params["weight_ih"]
    dx = _buffers.empty((steps * batch, input_size), da_n.dtype)
    np.matmul(da_rz, w_ih[: 2 * H], out=dx)
    dx += da_n @ w_ih[2 * H :]
    x_flat = x.reshape(steps * batch, input_size)
    db_hh = da_hh.reshape(steps * batch, 3 * H).sum(axis=0)
    grads = {
        "weight_ih": np.concatenate([da_rz.T @ x_flat, da_n.T @ x_flat]),
        "weight_hh": dW_hh,
        "bias_ih": np.concatenate([db_hh[: 2 * H], da_n.sum(axis=0)]),
        "bias_hh": db_hh,
    }
    return dx.reshape(steps, batch, input_size), (dh,), grads
