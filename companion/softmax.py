"""From a model's scores over a vocabulary to numbers and choices (NumPy only): the
perplexity of next-token predictions and sampling with a temperature.

These are the reference solutions of chapter 7's two exercises, and what
:mod:`companion.charlm` uses to judge and to sample its language model.
"""

from __future__ import annotations

import numpy as np


def perplexity(logits, targets):
    """Perplexity of next-character predictions: exp of the mean negative log-likelihood.

    Args:
        logits: ``(N, V)`` unnormalised scores, one row per predicted character.
        targets: ``(N,)`` integer ids of the characters that actually came next.

    Returns:
        ``exp(-(1/N) * sum_n log softmax(logits[n])[targets[n]])``, a float >= 1. The
        log-softmax is computed as ``z - max(z) - log(sum(exp(z - max(z))))``, which never
        overflows.
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    nll = -log_probs[np.arange(len(targets)), targets]  # nats, one per character
    return np.exp(nll.mean())


def sample_with_temperature(logits, temperature, u):
    """Draw one character per row from ``softmax(logits / temperature)``.

    Args:
        logits: ``(B, V)`` unnormalised scores.
        temperature: ``T > 0``; below 1 sharpens the distribution, above 1 flattens it.
        u: ``(B,)`` numbers drawn uniformly from [0, 1), e.g. ``rng.random(B)``. Row ``b``
            picks the first character whose cumulative probability exceeds ``u[b]``
            (inverse transform sampling, which is what ``rng.choice(V, p=probs[b])`` does).

    Returns:
        ``probs`` ``(B, V)``, each row summing to 1, and ``samples`` ``(B,)`` integer ids.
    """
    scaled = logits / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)  # exp(<= 0): no overflow
    probs = np.exp(scaled)
    probs = probs / probs.sum(axis=1, keepdims=True)
    cdf = np.cumsum(probs, axis=1)
    samples = (cdf <= u[:, None]).sum(axis=1)  # how many characters end at or below u
    samples = np.minimum(samples, probs.shape[1] - 1)  # in case rounding left cdf[-1] < u
    return probs, samples
