r"""Elman recurrent network (Elman 1990), in PyTorch's ``nn.RNN`` layout.

One step maps the input :math:`x_t` and the previous hidden state :math:`h_{t-1}` to

.. math::

    a_t = W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}, \qquad h_t = \phi(a_t),

with :math:`\phi = \tanh` (default) or :math:`\phi = \mathrm{ReLU}` (``nonlinearity="relu"``),
exactly as ``torch.nn.RNN``.  Backpropagation through time (BPTT) runs the chain rule backwards:

.. math::

    \delta h_t &= \frac{\partial L}{\partial h_t}\Big|_\text{direct}
        + W_{hh}^\top \delta a_{t+1}, \\
    \delta a_t &= \delta h_t \odot \phi'(a_t), \qquad
        \phi'(a_t) = 1 - h_t^2 \;(\tanh) \;\text{ or }\; [h_t > 0] \;(\mathrm{ReLU}), \\
    \frac{\partial L}{\partial W_{ih}} &= \sum_t \delta a_t\, x_t^\top, \quad
    \frac{\partial L}{\partial W_{hh}} = \sum_t \delta a_t\, h_{t-1}^\top, \quad
    \frac{\partial L}{\partial b_{ih}} = \frac{\partial L}{\partial b_{hh}} = \sum_t \delta a_t,
    \quad \frac{\partial L}{\partial x_t} = W_{ih}^\top \delta a_t .

The product of the Jacobians :math:`\mathrm{diag}(\phi'(a_t)) W_{hh}` along the sequence is why
gradients vanish or explode (Bengio et al. 1994; Pascanu et al. 2013).

Shapes (time-major, as ``nn.RNN(batch_first=False)``): ``x`` is ``(T, B, D)``, states are
``(B, H)``, outputs ``(T, B, H)``.  Parameters (``G = 1`` gate)::

    weight_ih (H, D)   weight_hh (H, H)   bias_ih (H,)   bias_hh (H,)

:func:`cell_forward` / :func:`cell_backward` are one step and its backward; :func:`forward` /
:func:`backward` run a whole sequence.  By default they hand the work to the fast kernel in
:mod:`companion.fast.rnn` (one matmul for all input projections, one for each weight
gradient); ``forward(..., fast=False)`` runs the plain loop over :func:`cell_forward` written
below, and :func:`backward` then loops over :func:`cell_backward`.  Both paths agree with
``torch.nn`` to round-off (``tests/test_rnn.py``) and with each other to 1e-12
(``tests/test_fast.py``).
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
from companion.fast import rnn as fast_rnn

GATE_NAMES = ("h",)
NONLINEARITIES = ("tanh", "relu")


def init_params(input_size: int, hidden_size: int, *, seed=None, dtype=np.float64) -> dict:
    r"""New parameters drawn like PyTorch: every entry :math:`\sim U(-1/\sqrt{H}, 1/\sqrt{H})`.

    Args:
        input_size: ``D``, features per time step.
        hidden_size: ``H``, size of the hidden state.
        seed: passed to ``np.random.default_rng``; the same seed gives the same parameters.
        dtype: floating dtype of every array (``np.float64`` by default).

    Returns:
        ``{"weight_ih": (H, D), "weight_hh": (H, H), "bias_ih": (H,), "bias_hh": (H,)}``.
        The nonlinearity is not a parameter: pass ``nonlinearity=`` to the forward functions.
    """
    return uniform_init(input_size, hidden_size, 1, seed=seed, dtype=dtype)


def gates(params: dict) -> dict[str, GateParams]:
    """Per-gate view ``{"h": GateParams(W_x, W_h, b_x, b_h)}`` (the RNN has a single block).

    ``W_x`` is ``weight_ih`` ``(H, D)``, ``W_h`` is ``weight_hh`` ``(H, H)``, ``b_x`` and
    ``b_h`` the biases ``(H,)``; provided for symmetry with :mod:`companion.lstm` and
    :mod:`companion.gru`.  The arrays are views: writing to them changes ``params``.
    """
    check_params(params, gate_count=1)
    return split_gates(params, GATE_NAMES)


def _activate(a: np.ndarray, nonlinearity: str) -> np.ndarray:
    """phi(a) in place."""
    if nonlinearity == "tanh":
        return np.tanh(a, out=a)
    return np.maximum(a, 0, out=a)


def _derivative(h: np.ndarray, nonlinearity: str) -> np.ndarray:
    """phi'(a) written with the output h = phi(a): 1 - h^2 for tanh, [h > 0] for ReLU."""
    if nonlinearity == "tanh":
        return 1 - h * h
    return (h > 0).astype(h.dtype)


def _prepare(x, state, params, *, step: bool):
    """Validate and cast to one dtype; return ``(x, h, params)``."""
    input_size, hidden_size, arrays = check_params(params, gate_count=1)
    if step:
        x = check_step_input(x, input_size)
        batch = x.shape[0]
        name = "h_prev"
    else:
        x = check_sequence(x, input_size)
        batch = x.shape[1]
        name = "h0"
    h = None if state is None else check_state(name, state, batch, hidden_size)
    dtype = compute_dtype(x, *arrays.values(), *([] if h is None else [h]))
    h = np.zeros((batch, hidden_size), dtype) if h is None else h.astype(dtype, copy=False)
    arrays = {key: value.astype(dtype, copy=False) for key, value in arrays.items()}
    return x.astype(dtype, copy=False), h, arrays


# --------------------------------------------------------------------------- one step


