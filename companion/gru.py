r"""Gated recurrent unit (Cho et al. 2014; evaluated by Chung et al. 2014), in PyTorch's
``nn.GRU`` layout.

One step, with :math:`\sigma` the logistic function and :math:`\odot` the elementwise product:

.. math::

    r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
    z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
    n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn}))
        \qquad \text{reset="after" (default; PyTorch / cuDNN)} \\
    n_t &= \tanh(W_{in} x_t + b_{in} + W_{hn} (r_t \odot h_{t-1}) + b_{hn})
        \qquad \text{reset="before" (Cho et al. 2014)} \\
    h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

Update convention as PyTorch and Cho et al. (2014): :math:`z_t \to 1` *keeps* the old state.
(Chung et al. 2014 write :math:`h_t = (1 - z_t) h_{t-1} + z_t \tilde h_t`: their :math:`z` is our
:math:`1 - z`.)  The two reset forms differ only in whether the reset gate is applied
after the recurrent matmul (one fused :math:`W_{hh} h_{t-1}` per step, which is what cuDNN
implements) or before it (a second matmul with :math:`r_t \odot h_{t-1}`).

Backward through one step, given :math:`\delta h_t`:

.. math::

    \delta a_n &= \delta h_t \odot (1 - z_t) \odot (1 - n_t^2), \qquad
    \delta a_z = \delta h_t \odot (h_{t-1} - n_t) \odot z_t (1 - z_t) \\
    \text{after:}\quad \delta(W_{hn} h_{t-1} + b_{hn}) &= \delta a_n \odot r_t, \qquad
    \delta a_r = \delta a_n \odot (W_{hn} h_{t-1} + b_{hn}) \odot r_t (1 - r_t) \\
    \text{before:}\quad \delta(r_t \odot h_{t-1}) &= W_{hn}^\top \delta a_n, \qquad
    \delta a_r = \delta(r_t \odot h_{t-1}) \odot h_{t-1} \odot r_t (1 - r_t) \\
    \text{after:}\quad \delta h_{t-1} &= \delta h_t \odot z_t + W_{hh}^\top
        [\delta a_r; \delta a_z; \delta a_n \odot r_t] \\
    \text{before:}\quad \delta h_{t-1} &= \delta h_t \odot z_t + W_{hr}^\top \delta a_r
        + W_{hz}^\top \delta a_z + \delta(r_t \odot h_{t-1}) \odot r_t

Weight gradients are outer products summed over batch and time; the recurrent gradient of the
candidate block is :math:`(\delta a_n \odot r_t)\, h_{t-1}^\top` (after) or
:math:`\delta a_n (r_t \odot h_{t-1})^\top` (before), and the two bias gradients differ only in
the candidate block for ``reset="after"``.

Parameters (``G = 3`` gates stacked in PyTorch's order **r, z, n**)::

    weight_ih (3H, D)   weight_hh (3H, H)   bias_ih (3H,)   bias_hh (3H,)

Shapes are time-major: ``x`` ``(T, B, D)``, ``h`` ``(B, H)``.
"""

from __future__ import annotations

import numpy as np

from companion._checks import (
    check_choice,
    check_gradient,
    check_params,
    check_sequence,
    check_state,
    check_step_input,
    compute_dtype,
)
from companion._gates import GateParams, sigmoid_via_tanh_, split_gates, uniform_init
from companion.activations import sigmoid

GATE_NAMES = ("r", "z", "n")
RESET_FORMS = ("after", "before")


def init_params(input_size: int, hidden_size: int, *, seed=None, dtype=np.float64) -> dict:
    r"""New parameters drawn like PyTorch: every entry :math:`\sim U(-1/\sqrt{H}, 1/\sqrt{H})`.

    Returns:
        ``{"weight_ih": (3H, D), "weight_hh": (3H, H), "bias_ih": (3H,), "bias_hh": (3H,)}``
        (blocks r, z, n).  Both reset forms use the same parameters; choose the form with
        ``reset=`` on the forward functions.
    """
    return uniform_init(input_size, hidden_size, 3, seed=seed, dtype=dtype)


