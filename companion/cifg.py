r"""The coupled input-forget gate LSTM (CIFG; Greff et al. 2017): an LSTM whose input gate is
not learned but tied to the forget gate, :math:`i_t = 1 - f_t`.

One step, with :math:`\sigma` the logistic function and :math:`\odot` the elementwise product:

.. math::

    f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
    g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
    o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
    c_t &= f_t \odot c_{t-1} + (1 - f_t) \odot g_t \\
    h_t &= o_t \odot \tanh(c_t)

The cell is a convex combination of the old cell and the candidate: what is forgotten is
exactly what is written. This is the LSTM's half of the GRU's coupling
:math:`h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}`; the CIFG keeps the LSTM's separate cell
and output gate.  Greff et al. (2017) found it about as good as the full LSTM on their tasks,
with a quarter fewer parameters.

Backward through one step, given :math:`\delta h_t` and :math:`\delta c_t` (the gradient that
reaches :math:`c_t` from step :math:`t+1`); :math:`\delta a_\ast` are the pre-activation
gradients:

.. math::

    \delta a_o &= \delta h_t \odot \tanh(c_t) \odot o_t (1 - o_t) \\
    \bar\delta c_t &= \delta c_t + \delta h_t \odot o_t \odot (1 - \tanh^2 c_t) \\
    \delta a_f &= \bar\delta c_t \odot (c_{t-1} - g_t) \odot f_t (1 - f_t), \quad
    \delta a_g = \bar\delta c_t \odot (1 - f_t) \odot (1 - g_t^2) \\
    \delta c_{t-1} &= \bar\delta c_t \odot f_t, \quad
    \delta h_{t-1} = W_{hh}^\top \delta a, \quad \delta x_t = W_{ih}^\top \delta a, \quad
    \delta a = [\delta a_f; \delta a_g; \delta a_o]

The forget gate's gradient carries :math:`c_{t-1} - g_t` because :math:`f_t` now moves the cell
both ways: towards the old content and, through :math:`1 - f_t`, away from the candidate.
Weight gradients are outer products summed over batch and time, as in :mod:`companion.lstm`.

Parameters (``G = 3`` gate blocks, in the order **f, g, o**: the LSTM's order without ``i``)::

    weight_ih (3H, D)   weight_hh (3H, H)   bias_ih (3H,)   bias_hh (3H,)

Shapes are time-major: ``x`` ``(T, B, D)``, ``h`` and ``c`` ``(B, H)``.  The state is the
pair ``(h, c)`` everywhere, as for the LSTM.  PyTorch has no CIFG module; the tests compare
this one with an autograd reference written with torch operations and with finite differences.

:func:`forward` / :func:`backward` hand the work to the fast kernel in
:mod:`companion.fast.cifg` by default; ``forward(..., fast=False)`` runs the plain loop over the
step written here, and ``tests/test_fast.py`` checks that both agree to 1e-12.
"""

from __future__ import annotations

import numpy as np

from companion._checks import (
    check_gradient,
    check_params,
    check_sequence,
    check_state,
    check_step_input,
    compute_dtype,
)
from companion._gates import GateParams, split_gates, uniform_init
from companion.activations import sigmoid
from companion.fast import cifg as fast_cifg

GATE_NAMES = ("f", "g", "o")


def init_params(
    input_size: int,
    hidden_size: int,
    *,
    seed=None,
    dtype=np.float64,
    forget_bias: float = 0.0,
) -> dict:
    r"""New parameters drawn like PyTorch: every entry :math:`\sim U(-1/\sqrt{H}, 1/\sqrt{H})`.

    Args:
        input_size: ``D``.
        hidden_size: ``H``.
        seed: passed to ``np.random.default_rng``.
        dtype: floating dtype of every array.
        forget_bias: if not ``0.0``, the forget block of ``bias_ih`` is set to ``forget_bias``
            and that of ``bias_hh`` to ``0`` (as :func:`companion.lstm.init_params` does).

    Returns:
        ``{"weight_ih": (3H, D), "weight_hh": (3H, H), "bias_ih": (3H,), "bias_hh": (3H,)}``.
    """
    params = uniform_init(input_size, hidden_size, 3, seed=seed, dtype=dtype)
    if forget_bias != 0.0:
        forget = slice(0, hidden_size)
        params["bias_ih"][forget] = forget_bias
        params["bias_hh"][forget] = 0.0
    return params


def gates(params: dict) -> dict[str, GateParams]:
    """Per-gate views ``{"f", "g", "o"} -> GateParams(W_x, W_h, b_x, b_h)`` (views)."""
    check_params(params, gate_count=len(GATE_NAMES))
    return split_gates(params, GATE_NAMES)


