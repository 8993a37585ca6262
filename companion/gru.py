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

The module reads in order: :func:`cell_forward` (one step, gate by gate), :func:`cell_backward`
(its backward), then :func:`forward` / :func:`backward` over a sequence.  These hand the work
to the fast kernel in :mod:`companion.fast` by default; ``forward(..., fast=False)`` runs the
plain loop over :func:`cell_forward` written here, and :func:`backward` then loops over
:func:`cell_backward`.  Both paths agree with ``torch.nn`` to round-off and with each other to
1e-12 (``tests/test_fast.py``).
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
from companion._gates import GateParams, split_gates, uniform_init
from companion.activations import sigmoid
from companion.fast import gru as fast_gru

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


def forward(x, params: dict, state=None, *, reset: str = "after", fast: bool = True):
    """Run the GRU over a sequence (``reset="after"`` matches ``torch.nn.GRU``).

    Args:
        x: ``(T, B, D)`` inputs, time-major.
        params: see :func:`init_params`.
        state: ``h0`` ``(B, H)``, or ``None`` for zeros.
        reset: ``"after"`` (default, PyTorch) or ``"before"`` (Cho et al. 2014).
        fast: ``True`` (default) runs :func:`companion.fast.gru.forward`, which gives the same
            numbers with fewer NumPy calls; ``False`` runs the loop below, :func:`cell_forward`
            once per step.

    Returns:
        ``(outputs, h_T, cache)``: ``outputs`` ``(T, B, H)`` holds ``h_1 .. h_T``.  ``cache``
        is a dict for :func:`backward` with ``x``, ``params``, ``reset`` and ``hs``
        (``h_0 .. h_T``, ``(T+1, B, H)``), plus what the path that made it needs.
    """
    check_choice("reset", reset, RESET_FORMS)
    x, h0, params = _prepare(x, state, params, step=False)
    if fast:
        outputs, (h_T,), cache = fast_gru.forward(x, (h0,), params, reset=reset)
        return outputs, h_T, cache
    h_t, hs, step_caches = h0, [h0], []
    for x_t in x:
        h_t, step_cache = cell_forward(x_t, h_t, params, reset=reset)
        hs.append(h_t)
        step_caches.append(step_cache)
    hs = np.stack(hs)
    cache = {"x": x, "params": params, "reset": reset, "hs": hs, "step_caches": step_caches}
    return hs[1:].copy(), h_t, cache


def backward(d_outputs, cache: dict, d_final_state=None):
    """Backpropagation through time for :func:`forward` (either reset form, either path).

    Args:
        d_outputs: ``(T, B, H)`` gradient w.r.t. ``outputs`` (``None``: zeros).
        cache: from :func:`forward`.
        d_final_state: ``(B, H)`` gradient w.r.t. ``h_T`` (``None``: zeros).

    Returns:
        ``(dx, dh0, grads)``: ``dx`` ``(T, B, D)``, ``dh0`` ``(B, H)``, ``grads`` with the keys
        and shapes of ``params``.
    """
    x, params = cache["x"], cache["params"]
    steps, batch, _ = x.shape
    H = params["weight_hh"].shape[1]
    if d_outputs is not None:
        d_outputs = check_gradient("d_outputs", d_outputs, (steps, batch, H), "TBH")
    dh = np.zeros((batch, H), x.dtype)  # dL/dh_t, from the steps after t
    if d_final_state is not None:
        dh += check_gradient("d_final_state", d_final_state, (batch, H), "BH")
    if "step_caches" not in cache:
        dx, (dh0,), grads = fast_gru.backward(d_outputs, (dh,), cache)
        return dx, dh0, grads
    dx = np.empty_like(x)
    grads = {key: np.zeros_like(value) for key, value in params.items()}
    for t in range(steps - 1, -1, -1):
        if d_outputs is not None:
            dh = dh + d_outputs[t]
        dx[t], dh, step_grads = cell_backward(dh, cache["step_caches"][t])
        for key, value in step_grads.items():
            grads[key] += value
    return dx, dh, grads
