"""Chapter 7's character-level language model, on the torch side: train it, judge it, let it
write.

* :func:`train_charlm` -- stateful truncated backpropagation through time: the text cut into
  contiguous streams read in consecutive windows, the state carried from one window to the
  next and detached (:class:`StreamWindows`, :func:`detach_state`), gradient clipping and
  Adam (:func:`companion.training.train`), with the validation perplexity along the way;
* :func:`evaluate_perplexity` -- the perplexity of a model on a text;
* :func:`generate` -- text from a trained model, one character at a time;
* :func:`loss_by_class` -- the average loss on each kind of character (a space, the first
  letter of a word, a letter inside a word, punctuation...);
* :func:`compare_cells` -- the lesson's LSTM-against-GRU training for one seed, and
  ``python -m companion.charlm --seeds 0 1 2``, which runs it for several seeds into
  ``companion/data/charlm_seeds.json`` (:data:`SEEDS_FILE`, read by :func:`load_seed_runs`):
  the record behind the lesson's "the GRU ended lower in every seed".

The model is :class:`companion.models.CharLM`; the corpus and its vocabulary are in
:mod:`companion.corpus`, perplexity and sampling in NumPy in :mod:`companion.softmax`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from companion import corpus
from companion.corpus import CHARACTER_CLASSES, CharVocabulary, character_class, stateful_windows
from companion.models import CharLM
from companion.sizing import matched_hidden_size, param_count
from companion.softmax import sample_with_temperature
from companion.training import History, one_thread_machine, train

__all__ = ["CharLM", "FULL_FILE", "SEEDS_FILE", "StreamWindows", "compare_cells", "detach_state",
           "evaluate_perplexity", "generate", "load_seed_runs", "loss_by_class", "train_charlm"]

SEEDS_FILE = Path(__file__).resolve().parent / "data" / "charlm_seeds.json"
FULL_FILE = SEEDS_FILE.with_name("charlm_3000_steps.json")
"""One run of the lesson's ``FULL_TRAINING`` (3000 steps, seed 0), for its "Going further"."""
CLIP_NORM = 1.0
LESSON_SIZES = {"embedding_dim": 32, "lstm_hidden": 96, "seq_len": 64, "batch_size": 32}
"""Chapter 7's models and batches: an LSTM of 96 units and the GRU of the same parameter
budget, on 32-dimensional character embeddings, trained on 32 streams in windows of 64."""


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


def detach_state(state):
    """The recurrent state with its values kept and its autograd history cut: ``h.detach()``
    for a GRU or an RNN, ``(h.detach(), c.detach())`` for an LSTM; ``None`` stays ``None``.

    This is the stop-gradient of truncated BPTT (chapter 2; eq. (8.10) in chapter 8): the
    next window's forward pass starts from these values, and its backward pass ends here.
    """
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(part.detach() for part in state)
    return state.detach()


class StreamWindows:
    """Consecutive windows of contiguous streams of a text, epoch after epoch, for stateful
    truncated BPTT.

    Each epoch drops the first ``offset`` ids of ``ids`` (``offset`` drawn uniformly from
    ``0 .. seq_len - 1`` by ``rng``, so that window boundaries move from epoch to epoch), cuts
    the rest into ``batch_size`` contiguous streams of ``n`` ids, side by side, and walks them
    in ``K = (n - 1) // seq_len`` consecutive windows of ``seq_len`` steps
    (:func:`companion.corpus.stateful_windows`, chapter 8's exercise).
    Column ``b`` of window ``k + 1`` continues column ``b`` of window ``k``, so a state carried
    from one window to the next belongs there. After the last window the next epoch starts.

    ``next()`` returns ``(inputs, targets, new_epoch)``: ``inputs`` and ``targets`` are int64
    tensors ``(seq_len, batch_size)``, the targets the same streams one step ahead, and
    ``new_epoch`` is ``True`` for the first window of an epoch, where the state must be reset.
    ``offsets`` lists the offset of every epoch started so far.
    """

    def __init__(self, ids: np.ndarray, batch_size: int, seq_len: int, rng: np.random.Generator):
        for name, value in [("batch_size", batch_size), ("seq_len", seq_len)]:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        ids = np.asarray(ids)
        if ids.ndim != 1:
            raise ValueError(f"ids must be a 1-D array of character ids, got shape {ids.shape}")
        needed = batch_size * (seq_len + 1) + seq_len - 1  # a window per stream, any offset
        if len(ids) < needed:
            raise ValueError(f"ids must hold at least batch_size * (seq_len + 1) + seq_len - 1 = "
                             f"{needed} characters for {batch_size} streams of at least one "
                             f"window of {seq_len}, got {len(ids)}")
        self.ids, self.batch_size, self.seq_len, self.rng = ids, batch_size, seq_len, rng
        self.offsets: list[int] = []
        self._inputs = self._targets = None
        self._k = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor, bool]:
        new_epoch = self._inputs is None or self._k == len(self._inputs)
        if new_epoch:
            offset = int(self.rng.integers(0, self.seq_len))
            self.offsets.append(offset)
            self._inputs, self._targets = stateful_windows(self.ids[offset:], self.batch_size,
                                                           self.seq_len)
            self._k = 0
        k, self._k = self._k, self._k + 1
        return (torch.from_numpy(self._inputs[k]), torch.from_numpy(self._targets[k]),
                new_epoch)


