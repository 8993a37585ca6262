r"""Recurrent *layers* as ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` build them from one cell:
stacked (``num_layers``), bidirectional, over batches of sequences of different lengths, with
dropout between layers.

Every step is a step of a cell from the table :mod:`companion.cells` (``Cell.step`` and
``Cell.step_backward``); this module only wires the steps together, so any kind in that table
works, and it never branches on the kind.

**Stacking.** Layer :math:`\ell` reads the outputs of layer :math:`\ell - 1` (layer 0 reads
``x``): for ``l >= 1`` its input size is ``num_directions * H``.

**Two directions.** The forward direction reads :math:`x_1, \dots, x_{L_b}` of sequence
``b`` (of length :math:`L_b`); the reverse direction reads :math:`x_{L_b}, \dots, x_1`, starting
from the initial state at each sequence's *own* last valid step. At step ``t`` the layer's
output is ``[h_fwd_t, h_rev_t]`` (forward first), so ``outputs[..., :H]`` is the forward
direction and ``outputs[..., H:]`` the reverse one.

**Variable lengths.** ``lengths[b]`` valid steps in sequence ``b`` (any order, like
``pack_padded_sequence(..., enforce_sorted=False)``). A step past the end leaves the state
unchanged, :math:`h_t = m_{t,b}\, \mathrm{cell}(x_t, h_{t-1}) + (1 - m_{t,b})\, h_{t-1}` with the
mask :math:`m_{t,b} = [t \le L_b]` (steps counted from 1: the code's 0-based
``x[t]`` is valid when ``t < lengths[b]``), and writes a zero output (as ``pad_packed_sequence``
returns). Backward, the same mask splits the gradient reaching :math:`h_t`: the part of a
padded step goes straight to :math:`h_{t-1}`, the rest through the cell.

**Dropout.** With ``dropout = p > 0`` the outputs of every layer but the last are multiplied,
before the next layer reads them, by a mask with entries 0 (probability ``p``) or
``1 / (1 - p)`` (inverted dropout, as ``torch.nn`` in training mode); a fresh mask per layer,
time step, sequence and unit. ``backward`` multiplies by the same masks.

Parameters are a dict with exactly the names and shapes of the matching torch module's
``state_dict()``, ``G`` gate blocks per cell (1 RNN, 4 LSTM, 3 GRU)::

    weight_ih_l0 (G*H, D)    weight_hh_l0 (G*H, H)    bias_ih_l0 (G*H,)    bias_hh_l0 (G*H,)
    weight_ih_l0_reverse ...                                       (bidirectional only)
    weight_ih_l1 (G*H, num_directions*H) ...                       (num_layers > 1)

Shapes are time-major: ``x`` ``(T, B, D)``, ``outputs`` ``(T, B, num_directions*H)``; states
in torch's layout ``(num_layers*num_directions, B, H)``, index ``layer*num_directions +
direction``; the LSTM's state is the pair ``(h, c)``.

Example::

    params = {k: v.numpy() for k, v in torch.nn.GRU(3, 5, num_layers=2).state_dict().items()}
    outputs, h_n, cache = forward("gru", x, params, num_layers=2, lengths=[4, 2, 3])
"""

from __future__ import annotations

import numpy as np

from companion import cells
from companion._checks import (
    WEIGHT_KEYS,
    as_array,
    check_finite,
    check_gradient,
    check_sequence,
    compute_dtype,
)

__all__ = ["backward", "check_params", "forward", "init_params", "param_names"]


# --------------------------------------------------------------------------- names and sizes


def _suffix(layer: int, direction: int) -> str:
    """``"_l1"`` or ``"_l1_reverse"``: torch's suffix of a layer's and direction's weights."""
    return f"_l{layer}" + ("_reverse" if direction else "")


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def param_names(num_layers: int = 1, bidirectional: bool = False) -> list[str]:
    """The keys of a torch recurrent module's ``state_dict()``, in torch's order.

    >>> param_names(2, True)[:5]
    ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0', 'weight_ih_l0_reverse']
    """
    num_layers = _check_positive_int("num_layers", num_layers)
    directions = 2 if _check_bool("bidirectional", bidirectional) else 1
    return [key + _suffix(layer, direction) for layer in range(num_layers)
            for direction in range(directions) for key in WEIGHT_KEYS]


