"""Exercises of chapter 3 (vanishing and exploding gradients): the norms of the Jacobians
``dh_T/dh_k`` of a tanh RNN, and gradient clipping by global norm.

The references are short teaching versions of :func:`companion.gradients.jacobian_norms` and
:func:`companion.gradients.clip_grad_norm` (tests/test_ch03_vanishing.py checks that they
agree); the book shows them as the solutions.
"""

import numpy as np

from companion.exercises.core import Exercise, Mutant, Output, register

_LESSON = "lessons/03_vanishing.ipynb"


# --------------------------------------------------------------------------- Jacobian norms


def jacobian_norms(W_hh, hs):
    """Spectral norms of dh_T/dh_k, k = 0..T, for one sequence of a tanh RNN.

    W_hh: (H, H) recurrent weights. hs: (T+1, H), the states h_0, h_1, ..., h_T.
    Returns norms of shape (T+1,): norms[k] = ||dh_T/dh_k||_2, so norms[T] = 1.
    """
    T = hs.shape[0] - 1
    H = W_hh.shape[0]
    norms = np.empty(T + 1)
    J = np.eye(H)  # dh_T/dh_T
    norms[T] = 1.0
    for k in range(T - 1, -1, -1):
        # One more factor on the right (eq. 3.3): dh_{k+1}/dh_k = diag(1 - h_{k+1}^2) W_hh
        step = (1 - hs[k + 1] ** 2)[:, None] * W_hh
        J = J @ step
        norms[k] = np.linalg.norm(J, ord=2)  # largest singular value
    return norms


def _jacobian_variant(W_hh, hs, *, local, left=False, ord=2):
    """dh_T/dh_k norms with a different local Jacobian, product order or norm (mutants)."""
    T = hs.shape[0] - 1
    norms = np.empty(T + 1)
    J = np.eye(W_hh.shape[0])
    norms[T] = 1.0
    for k in range(T - 1, -1, -1):
        J = local(W_hh, hs, k) @ J if left else J @ local(W_hh, hs, k)
        norms[k] = np.linalg.norm(J, ord=ord)
    return norms


def _tanh_step(W_hh, hs, k):
    return (1 - hs[k + 1] ** 2)[:, None] * W_hh


def _jacobian_cases(rng):
    """Two sequences of a real tanh RNN, sizes distinct per dimension, moderate weights
    (neither vanishing to 0 nor overflowing within T <= 9 steps)."""
    cases = []
    for _ in range(2):
        H, T = (int(n) for n in rng.choice(np.arange(3, 10), size=2, replace=False))
        D = 2
        W_hh = rng.normal(scale=1.3 / np.sqrt(H), size=(H, H))
        W_ih = rng.normal(scale=0.8, size=(H, D))
        hs = np.empty((T + 1, H))
        hs[0] = np.tanh(rng.normal(size=H))
        for t in range(1, T + 1):
            hs[t] = np.tanh(W_hh @ hs[t - 1] + W_ih @ rng.normal(size=D))
        cases.append({"W_hh": W_hh, "hs": hs})
    return cases


