"""A small, readable PyTorch training loop for many-to-one sequence classifiers.

The model reads a whole sequence of token ids and predicts one class from its last hidden
state::

    tokens (T, B) --Embedding--> (T, B, E) --RNN/LSTM/GRU--> h_T (B, H) --Linear--> logits (B, C)

:func:`train_classifier` fits it with minibatches drawn from a fixed training set, optionally
clipping the global gradient norm (Pascanu et al. 2013), and returns a :class:`History` of the
loss, the gradient norm before clipping, and the held-out accuracy.

Everything is seeded: the same seeds give the same numbers on the same machine. PyTorch's
results can depend on the number of CPU threads, so fix it (``torch.set_num_threads(1)``)
where bit-for-bit reproducibility matters.

Example::

    from companion.tasks import gap_task
    train = gap_task(2000, gap=5, seed=0)
    test = gap_task(500, gap=5, seed=1)
    model = SequenceClassifier(len(train.vocab), len(train.vocab.languages), seed=0)
    history = train_classifier(model, train, steps=300, eval_data=test, seed=0)
    history.final_accuracy
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class SequenceClassifier(nn.Module):
    """Embedding -> one recurrent layer -> linear readout of the last hidden state.

    Args:
        vocab_size: number of distinct token ids.
        n_classes: number of classes ``C``.
        cell: ``"rnn"`` (tanh Elman network), ``"lstm"`` or ``"gru"``.
        hidden_size: ``H``.
        embedding_dim: ``E``, size of the word vectors.
        seed: seeds the initial parameters (PyTorch's default initialisation) without
            touching the global random state.
    """

    def __init__(self, vocab_size: int, n_classes: int, *, cell: str = "rnn",
                 hidden_size: int = 32, embedding_dim: int = 16, seed: int = 0):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        for name, value in [("vocab_size", vocab_size), ("n_classes", n_classes),
                            ("hidden_size", hidden_size), ("embedding_dim", embedding_dim)]:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.cell = cell
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.embedding = nn.Embedding(vocab_size, embedding_dim)
            self.recurrent = CELLS[cell](embedding_dim, hidden_size)
            self.readout = nn.Linear(hidden_size, n_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, C)`` for ``tokens`` of shape ``(T, B)`` (time-major)."""
        outputs, _ = self.recurrent(self.embedding(tokens))  # (T, B, H)
        return self.readout(outputs[-1])


@dataclass
class History:
    """What happened during :func:`train_classifier`.

    Attributes:
        loss: training loss (mean cross-entropy of the minibatch) at every step.
        grad_norm: global L2 norm of the gradient at every step, **before** clipping.
        eval_steps: the steps after which the model was evaluated (0 = before training).
        eval_accuracy: held-out accuracy at those steps (empty without ``eval_data``).
        clipped: how many steps had their gradient rescaled.
        diverged_at: the step whose loss or gradient was not finite (training stopped
            there), or ``None``.
    """

    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_accuracy: list[float] = field(default_factory=list)
    clipped: int = 0
    diverged_at: int | None = None

    @property
    def final_accuracy(self) -> float:
        """Held-out accuracy after the last step (``nan`` without evaluation)."""
        return self.eval_accuracy[-1] if self.eval_accuracy else math.nan


def _as_tensors(data):
    tokens, targets = data[0], data[1]
    tokens = torch.as_tensor(np.asarray(tokens) if not torch.is_tensor(tokens) else tokens)
    targets = torch.as_tensor(np.asarray(targets) if not torch.is_tensor(targets) else targets)
    if tokens.ndim != 2 or targets.ndim != 1 or tokens.shape[1] != targets.shape[0]:
        raise ValueError(f"data must be (tokens (T, N), targets (N,)), got shapes "
                         f"{tuple(tokens.shape)} and {tuple(targets.shape)}")
    return tokens.long(), targets.long()


@torch.no_grad()
def accuracy(model: nn.Module, data) -> float:
    """Fraction of sequences in ``data = (tokens (T, N), targets (N,))`` classified right."""
    tokens, targets = _as_tensors(data)
    was_training = model.training
    model.eval()
    predictions = model(tokens).argmax(dim=1)
    model.train(was_training)
    return float((predictions == targets).double().mean())


def train_classifier(model: nn.Module, train_data, *, steps: int, batch_size: int = 64,
                     lr: float = 1e-2, optimizer: str = "adam", clip_norm: float | None = None,
                     eval_data=None, eval_every: int = 50, seed: int = 0,
                     progress: bool = True) -> History:
    """Train ``model`` to classify sequences with cross-entropy.

    Each step draws ``batch_size`` sequences (columns of the time-major ``tokens``) at
    random from ``train_data``, computes the loss, backpropagates through time, optionally
    rescales the gradient so that its global norm is at most ``clip_norm``, and takes one
    optimiser step.

    Args:
        model: maps ``(T, B)`` token ids to ``(B, C)`` logits, e.g. a
            :class:`SequenceClassifier`.
        train_data: ``(tokens (T, N), targets (N,))``, NumPy or torch; a
            :class:`companion.tasks.GapTask` works as is.
        steps: number of optimiser steps.
        batch_size: sequences per step.
        lr: learning rate.
        optimizer: ``"adam"`` or ``"sgd"`` (plain gradient descent, no momentum).
        clip_norm: if set, clip the global gradient norm to this value
            (``torch.nn.utils.clip_grad_norm_``); ``None``: no clipping.
        eval_data: optional held-out ``(tokens, targets)``; accuracy is measured before
            training, every ``eval_every`` steps, and after the last step.
        eval_every: evaluation period in steps.
        seed: seeds the choice of minibatches.
        progress: show a ``tqdm`` progress bar.

    Returns:
        A :class:`History`. Training stops early, with ``History.diverged_at`` set, if the
        loss or the gradient norm becomes inf or NaN.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if clip_norm is not None and not (clip_norm > 0 and math.isfinite(clip_norm)):
        raise ValueError(f"clip_norm must be a positive number or None, got {clip_norm!r}")
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    tokens, targets = _as_tensors(train_data)
    parameters = [p for p in model.parameters() if p.requires_grad]
    opt = (torch.optim.Adam(parameters, lr=lr) if optimizer == "adam"
           else torch.optim.SGD(parameters, lr=lr))
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    history = History()

    def evaluate(step):
        if eval_data is not None:
            history.eval_steps.append(step)
            history.eval_accuracy.append(accuracy(model, eval_data))

    evaluate(0)
    model.train()
    step_range = range(1, steps + 1)
    if progress:
        from tqdm import tqdm  # the plain text bar: works in a terminal and in a notebook

        step_range = tqdm(step_range, desc="training")
    for step in step_range:
        batch = torch.randint(tokens.shape[1], (batch_size,), generator=generator)
        loss = loss_fn(model(tokens[:, batch]), targets[batch])
        opt.zero_grad()
        loss.backward()
        # With max_norm=inf this only measures the norm; it never rescales.
        norm = torch.nn.utils.clip_grad_norm_(
            parameters, clip_norm if clip_norm is not None else math.inf)
        history.loss.append(loss.item())
        history.grad_norm.append(float(norm))
        if not (math.isfinite(history.loss[-1]) and math.isfinite(history.grad_norm[-1])):
            history.diverged_at = step
            break
        if clip_norm is not None and history.grad_norm[-1] > clip_norm:
            history.clipped += 1
        opt.step()
        if step % eval_every == 0 and step != steps:
            evaluate(step)
    evaluate(len(history.loss))
    return history