def train_charlm(model: CharLM, train_ids: np.ndarray, val_ids: np.ndarray, *, steps: int,
                 seq_len: int = 64, batch_size: int = 32, lr: float = 3e-3,
                 clip_norm: float = CLIP_NORM, eval_every: int = 50, seed: int = 0,
                 progress: bool = True, desc: str = "training") -> History:
    """Train ``model`` to predict the next character, with stateful truncated BPTT.

    ``train_ids`` is cut into ``batch_size`` contiguous streams, read in consecutive windows
    of ``seq_len`` characters (:class:`StreamWindows`; ``seed`` draws each epoch's offset).
    Each step predicts every character of a window from the ones before (teacher forcing),
    starting from the state in which the previous window ended, detached
    (:func:`detach_state`): the forward pass sees everything the state has carried since the
    start of the epoch, the backward pass only this window's ``seq_len`` steps. The state is
    reset to zero at the start of every epoch. Then the global gradient norm is clipped to
    ``clip_norm`` and Adam takes a step.

    Returns:
        A :class:`companion.training.History`: ``val_perplexity`` at ``eval_steps`` (0, every
        ``eval_every`` steps, the last; :func:`evaluate_perplexity`), ``eval_seconds``
        (training time at those steps), ``train_perplexity()``, ``grad_norm`` and ``seconds``.
    """
    windows = StreamWindows(train_ids, batch_size, seq_len, np.random.default_rng(seed))
    carried = {"state": None}  # the last window's final state, detached

    def next_batch(step):
        inputs, targets, new_epoch = windows.next()
        return inputs, targets, None if new_epoch else carried["state"]

    def loss_of(model, batch):
        inputs, targets, state = batch
        logits, final_state = model(inputs, state)
        carried["state"] = detach_state(final_state)
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                           targets.reshape(-1))

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


def compare_cells(seed: int, steps: int = 400, progress: bool = False) -> dict:
    """Chapter 7's training of the LSTM and of the GRU of the same budget, with ``seed`` for
    both models' initial parameters and for the batches (:data:`LESSON_SIZES`, one torch
    thread, as the lesson runs it with ``seed=0``).

    Returns ``{"seed", "lstm", "gru"}`` with each model's validation perplexity after
    ``steps`` steps, and, each a dict by model: ``"ms_per_step"``, ``"best"`` (the lowest
    validation perplexity) and ``"best_step"`` (where), ``"train_perplexity"`` (the running
    mean of the last 50 steps, at the end) and ``"clipped_share"`` (the share of steps whose
    gradient norm clipping rescaled).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _compare_cells(seed, steps, progress)
    finally:
        torch.set_num_threads(threads)


def _compare_cells(seed: int, steps: int, progress: bool) -> dict:
    text = corpus.load_corpus()
    vocab = CharVocabulary.from_text(text)
    train_text, val_text = corpus.train_val_split(text)
    train_ids, val_ids = vocab.encode(train_text), vocab.encode(val_text)
    embedding_dim, lstm_hidden = LESSON_SIZES["embedding_dim"], LESSON_SIZES["lstm_hidden"]
    budget = int(param_count("lstm", embedding_dim, lstm_hidden))
    sizes = {"lstm": lstm_hidden, "gru": matched_hidden_size("gru", embedding_dim, budget)}
    details = ("ms_per_step", "best", "best_step", "train_perplexity", "clipped_share")
    result = {"seed": seed, **{name: {} for name in details}}
    for cell, hidden in sizes.items():
        model = CharLM(len(vocab), cell=cell, hidden_size=hidden, embedding_dim=embedding_dim,
                       seed=seed)
        history = train_charlm(model, train_ids, val_ids, steps=steps,
                               seq_len=LESSON_SIZES["seq_len"],
                               batch_size=LESSON_SIZES["batch_size"], seed=seed,
                               progress=progress, desc=f"seed {seed}, {cell}")
        best = int(np.argmin(history.val_perplexity))
        result[cell] = history.val_perplexity[-1]
        result["ms_per_step"][cell] = 1000 * history.seconds / steps
        result["best"][cell] = history.val_perplexity[best]
        result["best_step"][cell] = history.eval_steps[best]
        result["train_perplexity"][cell] = float(history.train_perplexity()[-1])
        result["clipped_share"][cell] = float(np.mean(np.array(history.grad_norm) > CLIP_NORM))
    return result


def load_seed_runs(path=SEEDS_FILE) -> dict:
    """The record written by ``python -m companion.charlm``: ``steps``, ``runs`` (one
    :func:`compare_cells` result per seed), the ``date``, the ``machine`` and the library
    versions."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m companion.charlm",
        description="Run chapter 7's LSTM-against-GRU training for several seeds and record "
                    "each model's final validation perplexity (the lesson reads the record).")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="seeds to run (default 0 1 2)")
    parser.add_argument("--steps", type=int, default=400,
                        help="training steps per model (default 400, as in the lesson)")
    parser.add_argument("--out", type=Path, default=SEEDS_FILE,
                        help=f"where to write the record (default {SEEDS_FILE})")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    runs = [compare_cells(seed, args.steps, progress=True) for seed in args.seeds]
    record = {"steps": args.steps, "runs": runs, "date": datetime.date.today().isoformat(),
              "machine": one_thread_machine(),
              "python": platform.python_version(), "torch": torch.__version__,
              "numpy": np.__version__}
    args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    for run in runs:
        print(f"seed {run['seed']}: validation perplexity after {args.steps} steps: "
              f"LSTM {run['lstm']:.2f}, GRU {run['gru']:.2f}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
