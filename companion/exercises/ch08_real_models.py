"""Exercises of chapter 8 (gated cells in real models): a stacked forward pass, the final
states of a bidirectional layer over a padded batch, a loss masked to the valid steps, and the
batching that lets truncated BPTT carry its state from one window to the next.

The references are the solutions the book shows in its collapsed boxes. Parameters are keyed
like a ``torch.nn`` module's ``state_dict()`` (``weight_ih_l0``, ``weight_hh_l0``, ...).
Equation numbers refer to ``lessons/08_real_models.ipynb``.
"""

import numpy as np

from companion import layers
from companion.corpus import stateful_windows
from companion.exercises.cases import distinct_sizes
from companion.exercises.core import Exercise, Mutant, Output, register

_LESSON = "lessons/08_real_models.ipynb"


# --------------------------------------------------------------------------- references


def stacked_rnn_forward(x, params, num_layers):
    """A stack of ``num_layers`` tanh RNN layers, eq. (8.1), every layer starting from zeros.

    x (T, B, D); params keyed like ``torch.nn.RNN(D, H, num_layers).state_dict()``.
    Returns outputs (T, B, H), the top layer's h_1 .. h_T, and h_n (num_layers, B, H), the
    last state of every layer, bottom layer first.
    """
    layer_input, h_n = x, []
    for layer in range(num_layers):
        W_ih, W_hh = params[f"weight_ih_l{layer}"], params[f"weight_hh_l{layer}"]
        b = params[f"bias_ih_l{layer}"] + params[f"bias_hh_l{layer}"]
        h = np.zeros((x.shape[1], W_hh.shape[1]))  # each layer has its own h_0 = 0
        outputs = []
        for t in range(x.shape[0]):
            h = np.tanh(layer_input[t] @ W_ih.T + h @ W_hh.T + b)
            outputs.append(h)
        layer_input = np.stack(outputs)  # the sequence the next layer reads
        h_n.append(h)
    return layer_input, np.stack(h_n)


def final_states(outputs, lengths):
    """h_n of a one-layer bidirectional layer, read from its padded outputs, eq. (8.5).

    outputs (T, B, 2H): forward direction in [..., :H], reverse in [..., H:], zero at padded
    steps; lengths (B,): valid steps of each sequence, in any order.
    Returns h_n (2, B, H): the forward state after each sequence's own last valid step, then
    the reverse state after it has read x[0].
    """
    H = outputs.shape[2] // 2
    batch = np.arange(outputs.shape[1])
    forward_last = outputs[lengths - 1, batch, :H]  # step lengths[b] - 1 of sequence b
    reverse_last = outputs[0, :, H:]  # the reverse direction finishes at t = 0
    return np.stack([forward_last, reverse_last])


def masked_mean_loss(step_losses, lengths):
    """The mean of step_losses (T, B) over the valid steps only, eq. (8.7).

    lengths (B,): valid steps of each sequence. Every valid step weighs the same, whatever the
    length of its sequence. Returns a scalar.
    """
    T = step_losses.shape[0]
    mask = np.arange(T)[:, None] < lengths[None, :]  # (T, B): True at valid steps
    return (step_losses * mask).sum() / mask.sum()


# --------------------------------------------------------------------------- cases


def _stacked_params(rng, D, H, num_layers):
    params = {}
    for layer in range(num_layers):
        width = D if layer == 0 else H
        params[f"weight_ih_l{layer}"] = 0.6 * rng.standard_normal((H, width))
        params[f"weight_hh_l{layer}"] = 0.6 * rng.standard_normal((H, H))
        params[f"bias_ih_l{layer}"] = 0.5 * rng.standard_normal(H)
        params[f"bias_hh_l{layer}"] = 0.5 * rng.standard_normal(H)
    return params


def _stacked_cases(rng):
    cases = []
    for num_layers in (2, 3, 2):
        T, B, D, H = distinct_sizes(rng, 4)
        cases.append({"x": rng.standard_normal((T, B, D)),
                      "params": _stacked_params(rng, D, H, num_layers),
                      "num_layers": num_layers})
    return cases


def _unsorted_lengths(rng, T, B):
    """B different lengths from T - B + 1 (>= 2) to T, neither ascending nor descending."""
    lengths = rng.permutation(np.arange(T - B + 1, T + 1))
    while np.all(np.diff(lengths) > 0) or np.all(np.diff(lengths) < 0):
        lengths = rng.permutation(lengths)
    return lengths


def _final_state_cases(rng):
    cases = []
    for _ in range(3):
        B = int(rng.integers(3, 5))
        T, D, H = B + int(rng.integers(2, 4)), int(rng.integers(2, 5)), int(rng.integers(2, 6))
        lengths = _unsorted_lengths(rng, T, B)
        params = layers.init_params("gru", D, H, bidirectional=True,
                                    seed=int(rng.integers(2**31)))
        outputs, _, _ = layers.forward("gru", rng.standard_normal((T, B, D)), params,
                                       bidirectional=True, lengths=lengths)
        cases.append({"outputs": outputs, "lengths": lengths})
    return cases


