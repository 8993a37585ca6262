"""Copy parameters between ``torch.nn`` recurrent modules and the companion's NumPy dicts.

The companion uses PyTorch's single-layer layout with the ``_l0`` suffix dropped::

    torch.nn.LSTM(D, H).weight_ih_l0  <->  params["weight_ih"]   (4H, D)
    torch.nn.LSTMCell(D, H).weight_ih <->  params["weight_ih"]   (4H, D)

Supported: the torch module of every kind in :mod:`companion.cells` -- ``nn.RNN``,
``nn.LSTM``, ``nn.GRU`` and the companion's own :class:`companion.models.CIFG` (with
``proj_size=0`` for the LSTM).  Several layers or directions keep torch's names
(``weight_ih_l1_reverse``: the keys of ``module.state_dict()``).  ``batch_first``
does not affect parameters, so both settings are fine (the companion's ``forward`` is always
time-major: transpose with ``x.transpose(1, 0, 2)``).  Also the one-step modules
``nn.RNNCell``, ``nn.LSTMCell``, ``nn.GRUCell``.
A module built with ``bias=False`` reads as zero biases.  Torch is imported lazily, so the rest
of the companion works without it.

Example::

    params = from_torch(torch.nn.GRU(3, 5))       # float64 NumPy copies
    outputs, h_T, cache = companion.gru.forward(x, params)
    to_torch(params, torch.nn.GRU(3, 5))          # and back
"""

from __future__ import annotations

import numpy as np

from companion import cells
from companion._checks import check_params

_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _torch_classes(cell: cells.Cell) -> tuple[type, ...]:
    """The torch module classes of one kind: its ``torch.nn`` sequence and step modules, or
    the companion's own layer where torch has none."""
    import torch.nn as nn

    if cell.torch_class is None:
        from companion.models import COMPANION_LAYERS

        return (COMPANION_LAYERS[cell.kind],)
    names = (cell.torch_class, cell.torch_cell_class)
    return tuple(getattr(nn, name) for name in names if name is not None)


def module_kind(module) -> str:
    """The kind (``"rnn"``, ``"lstm"``, ...) of a supported torch module; ``ValueError`` else."""
    for kind, cell in cells.CELLS.items():
        if isinstance(module, _torch_classes(cell)):
            return kind
    names = ", ".join(cls.__name__ for cell in cells.CELLS.values()
                      for cls in _torch_classes(cell))
    raise ValueError(f"module must be one of {names}, got {type(module).__name__}")


def _layers(module) -> list[tuple[str, int]]:
    """``(suffix, input size)`` of each layer and direction of ``module`` in torch's order:
    ``[("", D)]`` for a one-step module, ``[("_l0", D)]`` for a single-layer sequence module,
    ``[("_l0", D), ("_l0_reverse", D), ("_l1", 2H), ...]`` for deeper or bidirectional ones."""
    import torch.nn as nn

    module_kind(module)
    if isinstance(module, nn.RNNCellBase):
        return [("", module.input_size)]
    if getattr(module, "proj_size", 0):
        raise ValueError(f"unsupported {type(module).__name__}: proj_size={module.proj_size}; "
                         "LSTMs with projections are not supported")
    directions = ["", "_reverse"] if getattr(module, "bidirectional", False) else [""]
    return [(f"_l{k}{direction}",
             module.input_size if k == 0 else module.hidden_size * len(directions))
            for k in range(getattr(module, "num_layers", 1)) for direction in directions]


def _layer_keys(layers: list[tuple[str, int]], layered: bool = False) -> list[dict[str, str]]:
    """For each layer, ``{cell key: params key}``. A single layer uses the companion's cell keys
    (``weight_ih`` ...) unless ``layered``; several always use torch's own names
    (``weight_ih_l1_reverse`` ...), as in ``module.state_dict()``."""
    if layered and layers[0][0] == "":
        raise ValueError("layered=True needs a torch.nn.RNN, LSTM or GRU; a one-step module "
                         "has no layers")
    single = len(layers) == 1 and not layered
    return [{key: key if single else key + suffix for key in _KEYS} for suffix, _ in layers]


def forward_kwargs(module) -> dict:
    """Keyword arguments that make the companion match ``module``.

    Each of the kind's options (:attr:`companion.cells.Cell.default_options`) that the module
    has as an attribute: ``{"nonlinearity": "tanh" | "relu"}`` for ``nn.RNN`` /
    ``nn.RNNCell``; ``{}`` otherwise (the companion's GRU default ``reset="after"`` is
    PyTorch's form, and torch modules have no ``reset``).
    """
    options = cells.get(module_kind(module)).default_options
    return {name: getattr(module, name) for name in options if hasattr(module, name)}


