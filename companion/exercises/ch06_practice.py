"""Exercises of chapter 6 (LSTM vs GRU in practice): count the parameters of a recurrent
layer, assemble a batch of the adding problem, and initialise an LSTM's forget-gate bias.

The references are the functions the chapter's experiments run:
:func:`companion.sizing.param_count`, :func:`companion.tasks.adding_problem` and
:func:`companion.sizing.forget_gate_bias`; the book shows them as the solutions.
"""

import numpy as np

from companion.cells import CELLS
from companion.exercises.core import Exercise, Mutant, Output, register
from companion.sizing import forget_gate_bias, param_count
from companion.tasks import adding_problem

GATES = {kind: CELLS[kind].gate_count for kind in ("rnn", "gru", "lstm")}  # the exercise's cells

_LESSON = "lessons/06_lstm_vs_gru.ipynb"


# --------------------------------------------------------------------------- param_count


def _count(gates, input_size, hidden_size, *, ih=True, hh=True, biases=2, square_input=False):
    H = np.asarray(hidden_size)
    weight_ih = (input_size * input_size if square_input else H * input_size) if ih else 0
    return gates * (weight_ih + (H * H if hh else 0) + biases * H)


_SWAPPED = {"rnn": 1, "lstm": 3, "gru": 4}


def _param_count_cases(rng):
    """One case per cell, in random order; D differs from every H, H >= 2. The last case
    gives one plain int for hidden_size, as the lesson's next cell does."""
    cases = []
    for k, cell in enumerate(rng.permutation(sorted(GATES))):
        D = int(rng.integers(2, 20))
        sizes = rng.choice(np.setdiff1d(np.arange(2, 65), [D]), size=4, replace=False)
        hidden_size = int(sizes[0]) if k == 2 else np.sort(sizes)
        cases.append({"cell": str(cell), "input_size": D, "hidden_size": hidden_size})
    return cases


register(
    Exercise(
        id="param_count",
        title="Parameters of an RNN, GRU or LSTM layer",
        reference=param_count,
        make_cases=_param_count_cases,
        outputs=(Output("n_params", "shape of hidden_size", integer=True),),
        mutants=(
            Mutant(
                "one_bias",
                lambda cell, D, H: _count(GATES[cell], D, H, biases=1),
                "you counted one bias vector per gate. PyTorch keeps two, bias_ih and "
                "bias_hh (their sum is what the gate sees), so biases add 2H per gate.",
            ),
            Mutant(
                "gates_swapped",
                lambda cell, D, H: _count(_SWAPPED[cell], D, H),
                "the number of weight sets is swapped: an LSTM has 4 (input, forget, cell "
                "candidate, output) and a GRU 3 (reset, update, candidate).",
            ),
            Mutant(
                "one_weight_set",
                lambda cell, D, H: _count(1, D, H),
                "you counted one weight set, as for a plain RNN. Each gate has its own "
                "W_ih, W_hh and biases: multiply by G = 3 for a GRU, 4 for an LSTM.",
            ),
            Mutant(
                "input_weights_square",
                lambda cell, D, H: _count(GATES[cell], D, H, square_input=True),
                "the input-to-hidden matrix maps D inputs to H units: it has H * D entries "
                "per gate, not D * D.",
            ),
            Mutant(
                "no_recurrent_matrix",
                lambda cell, D, H: _count(GATES[cell], D, H, hh=False),
                "you forgot the recurrent matrix W_hh, H * H entries per gate: it is what "
                "makes the layer recurrent.",
            ),
        ),
        hints=(
            "Look at the shapes of weight_ih_l0, weight_hh_l0, bias_ih_l0 and bias_hh_l0 of "
            "torch.nn.LSTM(D, H): each stacks G gates.",
            "n = G * (H * D + H * H + 2 * H) with G = 1 (RNN), 3 (GRU), 4 (LSTM). "
            "Use np.asarray(hidden_size) so that it works for an array of sizes.",
        ),
        equation="eq. (6.1), chapter 6",
        what="counts equal sum(p.numel()) of torch.nn.RNN/GRU/LSTM for every size",
        lesson=_LESSON,
    )
)