def init_params(kind, input_size: int, hidden_size: int, *, num_layers: int = 1,
                bidirectional: bool = False, seed=None, dtype=np.float64) -> dict:
    r"""New parameters drawn like torch: every entry :math:`\sim U(-1/\sqrt{H}, 1/\sqrt{H})`.

    Args:
        kind: a kind of :mod:`companion.cells` (``"rnn"``, ``"lstm"``, ``"gru"``, ...).
        input_size: ``D``, features per time step of ``x``.
        hidden_size: ``H``, per direction.
        num_layers, bidirectional: as in ``torch.nn.LSTM``.
        seed: the same seed gives the same parameters (each layer and direction draws from
            its own child of ``np.random.SeedSequence(seed)``).
        dtype: floating dtype of every array.

    Returns:
        A dict keyed like the torch module's ``state_dict()`` (see :func:`param_names`).
    """
    cell = cells.get(kind)
    num_layers = _check_positive_int("num_layers", num_layers)
    directions = 2 if _check_bool("bidirectional", bidirectional) else 1
    hidden_size = _check_positive_int("hidden_size", hidden_size)
    seeds = iter(np.random.SeedSequence(seed).spawn(num_layers * directions))
    params = {}
    for layer in range(num_layers):
        layer_input = input_size if layer == 0 else directions * hidden_size
        for direction in range(directions):
            drawn = cell.module.init_params(layer_input, hidden_size, seed=next(seeds),
                                            dtype=dtype)
            for key in WEIGHT_KEYS:
                params[key + _suffix(layer, direction)] = drawn[key]
    return params


def check_params(kind, params, num_layers: int, directions: int):
    """``(D, H, arrays)`` after checking the names, shapes and values of a layered ``params``
    (``directions`` is 1 or 2); ``ValueError`` naming the key and expected shape otherwise."""
    cell = cells.get(kind)
    if not isinstance(params, dict):
        raise ValueError(f"params must be a dict of arrays, got {type(params).__name__}")
    expected = param_names(num_layers, directions == 2)
    missing = [key for key in expected if key not in params]
    unexpected = sorted(set(params) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"params does not match num_layers={num_layers}, bidirectional={directions == 2}: "
            f"missing key(s) {missing}, unexpected key(s) {unexpected}; expected "
            f"{', '.join(expected[:4])}" + (", ... (the names of the torch module's "
                                            "state_dict())" if len(expected) > 4 else "")
        )
    arrays = {key: as_array(f"params[{key!r}]", params[key]) for key in expected}
    G = cell.gate_count
    rows = "H" if G == 1 else f"{G}*H"
    w_hh = arrays["weight_hh_l0"]
    if w_hh.ndim != 2 or w_hh.shape[1] < 1 or w_hh.shape[0] != G * w_hh.shape[1]:
        raise ValueError(f"params['weight_hh_l0'] must have shape ({rows}, H) for a {cell.kind} "
                         f"layer, got {tuple(w_hh.shape)}")
    H = w_hh.shape[1]
    w_ih = arrays["weight_ih_l0"]
    if w_ih.ndim != 2 or w_ih.shape[1] < 1:
        raise ValueError(f"params['weight_ih_l0'] must have shape ({rows}={G * H}, D), got "
                         f"{tuple(w_ih.shape)}")
    D = w_ih.shape[1]
    for layer in range(num_layers):
        reads = (D, "D") if layer == 0 else (directions * H,
                                              f"num_directions*H={directions}*{H}")
        shapes = {"weight_ih": ((G * H, reads[0]), f"({rows}={G * H}, {reads[1]})"),
                  "weight_hh": ((G * H, H), f"({rows}={G * H}, H={H})"),
                  "bias_ih": ((G * H,), f"({rows}={G * H},)"),
                  "bias_hh": ((G * H,), f"({rows}={G * H},)")}
        for direction in range(directions):
            for key, (shape, text) in shapes.items():
                name = key + _suffix(layer, direction)
                if arrays[name].shape != shape:
                    raise ValueError(f"params[{name!r}] must have shape {text}, got "
                                     f"{tuple(arrays[name].shape)}")
                check_finite(f"params[{name!r}]", arrays[name])
    return D, H, arrays


