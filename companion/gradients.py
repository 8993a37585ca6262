r"""Gradient tools: finite differences, gradient checks, Jacobian norms and norm clipping.

* :func:`numerical_gradient` -- central differences
  :math:`\partial f/\partial x_j \approx (f(x + \epsilon e_j) - f(x - \epsilon e_j)) / 2\epsilon`
  (truncation error :math:`O(\epsilon^2)`, round-off :math:`O(\text{ulp}(f)/\epsilon)`; with
  float64 and :math:`\epsilon = 10^{-6}` expect agreement to about :math:`10^{-8}` relative).
* :func:`gradcheck` -- compares analytic gradients with :func:`numerical_gradient`, one named
  input at a time, and returns a printable :class:`GradcheckReport`.
* :func:`jacobian_norms` -- how much :math:`h_T` depends on each earlier state :math:`h_k`
  (the vanishing / exploding gradient picture of Bengio et al. 1994 and Pascanu et al. 2013),
  computed exactly by backpropagation.
* :func:`clip_grad_norm` -- global-norm gradient clipping (Pascanu et al. 2013).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from companion import cells

# --------------------------------------------------------------------------- finite differences


def numerical_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of the scalar function ``f`` with respect to ``x``.

    Args:
        f: callable ``f(x) -> float``; it may also ignore its argument and read ``x`` through a
            closure (e.g. ``lambda _: loss(params)`` with ``x = params["weight_hh"]``), because
            ``x`` is perturbed **in place**, one entry at a time.
        x: a writable float64 ``np.ndarray`` (float32 is refused: with ``eps = 1e-6`` its
            differences drown in round-off, and an entry above 32 does not even move).  Each
            entry is restored exactly after its two evaluations.
        eps: the step :math:`\\epsilon`.

    Returns:
        An array of ``x``'s shape and dtype (``2 * x.size`` calls of ``f``).
    """
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        kind = type(x).__name__ + (f" of {x.dtype}" if hasattr(x, "dtype") else "")
        raise ValueError(f"x must be a floating np.ndarray (perturbed in place), got {kind}")
    if x.dtype.itemsize < 8:
        raise ValueError(f"x must be float64, got {x.dtype}: central differences in {x.dtype} "
                         "drown in round-off (cast a copy with x.astype(np.float64))")
    if not x.flags.writeable:
        raise ValueError("x must be writable: it is perturbed in place")
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        original = x[index]
        try:
            x[index] = original + eps
            f_plus = float(f(x))
            x[index] = original - eps
            f_minus = float(f(x))
        finally:
            x[index] = original
        grad[index] = (f_plus - f_minus) / (2 * eps)
    return grad


@dataclass(frozen=True)
class GradcheckEntry:
    """Comparison for one named input: ``max_abs_error = max |analytic - numerical|`` and
    ``max_rel_error = max_abs_error / max(max |numerical|, tiny)``."""

    name: str
    shape: tuple
    max_abs_error: float
    max_rel_error: float
    ok: bool


@dataclass(frozen=True)
class GradcheckReport:
    """Result of :func:`gradcheck`; ``bool(report)`` and ``report.ok`` say whether all passed,
    ``str(report)`` is a table with one line per input."""

    entries: list[GradcheckEntry]
    rtol: float
    atol: float

    @property
    def ok(self) -> bool:
        return all(entry.ok for entry in self.entries)

    def __bool__(self) -> bool:
        return self.ok

    def __getitem__(self, name: str) -> GradcheckEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def __str__(self) -> str:
        width = max([len("input")] + [len(e.name) for e in self.entries])
        lines = [f"gradcheck (pass if |analytic - numerical| <= {self.atol:g} + {self.rtol:g} "
                 "* |numerical| everywhere)",
                 f"  {'input':<{width}}  {'shape':<14} {'max abs err':>12} {'max rel err':>12}"
                 "  result"]
        for e in self.entries:
            lines.append(f"  {e.name:<{width}}  {str(e.shape):<14} {e.max_abs_error:12.3e} "
                         f"{e.max_rel_error:12.3e}  {'ok' if e.ok else 'FAIL'}")
        lines.append("all ok" if self.ok else "FAILED: " + ", ".join(
            e.name for e in self.entries if not e.ok))
        return "\n".join(lines)


