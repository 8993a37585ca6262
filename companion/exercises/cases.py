"""Random inputs shared by the exercise checks of several chapters."""

import numpy as np

from companion import lstm


def distinct_sizes(rng: np.random.Generator, count: int) -> list[int]:
    """``count`` different sizes between 2 and 7, so a swapped axis cannot pass by accident."""
    return [int(n) for n in rng.choice(np.arange(2, 8), size=count, replace=False)]


def batch_size(case_index: int, size: int) -> int:
    """``size``, except 1 in the third case (``case_index == 2``): the lessons call these
    functions on a single sequence too, and a learner's ``.squeeze()`` that drops the batch
    axis passes every check with two or more sequences."""
    return 1 if case_index == 2 else size


def random_params(rng: np.random.Generator, D: int, H: int, *, gates: int = 1,
                  scale: float = 0.5, peephole: bool = False) -> dict:
    """Parameters in PyTorch's layout (``gates`` stacked blocks: 1 RNN, 3 GRU, 4 LSTM), large
    enough that no activation is linear nor saturated; ``peephole`` adds the LSTM's
    peephole weights."""
    params = {
        "weight_ih": scale * rng.standard_normal((gates * H, D)),
        "weight_hh": scale * rng.standard_normal((gates * H, H)),
        "bias_ih": scale * rng.standard_normal(gates * H),
        "bias_hh": scale * rng.standard_normal(gates * H),
    }
    if peephole:
        for key in lstm.PEEPHOLE_KEYS:
            params[key] = rng.standard_normal(H)
    return params