def _check_lengths(lengths, T: int, B: int):
    """The ``(T, B)`` boolean mask of valid steps (``None`` when every step is valid)."""
    if lengths is None:
        return None
    lengths = as_array("lengths", lengths)
    if lengths.shape != (B,):
        raise ValueError(f"lengths must have shape (B={B},), one length per sequence, got "
                         f"{tuple(lengths.shape)}")
    if lengths.dtype.kind not in "iu":
        raise ValueError(f"lengths must hold integers, got dtype {lengths.dtype}")
    if lengths.min() < 1 or lengths.max() > T:
        raise ValueError(f"lengths must lie in 1..T={T} (x has T={T} steps), got values from "
                         f"{int(lengths.min())} to {int(lengths.max())}")
    valid = np.arange(T)[:, None] < lengths[None, :]
    return None if valid.all() else valid


def _check_state(cell, state, count: int, B: int, H: int, dtype) -> tuple:
    """The initial states as a tuple of ``(count, B, H)`` arrays (zeros for ``None``)."""
    if state is None:
        return tuple(np.zeros((count, B, H), dtype) for _ in cell.state_names)
    names = tuple(f"{name}0" for name in cell.state_names)
    if cell.has_cell_state and (not isinstance(state, (tuple, list)) or len(state) != 2):
        raise ValueError(f"state must be a pair ({', '.join(names)}) for a {cell.kind} layer, "
                         f"got {type(state).__name__}")
    checked = []
    for name, array in zip(names, cell.unpack_state(state), strict=True):
        array = as_array(name, array)
        if array.shape != (count, B, H):
            raise ValueError(f"{name} must have shape (num_layers*num_directions={count}, B={B}, "
                             f"H={H}), got {tuple(array.shape)}")
        check_finite(name, array)
        checked.append(array.astype(dtype, copy=False))
    return tuple(checked)


def _check_dropout(dropout, rng, num_layers: int):
    """``(p, rng)`` after checking; ``p = 0`` when no layer's output is dropped."""
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float, np.floating)) \
            or not 0.0 <= float(dropout) <= 1.0:
        raise ValueError(f"dropout must be a number in [0, 1], got {dropout!r}")
    if float(dropout) == 0.0 or num_layers == 1:  # torch drops nothing after the last layer
        return 0.0, None
    if not isinstance(rng, np.random.Generator):
        raise ValueError("rng must be a numpy.random.Generator (e.g. np.random.default_rng(0)) "
                         f"when dropout > 0 and num_layers > 1, got {type(rng).__name__}")
    return float(dropout), rng


def _dropout_mask(rng, p: float, shape, dtype) -> np.ndarray:
    """Inverted dropout: 0 with probability ``p``, else ``1 / (1 - p)``."""
    if p == 1.0:
        return np.zeros(shape, dtype)
    return (rng.random(shape) >= p).astype(dtype) / dtype.type(1.0 - p)


# --------------------------------------------------------------------------- forward


def _check_options(cell, options: dict) -> dict:
    """The row's default options updated by ``options`` (only options the row knows)."""
    unknown = sorted(set(options) - set(cell.default_options))
    if unknown:
        known = sorted(cell.default_options) or "none"
        raise ValueError(f"unexpected option(s) {unknown} for a {cell.kind} layer; its options: "
                         f"{known}")
    return {**cell.default_options, **options}


def _run_direction(cell, x, params, states, valid, reverse: bool, options: dict):
    """One direction of one layer: ``(outputs (T, B, H), final states, step caches)``."""
    T = x.shape[0]
    outputs = np.zeros((T, x.shape[1], states[0].shape[1]), states[0].dtype)
    caches = [None] * T
    for t in (reversed(range(T)) if reverse else range(T)):
        new_states, caches[t] = cell.step(x[t], states, params, **options)
        if valid is None:
            states = new_states
        else:  # padded steps keep the old state and output zero
            keep = valid[t][:, None]
            states = tuple(np.where(keep, new, old) for new, old in zip(new_states, states,
                                                                           strict=True))
        outputs[t] = states[0] if valid is None else np.where(keep, states[0], 0.0)
    return outputs, states, caches


