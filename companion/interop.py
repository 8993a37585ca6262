"""Copy parameters between ``torch.nn`` recurrent modules and the companion's NumPy dicts.

The companion uses PyTorch's single-layer layout with the ``_l0`` suffix dropped::

    torch.nn.LSTM(D, H).weight_ih_l0  <->  params["weight_ih"]   (4H, D)
    torch.nn.LSTMCell(D, H).weight_ih <->  params["weight_ih"]   (4H, D)

Supported: the torch module of every kind in :mod:`companion.cells` -- ``nn.RNN``,
``nn.LSTM``, ``nn.GRU`` and the companion's own :class:`companion.models.CIFG` -- with
``num_layers=1``, ``bidirectional=False`` (and ``proj_size=0`` for the LSTM); ``batch_first``
does not affect parameters, so both settings are fine (the companion's ``forward`` is always
time-major: transpose with ``x.transpose(1, 0, 2)``).  Also the one-step modules
``nn.RNNCell``, ``nn.LSTMCell``, ``nn.GRUCell``.

Multi-layer and bidirectional modules map onto :mod:`companion.layers`, whose ``params`` keep
the ``state_dict()`` names (``weight_ih_l0``, ``weight_ih_l0_reverse``, ``weight_ih_l1``, ...):
``from_torch(module, layered=True)`` returns those names (for any ``nn.RNN`` / ``LSTM`` /
``GRU``), and ``to_torch`` writes a dict with those names into any of them.
A module built with ``bias=False`` reads as zero biases.  Torch is imported lazily, so the rest
of the companion works without it.

Example::

    params = from_torch(torch.nn.GRU(3, 5))       # float64 NumPy copies
    outputs, h_T, cache = companion.gru.forward(x, params)
    to_torch(params, torch.nn.GRU(3, 5))          # and back
"""

from __future__ import annotations

import numpy as np

from companion import cells, layers
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


def _suffix(module) -> str:
    """``"_l0"`` for the sequence modules (after checking they are supported), ``""`` for cells."""
    import torch.nn as nn

    module_kind(module)
    if isinstance(module, nn.RNNCellBase):
        return ""
    name = type(module).__name__
    if getattr(module, "num_layers", 1) != 1:
        raise ValueError(f"unsupported {name}: num_layers={module.num_layers}; only single-layer "
                         "modules map onto the companion's params (from_torch(module, "
                         "layered=True) gives companion.layers' params)")
    if getattr(module, "bidirectional", False):
        raise ValueError(f"unsupported {name}: bidirectional=True; only unidirectional modules "
                         "map onto the companion's params (from_torch(module, layered=True) "
                         "gives companion.layers' params)")
    if getattr(module, "proj_size", 0):
        raise ValueError(f"unsupported {name}: proj_size={module.proj_size}; LSTMs with "
                         "projections are not supported")
    return "_l0"


def forward_kwargs(module) -> dict:
    """Keyword arguments that make the companion match ``module``.

    Each of the kind's options (:attr:`companion.cells.Cell.default_options`) that the module
    has as an attribute: ``{"nonlinearity": "tanh" | "relu"}`` for ``nn.RNN`` /
    ``nn.RNNCell``; ``{}`` otherwise (the companion's GRU default ``reset="after"`` is
    PyTorch's form, and torch modules have no ``reset``).
    """
    options = cells.get(module_kind(module)).default_options
    return {name: getattr(module, name) for name in options if hasattr(module, name)}


def _wants_layered(module, layered: bool) -> bool:
    """Whether ``from_torch`` returns ``state_dict()`` names (see the module docstring)."""
    import torch.nn as nn

    module_kind(module)
    if layered and isinstance(module, nn.RNNCellBase):
        raise ValueError(f"layered=True needs a torch.nn.RNN, LSTM or GRU; a "
                         f"{type(module).__name__} has no layers")
    return bool(layered)


def _check_no_projection(module) -> None:
    if getattr(module, "proj_size", 0):
        raise ValueError(f"unsupported {type(module).__name__}: proj_size={module.proj_size}; "
                         "LSTMs with projections are not supported")


def _layered_from_torch(module) -> dict[str, np.ndarray]:
    _check_no_projection(module)
    params = {}
    for name in layers.param_names(module.num_layers, module.bidirectional):
        tensor = getattr(module, name, None)
        if tensor is None:  # bias=False
            rows = getattr(module, name.replace("bias_ih", "weight_hh")
                           .replace("bias_hh", "weight_hh")).shape[0]
            params[name] = np.zeros(rows, np.float64)
        else:
            params[name] = tensor.detach().to("cpu").double().numpy().copy()
    return params


