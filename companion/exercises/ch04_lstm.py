"""Exercises of chapter 4 (long short-term memory): one LSTM step, a whole sequence, the
backward pass of one step, and the peephole variant.

The references are the solutions the book shows in its collapsed boxes, written to be read:
one line per equation, the names of the notation page. Parameters are in PyTorch's layout
(``weight_ih`` ``(4H, D)``, ``weight_hh`` ``(4H, H)``, ``bias_ih`` and ``bias_hh`` ``(4H,)``,
blocks stacked in the order i, f, g, o). Equation numbers refer to ``lessons/04_lstm.ipynb``.
"""

import numpy as np

from companion import lstm
from companion.activations import sigmoid
from companion.exercises.cases import batch_size, distinct_sizes, random_params
from companion.exercises.core import Exercise, Mutant, Output, register

_LESSON = "lessons/04_lstm.ipynb"


# --------------------------------------------------------------------------- references


def lstm_cell_forward(x_t, h_prev, c_prev, params):
    """One LSTM step, eqs. (4.1)-(4.6), for a batch of B sequences.

    x_t (B, D), h_prev (B, H), c_prev (B, H); params in PyTorch's layout, blocks i, f, g, o.
    Returns h_t (B, H) and c_t (B, H).
    """
    H = h_prev.shape[1]
    # All four pre-activations at once, (B, 4H), then cut into PyTorch's blocks i, f, g, o.
    a = x_t @ params["weight_ih"].T + params["bias_ih"] + h_prev @ params["weight_hh"].T \
        + params["bias_hh"]
    a_i, a_f, a_g, a_o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
    f_t = sigmoid(a_f)  # forget gate (4.1)
    i_t = sigmoid(a_i)  # input gate (4.2)
    g_t = np.tanh(a_g)  # candidate (4.3)
    c_t = f_t * c_prev + i_t * g_t  # cell update (4.4)
    o_t = sigmoid(a_o)  # output gate (4.5)
    h_t = o_t * np.tanh(c_t)  # new hidden state (4.6)
    return h_t, c_t


def lstm_forward(x, h0, c0, params):
    """Run the LSTM over a whole sequence: the same cell, the same weights, T times.

    x (T, B, D), h0 (B, H), c0 (B, H), params as for ``lstm_cell_forward``.
    Returns outputs (T, B, H) holding h_1 .. h_T, then h_T (B, H) and c_T (B, H).
    """
    h, c = h0, c0
    outputs = []
    for t in range(x.shape[0]):  # x[t] is x_{t+1}: Python counts from 0
        h, c = lstm_cell_forward(x[t], h, c, params)
        outputs.append(h)
    return np.stack(outputs), h, c


def lstm_cell_backward(dh_t, dc_t, cache):
    """Backward pass of one LSTM step, eqs. (4.7)-(4.13).

    dh_t (B, H): the whole gradient dL/dh_t reaching this step; dc_t (B, H): the gradient
    reaching c_t from step t+1 (zeros at the last step). cache: the dict that
    ``companion.lstm.cell_forward`` returns, with x_t, h_prev, c_prev, the gate activations
    i, f, g, o, c_t, tanh_c = tanh(c_t) and params.
    Returns dx_t (B, D), dh_prev (B, H), dc_prev (B, H) and grads, a dict with the keys and
    shapes of params (weight and bias gradients summed over the batch).
    """
    i, f, g, o = cache["i"], cache["f"], cache["g"], cache["o"]
    c_prev, tanh_c, params = cache["c_prev"], cache["tanh_c"], cache["params"]
    do = dh_t * tanh_c  # (4.7)
    dc = dc_t + dh_t * o * (1 - tanh_c**2)  # everything that reaches c_t (4.8)
    df = dc * c_prev  # (4.9)
    di = dc * g
    dg = dc * i
    dc_prev = dc * f  # the carousel (4.10)
    # Back through the activations to the pre-activations (4.11), in the order i, f, g, o.
    da = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g**2),
                         do * o * (1 - o)], axis=1)
    dx_t = da @ params["weight_ih"]  # (4.12)
    dh_prev = da @ params["weight_hh"]
    grads = {  # (4.13)
        "weight_ih": da.T @ cache["x_t"],
        "weight_hh": da.T @ cache["h_prev"],
        "bias_ih": da.sum(axis=0),
        "bias_hh": da.sum(axis=0),
    }
    return dx_t, dh_prev, dc_prev, grads


