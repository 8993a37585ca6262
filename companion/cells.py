"""The table of recurrent cell kinds: one row per kind, read by every part of the companion.

Each row says what is specific to a kind of cell: its NumPy module, its gates in PyTorch's
block order, the matching ``torch.nn`` classes (by name, so this module never imports torch),
and the names of its state (``("h",)`` or ``("h", "c")``). Everything else (interop, gradient
tools, training harnesses, multi-layer layers, tests) loops over this table instead of writing
the list of kinds out again. A new cell is one module with the contract below plus one row.

The contract of a cell module (see :mod:`companion.rnn` for the smallest one)::

    init_params(input_size, hidden_size, *, seed=None, dtype=np.float64) -> params
    cell_forward(x_t, state_prev, params, **options) -> (state_t, cache)
    cell_backward(*d_state_t, cache) -> (dx_t, *d_state_prev, grads)
    forward(x, params, state=None, **options) -> (outputs, final_state, cache)
    backward(d_outputs, cache, d_final_state=None) -> (dx, d_state0, grads)

where a state is a bare ``(B, H)`` array for one-state cells and a tuple ``(h, c)`` for the
LSTM and the CIFG. :meth:`Cell.step` and :meth:`Cell.step_backward` hide that difference: they
always take and return states as tuples, so generic code never branches on the kind.

Shapes: ``x_t`` ``(B, D)``, each state ``(B, H)``; weights ``weight_ih`` ``(G*H, D)`` and
``weight_hh`` ``(G*H, H)`` with ``G = len(gate_names)`` blocks in the order given.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType


@dataclass(frozen=True)
class Cell:
    """One kind of recurrent cell.

    Attributes:
        kind: the short name used everywhere (``"lstm"``).
        title: for tables and plot legends (``"LSTM"``).
        module_name: the NumPy module implementing the contract above.
        gate_names: the weight blocks, in the row order of ``weight_ih`` / ``weight_hh``.
        state_names: ``("h",)`` or ``("h", "c")``.
        torch_class: the ``torch.nn`` sequence module's class name, or ``None`` when torch has
            none (then tests compare against an autograd reference written in the tests).
        torch_cell_class: the ``torch.nn`` one-step module's class name, or ``None``.
        default_options: keyword options of the module's forward functions and their
            defaults, e.g. ``{"nonlinearity": "tanh"}``.
    """

    kind: str
    title: str
    module_name: str
    gate_names: tuple[str, ...]
    state_names: tuple[str, ...]
    torch_class: str | None
    torch_cell_class: str | None
    default_options: dict = field(default_factory=dict)

    @property
    def module(self) -> ModuleType:
        """The NumPy module (imported on first use)."""
        return importlib.import_module(self.module_name)

    @property
    def gate_count(self) -> int:
        """``G``: the number of weight blocks (rows of ``weight_ih`` are ``G * H``)."""
        return len(self.gate_names)

    @property
    def has_cell_state(self) -> bool:
        """Whether the state is ``(h, c)`` rather than ``h`` alone."""
        return len(self.state_names) == 2

    def pack_state(self, states: tuple):
        """The module's own form of a state: the bare array for one-state cells (``None``, the
        modules' zero state, stays ``None``)."""
        if states is None:
            return None
        return tuple(states) if self.has_cell_state else states[0]

    def unpack_state(self, state) -> tuple:
        """A state as a tuple, whatever the kind (``None`` stays ``None``)."""
        if state is None:
            return None
        return tuple(state) if self.has_cell_state else (state,)

    def step(self, x_t, states: tuple, params: dict, **options):
        """One step with states as tuples: ``(states_t, cache)``."""
        state_t, cache = self.module.cell_forward(x_t, self.pack_state(states), params,
                                                  **options)
        return self.unpack_state(state_t), cache

    def step_backward(self, d_states: tuple, cache: dict):
        """Backward of :meth:`step`: ``(dx_t, d_states_prev, grads)`` with tuple states."""
        dx_t, *d_prev, grads = self.module.cell_backward(*d_states, cache)
        return dx_t, tuple(d_prev), grads


CELLS: dict[str, Cell] = {
    cell.kind: cell
    for cell in (
        Cell("rnn", "RNN", "companion.rnn", ("h",), ("h",), "RNN", "RNNCell",
             {"nonlinearity": "tanh"}),
        Cell("lstm", "LSTM", "companion.lstm", ("i", "f", "g", "o"), ("h", "c"), "LSTM",
             "LSTMCell"),
        Cell("gru", "GRU", "companion.gru", ("r", "z", "n"), ("h",), "GRU", "GRUCell",
             {"reset": "after"}),
        Cell("cifg", "CIFG", "companion.cifg", ("f", "g", "o"), ("h", "c"), None, None),
    )
}

KINDS: tuple[str, ...] = tuple(CELLS)


def get(kind) -> Cell:
    """The row of ``kind``; ``ValueError`` naming the known kinds otherwise."""
    if isinstance(kind, Cell):
        return kind
    if isinstance(kind, ModuleType):
        for cell in CELLS.values():
            if cell.module_name == kind.__name__:
                return cell
    elif kind in CELLS:
        return CELLS[kind]
    known = ", ".join(repr(name) for name in CELLS)
    raise ValueError(f"kind must be one of {known} (or its companion module), got {kind!r}")