def gradcheck(f, inputs: dict, analytic: dict, rtol: float = 1e-5, atol: float = 1e-7,
              eps: float = 1e-6) -> GradcheckReport:
    """Check analytic gradients against central differences.

    Args:
        f: callable ``f(inputs) -> float`` reading the (in-place perturbed) arrays of
            ``inputs``.
        inputs: ``{name: float64 array}``; every array named in ``analytic`` is perturbed.
        analytic: ``{name: gradient}`` with the shapes of ``inputs[name]``.
        rtol, atol: pass if ``|analytic - numerical| <= atol + rtol * |numerical|``
            elementwise (``np.allclose``).
        eps: finite-difference step.

    Returns:
        A :class:`GradcheckReport`.

    Example (any companion cell)::

        params = lstm.init_params(3, 4, seed=0); x = rng.standard_normal((5, 2, 3))
        def loss(_):
            return float(lstm.forward(x, params)[0].sum())
        outputs, _, cache = lstm.forward(x, params)
        _, _, grads = lstm.backward(np.ones_like(outputs), cache)
        print(gradcheck(loss, params, grads))
    """
    missing = [name for name in analytic if name not in inputs]
    if missing:
        raise ValueError(f"analytic has gradients for {missing} that are not in inputs "
                         f"{list(inputs)}")
    entries = []
    for name, grad in analytic.items():
        x = inputs[name]
        grad = np.asarray(grad)
        if grad.shape != np.shape(x):
            raise ValueError(f"analytic[{name!r}] must have shape {np.shape(x)} "
                             f"(the shape of inputs[{name!r}]), got {grad.shape}")
        numerical = numerical_gradient(lambda _: f(inputs), x, eps)
        abs_err = float(np.max(np.abs(grad - numerical), initial=0.0))
        scale = float(np.max(np.abs(numerical), initial=0.0))
        rel_err = abs_err / max(scale, np.finfo(np.float64).tiny)
        ok = bool(np.allclose(grad, numerical, rtol=rtol, atol=atol))
        entries.append(GradcheckEntry(name, tuple(np.shape(x)), abs_err, rel_err, ok))
    return GradcheckReport(entries, rtol, atol)


# --------------------------------------------------------------------------- Jacobian norms


@dataclass
class JacobianNorms:
    """Output of :func:`jacobian_norms`.

    Attributes:
        dhT_dh: ``(T+1,)`` (or ``(T+1, B)`` for a batched ``x``): entry ``k`` is
            :math:`\\|\\partial h_T / \\partial h_k\\|` for ``k = 0 .. T`` (``k = T`` is the
            identity).
        dL_dx: ``(T,)`` (or ``(T, B)``): entry ``k`` is the Euclidean norm of
            :math:`\\partial L / \\partial x_{k+1}` with :math:`L = v \\cdot h_T`, i.e. the
            input fed at step ``k + 1`` (``x[k]``).
        dhT_dc: cells with a cell state (LSTM, CIFG) only, same shape as ``dhT_dh``:
            :math:`\\|\\partial h_T / \\partial c_k\\|` (``None`` for RNN and GRU).
            Its ``k = T`` entry is 0 (see :func:`jacobian_norms`).
        ord: the matrix norm used (``2``: spectral, ``"fro"``: Frobenius).
        v: the ``(B, H)`` weights of :math:`L`.
    """

    dhT_dh: np.ndarray
    dL_dx: np.ndarray
    dhT_dc: np.ndarray | None = None
    ord: int | str = 2
    v: np.ndarray = field(default=None, repr=False)


def _cell_row(cell) -> cells.Cell:
    """The row of ``cell``: a kind (any case), a companion cell module or a row."""
    try:
        return cells.get(cell.lower() if isinstance(cell, str) else cell)
    except ValueError:
        known = ", ".join(repr(kind) for kind in cells.KINDS)
        raise ValueError(f"cell must be one of {known} or one of those companion modules, "
                         f"got {cell!r}") from None