def gates(params: dict) -> dict[str, GateParams]:
    """Per-gate views ``{"r", "z", "n"} -> GateParams(W_x, W_h, b_x, b_h)``.

    ``gates(params)["n"].W_h`` is the book's :math:`W_{hn}` (rows ``2H:3H`` of ``weight_hh``,
    shape ``(H, H)``); ``.W_x`` ``(H, D)``, ``.b_x`` / ``.b_h`` ``(H,)``.  Views: writing to
    them changes ``params``.
    """
    check_params(params, gate_count=3)
    return split_gates(params, GATE_NAMES)


def _prepare(x, state, params, *, step: bool):
    """Validate and cast to one dtype; return ``(x, h, params)``."""
    input_size, hidden_size, arrays = check_params(params, gate_count=3)
    if step:
        x = check_step_input(x, input_size)
        batch, name = x.shape[0], "h_prev"
    else:
        x = check_sequence(x, input_size)
        batch, name = x.shape[1], "h0"
    h = None if state is None else check_state(name, state, batch, hidden_size)
    dtype = compute_dtype(x, *arrays.values(), *([] if h is None else [h]))
    h = np.zeros((batch, hidden_size), dtype) if h is None else h.astype(dtype, copy=False)
    arrays = {key: value.astype(dtype, copy=False) for key, value in arrays.items()}
    return x.astype(dtype, copy=False), h, arrays


# --------------------------------------------------------------------------- one step


def cell_forward(x_t, h_prev, params: dict, *, reset: str = "after"):
    """One GRU step, gate by gate (equations in the module docstring).

    Args:
        x_t: ``(B, D)`` input at time ``t``.
        h_prev: ``(B, H)`` previous hidden state, or ``None`` for zeros.
        params: see :func:`init_params`.
        reset: ``"after"`` (PyTorch, default) or ``"before"`` (Cho et al. 2014).

    Returns:
        ``(h_t, cache)``; ``cache`` is a dict with ``x_t``, ``h_prev``, ``r``, ``z``, ``n``,
        ``hn`` (after: :math:`W_{hn} h_{t-1} + b_{hn}`; before: :math:`W_{hn}(r \\odot h_{t-1})
        + b_{hn}`), ``rh`` (:math:`r \\odot h_{t-1}`), ``params`` and ``reset``.
    """
    check_choice("reset", reset, RESET_FORMS)
    x_t, h_prev, params = _prepare(x_t, h_prev, params, step=True)
    per_gate = split_gates(params, GATE_NAMES)

    def pre_activation(name):
        W_x, W_h, b_x, b_h = per_gate[name]
        return x_t @ W_x.T + b_x + h_prev @ W_h.T + b_h

    r_t = sigmoid(pre_activation("r"))  # reset gate: how much of h_prev the candidate sees
    z_t = sigmoid(pre_activation("z"))  # update gate: how much of h_prev to keep
    W_in, W_hn, b_in, b_hn = per_gate["n"]
    rh = r_t * h_prev
    if reset == "after":
        hn = h_prev @ W_hn.T + b_hn
        n_t = np.tanh(x_t @ W_in.T + b_in + r_t * hn)
    else:
        hn = rh @ W_hn.T + b_hn
        n_t = np.tanh(x_t @ W_in.T + b_in + hn)
    h_t = (1 - z_t) * n_t + z_t * h_prev
    cache = {"x_t": x_t, "h_prev": h_prev, "r": r_t, "z": z_t, "n": n_t, "hn": hn, "rh": rh,
             "params": params, "reset": reset}
    return h_t, cache


