"""Small numerical helpers shared by the cells (private).

(The teaching cells use the overflow-free :func:`companion.activations.sigmoid`.)

* :class:`GateParams` -- the per-gate view of a PyTorch-layout parameter dict.
* :func:`uniform_init` -- PyTorch's default recurrent initialisation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class GateParams(NamedTuple):
    """Views of one gate's block of a PyTorch-layout parameter dict.

    ``W_x`` is ``(H, D)`` (rows of ``weight_ih``), ``W_h`` is ``(H, H)`` (rows of
    ``weight_hh``), ``b_x`` and ``b_h`` are ``(H,)`` (entries of ``bias_ih`` and ``bias_hh``).
    The gate's pre-activation is ``x @ W_x.T + b_x + h @ W_h.T + b_h``.
    """

    W_x: np.ndarray
    W_h: np.ndarray
    b_x: np.ndarray
    b_h: np.ndarray


def split_gates(params: dict, names: tuple[str, ...]) -> dict[str, GateParams]:
    """Cut ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` into per-gate views."""
    hidden_size = params["weight_hh"].shape[1]
    views = {}
    for k, name in enumerate(names):
        rows = slice(k * hidden_size, (k + 1) * hidden_size)
        views[name] = GateParams(
            params["weight_ih"][rows],
            params["weight_hh"][rows],
            params["bias_ih"][rows],
            params["bias_hh"][rows],
        )
    return views


def uniform_init(
    input_size: int, hidden_size: int, gate_count: int, *, seed=None, dtype=np.float64
) -> dict[str, np.ndarray]:
    """PyTorch's default: every parameter ~ U(-1/sqrt(H), 1/sqrt(H)), drawn with
    ``np.random.default_rng(seed)`` in the order weight_ih, weight_hh, bias_ih, bias_hh."""
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating dtype such as np.float64, got {dtype}")
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(hidden_size)
    rows = gate_count * hidden_size
    shapes = {
        "weight_ih": (rows, input_size),
        "weight_hh": (rows, hidden_size),
        "bias_ih": (rows,),
        "bias_hh": (rows,),
    }
    return {
        name: rng.uniform(-bound, bound, size=shape).astype(dtype) for name, shape in shapes.items()
    }