def jacobian_norms(cell, x, params: dict, state=None, *, v=None, ord=2, **kwargs) -> JacobianNorms:
    """Norms of :math:`\\partial h_T/\\partial h_k` (``k = 0..T``) and of
    :math:`\\partial L/\\partial x_k` for :math:`L = \\sum v \\odot h_T`.

    The Jacobian of :math:`h_T` with respect to the state at step ``k`` is taken with the
    inputs fixed and everything else at step ``k`` held fixed.  For the LSTM (and the CIFG)
    the state is the pair :math:`(h_k, c_k)`, so :math:`\\partial h_T/\\partial h_k` holds
    :math:`c_k` fixed and :math:`\\partial h_T/\\partial c_k` (reported as ``dhT_dc``) holds
    :math:`h_k` fixed; at ``k = T`` these are the identity and zero.  Both are exact: the ``H`` unit
    vectors :math:`e_j` are backpropagated together as a batch of ``H * B`` rows through the
    teaching cells (``cell_forward`` / ``cell_backward``), and the row ``j`` gradient at step
    ``k`` is row ``j`` of the Jacobian.  Cost: one forward and one backward with batch
    ``H * B`` (milliseconds for ``T = 100, H = 32``).

    Args:
        cell: a kind of :mod:`companion.cells` (``"rnn"``, ``"lstm"``, ``"gru"``,
            ``"cifg"``) or its module (:mod:`companion.rnn` etc.).
        x: ``(T, D)`` (one sequence) or ``(T, B, D)``.
        params: the cell's parameters.
        state: initial state as for the cell's ``forward`` (``(D,)``-style unbatched states
            ``(H,)`` are accepted with a ``(T, D)`` ``x``); ``None`` for zeros.
        v: ``(H,)`` or ``(B, H)`` weights of :math:`L`; default ``ones(H) / sqrt(H)``.
        ord: ``2`` (spectral norm, largest singular value; default) or ``"fro"`` (Frobenius).
        **kwargs: forwarded to the cell (``nonlinearity=`` for the RNN, ``reset=`` for the GRU).

    Returns:
        A :class:`JacobianNorms`; arrays are ``(T+1,)`` / ``(T,)`` for a ``(T, D)`` ``x`` and
        ``(T+1, B)`` / ``(T, B)`` for a ``(T, B, D)`` ``x``.
    """
    row = _cell_row(cell)
    if ord not in (2, "fro"):
        raise ValueError(f"ord must be 2 (spectral) or 'fro' (Frobenius), got {ord!r}")
    x = np.asarray(x)
    unbatched = x.ndim == 2
    if unbatched:
        x = x[:, None, :]
        if state is not None:
            state = row.pack_state(tuple(np.asarray(s)[None] for s in row.unpack_state(state)))
    # Validates x, params and state.
    row.module.forward(x, params, state, **kwargs)
    steps, batch, _ = x.shape
    hidden = params["weight_hh"].shape[1]
    v = _weights_of_loss(v, batch, hidden)

    # Batch of H * B rows: row j * B + b carries sample b and unit vector e_j.
    x_rep = np.tile(x, (1, hidden, 1))
    states = _replicate_state(row, state, hidden)
    caches = []
    for t in range(steps):
        states, cache = row.step(x_rep[t], states, params, **kwargs)
        caches.append(cache)

    dtype = np.result_type(x_rep.dtype, params["weight_hh"].dtype, np.float32)
    unit = np.repeat(np.eye(hidden, dtype=dtype), batch, axis=0)  # (H * B, H)
    # d h_T / d state_T: the identity for h, zero for the cell state (h_T does not read c_T
    # once h_T is given).
    d_states = (unit, *(np.zeros_like(unit) for _ in row.state_names[1:]))
    norms = np.empty((len(row.state_names), steps + 1, batch))
    dx_norms = np.empty((steps, batch))
    for k, d_state in enumerate(d_states):
        norms[k, steps] = _matrix_norms(d_state, hidden, batch, ord)
    for t in range(steps - 1, -1, -1):
        dx, d_states, _ = row.step_backward(d_states, caches[t])
        for k, d_state in enumerate(d_states):
            norms[k, t] = _matrix_norms(d_state, hidden, batch, ord)
        # dL/dx = sum_j v_j * d h_T[j] / dx
        dL_dx = np.einsum("bj,jbd->bd", v, dx.reshape(hidden, batch, -1))
        dx_norms[t] = np.linalg.norm(dL_dx, axis=1)
    dh_norms = norms[0]
    dc_norms = norms[1] if row.has_cell_state else None

    squeeze = (lambda a: a[:, 0]) if unbatched else (lambda a: a)
    return JacobianNorms(
        dhT_dh=squeeze(dh_norms),
        dL_dx=squeeze(dx_norms),
        dhT_dc=None if dc_norms is None else squeeze(dc_norms),
        ord=ord,
        v=v[0] if unbatched else v,
    )