def _prepare(x, state, params, *, step: bool):
    """Validate and cast to one dtype; return ``(x, h, c, params)``."""
    input_size, hidden_size, arrays = check_params(params, gate_count=len(GATE_NAMES))
    names = ("h_prev", "c_prev") if step else ("h0", "c0")
    if step:
        x = check_step_input(x, input_size)
        batch = x.shape[0]
    else:
        x = check_sequence(x, input_size)
        batch = x.shape[1]
    if state is None:
        state = (None, None)
    elif not isinstance(state, (tuple, list)) or len(state) != 2:
        raise ValueError(
            f"state must be a pair ({names[0]}, {names[1]}) of (B={batch}, H={hidden_size}) "
            f"arrays or None, got {type(state).__name__}"
        )
    h, c = (
        None if s is None else check_state(name, s, batch, hidden_size)
        for name, s in zip(names, state, strict=True)
    )
    given = [s for s in (h, c) if s is not None]
    dtype = compute_dtype(x, *arrays.values(), *given)
    zeros = np.zeros((batch, hidden_size), dtype)
    h = zeros.copy() if h is None else h.astype(dtype, copy=False)
    c = zeros if c is None else c.astype(dtype, copy=False)
    arrays = {key: value.astype(dtype, copy=False) for key, value in arrays.items()}
    return x.astype(dtype, copy=False), h, c, arrays


# --------------------------------------------------------------------------- one step


def _step(x_t, h_prev, c_prev, params: dict):
    """The step's arithmetic on validated arrays: ``(h_t, c_t, cache)``."""
    per_gate = split_gates(params, GATE_NAMES)

    def pre_activation(name):
        W_x, W_h, b_x, b_h = per_gate[name]
        return x_t @ W_x.T + b_x + h_prev @ W_h.T + b_h

    f_t = sigmoid(pre_activation("f"))  # forget gate; the input gate is 1 - f_t
    g_t = np.tanh(pre_activation("g"))  # candidate cell content
    o_t = sigmoid(pre_activation("o"))  # output gate
    c_t = f_t * c_prev + (1 - f_t) * g_t  # keep a share f_t, write the rest
    tanh_c = np.tanh(c_t)
    h_t = o_t * tanh_c
    cache = {"x_t": x_t, "h_prev": h_prev, "c_prev": c_prev, "f": f_t, "g": g_t, "o": o_t,
             "c_t": c_t, "tanh_c": tanh_c, "params": params}
    return h_t, c_t, cache


def cell_forward(x_t, state, params: dict):
    """One CIFG step (equations in the module docstring).

    Args:
        x_t: ``(B, D)`` input at time ``t``.
        state: ``(h_prev, c_prev)``, each ``(B, H)``; ``None`` (or ``None`` entries) for zeros.
        params: see :func:`init_params`.

    Returns:
        ``((h_t, c_t), cache)``; ``cache`` is a dict with ``x_t``, ``h_prev``, ``c_prev``,
        the gate activations ``f``, ``g``, ``o``, ``c_t``, ``tanh_c``, and ``params``.
    """
    x_t, h_prev, c_prev, params = _prepare(x_t, state, params, step=True)
    h_t, c_t, cache = _step(x_t, h_prev, c_prev, params)
    return (h_t, c_t), cache


def _step_backward(dh_t, dc_t, cache: dict):
    """The backward arithmetic on validated arrays: ``(dx_t, dh_prev, dc_prev, grads)``."""
    params = cache["params"]
    f_t, g_t, o_t = cache["f"], cache["g"], cache["o"]
    tanh_c = cache["tanh_c"]

    da_o = dh_t * tanh_c * o_t * (1 - o_t)
    dc = dc_t + dh_t * o_t * (1 - tanh_c**2)  # total gradient reaching c_t
    da_f = dc * (cache["c_prev"] - g_t) * f_t * (1 - f_t)
    da_g = dc * (1 - f_t) * (1 - g_t**2)
    dc_prev = dc * f_t

    da = np.concatenate([da_f, da_g, da_o], axis=1)  # the order of GATE_NAMES
    grads = {
        "weight_ih": da.T @ cache["x_t"],
        "weight_hh": da.T @ cache["h_prev"],
        "bias_ih": da.sum(axis=0),
        "bias_hh": da.sum(axis=0),
    }
    return da @ params["weight_ih"], da @ params["weight_hh"], dc_prev, grads