def _masked_loss_cases(rng):
    cases = []
    for _ in range(3):
        B = int(rng.integers(3, 6))
        T = B + int(rng.integers(2, 4))
        lengths = _unsorted_lengths(rng, T, B)
        step_losses = rng.exponential(1.5, (T, B))  # like per-step cross-entropies, > 0
        cases.append({"step_losses": step_losses, "lengths": lengths})
    return cases


def _window_cases(rng):
    cases = []
    for k, (batch_size, window) in enumerate(((3, 4), (4, 3), (2, 5))):
        # streams of n ids; the first case has n a multiple of window, where the last
        # window's targets would run one id past the stream if K were n // window
        spare = window - 1 if k == 0 else int(rng.integers(0, window))
        n = int(rng.integers(3, 5)) * window + 1 + spare
        extra = int(rng.integers(1, batch_size))  # N is not a multiple of batch_size
        cases.append({"ids": rng.integers(0, 50, batch_size * n + extra),
                      "batch_size": batch_size, "window": window})
    return cases


# --------------------------------------------------------------------------- mutants: stacking


def _rnn_layer(layer_input, params, layer, h):
    W_ih, W_hh = params[f"weight_ih_l{layer}"], params[f"weight_hh_l{layer}"]
    b = params[f"bias_ih_l{layer}"] + params[f"bias_hh_l{layer}"]
    outputs = []
    for t in range(layer_input.shape[0]):
        h = np.tanh(layer_input[t] @ W_ih.T + h @ W_hh.T + b)
        outputs.append(h)
    return np.stack(outputs), h


def _stacked_starts_from_below(x, params, num_layers):
    layer_input, h, h_n = x, np.zeros((x.shape[1], params["weight_hh_l0"].shape[1])), []
    for layer in range(num_layers):
        layer_input, h = _rnn_layer(layer_input, params, layer, h)
        h_n.append(h)
    return layer_input, np.stack(h_n)


def _stacked_h_n_top_first(x, params, num_layers):
    outputs, h_n = stacked_rnn_forward(x, params, num_layers)
    return outputs, h_n[::-1]


def _stacked_bottom_outputs(x, params, num_layers):
    bottom, _ = stacked_rnn_forward(x, params, 1)
    _, h_n = stacked_rnn_forward(x, params, num_layers)
    return bottom, h_n


def _stacked_h_n_all_top(x, params, num_layers):
    outputs, _ = stacked_rnn_forward(x, params, num_layers)
    return outputs, np.stack([outputs[-1]] * num_layers)


def _stacked_one_bias(x, params, num_layers):
    without = {key: (0 * value if key.startswith("bias_hh") else value)
               for key, value in params.items()}
    return stacked_rnn_forward(x, without, num_layers)


register(
    Exercise(
        id="stacked_rnn_forward",
        title="A stacked RNN",
        reference=stacked_rnn_forward,
        make_cases=_stacked_cases,
        outputs=(Output("outputs", "(T, B, H)"), Output("h_n", "(num_layers, B, H)")),
        mutants=(
            Mutant("starts_from_below", _stacked_starts_from_below,
                   "layer l started from the last state of layer l - 1. Depth is not time: "
                   "every layer has its own initial state h_0 = 0, and what passes up the stack "
                   "is the whole output sequence, one h_t per step."),
            Mutant("h_n_top_first", _stacked_h_n_top_first,
                   "h_n is upside down: like torch, h_n[0] is the bottom layer's last state and "
                   "h_n[-1] the top layer's."),
            Mutant("bottom_outputs", _stacked_bottom_outputs,
                   "outputs holds the bottom layer's sequence; return the top layer's, which "
                   "read the outputs of the layer below it (eq. 8.1)."),
            Mutant("h_n_all_top", _stacked_h_n_all_top,
                   "every row of h_n is the top layer's last output. h_n[l] is layer l's own "
                   "last state: keep the final h of each layer as you go up."),
            Mutant("one_bias", _stacked_one_bias,
                   "bias_hh_l* is missing: like torch, each layer adds both of its biases, "
                   "bias_ih_l{l} and bias_hh_l{l}."),
        ),
        hints=(
            "Run chapter 1's RNN loop once per layer. Layer 0 reads x; layer l reads the whole "
            "output sequence of layer l - 1. The weights of layer l are the keys ending in "
            "_l{l}.",
            "Keep a variable layer_input = x. For each layer: h = zeros((B, H)), loop over t "
            "computing h = tanh(layer_input[t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh), collect "
            "the h's, then set layer_input = np.stack(collected) and remember the last h.",
            "Return layer_input (after the last layer) and np.stack of the last h of every "
            "layer, bottom first: shape (num_layers, B, H), as torch's h_n.",
        ),
        equation="eq. (8.1) in chapter 8",
        what="outputs and h_n equal a torch-layout stacked tanh RNN to 1e-7 for 2 and 3 layers "
             "and T, B, D, H all different",
        lesson=_LESSON,
    )
)