def _weights_of_loss(v, batch: int, hidden: int) -> np.ndarray:
    if v is None:
        return np.full((batch, hidden), 1 / math.sqrt(hidden))
    v = np.asarray(v, dtype=np.float64)
    if v.shape == (hidden,):
        return np.broadcast_to(v, (batch, hidden))
    if v.shape != (batch, hidden):
        raise ValueError(f"v must have shape (H={hidden},) or (B={batch}, H={hidden}), "
                         f"got {v.shape}")
    return v


def _replicate_state(row: cells.Cell, state, hidden: int):
    """The state as a tuple, each array tiled ``hidden`` times along the batch (``None``
    stays ``None``: zeros)."""
    if state is None:
        return None
    return tuple(None if s is None else np.tile(np.asarray(s), (hidden, 1))
                 for s in row.unpack_state(state))


def _matrix_norms(rows: np.ndarray, hidden: int, batch: int, ord) -> np.ndarray:
    """rows (H * B, H): row j * B + b is d h_T[b, j] / d state[b]; return one norm per b."""
    jacobians = rows.reshape(hidden, batch, hidden).transpose(1, 0, 2)  # (B, H_out, H_in)
    return np.linalg.norm(jacobians, ord=ord, axis=(1, 2))


# --------------------------------------------------------------------------- clipping


def _stable_l2(array: np.ndarray) -> float:
    """sqrt(sum(array**2)) without overflow or underflow (scaled by the largest entry)."""
    largest = float(np.max(np.abs(array), initial=0.0))
    if largest == 0.0:
        return 0.0
    scaled = np.asarray(array, dtype=np.float64) / largest
    return largest * math.sqrt(float(np.sum(scaled * scaled)))


def clip_grad_norm(grads: dict, max_norm: float, *, error_if_nonfinite: bool = False):
    """Rescale all gradients together so their global L2 norm is at most ``max_norm``.

    With :math:`g` all arrays of ``grads`` concatenated and
    :math:`\\|g\\| = \\sqrt{\\sum_k \\|g_k\\|_2^2}` (Pascanu et al. 2013):

    .. math::

        g \\leftarrow g \\cdot \\frac{\\text{max\\_norm}}{\\|g\\| + 10^{-6}}
        \\quad\\text{if } \\|g\\| > \\text{max\\_norm}, \\text{ else unchanged,}

    which keeps the direction of the step and only shortens it (as
    ``torch.nn.utils.clip_grad_norm_``).  The inputs are never modified; the result holds
    copies with the same keys, shapes and dtypes.

    Non-finite gradients: if any entry is NaN or inf the total norm is ``nan`` (any NaN) or
    ``inf``.  With ``error_if_nonfinite=True`` a ``ValueError`` names the offending keys;
    otherwise the gradients are returned **unchanged** (copied) together with that
    non-finite norm, so the caller can test ``math.isfinite(total_norm)`` and skip the update.
    (Scaling by ``max_norm / inf`` would silently zero the finite entries and turn infs into
    NaNs, hiding the problem.)

    Args:
        grads: ``{name: array}``.
        max_norm: positive float.
        error_if_nonfinite: raise instead of returning non-finite gradients.

    Returns:
        ``(clipped_grads, total_norm)`` with ``total_norm`` the norm **before** clipping
        (a Python float).
    """
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float, np.number)) or \
            not (math.isfinite(max_norm) and max_norm > 0):
        raise ValueError(f"max_norm must be a positive finite number, got {max_norm!r}")
    arrays = {name: np.array(value, copy=True) for name, value in grads.items()}
    nonfinite = [name for name, value in arrays.items() if not np.isfinite(value).all()]
    if nonfinite:
        has_nan = any(np.isnan(arrays[name]).any() for name in nonfinite)
        total_norm = math.nan if has_nan else math.inf
        if error_if_nonfinite:
            raise ValueError(f"the total gradient norm is {total_norm}: non-finite values in "
                             f"grads {nonfinite}")
        return arrays, total_norm
    norms = [_stable_l2(value) for value in arrays.values()]
    total_norm = _stable_l2(np.asarray(norms)) if norms else 0.0
    if total_norm > max_norm:
        scale = max_norm / (total_norm + 1e-6)
        for value in arrays.values():
            value *= scale
    return arrays, total_norm
