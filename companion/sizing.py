"""Sizes and initial biases of one recurrent layer, for every kind in :mod:`companion.cells`
(NumPy only: the exercise checks use it without importing torch).

* :func:`param_count` -- parameters of one PyTorch-layout layer, both biases included;
* :func:`matched_hidden_size` -- the hidden size that gives a kind a parameter budget;
* :func:`forget_gate_rows` -- where a kind's forget gate sits in its stacked weights;
* :func:`forget_gate_bias` -- an LSTM's biases with the forget gate's initial bias set
  (Jozefowicz et al. 2015), chapter 6's exercise.
"""

from __future__ import annotations

import numpy as np

from companion import cells


def param_count(cell, input_size, hidden_size):
    """Number of parameters of one ``torch.nn.RNN``/``GRU``/``LSTM`` layer (or a CIFG layer),
    both biases included: ``G * (H * D + H * H + 2 * H)`` with ``G`` weight sets.

    Args:
        cell: ``"rnn"``, ``"gru"``, ``"lstm"`` (or ``"cifg"``).
        input_size: ``D``.
        hidden_size: ``H``, an integer or an integer array (one count per entry).

    Returns:
        The count(s), an integer array of the shape of ``hidden_size``.
    """
    gates = cells.get(cell).gate_count  # rnn: 1, gru: 3 (r, z, n), lstm: 4 (i, f, g, o)
    H = np.asarray(hidden_size)
    weight_ih = H * input_size  # (G*H, D), per gate H * D
    weight_hh = H * H  # (G*H, H)
    biases = 2 * H  # bias_ih and bias_hh, H each per gate
    return gates * (weight_ih + weight_hh + biases)


def matched_hidden_size(cell: str, input_size: int, budget: int) -> int:
    """The hidden size whose :func:`param_count` is closest to ``budget``."""
    sizes = np.arange(1, 1025)
    counts = param_count(cell, input_size, sizes)
    return int(sizes[np.argmin(np.abs(counts - budget))])


def forget_gate_rows(cell, hidden_size: int) -> slice:
    """The rows of the forget gate in a layer's stacked weights and biases.

    ``H:2H`` for the LSTM (gates ``i, f, g, o``), ``0:H`` for the CIFG (``f, g, o``);
    ``ValueError`` for a kind without a forget gate.
    """
    row = cells.get(cell)
    if "f" not in row.gate_names:
        with_forget = [kind for kind, other in cells.CELLS.items() if "f" in other.gate_names]
        raise ValueError(f"a forget-gate bias needs a cell with a forget gate "
                         f"({', '.join(with_forget)}), got {row.kind!r}")
    k = row.gate_names.index("f")
    return slice(k * hidden_size, (k + 1) * hidden_size)


def forget_gate_bias(bias_ih, bias_hh, value):
    """Biases of a PyTorch LSTM layer whose forget gate starts with total bias ``value``.

    PyTorch stacks the gates in the order input, forget, cell candidate, output
    (``i, f, g, o``), so the forget gate owns rows ``H:2H`` of both bias vectors, and the
    gate sees their sum. The forget rows of ``bias_ih`` are set to ``value`` and those of
    ``bias_hh`` to 0; every other entry is kept.

    Args:
        bias_ih, bias_hh: ``(4H,)`` arrays, ``bias_ih_l0`` and ``bias_hh_l0``.
        value: the forget gate's initial bias (1.0 in Jozefowicz et al. 2015).

    Returns:
        New arrays ``(new_bias_ih, new_bias_hh)``; the inputs are not modified.
    """
    H = bias_ih.shape[0] // 4
    new_ih = bias_ih.copy()
    new_hh = bias_hh.copy()
    new_ih[H:2 * H] = value
    new_hh[H:2 * H] = 0.0
    return new_ih, new_hh