def peephole_lstm_cell_forward(x_t, h_prev, c_prev, params):
    """One step of the LSTM with peephole connections, eqs. (4.15)-(4.17).

    As ``lstm_cell_forward``, with three more entries in params, each (H,): weight_peep_i
    and weight_peep_f (the input and forget gates look at c_{t-1}) and weight_peep_o (the
    output gate looks at the new c_t). Returns h_t (B, H) and c_t (B, H).
    """
    H = h_prev.shape[1]
    a = x_t @ params["weight_ih"].T + params["bias_ih"] + h_prev @ params["weight_hh"].T \
        + params["bias_hh"]
    a_i, a_f, a_g, a_o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
    i_t = sigmoid(a_i + params["weight_peep_i"] * c_prev)  # (4.15)
    f_t = sigmoid(a_f + params["weight_peep_f"] * c_prev)
    g_t = np.tanh(a_g)
    c_t = f_t * c_prev + i_t * g_t
    o_t = sigmoid(a_o + params["weight_peep_o"] * c_t)  # (4.16): the *new* cell state
    h_t = o_t * np.tanh(c_t)  # (4.17)
    return h_t, c_t


# --------------------------------------------------------------------------- cases


def _cell_cases(rng: np.random.Generator, peephole: bool = False) -> list[dict]:
    cases = []
    for k in range(3):
        B, D, H = distinct_sizes(rng, 3)
        B = batch_size(k, B)
        cases.append({
            "x_t": rng.standard_normal((B, D)),
            "h_prev": np.tanh(rng.standard_normal((B, H))),
            "c_prev": rng.standard_normal((B, H)),
            "params": random_params(rng, D, H, gates=4, peephole=peephole),
        })
    return cases


def _peephole_cases(rng: np.random.Generator) -> list[dict]:
    return _cell_cases(rng, peephole=True)


def _sequence_cases(rng: np.random.Generator) -> list[dict]:
    cases = []
    for k in range(3):
        T, B, D, H = distinct_sizes(rng, 4)
        B = batch_size(k, B)
        cases.append({
            "x": rng.standard_normal((T, B, D)),
            "h0": np.tanh(rng.standard_normal((B, H))),
            "c0": rng.standard_normal((B, H)),
            "params": random_params(rng, D, H, gates=4),
        })
    return cases


def _backward_cases(rng: np.random.Generator) -> list[dict]:
    cases = []
    for case in _cell_cases(rng):
        _, cache = lstm.cell_forward(case["x_t"], (case["h_prev"], case["c_prev"]),
                                     case["params"])
        B, H = case["h_prev"].shape
        cases.append({
            "dh_t": rng.standard_normal((B, H)),
            "dc_t": rng.standard_normal((B, H)),
            "cache": cache,
        })
    return cases


# --------------------------------------------------------------------------- mutants: one step


def _blocks(x_t, h_prev, params, order="ifgo"):
    """Pre-activations of the four blocks, read in ``order`` from PyTorch's stacking."""
    H = h_prev.shape[1]
    a = x_t @ params["weight_ih"].T + params["bias_ih"] + h_prev @ params["weight_hh"].T \
        + params["bias_hh"]
    blocks = {name: a[:, k * H:(k + 1) * H] for k, name in enumerate(order)}
    return blocks["i"], blocks["f"], blocks["g"], blocks["o"]


def _step(a_i, a_f, a_g, a_o, c_prev):
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)
    c = f * c_prev + i * g
    return o * np.tanh(c), c


def _cell_order_ifog(x_t, h_prev, c_prev, params):
    return _step(*_blocks(x_t, h_prev, params, order="ifog"), c_prev)


def _cell_sigmoid_candidate(x_t, h_prev, c_prev, params):
    a_i, a_f, a_g, a_o = _blocks(x_t, h_prev, params)
    c = sigmoid(a_f) * c_prev + sigmoid(a_i) * sigmoid(a_g)
    return sigmoid(a_o) * np.tanh(c), c


def _cell_no_tanh_on_c(x_t, h_prev, c_prev, params):
    a_i, a_f, a_g, a_o = _blocks(x_t, h_prev, params)
    c = sigmoid(a_f) * c_prev + sigmoid(a_i) * np.tanh(a_g)
    return sigmoid(a_o) * c, c