def cell_forward(x_t, h_prev, params: dict, *, nonlinearity: str = "tanh"):
    r"""One step :math:`h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})`.

    Args:
        x_t: ``(B, D)`` input at time ``t``.
        h_prev: ``(B, H)`` previous hidden state, or ``None`` for zeros.
        params: see :func:`init_params`.
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Returns:
        ``(h_t, cache)`` with ``h_t`` of shape ``(B, H)``; ``cache`` is a dict
        (``x_t``, ``h_prev``, ``h_t``, ``params``, ``nonlinearity``) for :func:`cell_backward`.
    """
    check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
    x_t, h_prev, params = _prepare(x_t, h_prev, params, step=True)
    W_x, W_h, b_x, b_h = split_gates(params, GATE_NAMES)["h"]
    a_t = x_t @ W_x.T + b_x + h_prev @ W_h.T + b_h
    h_t = _activate(a_t, nonlinearity)
    cache = {"x_t": x_t, "h_prev": h_prev, "h_t": h_t, "params": params,
             "nonlinearity": nonlinearity}
    return h_t, cache


def cell_backward(dh_t, cache: dict):
    r"""Backward of :func:`cell_forward`: from :math:`\partial L/\partial h_t` to the inputs.

    .. math::

        \delta a = \delta h_t \odot \phi'(a_t), \quad
        \partial x_t = W_{ih}^\top \delta a, \quad \partial h_{t-1} = W_{hh}^\top \delta a,
        \quad \partial W_{ih} = \delta a\, x_t^\top, \quad \partial W_{hh} = \delta a\,
        h_{t-1}^\top, \quad \partial b_{ih} = \partial b_{hh} = \textstyle\sum_b \delta a .

    Args:
        dh_t: ``(B, H)`` gradient of the loss with respect to ``h_t``.
        cache: the cache returned by :func:`cell_forward`.

    Returns:
        ``(dx_t, dh_prev, grads)``: ``(B, D)``, ``(B, H)`` and a dict with the keys and
        shapes of ``params`` (summed over the batch).
    """
    h_t, params = cache["h_t"], cache["params"]
    dh_t = check_gradient("dh_t", dh_t, h_t.shape, "BH").astype(h_t.dtype, copy=False)
    da = dh_t * _derivative(h_t, cache["nonlinearity"])
    dx_t = da @ params["weight_ih"]
    dh_prev = da @ params["weight_hh"]
    grads = {
        "weight_ih": da.T @ cache["x_t"],
        "weight_hh": da.T @ cache["h_prev"],
        "bias_ih": da.sum(axis=0),
        "bias_hh": da.sum(axis=0),
    }
    return dx_t, dh_prev, grads


# --------------------------------------------------------------------------- a sequence


def forward(x, params: dict, state=None, *, nonlinearity: str = "tanh", fast: bool = True):
    """Run the RNN over a whole sequence (same result as ``torch.nn.RNN``).

    Args:
        x: ``(T, B, D)`` inputs, time-major.
        params: see :func:`init_params`.
        state: ``h0`` of shape ``(B, H)``, or ``None`` for zeros.
        nonlinearity: ``"tanh"`` (default) or ``"relu"``.
        fast: ``True`` (default) runs :func:`companion.fast.rnn.forward`, which gives the same
            numbers with one matmul for all input projections; ``False`` runs the loop below,
            :func:`cell_forward` once per step.

    Returns:
        ``(outputs, h_T, cache)``: ``outputs`` ``(T, B, H)`` holds ``h_1 .. h_T``; ``h_T`` is
        ``(B, H)``; ``cache`` (dict with ``x``, ``hs`` = ``h_0 .. h_T`` of shape
        ``(T+1, B, H)``, ``params``, ``nonlinearity``) feeds :func:`backward`.
        float32 inputs and parameters give float32 results; anything else float64.
    """
    check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
    x, h0, params = _prepare(x, state, params, step=False)
    if fast:
        outputs, (h_T,), cache = fast_rnn.forward(x, (h0,), params, nonlinearity=nonlinearity)
        return outputs, h_T, cache
    h_t, hs, step_caches = h0, [h0], []
    for x_t in x:
        h_t, step_cache = cell_forward(x_t, h_t, params, nonlinearity=nonlinearity)
        hs.append(h_t)
        step_caches.append(step_cache)
    hs = np.stack(hs)
    cache = {"x": x, "hs": hs, "params": params, "nonlinearity": nonlinearity,
             "step_caches": step_caches}
    return hs[1:].copy(), h_t, cache


def backward(d_outputs, cache: dict, d_final_state=None):
    """Backpropagation through time for :func:`forward` (either path).

    Args:
        d_outputs: ``(T, B, H)`` gradient of the loss w.r.t. ``outputs`` (``None``: zeros).
        cache: the cache returned by :func:`forward`.
        d_final_state: ``(B, H)`` gradient w.r.t. ``h_T`` returned separately (``None``:
            zeros); it adds to ``d_outputs[-1]``.

    Returns:
        ``(dx, dh0, grads)``: ``dx`` ``(T, B, D)``, ``dh0`` ``(B, H)`` and ``grads`` with the
        keys and shapes of ``params``.
    """
    x, params = cache["x"], cache["params"]
    steps, batch, _ = x.shape
    hidden_size = params["weight_hh"].shape[1]
    if d_outputs is not None:
        d_outputs = check_gradient("d_outputs", d_outputs, (steps, batch, hidden_size), "TBH")
    dh = np.zeros((batch, hidden_size), x.dtype)  # dL/dh_t, from the steps after t
    if d_final_state is not None:
        dh += check_gradient("d_final_state", d_final_state, (batch, hidden_size), "BH")
    if "step_caches" not in cache:
        dx, (dh0,), grads = fast_rnn.backward(d_outputs, (dh,), cache)
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