# --------------------------------------------------------------------------- adding_problem


def _adding_cases(rng):
    """Batches drawn as companion.tasks.adding_task draws them; B < T, sizes distinct."""
    cases = []
    for T, B in [(int(rng.integers(8, 16)), int(rng.integers(3, 7))), (21, 5)]:
        values = rng.random((T, B))
        first = rng.integers(0, T // 2, size=B)
        second = rng.integers(T // 2, T, size=B)
        cases.append({"values": values, "positions": np.stack([first, second])})
    return cases


def _markers(values, positions):
    markers = np.zeros(values.shape)
    columns = np.arange(values.shape[1])
    markers[positions[0], columns] = 1.0
    markers[positions[1], columns] = 1.0
    return markers


def _adding_row_markers(values, positions):
    markers = np.zeros(values.shape)
    markers[positions[0]] = 1.0  # marks the whole row: every sequence of the batch
    markers[positions[1]] = 1.0
    return np.stack([values, markers], axis=-1), (values * markers).sum(axis=0)


def _adding_swapped_channels(values, positions):
    inputs, targets = adding_problem(values, positions)
    return inputs[..., ::-1].copy(), targets


def _adding_mean(values, positions):
    inputs, targets = adding_problem(values, positions)
    return inputs, targets / 2


def _adding_hidden_distractors(values, positions):
    markers = _markers(values, positions)
    inputs = np.stack([values * markers, markers], axis=-1)
    return inputs, (values * markers).sum(axis=0)


def _adding_one_marker(values, positions):
    markers = np.zeros(values.shape)
    markers[positions[0], np.arange(values.shape[1])] = 1.0
    inputs, targets = adding_problem(values, positions)
    return np.stack([values, markers], axis=-1), targets


register(
    Exercise(
        id="adding_problem",
        title="A batch of the adding problem",
        reference=adding_problem,
        make_cases=_adding_cases,
        outputs=(Output("inputs", "(T, B, 2)"), Output("targets", "(B,)")),
        mutants=(
            Mutant(
                "whole_row_marked",
                _adding_row_markers,
                "markers[positions[0]] = 1 sets a whole row: that step is marked in every "
                "sequence of the batch. Pair each step with its own sequence: "
                "markers[positions[0], np.arange(B)] = 1.",
            ),
            Mutant(
                "channels_swapped",
                _adding_swapped_channels,
                "the channels are swapped: channel 0 holds the values and channel 1 the "
                "markers, inputs[..., 0] and inputs[..., 1].",
            ),
            Mutant(
                "mean_not_sum",
                _adding_mean,
                "the target is the sum of the two marked values, not their mean (it lies "
                "between 0 and 2).",
            ),
            Mutant(
                "distractors_hidden",
                _adding_hidden_distractors,
                "channel 0 must show every value, the unmarked ones too. If only the marked "
                "values are visible the network can just add up channel 0 and the task "
                "tests no memory at all.",
            ),
            Mutant(
                "second_marker_missing",
                _adding_one_marker,
                "only the first position is marked: channel 1 needs a 1 at both "
                "positions[0] and positions[1] of each sequence.",
            ),
        ),
        hints=(
            "Build a (T, B) array of zeros for the markers, put a 1 at the two marked steps "
            "of each sequence, then stack values and markers along a new last axis.",
            "With columns = np.arange(B): markers[positions[0], columns] = 1 (the same for "
            "positions[1]); targets = values[positions[0], columns] + "
            "values[positions[1], columns]; inputs = np.stack([values, markers], axis=-1).",
        ),
        equation="eq. (6.2), chapter 6",
        what="inputs and targets equal the reference batch, marker by marker",
        lesson=_LESSON,
    )
)


# --------------------------------------------------------------------------- forget_gate_bias


def _bias_cases(rng):
    cases = []
    for H, value in [(int(rng.integers(3, 9)), 1.0), (int(rng.integers(9, 14)), 2.0)]:
        bound = 1 / np.sqrt(H)  # PyTorch's default initialisation
        cases.append({
            "bias_ih": rng.uniform(-bound, bound, size=4 * H),
            "bias_hh": rng.uniform(-bound, bound, size=4 * H),
            "value": value,
        })
    return cases


def _set_rows(bias_ih, bias_hh, value, *, start, ih=True, hh=0.0):
    H = bias_ih.shape[0] // 4
    new_ih, new_hh = bias_ih.copy(), bias_hh.copy()
    if ih:
        new_ih[start * H:(start + 1) * H] = value
    if hh is not None:
        new_hh[start * H:(start + 1) * H] = hh
    return new_ih, new_hh


def _bias_sum_only(bias_ih, bias_hh, value):
    H = bias_ih.shape[0] // 4
    new_ih = bias_ih.copy()
    new_ih[H:2 * H] = value - bias_hh[H:2 * H]  # the total is value, bias_hh left random
    return new_ih, bias_hh.copy()


def _bias_added(bias_ih, bias_hh, value):
    H = bias_ih.shape[0] // 4
    new_ih = bias_ih.copy()
    new_ih[H:2 * H] += value
    return new_ih, bias_hh.copy()


register(
    Exercise(
        id="forget_gate_bias",
        title="Initialise an LSTM's forget-gate bias",
        reference=forget_gate_bias,
        make_cases=_bias_cases,
        outputs=(Output("new_bias_ih", "(4H,)"), Output("new_bias_hh", "(4H,)")),
        mutants=(
            Mutant(
                "input_gate_rows",
                lambda ih, hh, v: _set_rows(ih, hh, v, start=0),
                "rows 0:H belong to the input gate. PyTorch's order is i, f, g, o, so the "
                "forget gate owns rows H:2H.",
            ),
            Mutant(
                "third_block",
                lambda ih, hh, v: _set_rows(ih, hh, v, start=2),
                "rows 2H:3H are the cell candidate g in PyTorch's order i, f, g, o (the "
                "forget gate comes third in other layouts, such as ONNX's i, o, f, c). Use rows "
                "H:2H.",
            ),
            Mutant(
                "both_biases_set",
                lambda ih, hh, v: _set_rows(ih, hh, v, start=1, hh=v),
                "the gate adds bias_ih and bias_hh, so setting both to value gives the forget "
                "gate a total bias of 2 * value (f near sigma(2 value), not sigma(value)). Set "
                "bias_hh's forget rows to 0.",
            ),
            Mutant(
                "hh_left_random",
                lambda ih, hh, v: _set_rows(ih, hh, v, start=1, hh=None),
                "bias_hh's forget rows still hold their random initial values, so the total "
                "bias is value plus noise. Set them to 0.",
            ),
            Mutant(
                "sum_only",
                _bias_sum_only,
                "the total bias is value, but you left bias_hh's random forget rows and "
                "compensated in bias_ih. Set bias_ih's forget rows to value and bias_hh's to 0, "
                "as the exercise asks: then the result does not depend on the random bias_hh.",
            ),
            Mutant(
                "added_not_set",
                _bias_added,
                "you added value to the random initial bias. The forget gate's total bias "
                "should be exactly value (so that f starts near sigma(value)): set bias_ih's "
                "forget rows to value and bias_hh's to 0.",
            ),
        ),
        hints=(
            "PyTorch stacks the LSTM's gates as input, forget, cell candidate, output "
            "(i, f, g, o), H rows each; the gate's total bias is bias_ih + bias_hh.",
            "H = len(bias_ih) // 4; copy both arrays; new_ih[H:2*H] = value; "
            "new_hh[H:2*H] = 0.",
        ),
        equation="eq. (6.4), chapter 6",
        what="the forget rows of bias_ih are value, those of bias_hh 0, and every other "
             "entry is unchanged",
        lesson=_LESSON,
    )
)