def _cell_update_uses_h_prev(x_t, h_prev, c_prev, params):
    a_i, a_f, a_g, a_o = _blocks(x_t, h_prev, params)
    c = sigmoid(a_f) * h_prev + sigmoid(a_i) * np.tanh(a_g)
    return sigmoid(a_o) * np.tanh(c), c


def _cell_forget_on_candidate(x_t, h_prev, c_prev, params):
    a_i, a_f, a_g, a_o = _blocks(x_t, h_prev, params)
    c = sigmoid(a_i) * c_prev + sigmoid(a_f) * np.tanh(a_g)
    return sigmoid(a_o) * np.tanh(c), c


def _cell_one_bias(x_t, h_prev, c_prev, params):
    return lstm_cell_forward(x_t, h_prev, c_prev, {**params, "bias_hh": 0 * params["bias_hh"]})


def _cell_tanh_of_c_prev(x_t, h_prev, c_prev, params):
    a_i, a_f, a_g, a_o = _blocks(x_t, h_prev, params)
    c = sigmoid(a_f) * c_prev + sigmoid(a_i) * np.tanh(a_g)
    return sigmoid(a_o) * np.tanh(c_prev), c


_ORDER_HINT = (
    "your gate blocks are in the wrong order. PyTorch stacks the rows of weight_ih, weight_hh "
    "and the biases as i, f, g, o: the candidate g is the third block (rows 2H:3H) and the "
    "output gate the fourth (rows 3H:4H), not the other way round."
)

register(
    Exercise(
        id="lstm_cell_forward",
        title="One step of an LSTM",
        reference=lstm_cell_forward,
        make_cases=_cell_cases,
        outputs=(Output("h_t", "(B, H)"), Output("c_t", "(B, H)")),
        mutants=(
            Mutant("order_ifog", _cell_order_ifog, _ORDER_HINT),
            Mutant("sigmoid_candidate", _cell_sigmoid_candidate,
                   "the candidate g_t goes through tanh, not the sigmoid: it is a signed value "
                   "in (-1, 1) that is written to the cell, while the sigmoids (i, f, o) are "
                   "the gates that scale things by a factor in (0, 1)."),
            Mutant("no_tanh_on_c", _cell_no_tanh_on_c,
                   "h_t = o_t * tanh(c_t), eq. (4.6): the cell state is squashed by tanh before "
                   "the output gate filters it. You multiplied o_t by c_t itself."),
            Mutant("update_uses_h_prev", _cell_update_uses_h_prev,
                   "the forget gate scales the old *cell* state: c_t = f_t * c_prev + i_t * g_t. "
                   "You used h_prev where c_prev belongs."),
            Mutant("forget_on_candidate", _cell_forget_on_candidate,
                   "the forget gate and the input gate have swapped jobs: f_t multiplies the old "
                   "cell c_prev and i_t the candidate g_t, eq. (4.4). (Or you read block 0 as f "
                   "and block 1 as i; PyTorch's order is i, f, g, o.)"),
            Mutant("one_bias", _cell_one_bias,
                   "bias_hh is missing: like PyTorch, every gate has two biases, b_i* and b_h*, "
                   "and the pre-activation adds both."),
            Mutant("tanh_of_c_prev", _cell_tanh_of_c_prev,
                   "c_t is right but h_t reads the old cell: h_t = o_t * tanh(c_t), with the "
                   "cell state you have just updated."),
        ),
        hints=(
            "Compute the four pre-activations with one product each for x_t and h_prev (shape "
            "(B, 4H)), cut them into four (B, H) blocks, apply the activations, then eqs. "
            "(4.4) and (4.6).",
            "Blocks in PyTorch's order i, f, g, o: a[:, :H] is the input gate, a[:, H:2*H] the "
            "forget gate, a[:, 2*H:3*H] the candidate (tanh), a[:, 3*H:] the output gate.",
            "a = x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh; i, f, o = sigmoid of their "
            "blocks; g = tanh of its block; c_t = f * c_prev + i * g; h_t = o * tanh(c_t).",
        ),
        equation="eqs. (4.1)-(4.6) in chapter 4",
        what="h_t and c_t equal the LSTM equations in PyTorch's layout to 1e-7 for B, D, H all "
             "different",
        lesson=_LESSON,
    )
)


# --------------------------------------------------------------------------- mutants: sequence


def _seq_ignores_initial_state(x, h0, c0, params):
    return lstm_forward(x, np.zeros_like(h0), np.zeros_like(c0), params)


