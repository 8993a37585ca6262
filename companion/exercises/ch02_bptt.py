"""Exercises of chapter 2 (backpropagation through time): the backward pass of one RNN step,
of a whole sequence, and the finite differences that check them.

The references are the solutions the book shows; equation numbers refer to
``lessons/02_bptt.ipynb``.
"""

import numpy as np

from companion.exercises.cases import batch_size, distinct_sizes, random_params
from companion.exercises.ch01_rnn import rnn_cell_forward, rnn_forward
from companion.exercises.core import Exercise, Mutant, Output, register

_LESSON = "lessons/02_bptt.ipynb"


# --------------------------------------------------------------------------- references


def rnn_cell_backward(dh_t, x_t, h_prev, h_t, W_ih, W_hh):
    """Backward pass of one RNN step, eqs. (2.4)-(2.9), for a batch of B sequences.

    dh_t (B, H) is the whole gradient dL/dh_t arriving at this step; x_t (B, D), h_prev (B, H)
    and h_t (B, H) are what the forward step read and returned.
    Returns dx_t (B, D), dh_prev (B, H), dW_ih (H, D), dW_hh (H, H) and db (H,), the gradient
    of b_ih and of b_hh alike. Weight and bias gradients are summed over the batch.
    """
    da_t = dh_t * (1 - h_t**2)  # back through tanh: tanh'(a_t) = 1 - h_t^2   (2.4)
    dx_t = da_t @ W_ih  # (2.8)
    dh_prev = da_t @ W_hh  # the part of dL/dh_{t-1} that flows through this step   (2.3)
    dW_ih = da_t.T @ x_t  # (2.5), one step's term
    dW_hh = da_t.T @ h_prev  # (2.6): the state this step *read*, h_{t-1}
    db = da_t.sum(axis=0)  # (2.7)
    return dx_t, dh_prev, dW_ih, dW_hh, db


def rnn_backward(d_outputs, x, h0, outputs, params):
    """Backpropagation through time for ``rnn_forward``, eqs. (2.3)-(2.9).

    d_outputs (T, B, H): the direct gradients dl_t/dh_t of the loss terms (zeros where a step
    has no loss); x (T, B, D), h0 (B, H) and outputs (T, B, H) from the forward pass.
    Returns dx (T, B, D), dh0 (B, H) and grads, a dict with the keys and shapes of params.
    """
    W_ih, W_hh = params["weight_ih"], params["weight_hh"]
    dx = np.zeros_like(x)
    grads = {name: np.zeros_like(value) for name, value in params.items()}
    dh_next = np.zeros_like(h0)  # gradient reaching h_t from step t+1: none after the last
    for t in reversed(range(x.shape[0])):  # x[t] is x_{t+1}, outputs[t] is h_{t+1}
        h_prev = outputs[t - 1] if t > 0 else h0
        dh_t = d_outputs[t] + dh_next  # direct part + part from the future   (2.3)
        dx[t], dh_next, dW_ih, dW_hh, db = rnn_cell_backward(
            dh_t, x[t], h_prev, outputs[t], W_ih, W_hh)
        grads["weight_ih"] += dW_ih  # shared weights: every step adds its term
        grads["weight_hh"] += dW_hh
        grads["bias_ih"] += db
        grads["bias_hh"] += db
    return dx, dh_next, grads  # after the first step, dh_next is dL/dh_0   (2.9)


def numerical_gradient(f, x, eps=1e-6):
    """Central differences, eq. (2.14): grad[i] = (f(x + eps e_i) - f(x - eps e_i)) / (2 eps).

    f maps an array shaped like x to a number; x (any shape, float64) is not modified.
    Returns an array shaped like x. Costs 2 * x.size calls of f.
    """
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):  # every entry, whatever the shape of x
        x_plus = x.copy()
        x_plus[index] += eps
        x_minus = x.copy()
        x_minus[index] -= eps
        grad[index] = (f(x_plus) - f(x_minus)) / (2 * eps)
    return grad


# --------------------------------------------------------------------------- cases


