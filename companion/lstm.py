r"""Long short-term memory (Hochreiter & Schmidhuber 1997; forget gate: Gers et al. 2000;
peepholes: Gers et al. 2002), in PyTorch's ``nn.LSTM`` layout.

One step, with :math:`\sigma` the logistic function and :math:`\odot` the elementwise product:

.. math::

    i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi} \;[+\, p_i \odot c_{t-1}]) \\
    f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf} \;[+\, p_f \odot c_{t-1}]) \\
    g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
    c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
    o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho} \;[+\, p_o \odot c_t]) \\
    h_t &= o_t \odot \tanh(c_t)

The bracketed peephole terms (Gers et al. 2002) are used when ``params`` holds the diagonal
peephole weights ``weight_peep_i``, ``weight_peep_f``, ``weight_peep_o`` (each ``(H,)``): the
input and forget gates look at the old cell :math:`c_{t-1}`, the output gate at the new cell
:math:`c_t`.  Without them this is exactly ``torch.nn.LSTM`` (which has no peepholes).

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
from companion._gates import GateParams, sigmoid_via_tanh_, split_gates, uniform_init
from companion.activations import sigmoid

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
            drawn from the same uniform after the other parameters).

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
    """True if ``params`` carries the peephole weights (Gers et al. 2002)."""
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
#
# The fast path keeps the gate blocks internally in the order (o, i, f, g) so that the three
# sigmoid gates (o, i, f) are contiguous and the three blocks multiplied by the cell gradient
# (i, f, g) are contiguous too.  Sigmoid rows of the weights are pre-scaled by 1/2 (exact in
# floating point) so one tanh call per step gives tanh(a/2) for o, i, f and tanh(a) for g, and
# sigmoid(a) = (1 + tanh(a/2)) / 2.

_INTERNAL_ORDER = (3, 0, 1, 2)  # torch block indices of o, i, f, g


def _internal_rows(hidden_size: int) -> np.ndarray:
    return np.concatenate(
        [np.arange(k * hidden_size, (k + 1) * hidden_size) for k in _INTERNAL_ORDER]
    )


def forward(x, params: dict, state=None):
    """Run the LSTM over a sequence (same result as ``torch.nn.LSTM`` without peepholes).

    Args:
        x: ``(T, B, D)`` inputs, time-major.
        params: see :func:`init_params`; peepholes are used iff their keys are present.
        state: ``(h0, c0)``, each ``(B, H)``; ``None`` (or ``None`` entries) for zeros.

    Returns:
        ``(outputs, (h_T, c_T), cache)``: ``outputs`` ``(T, B, H)`` holds ``h_1 .. h_T``.
        ``cache`` is a dict for :func:`backward` with ``x``, ``params``, ``hs`` (``h_0 .. h_T``,
        ``(T+1, B, H)``), ``cs`` (``c_0 .. c_T``), ``tanh_cs`` (``(T, B, H)``) and ``acts``
        (``(T, B, 4H)`` gate activations in the internal order o, i, f, g).
        float32 inputs and parameters give float32 results; anything else float64.
    """
    x, h0, c0, params = _prepare(x, state, params, step=False)
    steps, batch, input_size = x.shape
    H = h0.shape[1]
    dtype = x.dtype
    peep = has_peepholes(params)

    rows = _internal_rows(H)
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


def _check_final_state_grad(d_final_state, batch: int, hidden: int, dtype):
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
    """Backpropagation through time for :func:`forward`.

    Args:
        d_outputs: ``(T, B, H)`` gradient w.r.t. ``outputs`` (``None``: zeros).
        cache: from :func:`forward`.
        d_final_state: ``(dh_T, dc_T)``, each ``(B, H)`` or ``None``; gradients w.r.t. the
            returned final state (``dh_T`` adds to ``d_outputs[-1]``).

    Returns:
        ``(dx, (dh0, dc0), grads)``: ``dx`` ``(T, B, D)``, ``dh0`` and ``dc0`` ``(B, H)``,
        ``grads`` with the keys and shapes of ``params`` (peephole keys included).
    """
    x, params, hs, cs = cache["x"], cache["params"], cache["hs"], cache["cs"]
    tanh_cs, acts = cache["tanh_cs"], cache["acts"]
    steps, batch, input_size = x.shape
    H = hs.shape[2]
    dtype = x.dtype
    peep = has_peepholes(params)
    if d_outputs is not None:
        d_outputs = check_gradient("d_outputs", d_outputs, (steps, batch, H), "TBH")
    dh, dc = _check_final_state_grad(d_final_state, batch, H, dtype)

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

    rows = _internal_rows(H)
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
