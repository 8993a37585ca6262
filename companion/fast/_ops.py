"""Elementwise helpers of the fast kernels (private).

NumPy's float32 ``exp`` is about twice as fast as its ``tanh`` (and ``1 / x`` far cheaper than
either), so the kernels compute the sigmoid gates as ``1 / (1 + exp(-a))`` and a ``tanh`` gate
inside the same call as ``tanh(a) = 2 sigmoid(2a) - 1``.  The factors ``-1`` and ``-2`` are folded
into the weight rows (exact in floating point), so the pre-activations arrive already negated
and scaled.  ``exp`` overflows to ``inf`` for large arguments, which gives the right limit
(``1 / inf = 0``); callers run inside ``np.errstate(over="ignore")``.

The constant 1 is passed as a 0-d array of the operand's dtype (and ``2 s`` is ``s + s``):
with a Python number NumPy first resolves its type (NEP 50), about half a microsecond a call,
which adds up at small batch, where a step is a few dozen calls on arrays of a few hundred
numbers.
"""

from __future__ import annotations

import numpy as np

SIGMOID_SCALE = -1.0  # weight rows of a sigmoid gate are multiplied by this
TANH_SCALE = -2.0  # and those of a tanh gate computed with the sigmoids by this
_ONE = {np.dtype(t): np.ones((), t) for t in (np.float32, np.float64)}


def sigmoid_of_scaled_(z: np.ndarray) -> np.ndarray:
    """In place: ``z = -a`` becomes ``sigmoid(a) = 1 / (1 + exp(z))``."""
    unit = _ONE[z.dtype]
    np.exp(z, out=z)
    np.add(z, unit, out=z)
    return np.divide(unit, z, out=z)


def tanh_from_sigmoid_(s: np.ndarray) -> np.ndarray:
    """In place: ``s = sigmoid(2a)`` becomes ``tanh(a) = 2 s - 1``."""
    np.add(s, s, out=s)
    return np.subtract(s, _ONE[s.dtype], out=s)