def _seq_cell_not_carried(x, h0, c0, params):
    h, outputs = h0, []
    for t in range(x.shape[0]):
        h, c = lstm_cell_forward(x[t], h, c0, params)
        outputs.append(h)
    return np.stack(outputs), h, c


def _seq_hidden_not_carried(x, h0, c0, params):
    c, outputs = c0, []
    for t in range(x.shape[0]):
        h, c = lstm_cell_forward(x[t], h0, c, params)
        outputs.append(h)
    return np.stack(outputs), h, c


def _seq_outputs_are_cells(x, h0, c0, params):
    h, c, outputs = h0, c0, []
    for t in range(x.shape[0]):
        h, c = lstm_cell_forward(x[t], h, c, params)
        outputs.append(c)
    return np.stack(outputs), h, c


def _seq_final_states_swapped(x, h0, c0, params):
    outputs, h, c = lstm_forward(x, h0, c0, params)
    return outputs, c, h


def _seq_stores_state_before_step(x, h0, c0, params):
    h, c, outputs = h0, c0, []
    for t in range(x.shape[0]):
        outputs.append(h)
        h, c = lstm_cell_forward(x[t], h, c, params)
    return np.stack(outputs), h, c


register(
    Exercise(
        id="lstm_forward",
        title="An LSTM over a whole sequence",
        reference=lstm_forward,
        make_cases=_sequence_cases,
        outputs=(Output("outputs", "(T, B, H)"), Output("h_T", "(B, H)"),
                 Output("c_T", "(B, H)")),
        mutants=(
            Mutant("ignores_initial_state", _seq_ignores_initial_state,
                   "you started from zeros instead of the h0 and c0 you were given; the first "
                   "step must read h_prev = h0 and c_prev = c0."),
            Mutant("cell_not_carried", _seq_cell_not_carried,
                   "the cell state is never carried forward: every step reads c0. The conveyor "
                   "belt only works if step t+1 receives the c_t that step t returned."),
            Mutant("hidden_not_carried", _seq_hidden_not_carried,
                   "the hidden state is never carried forward: every step reads h0. Both h and c "
                   "are the LSTM's state; pass both on."),
            Mutant("outputs_are_cells", _seq_outputs_are_cells,
                   "outputs holds the cell states; like torch.nn.LSTM, outputs[t] is the hidden "
                   "state h_{t+1}, and the cell state is only returned for the last step."),
            Mutant("final_states_swapped", _seq_final_states_swapped,
                   "the final states are swapped: return outputs, then h_T, then c_T."),
            Mutant("stores_state_before_step", _seq_stores_state_before_step,
                   "outputs is shifted by one step: outputs[t] must hold the state *after* "
                   "reading x[t] (h_{t+1}), so outputs[0] is h_1, not h_0."),
        ),
        hints=(
            "Loop over time, t = 0 .. T-1, calling lstm_cell_forward on x[t] and the current "
            "pair (h, c); start from (h0, c0).",
            "Keep every new h in a list and np.stack it at the end; return the last h and c "
            "as well.",
            "h, c = h0, c0; for t in range(T): h, c = lstm_cell_forward(x[t], h, c, params); "
            "outputs.append(h). Return np.stack(outputs), h, c.",
        ),
        equation="eqs. (4.1)-(4.6) in chapter 4, applied for t = 1 .. T",
        what="outputs, h_T and c_T equal the unrolled LSTM to 1e-7 for T, B, D, H all different",
        lesson=_LESSON,
    )
)


# --------------------------------------------------------------------------- mutants: backward


def _backward_variant(dh_t, dc_t, cache, *, tanh_prime=True, carousel=True, order="ifgo",
                      df_uses="c_prev"):
    i, f, g, o = cache["i"], cache["f"], cache["g"], cache["o"]
    tanh_c, params = cache["tanh_c"], cache["params"]
    do = dh_t * tanh_c
    slope = (1 - tanh_c**2) if tanh_prime else 1.0
    dc = dc_t + dh_t * o * slope
    df = dc * cache[df_uses]
    di, dg = dc * g, dc * i
    dc_prev = dc * f if carousel else dc
    parts = {"i": di * i * (1 - i), "f": df * f * (1 - f), "g": dg * (1 - g**2),
             "o": do * o * (1 - o)}
    da = np.concatenate([parts[name] for name in order], axis=1)
    grads = {"weight_ih": da.T @ cache["x_t"], "weight_hh": da.T @ cache["h_prev"],
             "bias_ih": da.sum(axis=0), "bias_hh": da.sum(axis=0)}
    return da @ params["weight_ih"], da @ params["weight_hh"], dc_prev, grads


