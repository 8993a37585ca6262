"""Exercises of chapter 7 (the character-level language model project): the perplexity of
next-character predictions, and sampling with a temperature.

The references are :func:`companion.softmax.perplexity` and
:func:`companion.softmax.sample_with_temperature`, the functions the project uses; the book
shows them as the solutions.
"""

import numpy as np

from companion.exercises.core import Exercise, Mutant, Output, register
from companion.softmax import perplexity, sample_with_temperature

_LESSON = "lessons/07_project.ipynb"


# --------------------------------------------------------------------------- perplexity


def _log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _nll(logits, targets):
    return -_log_softmax(logits)[np.arange(len(targets)), targets]


def _perplexity_cases(rng):
    """Moderate logits, then logits shifted by a large constant (the softmax does not change;
    a naive exp overflows)."""
    cases = []
    for N, V, offset in [(int(rng.integers(8, 13)), int(rng.integers(3, 8)), 0.0),  # N != V
                         (13, 9, 750.0)]:
        logits = 2.0 * rng.standard_normal((N, V)) + offset
        cases.append({"logits": logits, "targets": rng.integers(0, V, size=N)})
    return cases


def _perplexity_naive(logits, targets):
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return np.exp(-np.log(probs[np.arange(len(targets)), targets]).mean())


register(
    Exercise(
        id="perplexity",
        title="Perplexity of next-character predictions",
        reference=perplexity,
        make_cases=_perplexity_cases,
        outputs=(Output("ppl", "() (a scalar)"),),
        mutants=(
            Mutant(
                "exp_of_sum",
                lambda logits, targets: np.exp(_nll(logits, targets).sum()),
                "you exponentiated the total loss. Perplexity is exp of the MEAN negative "
                "log-likelihood per character, so that it does not grow with the text's length.",
            ),
            Mutant(
                "base_two",
                lambda logits, targets: 2.0 ** _nll(logits, targets).mean(),
                "the log-probabilities are natural logarithms (nats), so the perplexity is "
                "exp(mean), not 2 ** mean. (2 ** mean is right only for a loss in bits.)",
            ),
            Mutant(
                "sign_forgotten",
                lambda logits, targets: np.exp(-_nll(logits, targets).mean()),
                "your perplexity is below 1: you forgot to negate. Log-probabilities are "
                "<= 0; the loss is minus their mean, and perplexity = exp(loss) >= 1.",
            ),
            Mutant(
                "mean_of_exponentials",
                lambda logits, targets: np.exp(_nll(logits, targets)).mean(),
                "you averaged exp(loss) over the characters. Average the losses first, then "
                "exponentiate: exp(mean(nll)), which is smaller (Jensen's inequality).",
            ),
            Mutant(
                "wrong_indexing",
                lambda logits, targets: np.exp(-_log_softmax(logits)[:, targets].mean()),
                "log_probs[:, targets] takes every row's entries at all N targets, an (N, N) "
                "array. Pick one entry per row: log_probs[np.arange(N), targets].",
            ),
            Mutant(
                "overflowing_softmax",
                _perplexity_naive,
                "np.exp(logits) overflows when the logits are large (here they are shifted by "
                "750, which does not change the softmax). Subtract each row's maximum first.",
            ),
        ),
        hints=(
            "Turn each row of logits into log-probabilities with a log-softmax, pick the "
            "log-probability of the true next character, average, negate, exponentiate.",
            "shifted = logits - logits.max(axis=1, keepdims=True); log_probs = shifted - "
            "np.log(np.exp(shifted).sum(axis=1, keepdims=True)); nll = "
            "-log_probs[np.arange(N), targets]; return np.exp(nll.mean()).",
        ),
        equation="eq. (7.2)-(7.3), chapter 7",
        what="equals exp(mean negative log-likelihood), also for logits shifted by 750",
        lesson=_LESSON,
        forbid_silencing=True,
    )
)


# --------------------------------------------------------------------------- temperature


