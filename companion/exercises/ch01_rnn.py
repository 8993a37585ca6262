"""Exercises of chapter 1 (recurrent networks): one step of an Elman RNN, then a whole sequence.

The references are the solutions the book shows in its collapsed boxes, so they are written to
be read: one line per equation, the names of the notation page (``x_t``, ``h_prev``, ``W_ih``).
Equation numbers refer to ``lessons/01_rnn.ipynb``.
"""

import numpy as np

from companion.activations import sigmoid
from companion.exercises.cases import batch_size, distinct_sizes, random_params
from companion.exercises.core import Exercise, Mutant, Output, register

_LESSON = "lessons/01_rnn.ipynb"


# --------------------------------------------------------------------------- references


def rnn_cell_forward(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
    """One step of the Elman RNN, eqs. (1.2)-(1.3), for a batch of B sequences.

    x_t (B, D), h_prev (B, H), W_ih (H, D), W_hh (H, H), b_ih (H,), b_hh (H,) -> h_t (B, H).
    Each row of x_t and h_prev is one sequence, so W x becomes x @ W.T.
    """
    a_t = x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh  # pre-activation (1.2)
    h_t = np.tanh(a_t)  # new hidden state (1.3)
    return h_t


def rnn_forward(x, h0, params):
    """Run the RNN over a whole sequence, eq. (1.4): the same cell, the same weights, T times.

    x (T, B, D), h0 (B, H), params {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}
    -> outputs (T, B, H) holding h_1 .. h_T, and h_T (B, H).
    """
    h = h0
    outputs = []
    for t in range(x.shape[0]):  # x[t] is x_{t+1}: Python counts from 0
        h = rnn_cell_forward(x[t], h, params["weight_ih"], params["weight_hh"],
                             params["bias_ih"], params["bias_hh"])
        outputs.append(h)
    return np.stack(outputs), h


# --------------------------------------------------------------------------- cases


def _cell_cases(rng: np.random.Generator) -> list[dict]:
    cases = []
    for k in range(3):
        B, D, H = distinct_sizes(rng, 3)
        B = batch_size(k, B)
        p = random_params(rng, D, H, scale=0.6)
        cases.append({
            "x_t": rng.standard_normal((B, D)),
            "h_prev": np.tanh(rng.standard_normal((B, H))),
            "W_ih": p["weight_ih"], "W_hh": p["weight_hh"],
            "b_ih": p["bias_ih"], "b_hh": p["bias_hh"],
        })
    return cases


def _sequence_cases(rng: np.random.Generator) -> list[dict]:
    cases = []
    for k in range(3):
        T, B, D, H = distinct_sizes(rng, 4)
        B = batch_size(k, B)
        cases.append({
            "x": rng.standard_normal((T, B, D)),
            "h0": np.tanh(rng.standard_normal((B, H))),
            "params": random_params(rng, D, H, scale=0.6),
        })
    return cases


# --------------------------------------------------------------------------- mutants: one step


def _cell_ignores_h_prev(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
    return np.tanh(x_t @ W_ih.T + b_ih + b_hh)


def _cell_no_tanh(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
    return x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh


def _cell_sigmoid(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
    return sigmoid(x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh)


def _cell_w_hh_transposed(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
    return np.tanh(x_t @ W_ih.T + b_ih + h_prev @ W_hh + b_hh)


def _cell_no_b_hh(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
    return np.tanh(x_t @ W_ih.T + b_ih + h_prev @ W_hh.T)


def _cell_no_b_ih(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
    return np.tanh(x_t @ W_ih.T + h_prev @ W_hh.T + b_hh)


def _cell_tanh_on_input_only(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
    return np.tanh(x_t @ W_ih.T + b_ih) + h_prev @ W_hh.T + b_hh


register(
    Exercise(
        id="rnn_cell_forward",
        title="One step of an RNN",
        reference=rnn_cell_forward,
        make_cases=_cell_cases,
        outputs=(Output("h_t", "(B, H)"),),
        mutants=(
            Mutant("ignores_h_prev", _cell_ignores_h_prev,
                   "your h_t does not depend on h_prev: that is a feed-forward layer with no "
                   "memory. Add the recurrent term h_prev @ W_hh.T."),
            Mutant("no_tanh", _cell_no_tanh,
                   "you returned the pre-activation a_t; the new state is tanh(a_t), which keeps "
                   "every entry of h_t in (-1, 1)."),
            Mutant("sigmoid_instead_of_tanh", _cell_sigmoid,
                   "you squashed with the sigmoid, whose values lie in (0, 1); the Elman RNN of "
                   "torch.nn.RNN uses tanh, with values in (-1, 1)."),
            Mutant("w_hh_transposed", _cell_w_hh_transposed,
                   "the recurrent weights are transposed: with one sequence per row the product "
                   "W_hh h_{t-1} is h_prev @ W_hh.T, not h_prev @ W_hh. (W_hh is square, so the "
                   "shapes cannot warn you.)"),
            Mutant("missing_b_hh", _cell_no_b_hh,
                   "b_hh is missing: PyTorch's RNN has two biases, b_ih and b_hh, and adds both."),
            Mutant("missing_b_ih", _cell_no_b_ih,
                   "the input's bias b_ih is left out; a_t adds both biases, b_ih and b_hh."),
            Mutant("tanh_on_input_only", _cell_tanh_on_input_only,
                   "tanh must be applied to the whole sum a_t, recurrent term and b_hh included, "
                   "not only to the input's part."),
        ),
        hints=(
            "Two matrix products, two biases, one tanh: first the pre-activation a_t of "
            "eq. (1.2), then h_t = tanh(a_t).",
            "The equations use column vectors (W_ih x_t); the code holds one sequence per row, "
            "so W_ih x_t becomes x_t @ W_ih.T, of shape (B, H).",
            "a_t = x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh; return np.tanh(a_t).",
        ),
        equation="eqs. (1.2)-(1.3) in chapter 1",
        what="h_t equals tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) to 1e-7 for B, D, H all "
             "different",
        lesson=_LESSON,
    )
)


# --------------------------------------------------------------------------- mutants: sequence


def _unpack(params):
    return params["weight_ih"], params["weight_hh"], params["bias_ih"], params["bias_hh"]


def _seq_ignores_h0(x, h0, params):
    return rnn_forward(x, np.zeros_like(h0), params)


def _seq_state_not_carried(x, h0, params):
    outputs = [rnn_cell_forward(x[t], h0, *_unpack(params)) for t in range(x.shape[0])]
    return np.stack(outputs), outputs[-1]


def _seq_stores_state_before_step(x, h0, params):
    h = h0
    outputs = []
    for t in range(x.shape[0]):
        outputs.append(h)
        h = rnn_cell_forward(x[t], h, *_unpack(params))
    return np.stack(outputs), h


def _seq_reversed_time(x, h0, params):
    return rnn_forward(x[::-1], h0, params)


def _seq_outputs_aliased(x, h0, params):
    outputs, h_T = rnn_forward(x, h0, params)
    return np.broadcast_to(h_T, outputs.shape).copy(), h_T


register(
    Exercise(
        id="rnn_forward",
        title="An RNN over a whole sequence",
        reference=rnn_forward,
        make_cases=_sequence_cases,
        outputs=(Output("outputs", "(T, B, H)"), Output("h_T", "(B, H)")),
        mutants=(
            Mutant("ignores_h0", _seq_ignores_h0,
                   "you started from zeros instead of the h0 you were given; the first step "
                   "must read h_prev = h0."),
            Mutant("state_not_carried", _seq_state_not_carried,
                   "every step starts again from h0: the state is never carried forward. Feed "
                   "each step the h_t the previous step returned."),
            Mutant("stores_state_before_step", _seq_stores_state_before_step,
                   "outputs is shifted by one step: outputs[t] must hold the state *after* "
                   "reading x[t] (that is h_{t+1}), so outputs[0] is h_1, not h_0."),
            Mutant("reversed_time", _seq_reversed_time,
                   "you read the sequence backwards; time is the first axis of x, and step 1 "
                   "reads x[0]."),
            Mutant("outputs_aliased", _seq_outputs_aliased,
                   "every entry of outputs equals h_T: you stored the same array each step and "
                   "then overwrote it in place (e.g. h[:] = ... or np.tanh(a, out=h)). Store a "
                   "new array per step."),
        ),
        hints=(
            "Loop over time, t = 0 .. T-1, calling one step of the cell on x[t] and the "
            "current state; start from h0.",
            "Keep every new state in a list and np.stack the list at the end: outputs[t] is "
            "the state after reading x[t].",
            "h = h0; for t in range(T): h = rnn_cell_forward(x[t], h, W_ih, W_hh, b_ih, b_hh); "
            "outputs.append(h). Return np.stack(outputs), h.",
        ),
        equation="eq. (1.4) in chapter 1",
        what="outputs and h_T equal the unrolled recurrence to 1e-7 for T, B, D, H all "
             "different",
        lesson=_LESSON,
    )
)