def _layered_to_torch(params: dict, module):
    import torch
    import torch.nn as nn

    name = type(module).__name__
    if isinstance(module, nn.RNNCellBase):
        raise ValueError(f"params with state_dict() names (weight_ih_l0, ...) need a "
                         f"torch.nn.RNN, LSTM or GRU, got a {name}")
    _check_no_projection(module)
    input_size, hidden_size, arrays = layers.check_params(
        cells.get(module_kind(module)), params, module.num_layers,
        2 if module.bidirectional else 1)
    if (input_size, hidden_size) != (module.input_size, module.hidden_size):
        raise ValueError(
            f"params have input_size D={input_size}, hidden_size H={hidden_size} but the "
            f"{name} has D={module.input_size}, H={module.hidden_size}"
        )
    with torch.no_grad():
        for key, array in arrays.items():
            target = getattr(module, key, None)
            if target is None:
                if np.any(array != 0):
                    raise ValueError(f"params[{key!r}] is not zero but the {name} was built "
                                     "with bias=False")
                continue
            source = torch.from_numpy(np.ascontiguousarray(array))
            target.copy_(source.to(device=target.device, dtype=target.dtype))
    return module


def from_torch(module, *, layered: bool = False) -> dict[str, np.ndarray]:
    """Return ``module``'s parameters as a companion ``params`` dict of float64 NumPy copies.

    Args:
        module: an ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` /
            :class:`companion.models.CIFG` or an ``nn.RNNCell`` / ``nn.LSTMCell`` /
            ``nn.GRUCell``.
        layered: ``True``: any number of layers and directions, keyed with the
            ``state_dict()`` names, for :mod:`companion.layers`; ``False`` (default): a
            single-layer, unidirectional module with the one-layer names below.

    Returns:
        ``{"weight_ih": (G*H, D), "weight_hh": (G*H, H), "bias_ih": (G*H,),
        "bias_hh": (G*H,)}`` with ``G`` the kind's number of gate blocks in
        :mod:`companion.cells` (RNN 1; LSTM 4, blocks i, f, g, o; GRU 3, blocks r, z, n;
        CIFG 3, blocks f, g, o); zero biases if the module has ``bias=False``.

    Raises:
        ValueError: for other modules, ``proj_size > 0``, ``layered=True`` for a cell module,
            or ``num_layers > 1`` or ``bidirectional=True`` without ``layered=True``.
    """
    if _wants_layered(module, layered):
        return _layered_from_torch(module)
    suffix = _suffix(module)
    weight_hh = getattr(module, "weight_hh" + suffix)
    params = {}
    for key in _KEYS:
        tensor = getattr(module, key + suffix, None)
        if tensor is None:  # bias=False
            params[key] = np.zeros(weight_hh.shape[0], np.float64)
        else:
            params[key] = tensor.detach().to("cpu").double().numpy().copy()
    return params


def to_torch(params: dict, module):
    """Write ``params`` into ``module``'s parameters in place (under ``torch.no_grad()``),
    keeping the module's dtype and device; returns ``module``.

    ``params`` with ``state_dict()`` names (``weight_ih_l0``, ...) may go into any
    ``nn.RNN`` / ``LSTM`` / ``GRU``; they must then match its ``num_layers`` and
    ``bidirectional`` exactly (checked by :func:`companion.layers.check_params`).

    Raises:
        ValueError: if ``module`` is unsupported (see :func:`from_torch`), the shapes differ
            from the module's, ``params`` holds LSTM peephole weights (torch has none), or the
            module has ``bias=False`` and a bias in ``params`` is not zero.
    """
    import torch

    if isinstance(params, dict) and "weight_hh_l0" in params:
        return _layered_to_torch(params, module)

    suffix = _suffix(module)
    kind = module_kind(module)
    peepholes = [key for key in params if key.startswith("weight_peep_")]
    if peepholes:
        raise ValueError(f"params has peephole weights {peepholes}; torch.nn.LSTM has no "
                         "peephole connections")
    input_size, hidden_size, arrays = check_params(params,
                                                   gate_count=cells.get(kind).gate_count)
    if (input_size, hidden_size) != (module.input_size, module.hidden_size):
        raise ValueError(
            f"params have input_size D={input_size}, hidden_size H={hidden_size} but the "
            f"{type(module).__name__} has D={module.input_size}, H={module.hidden_size}"
        )
    with torch.no_grad():
        for key in _KEYS:
            target = getattr(module, key + suffix, None)
            if target is None:
                if np.any(arrays[key] != 0):
                    raise ValueError(f"params[{key!r}] is not zero but the "
                                     f"{type(module).__name__} was built with bias=False")
                continue
            source = torch.from_numpy(np.ascontiguousarray(arrays[key]))
            target.copy_(source.to(device=target.device, dtype=target.dtype))
    return module