def _bw_no_tanh_prime(dh_t, dc_t, cache):
    return _backward_variant(dh_t, dc_t, cache, tanh_prime=False)


def _bw_carousel_without_f(dh_t, dc_t, cache):
    return _backward_variant(dh_t, dc_t, cache, carousel=False)


def _bw_dc_prev_misses_h_path(dh_t, dc_t, cache):
    dx_t, dh_prev, _, grads = lstm_cell_backward(dh_t, dc_t, cache)
    return dx_t, dh_prev, dc_t * cache["f"], grads


def _bw_order_ifog(dh_t, dc_t, cache):
    return _backward_variant(dh_t, dc_t, cache, order="ifog")


def _bw_df_uses_c_t(dh_t, dc_t, cache):
    return _backward_variant(dh_t, dc_t, cache, df_uses="c_t")


def _bw_no_sigmoid_prime(dh_t, dc_t, cache):
    i, f, g, o = cache["i"], cache["f"], cache["g"], cache["o"]
    c_prev, tanh_c, params = cache["c_prev"], cache["tanh_c"], cache["params"]
    dc = dc_t + dh_t * o * (1 - tanh_c**2)
    da = np.concatenate([dc * g, dc * c_prev, dc * i * (1 - g**2), dh_t * tanh_c], axis=1)
    grads = {"weight_ih": da.T @ cache["x_t"], "weight_hh": da.T @ cache["h_prev"],
             "bias_ih": da.sum(axis=0), "bias_hh": da.sum(axis=0)}
    return da @ params["weight_ih"], da @ params["weight_hh"], dc * f, grads


register(
    Exercise(
        id="lstm_cell_backward",
        title="Backward pass of one LSTM step",
        reference=lstm_cell_backward,
        make_cases=_backward_cases,
        outputs=(Output("dx_t", "(B, D)"), Output("dh_prev", "(B, H)"),
                 Output("dc_prev", "(B, H)"), Output("grads", "dict like params")),
        mutants=(
            Mutant("no_tanh_prime", _bw_no_tanh_prime,
                   "the path from h_t to c_t goes through tanh: dL/dc_t gains "
                   "dh_t * o_t * (1 - tanh(c_t)**2), eq. (4.8). The factor (1 - tanh_c**2) is "
                   "missing."),
            Mutant("carousel_without_f", _bw_carousel_without_f,
                   "dc_prev is not multiplied by the forget gate: c_t = f_t * c_prev + ..., so "
                   "dL/dc_prev = dc * f_t, eq. (4.10)."),
            Mutant("dc_prev_misses_h_path", _bw_dc_prev_misses_h_path,
                   "dc_prev only carries the dc_t that came from step t+1. The gradient reaching "
                   "c_t through h_t = o_t * tanh(c_t) must be added first (eq. 4.8), and then "
                   "the whole sum flows to c_prev through f_t."),
            Mutant("order_ifog", _bw_order_ifog,
                   "the pre-activation gradients are stacked in the wrong order; weight_ih and "
                   "weight_hh stack their blocks as i, f, g, o, so da must too."),
            Mutant("df_uses_c_t", _bw_df_uses_c_t,
                   "the forget gate multiplies the *old* cell state, so dL/df_t = dc * c_prev, "
                   "not dc * c_t, eq. (4.9)."),
            Mutant("no_sigmoid_prime", _bw_no_sigmoid_prime,
                   "the gate gradients stop at the activations: dL/da_i = dL/di_t * i_t * "
                   "(1 - i_t), and the same for f and o (eq. 4.11). Only the candidate got its "
                   "(1 - g**2)."),
        ),
        hints=(
            "Go backwards through eqs. (4.6), (4.4) and (4.1)-(4.5): first do_t and the total "
            "dc reaching c_t, then the gradients of f, i, g and c_prev, then through the "
            "activations, then through the two matrix products.",
            "dc = dc_t + dh_t * o * (1 - tanh_c**2) collects both paths into c_t. Then "
            "df = dc * c_prev, di = dc * g, dg = dc * i, dc_prev = dc * f.",
            "da = concatenate([di*i*(1-i), df*f*(1-f), dg*(1-g**2), do*o*(1-o)], axis=1) in the "
            "order i, f, g, o; dx_t = da @ W_ih, dh_prev = da @ W_hh, dW_ih = da.T @ x_t, "
            "dW_hh = da.T @ h_prev, both bias gradients da.sum(axis=0).",
        ),
        equation="eqs. (4.7)-(4.13) in chapter 4",
        what="dx_t, dh_prev, dc_prev and every parameter gradient equal the chain rule through "
             "eqs. (4.1)-(4.6) to 1e-7",
        lesson=_LESSON,
    )
)


