"""Chapter 7's character-level language model, on the torch side: train it, judge it, let it
write.

* :func:`train_charlm` -- random windows of the text, backpropagation through each window,
  gradient clipping and Adam (:func:`companion.training.train`), with the validation
  perplexity along the way;
* :func:`evaluate_perplexity` -- the perplexity of a model on a text;
* :func:`generate` -- text from a trained model, one character at a time;
* :func:`loss_by_class` -- the average loss on each kind of character (a space, the first
  letter of a word, a letter inside a word, punctuation...).

The model is :class:`companion.models.CharLM`; the corpus and its vocabulary are in
:mod:`companion.corpus`, perplexity and sampling in NumPy in :mod:`companion.softmax`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from companion.corpus import CHARACTER_CLASSES, CharVocabulary, character_class
from companion.models import CharLM
from companion.softmax import sample_with_temperature
from companion.training import History, train

__all__ = ["CharLM", "evaluate_perplexity", "generate", "loss_by_class", "train_charlm"]


def _consecutive_windows(ids: np.ndarray, seq_len: int) -> torch.Tensor:
    """``(seq_len + 1, n)`` token ids: the text cut into ``n`` windows that overlap by one
    character (each window's last character is the next one's first)."""
    n = (len(ids) - 1) // seq_len
    if n < 1:
        raise ValueError(f"need more than {seq_len} characters, got {len(ids)}")
    return torch.from_numpy(np.stack([ids[i * seq_len:(i + 1) * seq_len + 1]
                                      for i in range(n)], axis=1))


def _next_char_losses(model: CharLM, windows: torch.Tensor, reduction: str) -> torch.Tensor:
    """Cross-entropy (nats) of every character after the first of each window, each window
    read from a zero state: their mean (``reduction="mean"``) or all of them, ``(T, n)``
    (``"none"``)."""
    was_training = model.training
    model.eval()
    logits, _ = model(windows[:-1])
    model.train(was_training)
    nll = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                      windows[1:].reshape(-1), reduction=reduction)
    return nll if reduction == "mean" else nll.reshape(windows.shape[0] - 1, windows.shape[1])


@torch.no_grad()
def evaluate_perplexity(model: CharLM, ids: np.ndarray, seq_len: int = 128) -> float:
    """Perplexity of ``model`` on the character ids ``ids``: the text is cut into
    consecutive windows of ``seq_len + 1`` characters, each read from a zero state; every
    character after the first of its window is predicted."""
    windows = _consecutive_windows(ids, seq_len)
    return math.exp(float(_next_char_losses(model, windows, reduction="mean")))


def train_charlm(model: CharLM, train_ids: np.ndarray, val_ids: np.ndarray, *, steps: int,
                 seq_len: int = 64, batch_size: int = 32, lr: float = 3e-3,
                 clip_norm: float = 1.0, eval_every: int = 50, seed: int = 0,
                 progress: bool = True, desc: str = "training") -> History:
    """Train ``model`` to predict the next character.

    Each step takes ``batch_size`` windows of ``seq_len + 1`` characters at random positions
    of ``train_ids``, predicts characters 2 to ``seq_len + 1`` of each from the ones before
    (teacher forcing, from a zero state), backpropagates through the window, clips the
    global gradient norm to ``clip_norm`` and takes an Adam step.

    Returns:
        A :class:`companion.training.History`: ``val_perplexity`` at ``eval_steps`` (0, every
        ``eval_every`` steps, the last), ``eval_seconds`` (training time at those steps),
        ``train_perplexity()``, ``grad_norm`` and ``seconds``.
    """
    generator = np.random.default_rng(seed)
    offsets = np.arange(seq_len + 1)

    def next_batch(step):
        starts = generator.integers(0, len(train_ids) - seq_len - 1, size=batch_size)
        return torch.from_numpy(train_ids[starts[None, :] + offsets[:, None]])

    def loss_of(model, windows):
        logits, _ = model(windows[:-1])
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                           windows[1:].reshape(-1))

    return train(model, next_batch, loss_of, steps=steps, lr=lr, clip_norm=clip_norm,
                 evaluate=lambda model: evaluate_perplexity(model, val_ids),
                 eval_every=eval_every, progress=progress, desc=desc)


@torch.no_grad()
def generate(model: CharLM, vocab: CharVocabulary, prompt: str, n_chars: int, *,
             temperature: float, rng: np.random.Generator, sampler=sample_with_temperature) -> str:
    """``prompt`` followed by ``n_chars`` characters sampled one at a time.

    The prompt is read first; then each sampled character is fed back in, carrying the
    recurrent state. ``sampler(logits (1, V), temperature, u (1,)) -> (probs, samples)``
    picks each character from ``u = rng.random(1)``
    (:func:`companion.softmax.sample_with_temperature` unless you pass your own).
    """
    model.eval()
    tokens = torch.from_numpy(vocab.encode(prompt))[:, None]
    logits, state = model(tokens)
    out = []
    for _ in range(n_chars):
        _, sample = sampler(logits[-1].double().numpy(), temperature, rng.random(1))
        out.append(int(sample[0]))
        logits, state = model(torch.tensor([[out[-1]]]), state)
    return prompt + vocab.decode(out)


@torch.no_grad()
def loss_by_class(model: CharLM, vocab: CharVocabulary, text: str,
                  seq_len: int = 128) -> dict[str, tuple[float, int]]:
    """Mean loss (nats per character) of ``model`` on each class of character of ``text``
    (:data:`companion.corpus.CHARACTER_CLASSES`), predicted as in
    :func:`evaluate_perplexity`; returns ``{class: (mean loss, count)}``."""
    windows = _consecutive_windows(vocab.encode(text), seq_len)
    nll = _next_char_losses(model, windows, reduction="none").numpy()
    n = windows.shape[1]
    # position in text of the character predicted at (t, window w): w * seq_len + t + 1
    positions = np.arange(n)[None, :] * seq_len + np.arange(seq_len)[:, None] + 1
    classes = np.vectorize(lambda i: character_class(text, int(i)))(positions)
    return {name: (float(nll[classes == name].mean()), int((classes == name).sum()))
            for name in CHARACTER_CLASSES if (classes == name).any()}