def forward(kind, x, params: dict, *, num_layers: int = 1, bidirectional: bool = False,
            lengths=None, state=None, dropout: float = 0.0, rng=None, **options):
    """Run a stacked, possibly bidirectional recurrent layer over a padded batch.

    Args:
        kind: a kind of :mod:`companion.cells` (``"rnn"`` is tanh, like ``torch.nn.RNN``).
        x: ``(T, B, D)``, time-major; steps past a sequence's length are ignored.
        params: keyed like the torch module's ``state_dict()`` (see :func:`param_names`).
        num_layers, bidirectional: as in the torch module.
        lengths: ``(B,)`` integers in ``1..T``, any order; ``None`` means all ``T``.
        state: initial state, ``(num_layers*num_directions, B, H)`` (a pair ``(h0, c0)`` for
            the LSTM), or ``None`` for zeros.
        dropout: probability of dropping each output of every layer but the last.
        rng: a ``numpy.random.Generator``, required when ``dropout > 0`` and
            ``num_layers > 1``.
        **options: the cell's own options, e.g. ``nonlinearity="relu"`` for ``"rnn"``
            (default: the row's ``default_options``, torch's defaults).

    Returns:
        ``(outputs, final_state, cache)``: ``outputs`` ``(T, B, num_directions*H)``, zero at
        padded steps; ``final_state`` like ``state``, each direction's state after its last
        valid step (for the reverse direction: after reading ``x[0]``); ``cache`` for
        :func:`backward`.
    """
    cell = cells.get(kind)
    num_layers = _check_positive_int("num_layers", num_layers)
    directions = 2 if _check_bool("bidirectional", bidirectional) else 1
    D, H, arrays = check_params(cell, params, num_layers, directions)
    x = check_sequence(x, D)
    dtype = compute_dtype(x, *arrays.values())
    x = x.astype(dtype, copy=False)
    arrays = {key: value.astype(dtype, copy=False) for key, value in arrays.items()}
    T, B, _ = x.shape
    valid = _check_lengths(lengths, T, B)
    states0 = _check_state(cell, state, num_layers * directions, B, H, dtype)
    p, rng = _check_dropout(dropout, rng, num_layers)
    options = _check_options(cell, options)

    finals = [[] for _ in cell.state_names]
    runs, masks, layer_input = [], [], x
    for layer in range(num_layers):
        outputs = []
        for direction in range(directions):
            index = layer * directions + direction
            layer_params = {key: arrays[key + _suffix(layer, direction)] for key in WEIGHT_KEYS}
            out, last, caches = _run_direction(cell, layer_input, layer_params,
                                               tuple(s[index] for s in states0), valid,
                                               reverse=direction == 1, options=options)
            outputs.append(out)
            runs.append({"caches": caches, "input_size": layer_input.shape[2]})
            for collected, array in zip(finals, last, strict=True):
                collected.append(array)
        layer_output = np.concatenate(outputs, axis=2) if directions == 2 else outputs[0]
        if p and layer < num_layers - 1:
            masks.append(_dropout_mask(rng, p, layer_output.shape, dtype))
            layer_input = layer_output * masks[-1]
        else:
            layer_input = layer_output
    final_state = cell.pack_state(tuple(np.stack(collected) for collected in finals))
    cache = {"cell": cell, "num_layers": num_layers, "directions": directions, "valid": valid,
             "masks": masks, "runs": runs, "shape": (T, B, H), "dtype": dtype,
             "param_names": list(arrays)}
    return layer_input, final_state, cache


# --------------------------------------------------------------------------- backward