def cell_backward(dh_t, dc_t, cache: dict):
    """Backward of :func:`cell_forward` (equations in the module docstring).

    Args:
        dh_t: ``(B, H)`` gradient w.r.t. ``h_t``.
        dc_t: ``(B, H)`` gradient w.r.t. ``c_t`` coming from later steps, or ``None`` (zeros).
        cache: from :func:`cell_forward`.

    Returns:
        ``(dx_t, dh_prev, dc_prev, grads)``: ``(B, D)``, ``(B, H)``, ``(B, H)`` and a dict with
        the keys and shapes of ``params``.
    """
    shape, dtype = cache["f"].shape, cache["f"].dtype
    dh_t = check_gradient("dh_t", dh_t, shape, "BH").astype(dtype, copy=False)
    dc_t = (np.zeros(shape, dtype) if dc_t is None
            else check_gradient("dc_t", dc_t, shape, "BH").astype(dtype, copy=False))
    return _step_backward(dh_t, dc_t, cache)


# --------------------------------------------------------------------------- a sequence


def forward(x, params: dict, state=None, *, fast: bool = True):
    """Run the CIFG over a sequence.

    Args:
        x: ``(T, B, D)`` inputs, time-major.
        params: see :func:`init_params`.
        state: ``(h0, c0)``, each ``(B, H)``; ``None`` (or ``None`` entries) for zeros.
        fast: ``True`` (default) runs :func:`companion.fast.cifg.forward`, which gives the same
            numbers with fewer NumPy calls; ``False`` runs the loop below, one
            :func:`cell_forward` step at a time.

    Returns:
        ``(outputs, (h_T, c_T), cache)``: ``outputs`` ``(T, B, H)`` holds ``h_1 .. h_T``;
        ``cache`` is a dict for :func:`backward` with ``x``, ``params``, ``hs``
        (``h_0 .. h_T``, ``(T+1, B, H)``) and ``cs`` (``c_0 .. c_T``), plus what the path that
        made it needs.  float32 inputs and parameters give float32 results; anything else
        float64.
    """
    x, h, c, params = _prepare(x, state, params, step=False)
    if fast:
        return fast_cifg.forward(x, (h, c), params)
    hs, cs, step_caches = [h], [c], []
    for x_t in x:
        h, c, step_cache = _step(x_t, h, c, params)
        hs.append(h)
        cs.append(c)
        step_caches.append(step_cache)
    hs, cs = np.stack(hs), np.stack(cs)
    cache = {"x": x, "params": params, "hs": hs, "cs": cs, "step_caches": step_caches}
    return hs[1:].copy(), (h, c), cache


def _final_state_grads(d_final_state, batch: int, hidden: int, dtype):
    """``(dh_T, dc_T)`` as arrays (zeros where ``None``), checked."""
    dh = np.zeros((batch, hidden), dtype)
    dc = np.zeros((batch, hidden), dtype)
    if d_final_state is None:
        return dh, dc
    if not isinstance(d_final_state, (tuple, list)) or len(d_final_state) != 2:
        raise ValueError(
            f"d_final_state must be a pair (dh_T, dc_T) of (B={batch}, H={hidden}) arrays "
            f"or None, got {type(d_final_state).__name__}"
        )
    for name, given, target in zip(("dh_T", "dc_T"), d_final_state, (dh, dc), strict=True):
        if given is not None:
            target += check_gradient(name, given, (batch, hidden), "BH")
    return dh, dc


def backward(d_outputs, cache: dict, d_final_state=None):
    """Backpropagation through time for :func:`forward` (either path): the fast kernel, or
    :func:`cell_backward` from the last step to the first, summing the weight gradients.

    Args:
        d_outputs: ``(T, B, H)`` gradient w.r.t. ``outputs`` (``None``: zeros).
        cache: from :func:`forward`.
        d_final_state: ``(dh_T, dc_T)``, each ``(B, H)`` or ``None``; gradients w.r.t. the
            returned final state (``dh_T`` adds to ``d_outputs[-1]``).

    Returns:
        ``(dx, (dh0, dc0), grads)``: ``dx`` ``(T, B, D)``, ``dh0`` and ``dc0`` ``(B, H)``,
        ``grads`` with the keys and shapes of ``params``.
    """
    x, params = cache["x"], cache["params"]
    steps, batch, _ = x.shape
    hidden = params["weight_hh"].shape[1]
    if d_outputs is not None:
        d_outputs = check_gradient("d_outputs", d_outputs, (steps, batch, hidden), "TBH")
        d_outputs = d_outputs.astype(x.dtype, copy=False)
    dh, dc = _final_state_grads(d_final_state, batch, hidden, x.dtype)
    if "step_caches" not in cache:
        return fast_cifg.backward(d_outputs, (dh, dc), cache)
    grads = {key: np.zeros_like(value) for key, value in params.items()}
    dx = np.empty_like(x)
    for t in range(steps - 1, -1, -1):
        if d_outputs is not None:
            dh = dh + d_outputs[t]
        dx[t], dh, dc, step_grads = _step_backward(dh, dc, cache["step_caches"][t])
        for key, value in step_grads.items():
            grads[key] += value
    return dx, (dh, dc), grads