# --------------------------------------------------------------------------- mutants: peepholes


def _peep_variant(x_t, h_prev, c_prev, params, *, o_sees="c_t", use_f=True, use_o=True,
                  swap_if=False, after_sigmoid=False):
    a_i, a_f, a_g, a_o = _blocks(x_t, h_prev, params)
    p_i, p_f, p_o = (params[key] for key in lstm.PEEPHOLE_KEYS)
    if swap_if:
        p_i, p_f = p_f, p_i
    if after_sigmoid:
        i = sigmoid(a_i) + p_i * c_prev
        f = sigmoid(a_f) + p_f * c_prev
    else:
        i = sigmoid(a_i + p_i * c_prev)
        f = sigmoid(a_f + (p_f * c_prev if use_f else 0.0))
    c = f * c_prev + i * np.tanh(a_g)
    seen = c if o_sees == "c_t" else c_prev
    o = sigmoid(a_o + (p_o * seen if use_o else 0.0))
    return o * np.tanh(c), c


def _peep_o_sees_c_prev(x_t, h_prev, c_prev, params):
    return _peep_variant(x_t, h_prev, c_prev, params, o_sees="c_prev")


def _peep_no_forget_peephole(x_t, h_prev, c_prev, params):
    return _peep_variant(x_t, h_prev, c_prev, params, use_f=False)


def _peep_no_output_peephole(x_t, h_prev, c_prev, params):
    return _peep_variant(x_t, h_prev, c_prev, params, use_o=False)


def _peep_swapped(x_t, h_prev, c_prev, params):
    return _peep_variant(x_t, h_prev, c_prev, params, swap_if=True)


def _peep_after_sigmoid(x_t, h_prev, c_prev, params):
    return _peep_variant(x_t, h_prev, c_prev, params, after_sigmoid=True)


register(
    Exercise(
        id="peephole_lstm_cell_forward",
        title="One step of a peephole LSTM",
        reference=peephole_lstm_cell_forward,
        make_cases=_peephole_cases,
        outputs=(Output("h_t", "(B, H)"), Output("c_t", "(B, H)")),
        mutants=(
            Mutant("o_sees_c_prev", _peep_o_sees_c_prev,
                   "the output gate peeks at the *new* cell state c_t (eq. 4.16): compute c_t "
                   "first, then o_t. Only the input and forget gates look at c_prev."),
            Mutant("no_forget_peephole", _peep_no_forget_peephole,
                   "the forget gate has a peephole too: add weight_peep_f * c_prev to its "
                   "pre-activation."),
            Mutant("no_output_peephole", _peep_no_output_peephole,
                   "the output gate has no peephole in your code: add weight_peep_o * c_t to its "
                   "pre-activation."),
            Mutant("swapped_peepholes", _peep_swapped,
                   "weight_peep_i and weight_peep_f are swapped: the input gate uses "
                   "weight_peep_i, the forget gate weight_peep_f."),
            Mutant("after_sigmoid", _peep_after_sigmoid,
                   "the peephole term belongs inside the sigmoid, added to the pre-activation; "
                   "added after it, a gate can leave (0, 1)."),
        ),
        hints=(
            "Start from your lstm_cell_forward. A peephole adds one elementwise term, "
            "p * c, to a gate's pre-activation (the weights are diagonal, so a vector of "
            "shape (H,)).",
            "The input and forget gates look at c_prev. The output gate looks at c_t, so it "
            "must be computed after the cell update.",
            "i = sigmoid(a_i + p_i * c_prev); f = sigmoid(a_f + p_f * c_prev); "
            "c_t = f * c_prev + i * tanh(a_g); o = sigmoid(a_o + p_o * c_t); "
            "h_t = o * tanh(c_t).",
        ),
        equation="eqs. (4.15)-(4.17) in chapter 4",
        what="h_t and c_t equal the peephole LSTM of Gers et al. (2002) to 1e-7 for B, D, H "
             "all different",
        lesson=_LESSON,
    )
)
