"""One small, readable PyTorch training loop for every model of the course.

:func:`train` is the loop: draw a batch, compute the loss, backpropagate through time, measure
(and optionally clip) the global gradient norm (Pascanu et al. 2013), take an optimiser step,
and evaluate now and then. What differs between chapters is passed in as three functions:
how to draw batch number ``step``, how to compute the loss of a batch, and how to score the
model. The chapters' wrappers are

* :func:`train_classifier` -- chapters 3 and 4: classify token sequences
  (:class:`companion.models.SequenceClassifier`), scored by held-out :func:`accuracy`;
* :func:`companion.experiments.run_one` -- chapter 6's race;
* :func:`companion.charlm.train_charlm` -- chapter 7's character-level language model, trained
  with stateful truncated BPTT: its ``next_batch`` and ``loss_of`` share the recurrent state,
  carried (detached) from one step's window to the next, so the loop itself stays stateless.

Everything is seeded: the same seeds give the same numbers on the same machine. PyTorch's
results can depend on the number of CPU threads, so fix it (``torch.set_num_threads(1)``)
where bit-for-bit reproducibility matters.

Example::

    from companion.models import SequenceClassifier
    from companion.tasks import gap_task
    train = gap_task(2000, gap=5, seed=0)
    test = gap_task(500, gap=5, seed=1)
    model = SequenceClassifier(len(train.vocab), len(train.vocab.languages), seed=0)
    history = train_classifier(model, train, steps=300, eval_data=test, seed=0)
    history.final_accuracy
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from companion.models import SequenceClassifier

__all__ = ["History", "SequenceClassifier", "accuracy", "one_thread_machine", "train",
           "train_classifier"]


@dataclass
class History:
    """What happened during :func:`train`.

    Attributes:
        loss: training loss of the batch at every step.
        grad_norm: global L2 norm of the gradient at every step, **before** clipping.
        step_seconds: wall-clock time of every step (forward, backward, clipping, update; not
            drawing the batch, not evaluating).
        eval_steps: the steps after which the model was evaluated (0 = before training).
        scores: the evaluation's score at those steps (empty without an evaluation).
        eval_seconds: training time (the sum of ``step_seconds``) at those steps.
        clipped: how many steps had their gradient rescaled.
        diverged_at: the step whose loss or gradient was not finite (training stopped
            there, before updating), or ``None``.
        seconds: wall-clock time of the whole loop, evaluations included.
    """

    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    eval_seconds: list[float] = field(default_factory=list)
    clipped: int = 0
    diverged_at: int | None = None
    seconds: float = 0.0

    @property
    def eval_accuracy(self) -> list[float]:
        """The scores of a classifier: held-out accuracy (see :func:`train_classifier`)."""
        return self.scores

    @property
    def val_perplexity(self) -> list[float]:
        """The scores of a language model: validation perplexity (chapter 7)."""
        return self.scores

    @property
    def final_accuracy(self) -> float:
        """Held-out accuracy after the last step (``nan`` without evaluation)."""
        return self.scores[-1] if self.scores else math.nan

    def train_perplexity(self, window: int = 50) -> np.ndarray:
        """exp of the training loss averaged over the last ``window`` steps, at every step
        (for a language model, whose loss is the mean cross-entropy per token in nats)."""
        loss = np.asarray(self.loss)
        cumulative = np.concatenate([[0.0], np.cumsum(loss)])
        ends = np.arange(1, len(loss) + 1)
        starts = np.maximum(ends - window, 0)
        return np.exp((cumulative[1:] - cumulative[starts]) / (ends - starts))

    def mean_loss_before(self, step: int, window: int) -> float:
        """Mean training loss of the ``window`` steps up to and including ``step``."""
        return float(np.mean(self.loss[max(step - window, 0):step]))


def one_thread_machine() -> str:
    """How a record of training runs names the machine that timed them, one torch thread each:
    ``"x86_64, 2 CPU cores visible, 1 thread"``."""
    return f"{platform.machine()}, {os.cpu_count()} CPU cores visible, 1 thread"


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def train(model: nn.Module, next_batch: Callable, loss_of: Callable, *, steps: int,
          lr: float, optimizer: str = "adam", clip_norm: float | None = None,
          evaluate: Callable | None = None, eval_every: int = 50, progress: bool = False,
          desc: str = "training") -> History:
    """Train ``model`` for ``steps`` optimiser steps.

    Args:
        model: any ``torch.nn.Module``; all its parameters that require gradients are trained.
        next_batch: ``next_batch(step) -> batch`` for ``step = 1 .. steps`` (any object).
        loss_of: ``loss_of(model, batch) -> loss`` (a scalar tensor).
        steps: number of optimiser steps.
        lr: learning rate.
        optimizer: ``"adam"`` or ``"sgd"`` (plain gradient descent, no momentum).
        clip_norm: if set, clip the global gradient norm to this value
            (``torch.nn.utils.clip_grad_norm_``); ``None``: only measure it.
        evaluate: optional ``evaluate(model) -> float``, called before training, every
            ``eval_every`` steps, and after the last step taken.
        eval_every: evaluation period in steps.
        progress: show a ``tqdm`` progress bar labelled ``desc``.

    Returns:
        A :class:`History`. Training stops early, before the update, with
        ``History.diverged_at`` set, if the loss or the gradient norm is inf or NaN.
    """
    _check_positive_int("steps", steps)
    _check_positive_int("eval_every", eval_every)
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if clip_norm is not None and not (clip_norm > 0 and math.isfinite(clip_norm)):
        raise ValueError(f"clip_norm must be a positive number or None, got {clip_norm!r}")
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    parameters = [p for p in model.parameters() if p.requires_grad]
    opt = (torch.optim.Adam(parameters, lr=lr) if optimizer == "adam"
           else torch.optim.SGD(parameters, lr=lr))
    history = History()
    start = time.perf_counter()

    def evaluate_now(step: int) -> None:
        if evaluate is not None:
            history.eval_steps.append(step)
            history.scores.append(float(evaluate(model)))
            history.eval_seconds.append(float(sum(history.step_seconds)))

    evaluate_now(0)
    model.train()
    step_range = range(1, steps + 1)
    if progress:
        from tqdm import tqdm  # the plain text bar: works in a terminal and in a notebook

        step_range = tqdm(step_range, desc=desc)
    for step in step_range:
        batch = next_batch(step)
        tic = time.perf_counter()
        loss = loss_of(model, batch)
        opt.zero_grad()
        loss.backward()
        # With max_norm=inf this only measures the norm; it never rescales a finite one.
        norm = torch.nn.utils.clip_grad_norm_(
            parameters, clip_norm if clip_norm is not None else math.inf)
        history.loss.append(loss.item())
        history.grad_norm.append(float(norm))
        if not (math.isfinite(history.loss[-1]) and math.isfinite(history.grad_norm[-1])):
            history.diverged_at = step
            history.step_seconds.append(time.perf_counter() - tic)
            break
        if clip_norm is not None and history.grad_norm[-1] > clip_norm:
            history.clipped += 1
        opt.step()
        history.step_seconds.append(time.perf_counter() - tic)
        if step % eval_every == 0 and step != steps:
            evaluate_now(step)
    evaluate_now(len(history.loss))
    history.seconds = time.perf_counter() - start
    return history


# ---------------------------------------------------------------------------------------------
# Chapters 3 and 4: classifying sequences


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
    """Train ``model`` to classify sequences with cross-entropy (with :func:`train`).

    Each step draws ``batch_size`` sequences (columns of the time-major ``tokens``) at
    random from ``train_data``, computes the loss, backpropagates through time, optionally
    rescales the gradient so that its global norm is at most ``clip_norm``, and takes one
    optimiser step.

    Args:
        model: maps ``(T, B)`` token ids to ``(B, C)`` logits, e.g. a
            :class:`companion.models.SequenceClassifier`.
        train_data: ``(tokens (T, N), targets (N,))``, NumPy or torch; a
            :class:`companion.tasks.GapTask` works as is.
        steps: number of optimiser steps.
        batch_size: sequences per step.
        lr: learning rate.
        optimizer: ``"adam"`` or ``"sgd"`` (plain gradient descent, no momentum).
        clip_norm: if set, clip the global gradient norm to this value; ``None``: no clipping.
        eval_data: optional held-out ``(tokens, targets)``; accuracy is measured before
            training, every ``eval_every`` steps, and after the last step.
        eval_every: evaluation period in steps.
        seed: seeds the choice of minibatches.
        progress: show a ``tqdm`` progress bar.

    Returns:
        A :class:`History` (``eval_accuracy`` holds the accuracies). Training stops early,
        with ``History.diverged_at`` set, if the loss or the gradient norm becomes inf or NaN.
    """
    _check_positive_int("steps", steps)
    _check_positive_int("batch_size", batch_size)
    tokens, targets = _as_tensors(train_data)
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()

    def next_batch(step):
        return torch.randint(tokens.shape[1], (batch_size,), generator=generator)

    def loss_of(model, batch):
        return loss_fn(model(tokens[:, batch]), targets[batch])

    evaluate = None if eval_data is None else (lambda model: accuracy(model, eval_data))
    return train(model, next_batch, loss_of, steps=steps, lr=lr, optimizer=optimizer,
                 clip_norm=clip_norm, evaluate=evaluate, eval_every=eval_every,
                 progress=progress)