def cell_backward(dh_t, cache: dict):
    """Backward of :func:`cell_forward` (equations in the module docstring).

    Args:
        dh_t: ``(B, H)`` gradient w.r.t. ``h_t``.
        cache: from :func:`cell_forward`.

    Returns:
        ``(dx_t, dh_prev, grads)``: ``(B, D)``, ``(B, H)`` and a dict with the keys and
        shapes of ``params``.
    """
    params = cache["params"]
    r_t, z_t, n_t, h_prev = cache["r"], cache["z"], cache["n"], cache["h_prev"]
    dh_t = check_gradient("dh_t", dh_t, h_prev.shape, "BH").astype(h_prev.dtype, copy=False)
    per_gate = split_gates(params, GATE_NAMES)

    da_n = dh_t * (1 - z_t) * (1 - n_t**2)
    da_z = dh_t * (h_prev - n_t) * z_t * (1 - z_t)
    dh_prev = dh_t * z_t
    if cache["reset"] == "after":
        d_hn = da_n * r_t  # gradient of W_hn h_prev + b_hn
        da_r = da_n * cache["hn"] * r_t * (1 - r_t)
        da_hh = np.concatenate([da_r, da_z, d_hn], axis=1)
        dh_prev = dh_prev + da_hh @ params["weight_hh"]
        dW_hh = da_hh.T @ h_prev
    else:
        d_rh = da_n @ per_gate["n"].W_h  # gradient of r * h_prev
        da_r = d_rh * h_prev * r_t * (1 - r_t)
        da_hh = np.concatenate([da_r, da_z, da_n], axis=1)
        da_rz = da_hh[:, : 2 * h_prev.shape[1]]
        W_h_rz = params["weight_hh"][: 2 * h_prev.shape[1]]
        dh_prev = dh_prev + d_rh * r_t + da_rz @ W_h_rz
        dW_hh = np.concatenate([da_rz.T @ h_prev, da_n.T @ cache["rh"]], axis=0)
    da_ih = np.concatenate([da_r, da_z, da_n], axis=1)
    dx_t = da_ih @ params["weight_ih"]
    grads = {
        "weight_ih": da_ih.T @ cache["x_t"],
        "weight_hh": dW_hh,
        "bias_ih": da_ih.sum(axis=0),
        "bias_hh": da_hh.sum(axis=0),
    }
    return dx_t, dh_prev, grads


# --------------------------------------------------------------------------- a sequence
#
# Fast path: rows of r and z are pre-scaled by 1/2 so that sigmoid(a) = (1 + tanh(a / 2)) / 2
# takes one tanh call for both gates; all input projections are one matmul.


def forward(x, params: dict, state=None, *, reset: str = "after"):
    """Run the GRU over a sequence (``reset="after"`` matches ``torch.nn.GRU``).

    Args:
        x: ``(T, B, D)`` inputs, time-major.
        params: see :func:`init_params`.
        state: ``h0`` ``(B, H)``, or ``None`` for zeros.
        reset: ``"after"`` (default, PyTorch) or ``"before"`` (Cho et al. 2014).

    Returns:
        ``(outputs, h_T, cache)``: ``outputs`` ``(T, B, H)`` holds ``h_1 .. h_T``.  ``cache``
        is a dict for :func:`backward` with ``x``, ``params``, ``reset``, ``hs``
        (``h_0 .. h_T``, ``(T+1, B, H)``), ``acts`` (``(T, B, 3H)``: r, z, n) and ``hn``
        (after) or ``rh`` (before), each ``(T, B, H)``.
    """
    check_choice("reset", reset, RESET_FORMS)
    x, h0, params = _prepare(x, state, params, step=False)
    steps, batch, input_size = x.shape
    H = h0.shape[1]
    dtype = x.dtype
    scale = np.ones(3 * H, dtype)
    scale[: 2 * H] = 0.5
    w_ih = params["weight_ih"] * scale[:, None]
    w_hh = params["weight_hh"] * scale[:, None]
    b_hh = params["bias_hh"] * scale
    bias = params["bias_ih"] * scale
    bias[: 2 * H] += b_hh[: 2 * H]
    if reset == "before":
        bias[2 * H :] += b_hh[2 * H :]

    hs = np.empty((steps + 1, batch, H), dtype)
    hs[0] = h0
    acts = x.reshape(steps * batch, input_size) @ w_ih.T
    acts += bias
    acts = acts.reshape(steps, batch, 3 * H)
    scratch = np.empty((batch, H), dtype)
    cache = {"x": x, "params": params, "reset": reset, "hs": hs, "acts": acts}

    if reset == "after":
        w_hh_t = np.ascontiguousarray(w_hh.T)
        b_hn = b_hh[2 * H :]
        recurrent = np.empty((batch, 3 * H), dtype)
        hn = cache["hn"] = np.empty((steps, batch, H), dtype)
        for t in range(steps):
            a = acts[t]
            np.matmul(hs[t], w_hh_t, out=recurrent)
            np.add(recurrent[:, 2 * H :], b_hn, out=hn[t])
            rz = a[:, : 2 * H]
            rz += recurrent[:, : 2 * H]
            sigmoid_via_tanh_(rz)
            r, z, n = a[:, :H], a[:, H : 2 * H], a[:, 2 * H :]
            n += np.multiply(r, hn[t], out=scratch)
            np.tanh(n, out=n)
            _update(n, z, hs[t], out=hs[t + 1], scratch=scratch)
    else:
        w_rz_t = np.ascontiguousarray(w_hh[: 2 * H].T)
        w_hn_t = np.ascontiguousarray(w_hh[2 * H :].T)
        recurrent = np.empty((batch, 2 * H), dtype)
        rh = cache["rh"] = np.empty((steps, batch, H), dtype)
        for t in range(steps):
            a = acts[t]
            rz = a[:, : 2 * H]
            rz += np.matmul(hs[t], w_rz_t, out=recurrent)
            sigmoid_via_tanh_(rz)
            r, z, n = a[:, :H], a[:, H : 2 * H], a[:, 2 * H :]
            np.multiply(r, hs[t], out=rh[t])
            n += np.matmul(rh[t], w_hn_t, out=scratch)
            np.tanh(n, out=n)
            _update(n, z, hs[t], out=hs[t + 1], scratch=scratch)
    return hs[1:].copy(), hs[steps].copy(), cache