register(
    Exercise(
        id="jacobian_norms",
        title="Norms of the Jacobians dh_T/dh_k",
        reference=jacobian_norms,
        make_cases=_jacobian_cases,
        outputs=(Output("norms", "(T+1,)"),),
        mutants=(
            Mutant(
                "transposed_W_hh",
                lambda W_hh, hs: _jacobian_variant(
                    W_hh, hs, local=lambda W, h, k: (1 - h[k + 1] ** 2)[:, None] * W.T),
                "you used W_hh.T. In the equations (column vectors) a_t = W_hh h_{t-1} + ..., "
                "so dh_t/dh_{t-1} = diag(1 - h_t^2) W_hh: row i says how h_t[i] depends on "
                "h_{t-1}. The code's h_prev @ W_hh.T is the same product for row vectors; do "
                "not carry its transpose into the Jacobian.",
            ),
            Mutant(
                "derivative_one_step_early",
                lambda W_hh, hs: _jacobian_variant(
                    W_hh, hs, local=lambda W, h, k: (1 - h[k] ** 2)[:, None] * W),
                "the derivative factor of dh_{k+1}/dh_k is tanh'(a_{k+1}) = 1 - h_{k+1}^2, "
                "taken at the state the step produces (hs[k + 1]), not at the state it reads "
                "(hs[k]).",
            ),
            Mutant(
                "sigmoid_derivative",
                lambda W_hh, hs: _jacobian_variant(
                    W_hh, hs, local=lambda W, h, k: (h[k + 1] * (1 - h[k + 1]))[:, None] * W),
                "h * (1 - h) is the sigmoid's derivative; this RNN uses tanh, whose "
                "derivative is 1 - h^2.",
            ),
            Mutant(
                "factor_on_the_left",
                lambda W_hh, hs: _jacobian_variant(W_hh, hs, local=_tanh_step, left=True),
                "matrix products do not commute: dh_T/dh_k = (dh_T/dh_{k+1}) (dh_{k+1}/dh_k), "
                "so going backwards in time each new factor multiplies on the RIGHT "
                "(J = J @ step), keeping the factor of step T leftmost (eq. 3.3).",
            ),
            Mutant(
                "missing_derivative",
                lambda W_hh, hs: _jacobian_variant(W_hh, hs, local=lambda W, h, k: W),
                "your norms are those of powers of W_hh alone: each factor of the product is "
                "diag(1 - h_{k+1}^2) W_hh, the tanh's slope times the weights.",
            ),
            Mutant(
                "frobenius_norm",
                lambda W_hh, hs: _jacobian_variant(W_hh, hs, local=_tanh_step, ord="fro"),
                "the Jacobian is right but the norm is not: np.linalg.norm(J) of a matrix is "
                "the Frobenius norm. The spectral norm, the largest singular value, is "
                "np.linalg.norm(J, ord=2).",
            ),
            Mutant(
                "reversed_order",
                lambda W_hh, hs: jacobian_norms(W_hh, hs)[::-1],
                "your values are right but in reverse order: norms[k] belongs to h_k, so "
                "norms[T] = 1 (dh_T/dh_T is the identity) and norms[0] is the most distant "
                "step.",
            ),
        ),
        hints=(
            "Start from dh_T/dh_T = I (np.eye(H)) and walk back one step at a time, "
            "multiplying by the Jacobian of one step, dh_{k+1}/dh_k.",
            "dh_{k+1}/dh_k = diag(1 - h_{k+1}^2) W_hh, i.e. (1 - hs[k + 1]**2)[:, None] * W_hh; "
            "update J = J @ that, and store np.linalg.norm(J, ord=2) in norms[k].",
        ),
        equation="eq. (3.2)-(3.3) in chapter 3",
        what="||dh_T/dh_k||_2 for every k agree with the reference to 1e-7",
        lesson=_LESSON,
    )
)


# --------------------------------------------------------------------------- clipping


def clip_grad_norm(dW_ih, dW_hh, db, max_norm):
    """Rescale the RNN's gradients together so that their global norm is at most max_norm.

    Returns (dW_ih, dW_hh, db, total_norm) with total_norm the norm BEFORE clipping. The
    inputs are not modified. If total_norm is inf or nan the gradients are returned
    unchanged (copies), so the caller can see the norm and skip the update.
    """
    grads = [dW_ih, dW_hh, db]
    total_norm = float(np.sqrt(sum(np.sum(g**2) for g in grads)))  # eq. (3.8)
    if total_norm > max_norm and np.isfinite(total_norm):
        scale = max_norm / total_norm  # eq. (3.9)
        grads = [g * scale for g in grads]
    else:
        grads = [g.copy() for g in grads]
    return grads[0], grads[1], grads[2], total_norm


def _clip_cases(rng):
    """Gradients of a small RNN: one case that needs clipping (every array alone is above
    max_norm), one below max_norm, one with an inf entry and one with a nan entry."""
    H, D = (int(n) for n in rng.choice(np.arange(3, 9), size=2, replace=False))

    def grads(scale):
        return {
            "dW_ih": scale * rng.normal(size=(H, D)),
            "dW_hh": scale * rng.normal(size=(H, H)),
            "db": scale * rng.normal(size=H),
        }

    large = grads(3.0)
    for g in large.values():
        g += np.sign(g)  # every entry at least 1 in size: each array's norm exceeds max_norm
    small = grads(0.05)
    with_inf = grads(1.0)
    with_inf["dW_hh"][rng.integers(H), rng.integers(H)] = np.inf
    with_nan = grads(1.0)
    with_nan["db"][rng.integers(H)] = np.nan
    return [
        {**large, "max_norm": float(rng.uniform(0.5, 1.5))},
        {**small, "max_norm": float(rng.uniform(2.0, 5.0))},
        {**with_inf, "max_norm": 1.0},
        {**with_nan, "max_norm": 1.0},
    ]


def _global_norm(grads):
    return float(np.sqrt(sum(np.sum(g**2) for g in grads)))


def _clip_no_guard(dW_ih, dW_hh, db, max_norm):
    grads = [dW_ih, dW_hh, db]
    total = _global_norm(grads)
    if total > max_norm:
        grads = [g * (max_norm / total) for g in grads]
    return (*grads, total)


def _clip_always_scale(dW_ih, dW_hh, db, max_norm):
    grads = [dW_ih, dW_hh, db]
    total = _global_norm(grads)
    if not np.isfinite(total):
        return (*[g.copy() for g in grads], total)
    return (*[g * (max_norm / total) for g in grads], total)


