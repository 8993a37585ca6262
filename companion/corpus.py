"""The course's English corpus and its characters (NumPy only).

``companion/data/corpus.txt`` (about 26 KB of English prose in five pieces: a river, a
lighthouse keeper's notebook, a forest, letters about a clock, notes on learning to predict)
was written for this course and is released with it under the MIT licence. It is shipped
inside the package, so nothing is downloaded at run time.

* :func:`load_corpus`, :func:`train_val_split` -- the text and its two parts;
* :class:`CharVocabulary` -- characters to integer ids and back;
* :func:`character_class` -- what kind of character sits at a position (a space, the first
  letter of a word, a letter inside a word, punctuation...);
* :func:`stateful_windows` -- a long stream of ids cut into parallel streams of consecutive
  windows, for truncated BPTT with a carried state (chapter 8's exercise, chapter 7's training).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
    (the 10th, 20th, ...) goes to validation, the rest to training. Headings and short lines
    count as paragraphs, so for the course's corpus the validation text comes mostly from its
    three pieces of longer prose (the river, the keeper's notebook, the notes on prediction)."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    train = [p for i, p in enumerate(paragraphs) if i % every != every - 1]
    val = [p for i, p in enumerate(paragraphs) if i % every == every - 1]
    return "\n\n".join(train) + "\n", "\n\n".join(val) + "\n"


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


def stateful_windows(ids, batch_size, window):
    """Cut one long stream of ids into batch_size parallel streams, then into consecutive
    windows, so that a state carried from window k to window k + 1 belongs there, eq. (8.10).

    ids (N,) integers. With n = N // batch_size steps per stream (the rest of ids is dropped)
    and K = (n - 1) // window windows, returns inputs and targets, each (K, window,
    batch_size): stream b is ids[b * n:(b + 1) * n], inputs[k, :, b] its k-th window, and
    targets the same steps shifted one ahead (the next id to predict).
    """
    n = len(ids) // batch_size
    streams = ids[:batch_size * n].reshape(batch_size, n).T  # (n, B): column b is stream b
    K = (n - 1) // window
    inputs = np.stack([streams[k * window:(k + 1) * window] for k in range(K)])
    targets = np.stack([streams[k * window + 1:(k + 1) * window + 1] for k in range(K)])
    return inputs, targets