def _cell_cases(rng: np.random.Generator) -> list[dict]:
    cases = []
    for k in range(3):
        B, D, H = distinct_sizes(rng, 3)
        B = batch_size(k, B)
        p = random_params(rng, D, H, scale=0.6)
        x_t = rng.standard_normal((B, D))
        h_prev = np.tanh(rng.standard_normal((B, H)))
        h_t = rnn_cell_forward(x_t, h_prev, p["weight_ih"], p["weight_hh"], p["bias_ih"],
                               p["bias_hh"])
        cases.append({
            "dh_t": rng.standard_normal((B, H)), "x_t": x_t, "h_prev": h_prev, "h_t": h_t,
            "W_ih": p["weight_ih"], "W_hh": p["weight_hh"],
        })
    return cases


def _sequence_cases(rng: np.random.Generator) -> list[dict]:
    cases = []
    for k in range(3):
        T, B, D, H = distinct_sizes(rng, 4)
        B = batch_size(k, B)
        params = random_params(rng, D, H, scale=0.6)
        x = rng.standard_normal((T, B, D))
        h0 = np.tanh(rng.standard_normal((B, H)))
        outputs, _ = rnn_forward(x, h0, params)
        cases.append({
            "d_outputs": rng.standard_normal((T, B, H)), "x": x, "h0": h0,
            "outputs": outputs, "params": params,
        })
    return cases


class WavyFunction:
    """f(x) = sum(a * sin(w * x)) + (c . x)**2 / 2: strongly curved (so a one-sided
    difference is visibly wrong) and coupling all entries (so perturbing them together is too).
    """

    def __init__(self, a, w, c):
        self.a, self.w, self.c = a, w, c

    def __call__(self, x):
        return float(np.sum(self.a * np.sin(self.w * x)) + 0.5 * np.sum(self.c * x) ** 2)

    def gradient(self, x):
        """The exact gradient, for comparison."""
        return self.a * self.w * np.cos(self.w * x) + np.sum(self.c * x) * self.c

    def __eq__(self, other):  # the check compares inputs before and after a call
        return isinstance(other, WavyFunction) and all(
            np.array_equal(mine, theirs) for mine, theirs in
            [(self.a, other.a), (self.w, other.w), (self.c, other.c)])

    __hash__ = None

    def __repr__(self):
        return "f = sum(a*sin(w*x)) + (c.x)**2/2"


def _gradient_cases(rng: np.random.Generator) -> list[dict]:
    cases = []
    for eps in rng.permutation([1e-2, 5e-3, 2e-3]):
        shape = tuple(distinct_sizes(rng, 2))
        f = WavyFunction(a=rng.uniform(0.5, 1.5, shape), w=rng.uniform(2.0, 4.0, shape),
                         c=0.5 * rng.standard_normal(shape))
        cases.append({"f": f, "x": rng.standard_normal(shape), "eps": float(eps)})
    return cases


# --------------------------------------------------------------------------- mutants: one step


def _cell_no_tanh_derivative(dh_t, x_t, h_prev, h_t, W_ih, W_hh):
    da_t = dh_t
    return da_t @ W_ih, da_t @ W_hh, da_t.T @ x_t, da_t.T @ h_prev, da_t.sum(axis=0)


def _cell_derivative_at_h_prev(dh_t, x_t, h_prev, h_t, W_ih, W_hh):
    da_t = dh_t * (1 - h_prev**2)
    return da_t @ W_ih, da_t @ W_hh, da_t.T @ x_t, da_t.T @ h_prev, da_t.sum(axis=0)


def _cell_h_t_for_h_prev(dh_t, x_t, h_prev, h_t, W_ih, W_hh):
    return rnn_cell_backward(dh_t, x_t, h_t, h_t, W_ih, W_hh)


def _cell_bias_averaged(dh_t, x_t, h_prev, h_t, W_ih, W_hh):
    dx_t, dh_prev, dW_ih, dW_hh, db = rnn_cell_backward(dh_t, x_t, h_prev, h_t, W_ih, W_hh)
    return dx_t, dh_prev, dW_ih, dW_hh, db / dh_t.shape[0]


