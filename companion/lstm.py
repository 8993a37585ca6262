r"""Long short-term memory (Hochreiter & Schmidhuber 1997; forget gate: Gers, Schmidhuber &
Cummins 2000; peepholes: Gers & Schmidhuber 2000), in PyTorch's ``nn.LSTM`` layout.

One step, with :math:`\sigma` the logistic function and :math:`\odot` the elementwise product:

.. math::

    i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi} \;[+\, p_i \odot c_{t-1}]) \\
    f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf} \;[+\, p_f \odot c_{t-1}]) \\
    g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
    c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
    o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho} \;[+\, p_o \odot c_t]) \\
    h_t &= o_t \odot \tanh(c_t)

The bracketed peephole terms are used when ``params`` holds the diagonal
peephole weights ``weight_peep_i``, ``weight_peep_f``, ``weight_peep_o`` (each ``(H,)``): the
input and forget gates look at the old cell :math:`c_{t-1}`, the output gate at the new cell
:math:`c_t`.  Without them this is exactly ``torch.nn.LSTM`` (which has no peepholes).
Peephole connections were introduced by Gers & Schmidhuber, "Recurrent nets that time and
count" (IJCNN 2000); Gers, Schraudolph & Schmidhuber, "Learning precise timing with LSTM
recurrent networks" (JMLR 2002) is the extended version.

Backward through one step, given :math:`\delta h_t` and :math:`\delta c_t` (the gradient that
reaches :math:`c_t` from step :math:`t+1`); :math:`\delta a_\ast` are the pre-activation
gradients:

.. math::

    \delta a_o &= \delta h_t \odot \tanh(c_t) \odot o_t (1 - o_t) \\
    \bar\delta c_t &= \delta c_t + \delta h_t \odot o_t \odot (1 - \tanh^2 c_t)
        \;[+\, \delta a_o \odot p_o] \\
    \delta a_i &= \bar\delta c_t \odot g_t \odot i_t (1 - i_t), \quad
    \delta a_f = \bar\delta c_t \odot c_{t-1} \odot f_t (1 - f_t), \quad
    \delta a_g = \bar\delta c_t \odot i_t \odot (1 - g_t^2) \\
    \delta c_{t-1} &= \bar\delta c_t \odot f_t \;[+\, \delta a_i \odot p_i
        + \delta a_f \odot p_f] \\
    \delta h_{t-1} &= W_{hh}^\top \delta a, \quad \delta x_t = W_{ih}^\top \delta a, \quad
    \delta a = [\delta a_i; \delta a_f; \delta a_g; \delta a_o]

and the weight gradients are outer products summed over batch and time
(:math:`\partial W_{ih} = \sum_t \delta a_t x_t^\top`, :math:`\partial W_{hh} = \sum_t \delta
a_t h_{t-1}^\top`, both bias gradients :math:`\sum_t \delta a_t`, :math:`\partial p_i = \sum
\delta a_i \odot c_{t-1}`, :math:`\partial p_f = \sum \delta a_f \odot c_{t-1}`,
:math:`\partial p_o = \sum \delta a_o \odot c_t`).  The additive path
:math:`\delta c_{t-1} = \bar\delta c_t \odot f_t` is the "constant error carousel".

Parameters (``G = 4`` gates stacked in PyTorch's order **i, f, g, o**)::

    weight_ih (4H, D)   weight_hh (4H, H)   bias_ih (4H,)   bias_hh (4H,)
    [weight_peep_i (H,)  weight_peep_f (H,)  weight_peep_o (H,)]   # peephole variant only

Shapes are time-major: ``x`` ``(T, B, D)``, ``h`` and ``c`` ``(B, H)``.  The state is the
pair ``(h, c)`` everywhere (:func:`cell_forward`, :func:`forward`, :func:`backward`).

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
    check_gradient,
    check_params,
    check_sequence,
    check_state,
    check_step_input,
    compute_dtype,
)
from companion._gates import GateParams, split_gates, uniform_init
from companion.activations import sigmoid
from companion.fast import lstm as fast_lstm

GATE_NAMES = ("i", "f", "g", "o")
PEEPHOLE_KEYS = ("weight_peep_i", "weight_peep_f", "weight_peep_o")


def init_params(
    input_size: int,
    hidden_size: int,
    *,
    seed=None,
    dtype=np.float64,
    forget_bias: float = 0.0,
    peephole: bool = False,
) -> dict:
    r"""New parameters drawn like PyTorch: every entry :math:`\sim U(-1/\sqrt{H}, 1/\sqrt{H})`.

    Args:
        input_size: ``D``.
        hidden_size: ``H``.
        seed: passed to ``np.random.default_rng``.
        dtype: floating dtype of every array.
        forget_bias: if not ``0.0``, the forget block of ``bias_ih`` is set to ``forget_bias``
            and the forget block of ``bias_hh`` to ``0``, so the forget gate's total bias is
            exactly ``forget_bias`` (Jozefowicz et al. 2015 recommend ``1.0``, so that the
            cell starts out remembering: :math:`f_t \approx \sigma(1) \approx 0.73`).
            With ``0.0`` (default) the biases keep PyTorch's random init.
        peephole: add ``weight_peep_i``, ``weight_peep_f``, ``weight_peep_o`` (each ``(H,)``,
            drawn from the same uniform, from a generator of their own, so that the other
            parameters are those drawn without peepholes).

    Returns:
        ``{"weight_ih": (4H, D), "weight_hh": (4H, H), "bias_ih": (4H,), "bias_hh": (4H,)}``
        plus the peephole keys if requested.
    """
    params = uniform_init(input_size, hidden_size, 4, seed=seed, dtype=dtype)
    if forget_bias != 0.0:
        forget = slice(hidden_size, 2 * hidden_size)
        params["bias_ih"][forget] = forget_bias
        params["bias_hh"][forget] = 0.0
    if peephole:
        rng = np.random.default_rng(None if seed is None else [seed, 1])
        bound = 1.0 / np.sqrt(hidden_size)
        for key in PEEPHOLE_KEYS:
            params[key] = rng.uniform(-bound, bound, size=hidden_size).astype(dtype)
    return params


def gates(params: dict) -> dict[str, GateParams]:
    """Per-gate views ``{"i", "f", "g", "o"} -> GateParams(W_x, W_h, b_x, b_h)``.

    ``gates(params)["f"].W_x`` is the book's :math:`W_{if}` (rows ``H:2H`` of ``weight_ih``,
    shape ``(H, D)``), ``.W_h`` is :math:`W_{hf}` ``(H, H)``, ``.b_x`` / ``.b_h`` are
    :math:`b_{if}` / :math:`b_{hf}` ``(H,)``.  Views: writing to them changes ``params``.
    Peephole weights are not included; read ``params["weight_peep_f"]`` etc.
    """
    check_params(params, gate_count=4, optional=PEEPHOLE_KEYS)
    return split_gates(params, GATE_NAMES)


def has_peepholes(params: dict) -> bool:
    """True if ``params`` carries the peephole weights (Gers & Schmidhuber 2000)."""
    return PEEPHOLE_KEYS[0] in params


def _prepare(x, state, params, *, step: bool):
    """Validate and cast to one dtype; return ``(x, h, c, params)``."""
    input_size, hidden_size, arrays = check_params(params, gate_count=4, optional=PEEPHOLE_KEYS)
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
        label = "state" if step else "state"
        raise ValueError(
            f"{label} must be a pair ({names[0]}, {names[1]}) of (B={batch}, H={hidden_size}) "
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


def cell_forward(x_t, state, params: dict):
    """One LSTM step, gate by gate (see the module docstring for the equations).

    Args:
        x_t: ``(B, D)`` input at time ``t``.
        state: ``(h_prev, c_prev)``, each ``(B, H)``; ``None`` (or ``None`` entries) for zeros.
        params: see :func:`init_params`; peepholes are used iff their keys are present.

    Returns:
        ``((h_t, c_t), cache)``; ``cache`` is a dict with ``x_t``, ``h_prev``, ``c_prev``,
        the gate activations ``i``, ``f``, ``g``, ``o``, ``c_t``, ``tanh_c``, and ``params``.
    """
    x_t, h_prev, c_prev, params = _prepare(x_t, state, params, step=True)
    per_gate = split_gates(params, GATE_NAMES)
    peep = has_peepholes(params)

    def pre_activation(name):
        W_x, W_h, b_x, b_h = per_gate[name]
        return x_t @ W_x.T + b_x + h_prev @ W_h.T + b_h

    a_i = pre_activation("i")
    a_f = pre_activation("f")
    if peep:
        a_i += params["weight_peep_i"] * c_prev
        a_f += params["weight_peep_f"] * c_prev
    i_t = sigmoid(a_i)  # input gate: how much of the candidate to write
    f_t = sigmoid(a_f)  # forget gate: how much of the old cell to keep
    g_t = np.tanh(pre_activation("g"))  # candidate cell content
    c_t = f_t * c_prev + i_t * g_t
    a_o = pre_activation("o")
    if peep:
        a_o += params["weight_peep_o"] * c_t
    o_t = sigmoid(a_o)  # output gate: how much of the cell to show
    tanh_c = np.tanh(c_t)
    h_t = o_t * tanh_c
    cache = {"x_t": x_t, "h_prev": h_prev, "c_prev": c_prev, "i": i_t, "f": f_t, "g": g_t,
             "o": o_t, "c_t": c_t, "tanh_c": tanh_c, "params": params}
    return (h_t, c_t), cache


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
    params = cache["params"]
    i_t, f_t, g_t, o_t = cache["i"], cache["f"], cache["g"], cache["o"]
    c_prev, tanh_c = cache["c_prev"], cache["tanh_c"]
    dtype = i_t.dtype
    dh_t = check_gradient("dh_t", dh_t, i_t.shape, "BH").astype(dtype, copy=False)
    dc_t = 0.0 if dc_t is None else check_gradient("dc_t", dc_t, i_t.shape, "BH")
    peep = has_peepholes(params)

    da_o = dh_t * tanh_c * o_t * (1 - o_t)
    dc = dc_t + dh_t * o_t * (1 - tanh_c**2)  # total gradient reaching c_t
    if peep:
        dc = dc + da_o * params["weight_peep_o"]
    da_i = dc * g_t * i_t * (1 - i_t)
    da_f = dc * c_prev * f_t * (1 - f_t)
    da_g = dc * i_t * (1 - g_t**2)
    dc_prev = dc * f_t
    if peep:
        dc_prev = dc_prev + da_i * params["weight_peep_i"] + da_f * params["weight_peep_f"]

    da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)  # PyTorch's gate order
    dx_t = da @ params["weight_ih"]
    dh_prev = da @ params["weight_hh"]
    grads = {
        "weight_ih": da.T @ cache["x_t"],
        "weight_hh": da.T @ cache["h_prev"],
        "bias_ih": da.sum(axis=0),
        "bias_hh": da.sum(axis=0),
    }
    if peep:
        grads["weight_peep_i"] = (da_i * c_prev).sum(axis=0)
        grads["weight_peep_f"] = (da_f * c_prev).sum(axis=0)
        grads["weight_peep_o"] = (da_o * cache["c_t"]).sum(axis=0)
    return dx_t, dh_prev, dc_prev.astype(dtype, copy=False), grads


# --------------------------------------------------------------------------- a sequence


def forward(x, params: dict, state=None, *, fast: bool = True):
    """Run the LSTM over a sequence (same result as ``torch.nn.LSTM`` without peepholes).

    Args:
        x: ``(T, B, D)`` inputs, time-major.
        params: see :func:`init_params`; peepholes are used iff their keys are present.
        state: ``(h0, c0)``, each ``(B, H)``; ``None`` (or ``None`` entries) for zeros.
        fast: ``True`` (default) runs :func:`companion.fast.lstm.forward`, which gives the same
            numbers with fewer NumPy calls; ``False`` runs the loop below, :func:`cell_forward`
            once per step.

    Returns:
        ``(outputs, (h_T, c_T), cache)``: ``outputs`` ``(T, B, H)`` holds ``h_1 .. h_T``.
        ``cache`` is a dict for :func:`backward` with ``x``, ``params``, ``hs`` (``h_0 .. h_T``,
        ``(T+1, B, H)``) and ``cs`` (``c_0 .. c_T``), plus what the path that made it needs.
        float32 inputs and parameters give float32 results; anything else float64.
    """
    x, h0, c0, params = _prepare(x, state, params, step=False)
    if fast:
        return fast_lstm.forward(x, (h0, c0), params)
    state, hs, cs, step_caches = (h0, c0), [h0], [c0], []
    for x_t in x:
        state, step_cache = cell_forward(x_t, state, params)
        hs.append(state[0])
        cs.append(state[1])
        step_caches.append(step_cache)
    hs, cs = np.stack(hs), np.stack(cs)
    cache = {"x": x, "params": params, "hs": hs, "cs": cs, "step_caches": step_caches}
    return hs[1:].copy(), state, cache


def backward(d_outputs, cache: dict, d_final_state=None):
    """Backpropagation through time for :func:`forward` (either path).

    Args:
        d_outputs: ``(T, B, H)`` gradient w.r.t. ``outputs`` (``None``: zeros).
        cache: from :func:`forward`.
        d_final_state: ``(dh_T, dc_T)``, each ``(B, H)`` or ``None``; gradients w.r.t. the
            returned final state (``dh_T`` adds to ``d_outputs[-1]``).

    Returns:
        ``(dx, (dh0, dc0), grads)``: ``dx`` ``(T, B, D)``, ``dh0`` and ``dc0`` ``(B, H)``,
        ``grads`` with the keys and shapes of ``params`` (peephole keys included).
    """
    x, params = cache["x"], cache["params"]
    steps, batch, _ = x.shape
    H = params["weight_hh"].shape[1]
    if d_outputs is not None:
        d_outputs = check_gradient("d_outputs", d_outputs, (steps, batch, H), "TBH")
    dh, dc = _check_final_state_grad(d_final_state, batch, H, x.dtype)
    if "step_caches" not in cache:
        return fast_lstm.backward(d_outputs, (dh, dc), cache)
    dx = np.empty_like(x)
    grads = {key: np.zeros_like(value) for key, value in params.items()}
    for t in range(steps - 1, -1, -1):
        if d_outputs is not None:
            dh = dh + d_outputs[t]
        dx[t], dh, dc, step_grads = cell_backward(dh, dc, cache["step_caches"][t])
        for key, value in step_grads.items():
            grads[key] += value
    return dx, (dh, dc), grads


def _check_final_state_grad(d_final_state, batch: int, hidden: int, dtype):
    """``(dh_T, dc_T)`` as two new ``(B, H)`` arrays (zeros where ``None``)."""
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