def _backward_direction(cell, d_out, d_states, caches, valid, input_size: int, reverse: bool):
    """Backward of :func:`_run_direction`: ``(d_input (T, B, D_l), d_states0, grads)``."""
    T, B, _ = d_out.shape
    d_input = np.zeros((T, B, input_size), d_out.dtype)
    grads = None
    for t in (range(T) if reverse else reversed(range(T))):
        d_total = (d_states[0] + d_out[t], *d_states[1:])
        if valid is None:
            d_step, d_skip = d_total, None
        else:  # a padded step passed its state through unchanged: so does its gradient
            keep = valid[t][:, None]
            d_step = tuple(np.where(keep, d, 0.0) for d in d_total)
            d_skip = tuple(np.where(keep, 0.0, d) for d in d_total)
        d_input[t], d_prev, step_grads = cell.step_backward(d_step, caches[t])
        d_states = d_prev if d_skip is None else tuple(
            a + b for a, b in zip(d_prev, d_skip, strict=True))
        if grads is None:
            grads = {key: value.copy() for key, value in step_grads.items()}
        else:
            for key, value in step_grads.items():
                grads[key] += value
    return d_input, d_states, grads


def _check_final_gradient(cell, d_final_state, count: int, B: int, H: int, dtype) -> tuple:
    if d_final_state is None:
        return tuple(np.zeros((count, B, H), dtype) for _ in cell.state_names)
    names = tuple(f"d_final_state {name}_n" for name in cell.state_names)
    if cell.has_cell_state and (not isinstance(d_final_state, (tuple, list))
                                or len(d_final_state) != 2):
        raise ValueError(f"d_final_state must be a pair (dh_n, dc_n) for a {cell.kind} layer, "
                         f"got {type(d_final_state).__name__}")
    return tuple(
        check_gradient(name, grad, (count, B, H), "LBH").astype(dtype, copy=False)
        for name, grad in zip(names, cell.unpack_state(d_final_state), strict=True)
    )


def backward(d_outputs, cache: dict, d_final_state=None):
    """Backpropagation through time through every layer and direction of :func:`forward`.

    Args:
        d_outputs: ``(T, B, num_directions*H)``, the gradient of the loss with respect to
            ``outputs`` (entries at padded steps are ignored: those outputs are constant 0).
        cache: from :func:`forward`.
        d_final_state: like ``final_state``, or ``None`` for zeros.

    Returns:
        ``(dx, d_state0, grads)``: ``dx`` ``(T, B, D)`` (zero at padded steps), ``d_state0``
        like the initial state, ``grads`` keyed like ``params``.
    """
    cell, valid = cache["cell"], cache["valid"]
    num_layers, directions = cache["num_layers"], cache["directions"]
    T, B, H = cache["shape"]
    dtype = cache["dtype"]
    d_layer = check_gradient("d_outputs", d_outputs, (T, B, directions * H),
                             ("T", "B", "num_directions*H"))
    d_layer = d_layer.astype(dtype, copy=False)
    if valid is not None:  # padded outputs are constants
        d_layer = d_layer * valid[:, :, None]
    d_finals = _check_final_gradient(cell, d_final_state, num_layers * directions, B, H, dtype)
    d_states0 = [[None] * (num_layers * directions) for _ in cell.state_names]
    grads = {}
    for layer in reversed(range(num_layers)):
        d_input = None
        for direction in range(directions):
            index = layer * directions + direction
            run = cache["runs"][index]
            d_in, d_first, step_grads = _backward_direction(
                cell, d_layer[:, :, direction * H:(direction + 1) * H],
                tuple(d[index] for d in d_finals), run["caches"], valid, run["input_size"],
                reverse=direction == 1)
            d_input = d_in if d_input is None else d_input + d_in
            for collected, array in zip(d_states0, d_first, strict=True):
                collected[index] = array
            for key in WEIGHT_KEYS:
                grads[key + _suffix(layer, direction)] = step_grads[key]
        if layer > 0:
            d_layer = d_input * cache["masks"][layer - 1] if cache["masks"] else d_input
    d_state0 = cell.pack_state(tuple(np.stack(collected) for collected in d_states0))
    ordered = {key: grads[key] for key in cache["param_names"]}
    return d_input, d_state0, ordered