def _clip_each_separately(dW_ih, dW_hh, db, max_norm):
    grads = [dW_ih, dW_hh, db]
    total = _global_norm(grads)
    if not np.isfinite(total):
        return (*[g.copy() for g in grads], total)
    out = []
    for g in grads:
        norm = np.sqrt(np.sum(g**2))
        out.append(g * (max_norm / norm) if norm > max_norm else g.copy())
    return (*out, total)


def _clip_squared_norm(dW_ih, dW_hh, db, max_norm):
    grads = [dW_ih, dW_hh, db]
    total = float(sum(np.sum(g**2) for g in grads))
    if total > max_norm and np.isfinite(total):
        grads = [g * (max_norm / total) for g in grads]
    return (*grads, total)


def _clip_upside_down(dW_ih, dW_hh, db, max_norm):
    grads = [dW_ih, dW_hh, db]
    total = _global_norm(grads)
    if total > max_norm and np.isfinite(total):
        grads = [g * (total / max_norm) for g in grads]
    return (*grads, total)


def _clip_by_value(dW_ih, dW_hh, db, max_norm):
    grads = [dW_ih, dW_hh, db]
    total = _global_norm(grads)
    if not np.isfinite(total):
        return (*[g.copy() for g in grads], total)
    return (*[np.clip(g, -max_norm, max_norm) for g in grads], total)


def _clip_returns_norm_after(dW_ih, dW_hh, db, max_norm):
    *grads, total = clip_grad_norm(dW_ih, dW_hh, db, max_norm)
    return (*grads, min(total, max_norm) if np.isfinite(total) else total)


register(
    Exercise(
        id="clip_grad_norm",
        title="Gradient clipping by global norm",
        reference=clip_grad_norm,
        make_cases=_clip_cases,
        outputs=(
            Output("dW_ih", "(H, D), like dW_ih"),
            Output("dW_hh", "(H, H), like dW_hh"),
            Output("db", "(H,), like db"),
            Output("total_norm", "() (a float)"),
        ),
        mutants=(
            Mutant(
                "no_guard_for_inf",
                _clip_no_guard,
                "one gradient entry is inf, so the total norm is inf, and scaling by "
                "max_norm / inf = 0 wipes out every finite entry and turns the inf into nan "
                "(0 * inf). When the total norm is not finite, return the gradients "
                "unchanged with that norm, so the caller can notice and skip the step.",
            ),
            Mutant(
                "scales_below_max_norm",
                _clip_always_scale,
                "you rescale even when the total norm is already below max_norm, which "
                "stretches small gradients up to max_norm. Clip only if total_norm > max_norm; "
                "otherwise return the gradients unchanged.",
            ),
            Mutant(
                "each_array_separately",
                _clip_each_separately,
                "you clipped each array by its own norm. Clipping by the GLOBAL norm treats "
                "all gradients as one long vector and scales every array by the same factor "
                "max_norm / total_norm, so the direction of the step is kept.",
            ),
            Mutant(
                "squared_norm",
                _clip_squared_norm,
                "your total_norm is the sum of squares; the L2 norm is its square root "
                "(eq. 3.8).",
            ),
            Mutant(
                "ratio_upside_down",
                _clip_upside_down,
                "the gradients grew instead of shrinking: the scale factor is "
                "max_norm / total_norm (below 1 when clipping is needed), not "
                "total_norm / max_norm.",
            ),
            Mutant(
                "clipped_by_value",
                _clip_by_value,
                "you clipped each entry to [-max_norm, max_norm] (clipping by value). "
                "Clipping by norm multiplies ALL entries by one factor, max_norm / "
                "total_norm, which keeps the direction of the gradient.",
            ),
            Mutant(
                "norm_after_clipping",
                _clip_returns_norm_after,
                "the gradients are right, but return the total norm measured BEFORE "
                "clipping: it is what you monitor to see gradients explode.",
            ),
        ),
        hints=(
            "Treat the three arrays as one long vector g: compute its L2 norm, then shrink "
            "all of them by the same factor if that norm is larger than max_norm.",
            "total_norm = sqrt(sum over the arrays of np.sum(g**2)); if total_norm > max_norm "
            "(and it is finite), multiply each array by max_norm / total_norm; else return "
            "copies. Return the three arrays and total_norm.",
        ),
        equation="eq. (3.8)-(3.9) in chapter 3",
        what="clipped gradients and the total norm agree with the reference, including "
             "gradients below max_norm and with inf or nan entries",
        rtol=1e-5,  # also accepts the max_norm / (total_norm + 1e-6) of torch's clip_grad_norm_
        lesson=_LESSON,
    )
)