def _sampling_cases(rng):
    cases = []
    # 400 / 0.5: a naive exp overflows; 750 / 0.5 - 750: so does one shifted by the maximum
    # of the unscaled logits. B = 1: one sequence, as generate() calls it.
    for B, V, T, offset in [(12, int(rng.integers(4, 8)), 0.5, 0.0), (16, 9, 2.0, 0.0),
                            (10, 5, 0.5, 400.0), (1, 6, 0.5, 750.0)]:
        cases.append({"logits": 1.5 * rng.standard_normal((B, V)) + offset, "temperature": T,
                      "u": rng.random(B)})
    # u on a boundary: u = 0, and a first character of probability 0 (exp(-1000) underflows),
    # which the first character whose cumulative probability *exceeds* u never is
    cases.append({"logits": np.array([[-1000.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), "temperature": 1.0,
                  "u": np.array([0.0, 0.5])})
    return cases


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _inverse_cdf(probs, u):
    return np.minimum((np.cumsum(probs, axis=1) <= u[:, None]).sum(axis=1), probs.shape[1] - 1)


def _sample_overflowing(logits, temperature, u):
    e = np.exp(logits / temperature)
    probs = e / e.sum(axis=1, keepdims=True)
    return probs, _inverse_cdf(probs, u)


def _sample_unscaled_maximum(logits, temperature, u):
    e = np.exp(logits / temperature - logits.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    return probs, _inverse_cdf(probs, u)


def _sample_multiplied(logits, temperature, u):
    probs = _softmax(logits * temperature)
    return probs, _inverse_cdf(probs, u)


def _sample_ignored(logits, temperature, u):
    probs = _softmax(logits)
    return probs, _inverse_cdf(probs, u)


def _sample_greedy(logits, temperature, u):
    probs = _softmax(logits / temperature)
    return probs, probs.argmax(axis=1)


def _sample_not_cumulative(logits, temperature, u):
    probs = _softmax(logits / temperature)
    return probs, (probs > u[:, None]).argmax(axis=1)


def _sample_reaching_u(logits, temperature, u):
    probs = _softmax(logits / temperature)
    return probs, (np.cumsum(probs, axis=1) < u[:, None]).sum(axis=1)


def _sample_counted_above(logits, temperature, u):
    probs = _softmax(logits / temperature)
    return probs, (np.cumsum(probs, axis=1) > u[:, None]).sum(axis=1)


register(
    Exercise(
        id="sample_with_temperature",
        title="Sampling with a temperature",
        reference=sample_with_temperature,
        make_cases=_sampling_cases,
        outputs=(Output("probs", "(B, V)"), Output("samples", "(B,)", integer=True)),
        mutants=(
            Mutant(
                "multiplied_by_temperature",
                _sample_multiplied,
                "you multiplied the logits by the temperature; divide them: "
                "softmax(logits / T). A low temperature must sharpen the distribution.",
            ),
            Mutant(
                "temperature_ignored",
                _sample_ignored,
                "your probabilities do not depend on the temperature: apply "
                "softmax to logits / temperature.",
            ),
            Mutant(
                "greedy",
                _sample_greedy,
                "the probabilities are right but you always took the most likely character "
                "(argmax), whatever u says. Use u: the first character whose cumulative "
                "probability exceeds u[b].",
            ),
            Mutant(
                "not_cumulative",
                _sample_not_cumulative,
                "you compared u with the probabilities themselves. Compare it with their "
                "running sum, np.cumsum(probs, axis=1): character k is drawn when "
                "cdf[k-1] <= u < cdf[k].",
            ),
            Mutant(
                "counted_above",
                _sample_counted_above,
                "(cdf > u).sum() counts the characters from the chosen one to the end. Count "
                "those whose cumulative probability is at most u: (cdf <= u[:, None]).sum(axis=1).",
            ),
            Mutant(
                "reaching_u",
                _sample_reaching_u,
                "right except on a boundary: with u = 0 and a first character of probability "
                "0 you drew that character. Take the first whose cumulative probability "
                "exceeds u, i.e. count those whose cumulative probability is at most u: "
                "(cdf <= u[:, None]).sum(axis=1), as rng.choice does.",
            ),
            Mutant(
                "overflowing_softmax",
                _sample_overflowing,
                "np.exp(logits / T) overflows for large logits (here 400 / 0.5 = 800; "
                "float64 overflows above about 709). Subtract each row's maximum before "
                "exponentiating: the softmax does not change.",
            ),
            Mutant(
                "maximum_of_unscaled_logits",
                _sample_unscaled_maximum,
                "you subtracted the row maximum of the logits, but exponentiated logits / T: "
                "with T < 1 the scaled logits exceed the maximum you removed, and exp still "
                "overflows (here 750 / 0.5 - 750 = 750). Subtract the maximum of logits / T.",
            ),
        ),
        hints=(
            "Divide the logits by the temperature and take a softmax of each row (subtract "
            "the row's maximum before np.exp). Then split [0, 1) into V intervals whose "
            "lengths are the probabilities: u[b] falls into the interval of the sample.",
            "cdf = np.cumsum(probs, axis=1); samples = (cdf <= u[:, None]).sum(axis=1), "
            "capped at V - 1 in case rounding leaves cdf[:, -1] a hair below 1.",
        ),
        equation="eq. (7.4), chapter 7",
        what="probabilities equal softmax(logits / T); samples are the inverse-CDF draws of u",
        lesson=_LESSON,
        forbid_silencing=True,
    )
)