def _cell_w_hh_transposed(dh_t, x_t, h_prev, h_t, W_ih, W_hh):
    dx_t, _, dW_ih, dW_hh, db = rnn_cell_backward(dh_t, x_t, h_prev, h_t, W_ih, W_hh)
    da_t = dh_t * (1 - h_t**2)
    return dx_t, da_t @ W_hh.T, dW_ih, dW_hh, db


_NO_DERIVATIVE_HINT = (
    "the factor tanh'(a_t) = 1 - h_t**2 is missing: before anything else, multiply the "
    "incoming gradient elementwise by it, da_t = dh_t * (1 - h_t**2)."
)
_H_T_FOR_H_PREV_HINT = (
    "dW_hh uses h_t where h_{t-1} belongs: the recurrent weights multiplied h_prev in the "
    "forward step, so dW_hh = da_t.T @ h_prev."
)
_BIAS_AVERAGED_HINT = (
    "the bias gradient is averaged over the batch; sum it instead (da_t.sum(axis=0)). The "
    "loss adds up the sequences of the batch, and dW = da_t.T @ x_t sums over them too."
)

register(
    Exercise(
        id="rnn_cell_backward",
        title="Backward pass of one RNN step",
        reference=rnn_cell_backward,
        make_cases=_cell_cases,
        outputs=(Output("dx_t", "(B, D)"), Output("dh_prev", "(B, H)"),
                 Output("dW_ih", "(H, D)"), Output("dW_hh", "(H, H)"), Output("db", "(H,)")),
        mutants=(
            Mutant("no_tanh_derivative", _cell_no_tanh_derivative, _NO_DERIVATIVE_HINT),
            Mutant("derivative_at_h_prev", _cell_derivative_at_h_prev,
                   "the derivative of tanh is taken at the wrong state: tanh'(a_t) = 1 - h_t**2 "
                   "uses this step's output h_t, not h_prev."),
            Mutant("h_t_for_h_prev", _cell_h_t_for_h_prev, _H_T_FOR_H_PREV_HINT),
            Mutant("bias_averaged", _cell_bias_averaged, _BIAS_AVERAGED_HINT),
            Mutant("w_hh_transposed", _cell_w_hh_transposed,
                   "dh_prev uses the wrong orientation of W_hh: the forward step computed "
                   "h_prev @ W_hh.T, so the gradient flows back as da_t @ W_hh. (W_hh is "
                   "square, so the shapes cannot warn you.)"),
        ),
        hints=(
            "Go back through the forward step in reverse: first through tanh (eq. 2.4), then "
            "through the sum a_t = x_t W_ih^T + b_ih + h_prev W_hh^T + b_hh.",
            "With da_t = dh_t * (1 - h_t**2): each input of a product gets da_t times the other "
            "factor, e.g. dx_t = da_t @ W_ih and dW_ih = da_t.T @ x_t. Check every shape.",
            "da_t = dh_t * (1 - h_t**2); dx_t = da_t @ W_ih; dh_prev = da_t @ W_hh; "
            "dW_ih = da_t.T @ x_t; dW_hh = da_t.T @ h_prev; db = da_t.sum(axis=0).",
        ),
        equation="eqs. (2.3)-(2.9) in chapter 2",
        what="all five gradients equal the chain rule through one step to 1e-7 for B, D, H all "
             "different",
        lesson=_LESSON,
    )
)


# --------------------------------------------------------------------------- mutants: sequence