# --------------------------------------------------------------------------- mutants: h_n


def _final_padded_last(outputs, lengths):
    H = outputs.shape[2] // 2
    return np.stack([outputs[-1, :, :H], outputs[0, :, H:]])


def _final_reverse_at_end(outputs, lengths):
    H = outputs.shape[2] // 2
    batch = np.arange(outputs.shape[1])
    return np.stack([outputs[lengths - 1, batch, :H], outputs[lengths - 1, batch, H:]])


def _final_halves_swapped(outputs, lengths):
    H = outputs.shape[2] // 2
    batch = np.arange(outputs.shape[1])
    return np.stack([outputs[lengths - 1, batch, H:], outputs[0, :, :H]])


def _final_last_row(outputs, lengths):
    H = outputs.shape[2] // 2
    return np.stack([outputs[-1, :, :H], outputs[-1, :, H:]])


def _final_assumes_sorted(outputs, lengths):
    H = outputs.shape[2] // 2
    batch = np.arange(outputs.shape[1])
    return np.stack([outputs[np.sort(lengths)[::-1] - 1, batch, :H], outputs[0, :, H:]])


register(
    Exercise(
        id="final_states",
        title="The final states of a bidirectional layer",
        reference=final_states,
        make_cases=_final_state_cases,
        outputs=(Output("h_n", "(2, B, H)"),),
        mutants=(
            Mutant("padded_last", _final_padded_last,
                   "the forward half of h_n comes from outputs[-1], the last *padded* step: for "
                   "every sequence shorter than T that row is zero padding. Take step "
                   "lengths[b] - 1 of each sequence b."),
            Mutant("reverse_at_end", _final_reverse_at_end,
                   "the reverse direction reads the sequence from its end to its start, so it "
                   "*finishes* at t = 0: its final state is outputs[0, :, H:], not the reverse "
                   "half at the last valid step (that is the first state it computed)."),
            Mutant("halves_swapped", _final_halves_swapped,
                   "the two halves are swapped: torch puts the forward direction first, "
                   "outputs[..., :H], and the reverse direction second, outputs[..., H:]."),
            Mutant("last_row", _final_last_row,
                   "you read both halves from outputs[-1]. That is wrong twice: the forward "
                   "half must be taken at each sequence's own last valid step, and the reverse "
                   "half finishes at t = 0."),
            Mutant("assumes_sorted", _final_assumes_sorted,
                   "you matched the lengths to the sequences as if the batch were sorted by "
                   "length; it is not (as with enforce_sorted=False). Sequence b's last valid "
                   "step is lengths[b] - 1."),
        ),
        hints=(
            "Split the last axis: outputs[..., :H] is the forward direction, outputs[..., H:] "
            "the reverse one. Then ask, for each direction, at which step it reads its last "
            "input.",
            "The forward direction of sequence b finishes at step lengths[b] - 1 (later rows "
            "are padding); the reverse direction starts there and finishes at step 0.",
            "batch = np.arange(B); forward = outputs[lengths - 1, batch, :H]; reverse = "
            "outputs[0, :, H:]; return np.stack([forward, reverse]).",
        ),
        equation="eqs. (8.4)-(8.5) in chapter 8",
        what="h_n equals torch's h_n of a bidirectional layer over an unsorted padded batch",
        lesson=_LESSON,
    )
)


# --------------------------------------------------------------------------- mutants: loss


def _loss_plain_mean(step_losses, lengths):
    return step_losses.mean()


def _loss_divides_by_everything(step_losses, lengths):
    mask = np.arange(step_losses.shape[0])[:, None] < lengths[None, :]
    return (step_losses * mask).sum() / step_losses.size


def _loss_mean_of_means(step_losses, lengths):
    mask = np.arange(step_losses.shape[0])[:, None] < lengths[None, :]
    return ((step_losses * mask).sum(axis=0) / lengths).mean()


def _loss_one_step_too_many(step_losses, lengths):
    mask = np.arange(step_losses.shape[0])[:, None] <= lengths[None, :]
    return (step_losses * mask).sum() / mask.sum()


def _loss_sum(step_losses, lengths):
    mask = np.arange(step_losses.shape[0])[:, None] < lengths[None, :]
    return (step_losses * mask).sum()


