"""Chapter 7: a character-level language model with an LSTM or a GRU.

The corpus, ``companion/data/corpus.txt`` (about 26 KB of English prose in five pieces: a
river, a lighthouse keeper's notebook, a forest, letters about a clock, notes on learning to
predict), was written for this course and is released with it under the MIT licence. It is
shipped inside the package, so nothing is downloaded at run time.

* :func:`load_corpus`, :class:`CharVocabulary`, :func:`train_val_split` -- the data;
* :class:`CharLM` -- embedding -> one LSTM or GRU layer -> a linear readout of logits;
* :func:`train_charlm` -- random windows, backpropagation through each window, gradient
  clipping, Adam, a ``tqdm`` progress bar, and validation perplexity along the way;
* :func:`perplexity` and :func:`sample_with_temperature` -- the two NumPy functions the
  chapter's exercises ask for (these are the reference solutions);
* :func:`generate` -- text from a trained model, one character at a time;
* :func:`loss_by_class` -- the average loss on each kind of character (a space, the first
  letter of a word, a letter inside a word, punctuation...).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

CORPUS_FILE = Path(__file__).resolve().parent / "data" / "corpus.txt"


def load_corpus() -> str:
    """The course's corpus as one string (read from the installed package)."""
    return CORPUS_FILE.read_text(encoding="utf-8")


@dataclass(frozen=True)
class CharVocabulary:
    """The characters of a text, sorted; character ``chars[i]`` has id ``i``."""

    chars: tuple[str, ...]

    @classmethod
    def from_text(cls, text: str) -> CharVocabulary:
        return cls(tuple(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Ids of the characters of ``text``, an int64 array."""
        index = {char: i for i, char in enumerate(self.chars)}
        try:
            return np.array([index[char] for char in text], dtype=np.int64)
        except KeyError as error:
            raise ValueError(f"character {error.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in np.asarray(ids).ravel())


def train_val_split(text: str, every: int = 10) -> tuple[str, str]:
    """Split ``text`` into paragraphs (blank-line separated); every ``every``-th paragraph
    (the 10th, 20th, ...) goes to validation, the rest to training. Both parts mix all five
    pieces of the corpus, so their styles match."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    train = [p for i, p in enumerate(paragraphs) if i % every != every - 1]
    val = [p for i, p in enumerate(paragraphs) if i % every == every - 1]
    return "\n\n".join(train) + "\n", "\n\n".join(val) + "\n"


# ---------------------------------------------------------------------------------------------
# The two exercises' reference solutions (NumPy)


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
    samples = (cdf < u[:, None]).sum(axis=1)  # how many characters lie entirely below u
    samples = np.minimum(samples, probs.shape[1] - 1)  # in case rounding left cdf[-1] < u
    return probs, samples


# ---------------------------------------------------------------------------------------------
# The model and its training


class CharLM(nn.Module):
    """Embedding -> one ``nn.LSTM`` or ``nn.GRU`` layer -> linear logits over the vocabulary.

    ``forward(tokens (T, B), state=None)`` returns ``(logits (T, B, V), state)``; the state
    is the ``(h, c)`` pair of an LSTM or the ``h`` of a GRU, to be passed back in to continue.
    """

    def __init__(self, vocab_size: int, *, cell: str = "lstm", hidden_size: int = 128,
                 embedding_dim: int = 32, seed: int = 0):
        super().__init__()
        if cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        self.cell = cell
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.embedding = nn.Embedding(vocab_size, embedding_dim)
            self.recurrent = (nn.LSTM if cell == "lstm" else nn.GRU)(embedding_dim, hidden_size)
            self.readout = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens: torch.Tensor, state=None):
        outputs, state = self.recurrent(self.embedding(tokens), state)
        return self.readout(outputs), state


@dataclass
class CharHistory:
    """What happened during :func:`train_charlm`.

    Attributes:
        loss: training loss (mean cross-entropy per character, in nats) at every step.
        grad_norm: global gradient norm at every step, before clipping.
        eval_steps: steps after which the validation perplexity was measured (0 = before).
        val_perplexity: the validation perplexity at those steps.
        eval_seconds: training time (wall clock, evaluations excluded) at those steps.
        seconds: wall-clock time of the whole training loop, evaluations included.
    """

    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    val_perplexity: list[float] = field(default_factory=list)
    eval_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def train_perplexity(self, window: int = 50) -> np.ndarray:
        """exp of the training loss averaged over the last ``window`` steps, at every step."""
        loss = np.asarray(self.loss)
        cumulative = np.concatenate([[0.0], np.cumsum(loss)])
        starts = np.maximum(np.arange(1, len(loss) + 1) - window, 0)
        means = (cumulative[1:] - cumulative[starts]) / (np.arange(1, len(loss) + 1) - starts)
        return np.exp(means)


@torch.no_grad()
def evaluate_perplexity(model: CharLM, ids: np.ndarray, seq_len: int = 128) -> float:
    """Perplexity of ``model`` on the character ids ``ids``: the text is cut into
    consecutive windows of ``seq_len + 1`` characters, each read from a zero state; every
    character after the first of its window is predicted."""
    n = (len(ids) - 1) // seq_len
    if n < 1:
        raise ValueError(f"need more than {seq_len} characters, got {len(ids)}")
    windows = np.stack([ids[i * seq_len:(i + 1) * seq_len + 1] for i in range(n)], axis=1)
    tokens = torch.from_numpy(windows)
    was_training = model.training
    model.eval()
    logits, _ = model(tokens[:-1])
    model.train(was_training)
    loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                       tokens[1:].reshape(-1))
    return math.exp(float(loss))