def _bptt(d_outputs, x, h0, outputs, params, *, cell=rnn_cell_backward, accumulate=True,
          add_direct=True, h_prev_of=None):
    """BPTT with one thing done wrong, chosen by the keyword arguments (for the mutants)."""
    W_ih, W_hh = params["weight_ih"], params["weight_hh"]
    dx = np.zeros_like(x)
    grads = {name: np.zeros_like(value) for name, value in params.items()}
    dh_next = np.zeros_like(h0) if add_direct else d_outputs[-1]
    for t in reversed(range(x.shape[0])):
        h_prev = h_prev_of(t, h0, outputs) if h_prev_of else (outputs[t - 1] if t > 0 else h0)
        dh_t = d_outputs[t] + dh_next if add_direct else dh_next
        dx[t], dh_next, dW_ih, dW_hh, db = cell(dh_t, x[t], h_prev, outputs[t], W_ih, W_hh)
        if accumulate:
            grads["weight_ih"] += dW_ih
            grads["weight_hh"] += dW_hh
            grads["bias_ih"] += db
            grads["bias_hh"] += db
        else:
            grads = {"weight_ih": dW_ih, "weight_hh": dW_hh, "bias_ih": db, "bias_hh": db}
    return dx, dh_next, grads


def _seq_no_tanh_derivative(d_outputs, x, h0, outputs, params):
    return _bptt(d_outputs, x, h0, outputs, params, cell=_cell_no_tanh_derivative)


def _seq_not_accumulated(d_outputs, x, h0, outputs, params):
    return _bptt(d_outputs, x, h0, outputs, params, accumulate=False)


def _seq_direct_gradient_not_added(d_outputs, x, h0, outputs, params):
    return _bptt(d_outputs, x, h0, outputs, params, add_direct=False)


def _seq_h_t_for_h_prev(d_outputs, x, h0, outputs, params):
    return _bptt(d_outputs, x, h0, outputs, params, h_prev_of=lambda t, h0, outs: outs[t])


def _seq_h0_wraps_around(d_outputs, x, h0, outputs, params):
    return _bptt(d_outputs, x, h0, outputs, params, h_prev_of=lambda t, h0, outs: outs[t - 1])


def _seq_bias_averaged(d_outputs, x, h0, outputs, params):
    return _bptt(d_outputs, x, h0, outputs, params, cell=_cell_bias_averaged)


register(
    Exercise(
        id="rnn_backward",
        title="Backpropagation through time",
        reference=rnn_backward,
        make_cases=_sequence_cases,
        outputs=(Output("dx", "(T, B, D)"), Output("dh0", "(B, H)"),
                 Output("grads", "dict shaped like params")),
        mutants=(
            Mutant("no_tanh_derivative", _seq_no_tanh_derivative,
                   "the factor 1 - h_t**2 is missing at every step: the gradient must pass "
                   "back through tanh, da_t = dh_t * (1 - h_t**2), eq. (2.4)."),
            Mutant("not_accumulated", _seq_not_accumulated,
                   "the weight gradients hold only one step's term: W_ih, W_hh and the biases are "
                   "shared by all steps, so their gradients are sums over t (use +=), "
                   "eqs. (2.5)-(2.7)."),
            Mutant("direct_gradient_not_added", _seq_direct_gradient_not_added,
                   "only the last step's loss reaches the network: at every step the gradient "
                   "of h_t is d_outputs[t] (its own loss term) plus what flows back from step "
                   "t+1, eq. (2.3)."),
            Mutant("h_t_for_h_prev", _seq_h_t_for_h_prev,
                   "dW_hh is built with h_t where h_{t-1} belongs: the step that produced "
                   "outputs[t] read outputs[t-1] (or h0 for the first step)."),
            Mutant("h0_wraps_around", _seq_h0_wraps_around,
                   "the first step uses the wrong previous state: outputs[t - 1] with t = 0 is "
                   "outputs[-1], the *last* state. The first step read h0."),
            Mutant("bias_averaged", _seq_bias_averaged,
                   "the bias gradients are averaged over the batch; sum them "
                   "(da_t.sum(axis=0)), as dW = da_t.T @ x_t sums over the sequences."),
        ),
        hints=(
            "Walk backwards, t = T-1 .. 0. Carry one array, the gradient flowing back into the "
            "state from the future (zeros after the last step), and call rnn_cell_backward "
            "once per step.",
            "At step t the cell gets dh_t = d_outputs[t] + the carried gradient, and reads "
            "h_prev = outputs[t-1] (h0 when t = 0). Its dh_prev is the next carried gradient; "
            "add its dW_ih, dW_hh, db into running sums; dx[t] is its dx_t.",
            "dh_next = zeros; for t in reversed(range(T)): dh_t = d_outputs[t] + dh_next; "
            "dx[t], dh_next, dW_ih, dW_hh, db = rnn_cell_backward(dh_t, x[t], h_prev, "
            "outputs[t], W_ih, W_hh); grads[...] += ... (db into both biases). "
            "Return dx, dh_next, grads.",
        ),
        equation="eqs. (2.3)-(2.9) in chapter 2",
        what="dx, dh0 and all four parameter gradients equal BPTT to 1e-7 for T, B, D, H all "
             "different, with a loss term at every step",
        lesson=_LESSON,
    )
)


