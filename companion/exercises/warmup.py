"""Exercises of the warm-up lesson: stable sigmoid, and the derivatives of sigmoid and tanh.

The reference solutions are the companion's own functions in :mod:`companion.activations`
(the code every cell uses), so the solution the book shows is the code that is tested.
"""

import numpy as np

from companion import activations
from companion.exercises.core import Exercise, Mutant, Output, register

_LESSON = "lessons/00_warmup.ipynb"
_EXTREMES = np.array([-1000.0, -750.0, -50.0, -1.0, 0.0, 1.0, 50.0, 750.0, 1000.0])


def _z_cases(rng: np.random.Generator) -> list[dict]:
    """Random pre-activations of a random shape, then the extremes that overflow ``exp``."""
    shape = tuple(int(n) for n in rng.choice(np.arange(2, 8), size=2, replace=False))
    return [
        {"z": 3.0 * rng.standard_normal(shape)},
        {"z": rng.permutation(_EXTREMES).reshape(3, 3)},
    ]


def _naive_sigmoid(z):
    return 1 / (1 + np.exp(-z))


register(
    Exercise(
        id="sigmoid",
        title="Numerically stable sigmoid",
        reference=activations.sigmoid,
        make_cases=_z_cases,
        outputs=(Output("s", "same shape as z"),),
        mutants=(
            Mutant(
                "overflowing_exp",
                _naive_sigmoid,
                "the values are right but exp(-z) overflows for z = -1000. Only ever "
                "exponentiate -|z| (which is <= 0), with one formula for z >= 0 and another "
                "for z < 0. Careful: np.where evaluates both branches on every element.",
            ),
            Mutant("tanh_instead", np.tanh, "that is tanh, which ranges over (-1, 1); "
                   "the sigmoid ranges over (0, 1) and sigma(0) = 0.5."),
            Mutant(
                "wrong_sign",
                lambda z: activations.sigmoid(-z),
                "you computed sigma(-z) = 1 / (1 + exp(z)): check the sign of the exponent. "
                "The sigmoid increases with z.",
            ),
            Mutant(
                "tanh_without_half",
                lambda z: (1 + np.tanh(z)) / 2,
                "(1 + tanh(x)) / 2 is a valid stable formula, but with x = z / 2: "
                "sigma(z) = (1 + tanh(z / 2)) / 2.",
            ),
            Mutant(
                "nan_for_large_z",
                lambda z: np.exp(z) / (1 + np.exp(z)),
                "exp(z) / (1 + exp(z)) is inf / inf = nan for large positive z; use it only "
                "where z < 0.",
            ),
        ),
        hints=(
            "Start from the definition sigma(z) = 1 / (1 + exp(-z)) and ask where exp "
            "overflows (float64: arguments above about 709).",
            "For z < 0, multiply numerator and denominator by exp(z): "
            "sigma(z) = exp(z) / (1 + exp(z)). Now both formulas only need exp(-|z|).",
            "Compute e = np.exp(-np.abs(z)) once, then "
            "np.where(z >= 0, 1 / (1 + e), e / (1 + e)).",
        ),
        equation="eq. (W.1)-(W.2) in the warm-up lesson",
        what="values equal sigma(z) to 1e-7, also at z = ±1000 with no overflow warning",
        lesson=_LESSON,
        forbid_silencing=True,
    )
)

register(
    Exercise(
        id="sigmoid_prime",
        title="Derivative of the sigmoid",
        reference=activations.sigmoid_prime,
        make_cases=_z_cases,
        outputs=(Output("ds_dz", "same shape as z"),),
        mutants=(
            Mutant("sigmoid_itself", activations.sigmoid,
                   "you returned sigma(z) itself; the derivative is sigma(z) * (1 - sigma(z))."),
            Mutant(
                "applied_to_preactivation",
                lambda z: z * (1 - z),
                "the formula s * (1 - s) takes s = sigma(z), the activation, not the "
                "pre-activation z: compute s = sigmoid(z) first.",
            ),
            Mutant(
                "tanh_rule",
                lambda z: 1 - activations.sigmoid(z) ** 2,
                "1 - s**2 is the derivative rule of tanh; the sigmoid's is s * (1 - s).",
            ),
            Mutant(
                "quotient_rule_overflow",
                lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2,
                "exp(-z) / (1 + exp(-z))**2 is right on paper but gives inf / inf = nan for "
                "z = -1000; write it in terms of the stable sigmoid: s * (1 - s).",
            ),
        ),
        hints=(
            "Differentiate 1 / (1 + exp(-z)) with the chain rule, then write the result "
            "in terms of sigma(z) itself.",
            "sigma'(z) = sigma(z) * (1 - sigma(z)); reuse the stable sigmoid.",
        ),
        equation="eq. (W.3) in the warm-up lesson",
        what="values equal sigma(z)(1 - sigma(z)) to 1e-7, also at z = ±1000",
        lesson=_LESSON,
        forbid_silencing=True,
    )
)

register(
    Exercise(
        id="tanh_prime",
        title="Derivative of tanh",
        reference=activations.tanh_prime,
        make_cases=_z_cases,
        outputs=(Output("dt_dz", "same shape as z"),),
        mutants=(
            Mutant(
                "applied_to_preactivation",
                lambda z: 1 - z**2,
                "1 - t**2 takes t = tanh(z), the activation, not the pre-activation z.",
            ),
            Mutant("missing_square", lambda z: 1 - np.tanh(z),
                   "the derivative is 1 - tanh(z)**2: the tanh is squared."),
            Mutant("missing_one_minus", lambda z: np.tanh(z) ** 2,
                   "you returned tanh(z)**2; the derivative is 1 minus that."),
            Mutant(
                "sigmoid_rule",
                lambda z: np.tanh(z) * (1 - np.tanh(z)),
                "t * (1 - t) is the sigmoid's rule; for tanh it is 1 - t**2.",
            ),
            Mutant(
                "sech_overflow",
                lambda z: 1 / np.cosh(z) ** 2,
                "1 / cosh(z)**2 is right on paper but cosh(1000) overflows; use "
                "1 - np.tanh(z)**2, which stays finite.",
            ),
        ),
        hints=(
            "Write tanh(z) = sinh(z) / cosh(z) and use the quotient rule, then express the "
            "result with tanh(z) itself.",
            "tanh'(z) = 1 - tanh(z)**2.",
        ),
        equation="eq. (W.4) in the warm-up lesson",
        what="values equal 1 - tanh(z)^2 to 1e-7, also at z = ±1000",
        lesson=_LESSON,
        forbid_silencing=True,
    )
)