def _update(n, z, h_prev, *, out, scratch):
    """out = (1 - z) * n + z * h_prev, computed as n + z * (h_prev - n)."""
    np.subtract(h_prev, n, out=scratch)
    scratch *= z
    np.add(n, scratch, out=out)


def backward(d_outputs, cache: dict, d_final_state=None):
    """Backpropagation through time for :func:`forward` (either reset form).

    Args:
        d_outputs: ``(T, B, H)`` gradient w.r.t. ``outputs`` (``None``: zeros).
        cache: from :func:`forward`.
        d_final_state: ``(B, H)`` gradient w.r.t. ``h_T`` (``None``: zeros).

    Returns:
        ``(dx, dh0, grads)``: ``dx`` ``(T, B, D)``, ``dh0`` ``(B, H)``, ``grads`` with the keys
        and shapes of ``params``.
    """
    x, params, hs, acts = cache["x"], cache["params"], cache["hs"], cache["acts"]
    steps, batch, input_size = x.shape
    H = hs.shape[2]
    dtype = x.dtype
    if d_outputs is not None:
        d_outputs = check_gradient("d_outputs", d_outputs, (steps, batch, H), "TBH")
    dh = np.zeros((batch, H), dtype)
    if d_final_state is not None:
        dh += check_gradient("d_final_state", d_final_state, (batch, H), "BH")

    r, z, n = (acts[:, :, k * H : (k + 1) * H] for k in range(3))
    h_prevs = hs[:-1]
    dh_to_da_n = (1 - z) * (1 - n * n)
    dh_to_da_z = (h_prevs - n) * z * (1 - z)
    z = np.ascontiguousarray(z)
    w_hh = params["weight_hh"]
    da_hh = np.empty((steps, batch, 3 * H), dtype)  # gradients of the recurrent pre-activations
    scratch = np.empty((batch, H), dtype)

    if cache["reset"] == "after":
        dn_to_da_r = cache["hn"] * r * (1 - r)
        r = np.ascontiguousarray(r)
        da_n = np.empty((steps, batch, H), dtype)
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
        da_ih = da_hh.copy()
        da_ih[:, :, 2 * H :] = da_n
        h_inputs = h_prevs.reshape(steps * batch, H)
        dW_hh = da_hh.reshape(steps * batch, 3 * H).T @ h_inputs
    else:
        drh_to_da_r = h_prevs * r * (1 - r)
        r = np.ascontiguousarray(r)
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
        da_ih = da_hh  # one pre-activation per gate: input and recurrent gradients agree
        flat = da_hh.reshape(steps * batch, 3 * H)
        dW_hh = np.concatenate([
            flat[:, : 2 * H].T @ h_prevs.reshape(steps * batch, H),
            flat[:, 2 * H :].T @ cache["rh"].reshape(steps * batch, H),
        ])

    da_ih_flat = da_ih.reshape(steps * batch, 3 * H)
    dx = (da_ih_flat @ params["weight_ih"]).reshape(steps, batch, input_size)
    grads = {
        "weight_ih": da_ih_flat.T @ x.reshape(steps * batch, input_size),
        "weight_hh": dW_hh,
        "bias_ih": da_ih_flat.sum(axis=0),
        "bias_hh": da_hh.reshape(steps * batch, 3 * H).sum(axis=0),
    }
    return dx, dh, grads