register(
    Exercise(
        id="masked_mean_loss",
        title="A loss masked to the valid steps",
        reference=masked_mean_loss,
        make_cases=_masked_loss_cases,
        outputs=(Output("loss", "() (a scalar)"),),
        mutants=(
            Mutant("plain_mean", _loss_plain_mean,
                   "you averaged over every step, padding included: the model is then trained "
                   "to predict the padding. Multiply by the mask of valid steps first."),
            Mutant("divides_by_everything", _loss_divides_by_everything,
                   "the padded steps are masked out of the sum but still counted in the "
                   "denominator: divide by the number of valid steps, mask.sum(), not T * B."),
            Mutant("mean_of_means", _loss_mean_of_means,
                   "you averaged each sequence first, then the sequences: a step of a short "
                   "sequence then weighs more than a step of a long one. Eq. (8.7) weighs "
                   "every valid step the same: one sum over the batch, divided by mask.sum()."),
            Mutant("one_step_too_many", _loss_one_step_too_many,
                   "your mask keeps one padded step per short sequence: steps t = 0 .. "
                   "lengths[b] - 1 are valid, so the test is t < lengths[b], not <=."),
            Mutant("sum", _loss_sum,
                   "you returned the masked sum; eq. (8.7) divides it by the number of valid "
                   "steps, so that the loss does not grow with the batch."),
        ),
        hints=(
            "Build a (T, B) mask that is 1 at valid steps and 0 at padded ones, from "
            "np.arange(T) and lengths with broadcasting.",
            "mask = np.arange(T)[:, None] < lengths[None, :]; then sum step_losses * mask and "
            "divide by the number of valid steps.",
            "return (step_losses * mask).sum() / mask.sum()",
        ),
        equation="eq. (8.7) in chapter 8",
        what="equals the mean over the valid steps of unsorted, unequal sequences",
        lesson=_LESSON,
    )
)


# --------------------------------------------------------------------------- mutants: windows


def _cut(streams, window):
    K = (streams.shape[0] - 1) // window
    inputs = np.stack([streams[k * window:(k + 1) * window] for k in range(K)])
    targets = np.stack([streams[k * window + 1:(k + 1) * window + 1] for k in range(K)])
    return inputs, targets


def _windows_interleaved(ids, batch_size, window):
    n = len(ids) // batch_size
    return _cut(ids[:batch_size * n].reshape(n, batch_size), window)


def _windows_not_shifted(ids, batch_size, window):
    inputs, _ = stateful_windows(ids, batch_size, window)
    return inputs, inputs.copy()


def _windows_rolled(ids, batch_size, window):
    inputs, _ = stateful_windows(ids, batch_size, window)
    return inputs, np.roll(inputs, -1, axis=1)


def _windows_keeps_end(ids, batch_size, window):
    n = len(ids) // batch_size
    return _cut(ids[len(ids) - batch_size * n:].reshape(batch_size, n).T, window)


register(
    Exercise(
        id="stateful_windows",
        title="Windows for stateful truncated BPTT",
        reference=stateful_windows,
        make_cases=_window_cases,
        outputs=(Output("inputs", "(K, window, batch_size)", integer=True),
                 Output("targets", "(K, window, batch_size)", integer=True)),
        mutants=(
            Mutant("interleaved", _windows_interleaved,
                   "ids.reshape(n, batch_size) deals the ids out like cards: column b gets "
                   "ids b, b + B, b + 2B, ..., which is not a piece of text. Reshape to "
                   "(batch_size, n), so that each row is a contiguous stream, then transpose."),
            Mutant("not_shifted", _windows_not_shifted,
                   "targets equal inputs: the model would learn to copy its input. The target "
                   "at each step is the *next* id of the same stream."),
            Mutant("rolled_within_window", _windows_rolled,
                   "the last target of each window wraps round to the window's first input. "
                   "The target after the window's last step is the stream's next id, the "
                   "first input of the next window: slice streams[k*W + 1:(k+1)*W + 1]."),
            Mutant("keeps_end", _windows_keeps_end,
                   "you dropped the leftover ids at the start of the stream; drop them at the "
                   "end: stream b is ids[b*n:(b+1)*n] with n = len(ids) // batch_size."),
        ),
        hints=(
            "First make batch_size streams, each a contiguous piece of ids, side by side as the "
            "columns of an (n, batch_size) array; then cut that array along time into windows.",
            "streams = ids[:B * n].reshape(B, n).T with n = len(ids) // B. Window k is "
            "streams[k*W:(k+1)*W]; its targets are the same rows shifted one step: "
            "streams[k*W + 1:(k+1)*W + 1].",
            "K = (n - 1) // window (the last target must exist); np.stack the K input windows "
            "and the K target windows.",
        ),
        equation="eq. (8.10) in chapter 8",
        what="inputs and targets are consecutive windows of contiguous streams, targets one "
             "step ahead",
        lesson=_LESSON,
    )
)