def from_torch(module, *, layered: bool = False) -> dict[str, np.ndarray]:
    """Return ``module``'s parameters as a companion ``params`` dict of float64 NumPy copies.

    Args:
        module: an ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` / :class:`companion.models.CIFG` or
            an ``nn.RNNCell`` / ``nn.LSTMCell`` / ``nn.GRUCell``.
        layered: give torch's names (``weight_ih_l0`` ...) even for a single layer, as
            :mod:`companion.layers` takes them for any number of layers.

    Returns:
        For a one-step or single-layer unidirectional module, the companion's cell params
        ``{"weight_ih": (G*H, D), "weight_hh": (G*H, H), "bias_ih": (G*H,),
        "bias_hh": (G*H,)}`` with ``G`` the kind's number of gate blocks in
        :mod:`companion.cells` (RNN 1; LSTM 4, blocks i, f, g, o; GRU 3, blocks r, z, n;
        CIFG 3, blocks f, g, o); zero biases if the module has ``bias=False``.  For several
        layers or directions, the same arrays under torch's names, as ``module.state_dict()``
        has them: ``weight_ih_l0``, ``weight_ih_l0_reverse``, ``weight_ih_l1`` (``(G*H, 2H)``
        after a bidirectional layer), ...; also for one layer with ``layered=True``.

    Raises:
        ValueError: for other modules, an LSTM with ``proj_size > 0``, or ``layered=True`` for a
            one-step module.
    """
    rows = cells.get(module_kind(module)).gate_count * module.hidden_size
    layers = _layers(module)
    params = {}
    for (suffix, _), names in zip(layers, _layer_keys(layers, layered), strict=True):
        for key, name in names.items():
            tensor = getattr(module, key + suffix, None)
            if tensor is None:  # bias=False
                params[name] = np.zeros(rows, np.float64)
            else:
                params[name] = tensor.detach().to("cpu").double().numpy().copy()
    return params


def to_torch(params: dict, module):
    """Write ``params`` into ``module``'s parameters in place (under ``torch.no_grad()``),
    keeping the module's dtype and device; returns ``module``. ``params`` has the keys
    :func:`from_torch` gives (torch's ``state_dict()`` names are accepted for a single layer
    too).

    Raises:
        ValueError: if ``module`` is unsupported (see :func:`from_torch`), the shapes differ
            from the module's, ``params`` holds LSTM peephole weights (torch has none), or the
            module has ``bias=False`` and a bias in ``params`` is not zero.
    """
    import torch

    kind = module_kind(module)
    layers = _layers(module)
    peepholes = [key for key in params if key.startswith("weight_peep_")]
    if peepholes:
        raise ValueError(f"params has peephole weights {peepholes}; torch.nn.LSTM has no "
                         "peephole connections")
    layered = isinstance(params, dict) and "weight_hh_l0" in params and layers[0][0] != ""
    layer_keys = _layer_keys(layers, layered)
    if len(layers) > 1 or layered:  # torch's names: check them before the shapes of each layer
        expected = {name for names in layer_keys for name in names.values()}
        missing, unexpected = sorted(expected - set(params)), sorted(set(params) - expected)
        if missing or unexpected:
            raise ValueError(f"params for this {type(module).__name__} must have the keys of "
                             f"its state_dict(); missing {missing}, unexpected {unexpected}")
    arrays = {}
    for (suffix, layer_input), names in zip(layers, layer_keys, strict=True):
        layer_params = {key: params[name] for key, name in names.items() if name in params}
        input_size, hidden_size, checked = check_params(
            layer_params, gate_count=cells.get(kind).gate_count)
        if (input_size, hidden_size) != (layer_input, module.hidden_size):
            where = f" (layer {suffix[1:]})" if len(layers) > 1 else ""
            raise ValueError(
                f"params{where} have input_size D={input_size}, hidden_size H={hidden_size} "
                f"but the {type(module).__name__} has D={layer_input}, H={module.hidden_size}"
            )
        arrays.update({(names[key], key + suffix): checked[key] for key in _KEYS})
    with torch.no_grad():
        for (name, attribute), value in arrays.items():
            target = getattr(module, attribute, None)
            if target is None:
                if np.any(value != 0):
                    raise ValueError(f"params[{name!r}] is not zero but the "
                                     f"{type(module).__name__} was built with bias=False")
                continue
            source = torch.from_numpy(np.ascontiguousarray(value))
            target.copy_(source.to(device=target.device, dtype=target.dtype))
    return module
