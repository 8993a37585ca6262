"""Synthetic sequence tasks whose difficulty is set by one number: how far back the answer lies.

Every generator here follows the same contract, so that training code can treat them alike:

* it is **seeded** (``seed=`` is required and keyword-only): the same arguments give the same
  arrays, bit for bit, on every machine;
* sequences are **time-major**: inputs have shape ``(T, B)`` (token ids) or ``(T, B, D)``
  (features), as everywhere in the course;
* it returns a :class:`typing.NamedTuple` whose first two fields are ``inputs`` and
  ``targets`` and which unpacks like a tuple;
* ``as_tensors=True`` returns ``torch`` tensors instead of NumPy arrays (``int64`` token ids,
  ``float32`` features), ready for ``torch.nn`` layers;
* a bad argument raises ``ValueError`` naming the argument.

Tasks:

* :func:`gap_task` -- "I grew up in *France* ... I speak fluent *French*": a tiny generated
  language in which the last word to predict depends only on a word ``gap`` filler words
  earlier (chapter 3).
* :func:`adding_task` (built by :func:`adding_problem`) -- add the two marked numbers of a
  long sequence; :func:`copy_task` -- reproduce symbols seen ``delay`` steps earlier
  (chapter 6).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

# (country, language) pairs; the first n_countries are used.
COUNTRY_LANGUAGES = (
    ("france", "french"),
    ("germany", "german"),
    ("italy", "italian"),
    ("spain", "spanish"),
    ("japan", "japanese"),
    ("brazil", "portuguese"),
    ("greece", "greek"),
    ("poland", "polish"),
)
# Neutral words that fill the gap: none of them says anything about the country.
FILLER_WORDS = (
    "and", "then", "we", "moved", "to", "a", "small", "town", "where", "it",
    "rained", "every", "day", "for", "many", "years", "so", "later", "on", "the",
)
OPENING = ("i", "grew", "up", "in")
CLOSING = ("i", "speak", "fluent")


@dataclass(frozen=True)
class GapVocabulary:
    """The words of a :func:`gap_task` language and the classes to predict.

    Attributes:
        words: input words; token id ``i`` is ``words[i]``.
        countries: the country words, in class order (``countries[c]`` goes with
            ``languages[c]``).
        languages: the class names: target ``c`` means ``languages[c]``.
        opening, closing: the fixed words before the country and after the gap.
    """

    words: tuple[str, ...]
    countries: tuple[str, ...]
    languages: tuple[str, ...]
    opening: tuple[str, ...] = OPENING
    closing: tuple[str, ...] = CLOSING

    def __len__(self) -> int:
        return len(self.words)

    def index(self, word: str) -> int:
        """Token id of ``word``; ``ValueError`` if it is not in the vocabulary."""
        try:
            return self.words.index(word)
        except ValueError:
            raise ValueError(f"word {word!r} is not in the vocabulary") from None

    def decode(self, tokens) -> str:
        """The words of one sequence of token ids, joined by spaces."""
        return " ".join(self.words[int(token)] for token in np.asarray(tokens).ravel())

    def country_token(self, target: int) -> int:
        """Token id of the country that goes with class ``target``."""
        return self.index(self.countries[int(target)])


class GapTask(NamedTuple):
    """Output of :func:`gap_task`; unpacks as ``tokens, targets, vocab``.

    Attributes:
        tokens: ``(T, B)`` token ids, time-major, with ``T = len(opening) + 1 + gap +
            len(closing)``; column ``b`` is one sentence.
        targets: ``(B,)`` class ids; ``vocab.languages[targets[b]]`` is the word that
            completes sentence ``b``.
        vocab: the :class:`GapVocabulary`.
    """

    tokens: np.ndarray
    targets: np.ndarray
    vocab: GapVocabulary

    @property
    def country_position(self) -> int:
        """Row of ``tokens`` that holds the country (the only informative word)."""
        return len(self.vocab.opening)

    @property
    def steps_back(self) -> int:
        """How many steps before the last input the country is read: ``gap + len(closing)``."""
        return self.tokens.shape[0] - 1 - self.country_position


def _check_int(name: str, value, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        allowed = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return int(value)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _to_tensors(*arrays):
    import torch

    return tuple(torch.from_numpy(np.ascontiguousarray(array)) for array in arrays)


def gap_vocabulary(n_countries: int = 4) -> GapVocabulary:
    """The vocabulary of :func:`gap_task` with ``n_countries`` countries (2 to 8).

    Token ids are fixed: the opening and closing words first, then the countries, then the
    fillers, so a model trained with one ``gap`` reads sentences of another.
    """
    n_countries = _check_int("n_countries", n_countries, 2, len(COUNTRY_LANGUAGES))
    countries, languages = zip(*COUNTRY_LANGUAGES[:n_countries], strict=True)
    fixed = tuple(dict.fromkeys(OPENING + CLOSING))  # "i" once
    words = fixed + countries + FILLER_WORDS
    return GapVocabulary(words=words, countries=countries, languages=languages)


def gap_task(n_sequences: int, gap: int, *, seed: int, n_countries: int = 4,
             as_tensors: bool = False) -> GapTask:
    """Sentences "i grew up in <country> <gap filler words> i speak fluent", to be completed
    with the country's language.

    The country is drawn uniformly for each sentence, the fillers independently and
    uniformly from :data:`FILLER_WORDS`. The only word that determines the answer is the
    country, read ``gap + 3`` steps before the last input word ("fluent"), so a model that
    ignores it is right with probability ``1 / n_countries`` (chance level).

    Args:
        n_sequences: ``B``, how many sentences (>= 1).
        gap: number of filler words between the country and "i speak fluent" (>= 0).
        seed: seeds ``np.random.default_rng``; same arguments, same sentences.
        n_countries: number of (country, language) pairs, 2 to 8 (default 4: chance 25 %).
        as_tensors: return ``torch.int64`` tensors instead of NumPy arrays.

    Returns:
        A :class:`GapTask` ``(tokens, targets, vocab)``: ``tokens`` ``(T, B)`` int64 with
        ``T = gap + 8``, ``targets`` ``(B,)`` int64 in ``[0, n_countries)``.

    Example::

        tokens, targets, vocab = gap_task(2, gap=3, seed=0)
        vocab.decode(tokens[:, 0])   # 'i grew up in spain rained small then i speak fluent'
        vocab.languages[targets[0]]  # 'spanish'
    """
    n_sequences = _check_int("n_sequences", n_sequences, 1)
    gap = _check_int("gap", gap, 0)
    seed = _check_seed(seed)
    vocab = gap_vocabulary(n_countries)
    rng = np.random.default_rng(seed)

    targets = rng.integers(len(vocab.countries), size=n_sequences)
    filler_ids = np.array([vocab.index(word) for word in FILLER_WORDS])
    fillers = filler_ids[rng.integers(len(filler_ids), size=(gap, n_sequences))]
    country_ids = np.array([vocab.index(word) for word in vocab.countries])

    def fixed_rows(words):
        return np.repeat(np.array([[vocab.index(w)] for w in words], dtype=np.int64),
                         n_sequences, axis=1).reshape(len(words), n_sequences)

    tokens = np.concatenate([
        fixed_rows(vocab.opening),
        country_ids[targets][None, :],
        fillers,
        fixed_rows(vocab.closing),
    ]).astype(np.int64)
    targets = targets.astype(np.int64)
    if as_tensors:
        tokens, targets = _to_tensors(tokens, targets)
    return GapTask(tokens, targets, vocab)


# ---------------------------------------------------------------------------------------------
# Chapter 6: the adding problem and the copy (memory) task.

ADDING_BASELINE_MSE = 1 / 6
"""Mean squared error of always predicting 1 on :func:`adding_task`: the target is the sum of
two independent U(0, 1) draws, with mean 1 and variance 2 * 1/12 = 1/6."""


class AddingTask(NamedTuple):
    """Output of :func:`adding_task`; unpacks as ``inputs, targets, positions``.

    Attributes:
        inputs: ``(T, B, 2)`` float; ``inputs[t, b, 0]`` is the value read at step ``t``,
            ``inputs[t, b, 1]`` is 1 at the two marked steps and 0 elsewhere.
        targets: ``(B,)`` float, the sum of the two marked values (between 0 and 2).
        positions: ``(2, B)`` int64, the marked steps: ``positions[0]`` in the first half
            ``[0, T // 2)``, ``positions[1]`` in the second half ``[T // 2, T)``.
    """

    inputs: np.ndarray
    targets: np.ndarray
    positions: np.ndarray


def adding_problem(values, positions):
    """Assemble one batch of the adding problem from its random draws.

    Args:
        values: ``(T, B)`` array, the numbers the network reads (uniform in [0, 1]).
        positions: ``(2, B)`` integer array; ``positions[0, b]`` and ``positions[1, b]`` are
            the two steps of sequence ``b`` whose values must be added.

    Returns:
        ``inputs`` ``(T, B, 2)``: channel 0 holds every value, channel 1 the markers (1.0 at
        the two marked steps of each sequence, 0.0 elsewhere); ``targets`` ``(B,)``: the sum
        of the two marked values of each sequence.
    """
    T, B = values.shape
    columns = np.arange(B)
    markers = np.zeros((T, B))
    markers[positions[0], columns] = 1.0  # step positions[0, b] of sequence b, for every b
    markers[positions[1], columns] = 1.0
    inputs = np.stack([values, markers], axis=-1)
    targets = values[positions[0], columns] + values[positions[1], columns]
    return inputs, targets


def adding_task(n_sequences: int, length: int, *, seed: int,
                as_tensors: bool = False) -> AddingTask:
    """The adding problem in the form of Arjovsky et al. (2016): ``length`` values drawn
    uniformly from [0, 1], two of them marked, one in each half; the target is their sum.

    A model that ignores the markers can do no better than predicting the mean target, 1,
    which gives a mean squared error of :data:`ADDING_BASELINE_MSE` = 1/6 ≈ 0.167.

    Draw order (so that a seed fixes everything): ``rng = np.random.default_rng(seed)``, then
    ``values = rng.random((T, B))``, ``first = rng.integers(0, T // 2, size=B)``,
    ``second = rng.integers(T // 2, T, size=B)``; the batch is
    ``adding_problem(values, np.stack([first, second]))``.

    Args:
        n_sequences: ``B`` (>= 1).
        length: ``T``, the number of steps (>= 2).
        seed: seeds ``np.random.default_rng``.
        as_tensors: return ``torch`` tensors (``float32`` inputs and targets, ``int64``
            positions).

    Returns:
        An :class:`AddingTask` ``(inputs (T, B, 2), targets (B,), positions (2, B))``.
    """
    n_sequences = _check_int("n_sequences", n_sequences, 1)
    length = _check_int("length", length, 2)
    seed = _check_seed(seed)
    rng = np.random.default_rng(seed)
    values = rng.random((length, n_sequences))
    first = rng.integers(0, length // 2, size=n_sequences)
    second = rng.integers(length // 2, length, size=n_sequences)
    positions = np.stack([first, second]).astype(np.int64)
    inputs, targets = adding_problem(values, positions)
    if as_tensors:
        inputs, targets, positions = _to_tensors(
            inputs.astype(np.float32), targets.astype(np.float32), positions)
    return AddingTask(inputs, targets, positions)


class CopyTask(NamedTuple):
    """Output of :func:`copy_task`; unpacks as ``inputs, targets, n_symbols``.

    Attributes:
        inputs: ``(2K + delay, B)`` int64 token ids: the ``K`` symbols to remember, ``delay``
            blanks, the "go" token, then ``K - 1`` blanks.
        targets: ``(K, B)`` int64 class ids in ``[0, n_symbols)``: the symbols, to be
            produced at the last ``K`` steps (from the "go" token on).
        n_symbols: ``A``, the size of the alphabet; chance level is ``1 / A`` per symbol.
    """

    inputs: np.ndarray
    targets: np.ndarray
    n_symbols: int

    @property
    def vocab_size(self) -> int:
        """Number of distinct input tokens: blank (0), go (1), and the ``A`` symbols."""
        return self.n_symbols + 2

    @property
    def n_remember(self) -> int:
        """``K``, the number of symbols to remember."""
        return self.targets.shape[0]


COPY_BLANK, COPY_GO = 0, 1


def copy_task(n_sequences: int, delay: int, *, seed: int, n_remember: int = 3,
              n_symbols: int = 8, as_tensors: bool = False) -> CopyTask:
    """The copy (memory) task of Hochreiter & Schmidhuber (1997) and Arjovsky et al. (2016),
    in a small form: read ``K = n_remember`` symbols, wait ``delay`` blank steps, see the "go"
    token, then output the ``K`` symbols in order, one per step.

    Tokens: 0 is the blank, 1 is "go", and symbol ``s`` (``0 <= s < n_symbols``) is token
    ``s + 2``. The loss is taken at the last ``K`` steps only (the original form also asks for
    blanks everywhere else, which only adds easy steps). The first symbol is read
    ``delay + K`` steps before it must be produced.

    Draw order: ``rng = np.random.default_rng(seed)``, then
    ``symbols = rng.integers(0, n_symbols, size=(K, B))``.

    Returns:
        A :class:`CopyTask` ``(inputs (2K + delay, B), targets (K, B), n_symbols)``.
    """
    n_sequences = _check_int("n_sequences", n_sequences, 1)
    delay = _check_int("delay", delay, 0)
    n_remember = _check_int("n_remember", n_remember, 1)
    n_symbols = _check_int("n_symbols", n_symbols, 2)
    seed = _check_seed(seed)
    rng = np.random.default_rng(seed)
    symbols = rng.integers(0, n_symbols, size=(n_remember, n_sequences))
    blanks = np.full((delay, n_sequences), COPY_BLANK)
    go = np.full((1, n_sequences), COPY_GO)
    tail = np.full((n_remember - 1, n_sequences), COPY_BLANK)
    inputs = np.concatenate([symbols + 2, blanks, go, tail]).astype(np.int64)
    targets = symbols.astype(np.int64)
    if as_tensors:
        inputs, targets = _to_tensors(inputs, targets)
    return CopyTask(inputs, targets, n_symbols)