def train_charlm(model: CharLM, train_ids: np.ndarray, val_ids: np.ndarray, *, steps: int,
                 seq_len: int = 64, batch_size: int = 32, lr: float = 3e-3,
                 clip_norm: float = 1.0, eval_every: int = 50, seed: int = 0,
                 progress: bool = True, desc: str = "training") -> CharHistory:
    """Train ``model`` to predict the next character.

    Each step takes ``batch_size`` windows of ``seq_len + 1`` characters at random positions
    of ``train_ids``, predicts characters 2 to ``seq_len + 1`` of each from the ones before
    (teacher forcing, from a zero state), backpropagates through the window, clips the
    global gradient norm to ``clip_norm`` and takes an Adam step.
    """
    from tqdm.auto import tqdm

    generator = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = CharHistory()
    history.eval_steps.append(0)
    history.val_perplexity.append(evaluate_perplexity(model, val_ids))
    history.eval_seconds.append(0.0)
    offsets = np.arange(seq_len + 1)
    start = time.perf_counter()
    training_time = 0.0
    model.train()
    for step in tqdm(range(1, steps + 1), desc=desc, disable=not progress):
        tic = time.perf_counter()
        starts = generator.integers(0, len(train_ids) - seq_len - 1, size=batch_size)
        windows = torch.from_numpy(train_ids[starts[None, :] + offsets[:, None]])
        logits, _ = model(windows[:-1])
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                           windows[1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimizer.step()
        history.loss.append(loss.item())
        history.grad_norm.append(float(norm))
        training_time += time.perf_counter() - tic
        if step % eval_every == 0 or step == steps:
            history.eval_steps.append(step)
            history.val_perplexity.append(evaluate_perplexity(model, val_ids))
            history.eval_seconds.append(training_time)
    history.seconds = time.perf_counter() - start
    return history


@torch.no_grad()
def generate(model: CharLM, vocab: CharVocabulary, prompt: str, n_chars: int, *,
             temperature: float, rng: np.random.Generator, sampler=sample_with_temperature) -> str:
    """``prompt`` followed by ``n_chars`` characters sampled one at a time.

    The prompt is read first; then each sampled character is fed back in, carrying the
    recurrent state. ``sampler(logits (1, V), temperature, u (1,)) -> (probs, samples)``
    picks each character from ``u = rng.random(1)`` (:func:`sample_with_temperature` unless
    you pass your own).
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


CHARACTER_CLASSES = ("space", "newline", "punctuation", "first letter of a word",
                     "letter inside a word")


def character_class(text: str, i: int) -> str:
    """The class of ``text[i]``, one of :data:`CHARACTER_CLASSES`."""
    char = text[i]
    if char == " ":
        return "space"
    if char == "\n":
        return "newline"
    if not char.isalpha():
        return "punctuation"
    previous = text[i - 1] if i > 0 else " "
    return "letter inside a word" if previous.isalpha() else "first letter of a word"


@torch.no_grad()
def loss_by_class(model: CharLM, vocab: CharVocabulary, text: str,
                  seq_len: int = 128) -> dict[str, tuple[float, int]]:
    """Mean loss (nats per character) of ``model`` on each class of character of ``text``,
    predicted as in :func:`evaluate_perplexity`; returns ``{class: (mean loss, count)}``."""
    ids = vocab.encode(text)
    n = (len(ids) - 1) // seq_len
    windows = np.stack([ids[i * seq_len:(i + 1) * seq_len + 1] for i in range(n)], axis=1)
    tokens = torch.from_numpy(windows)
    model.eval()
    logits, _ = model(tokens[:-1])
    nll = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                      tokens[1:].reshape(-1), reduction="none")
    nll = nll.reshape(seq_len, n).numpy()
    # position in text of the character predicted at (t, window w): w * seq_len + t + 1
    positions = np.arange(n)[None, :] * seq_len + np.arange(seq_len)[:, None] + 1
    classes = np.vectorize(lambda i: character_class(text, int(i)))(positions)
    return {name: (float(nll[classes == name].mean()), int((classes == name).sum()))
            for name in CHARACTER_CLASSES if (classes == name).any()}