# --------------------------------------------------------------------------- mutants: differences


def _fd_forward_difference(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        x_plus = x.copy()
        x_plus[index] += eps
        grad[index] = (f(x_plus) - f(x)) / eps
    return grad


def _fd_not_halved(f, x, eps=1e-6):
    return 2 * numerical_gradient(f, x, eps)


def _fd_all_at_once(f, x, eps=1e-6):
    slope = (f(x + eps) - f(x - eps)) / (2 * eps)
    return np.full_like(x, slope)


def _fd_minus_side_not_reached(f, x, eps=1e-6):
    return _fd_forward_difference(f, x, eps) / 2


def _fd_sign_flipped(f, x, eps=1e-6):
    return -numerical_gradient(f, x, eps)


def _fd_ignores_eps(f, x, eps=1e-6):
    return numerical_gradient(f, x, 1e-5)


register(
    Exercise(
        id="numerical_gradient",
        title="Gradients by central differences",
        reference=numerical_gradient,
        make_cases=_gradient_cases,
        outputs=(Output("grad", "same shape as x"),),
        mutants=(
            Mutant("forward_difference", _fd_forward_difference,
                   "that is the one-sided difference (f(x + eps e_i) - f(x)) / eps, whose error "
                   "is of order eps; the central difference (f(x + eps e_i) - f(x - eps e_i)) / "
                   "(2 eps) is accurate to order eps**2."),
            Mutant("not_halved", _fd_not_halved,
                   "your gradient is twice too large: the two points x + eps e_i and x - eps e_i "
                   "are 2 eps apart, so divide by 2 * eps."),
            Mutant("all_at_once", _fd_all_at_once,
                   "every entry got the same number: you perturbed all entries of x together. "
                   "Perturb one entry at a time (x + eps e_i, with e_i a single 1)."),
            Mutant("minus_side_not_reached", _fd_minus_side_not_reached,
                   "your second point is x itself, not x - eps e_i: after x[i] += eps, "
                   "subtracting eps only goes back to x. Step down by 2 * eps, or better, "
                   "build both points from copies of x."),
            Mutant("sign_flipped", _fd_sign_flipped,
                   "the sign is flipped: the difference is f(x + eps e_i) - f(x - eps e_i), "
                   "the value at the *larger* x first."),
            Mutant("ignores_eps", _fd_ignores_eps,
                   "the values are close but not those for the eps you were given: use the "
                   "argument eps, do not set your own step inside the function."),
        ),
        hints=(
            "Loop over every entry of x (np.ndindex(x.shape) gives every index tuple). For each, "
            "evaluate f a little above and a little below that one entry.",
            "For entry i: x_plus = x.copy(); x_plus[i] += eps; likewise x_minus with -= eps; "
            "the estimate is (f(x_plus) - f(x_minus)) / (2 * eps).",
            "grad = np.zeros_like(x); for i in np.ndindex(x.shape): build x_plus and x_minus from "
            "copies, grad[i] = (f(x_plus) - f(x_minus)) / (2 * eps). Return grad.",
        ),
        equation="eq. (2.14) in chapter 2",
        what="central differences of a curved function equal the reference to 1e-7 for three "
             "step sizes",
        rtol=1e-7,
        atol=1e-9,
        lesson=_LESSON,
    )
)
