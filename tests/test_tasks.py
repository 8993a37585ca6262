"""The synthetic tasks: shapes, determinism, the answer recoverable from the k-back word,
and argument errors that name the argument."""

import numpy as np
import pytest

from companion.tasks import FILLER_WORDS, GapTask, gap_task, gap_vocabulary


@pytest.mark.parametrize("gap", [0, 1, 7, 40])
def test_shapes_and_dtypes(gap):
    tokens, targets, vocab = gap_task(13, gap, seed=0)
    assert tokens.shape == (gap + 8, 13) and tokens.dtype == np.int64
    assert targets.shape == (13,) and targets.dtype == np.int64
    assert tokens.min() >= 0 and tokens.max() < len(vocab)
    assert set(targets.tolist()) <= set(range(len(vocab.languages)))


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = (gap_task(50, 5, seed=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a.tokens, b.tokens)
    np.testing.assert_array_equal(a.targets, b.targets)
    assert not np.array_equal(a.tokens, c.tokens)


@pytest.mark.parametrize("gap", [0, 3, 25])
def test_the_answer_is_the_language_of_the_word_gap_plus_3_steps_back(gap):
    task = gap_task(200, gap, seed=1, n_countries=6)
    tokens, targets, vocab = task
    assert task.steps_back == gap + len(vocab.closing)
    country_row = tokens[-1 - task.steps_back]
    np.testing.assert_array_equal(country_row, tokens[task.country_position])
    for column in range(tokens.shape[1]):
        country = vocab.words[country_row[column]]
        assert vocab.languages[targets[column]] == dict(
            zip(vocab.countries, vocab.languages, strict=True))[country]
        assert vocab.country_token(targets[column]) == country_row[column]


def test_no_other_word_carries_information_about_the_answer():
    tokens, _, vocab = gap_task(300, 6, seed=2)
    country_ids = {vocab.index(c) for c in vocab.countries}
    others = np.delete(tokens, len(vocab.opening), axis=0)
    assert not country_ids & set(others.ravel().tolist())
    fillers = tokens[len(vocab.opening) + 1: -len(vocab.closing)]
    assert {vocab.words[i] for i in fillers.ravel()} <= set(FILLER_WORDS)


def test_sentences_read_as_intended():
    tokens, targets, vocab = gap_task(1, 2, seed=0)
    words = vocab.decode(tokens[:, 0]).split()
    assert words[:4] == ["i", "grew", "up", "in"] and words[4] in vocab.countries
    assert words[-3:] == ["i", "speak", "fluent"] and len(words) == 2 + 8


def test_classes_are_balanced_in_expectation():
    _, targets, _ = gap_task(4000, 1, seed=5)
    counts = np.bincount(targets, minlength=4) / 4000
    np.testing.assert_allclose(counts, 0.25, atol=0.03)


def test_vocabulary_is_shared_across_gaps():
    assert gap_task(3, 2, seed=0).vocab == gap_task(3, 30, seed=0).vocab == gap_vocabulary()


def test_as_tensors():
    torch = pytest.importorskip("torch")
    tokens, targets, _ = gap_task(4, 3, seed=0, as_tensors=True)
    assert tokens.dtype == torch.int64 and tuple(tokens.shape) == (11, 4)
    np.testing.assert_array_equal(tokens.numpy(), gap_task(4, 3, seed=0).tokens)
    assert targets.dtype == torch.int64


def test_result_is_a_named_tuple():
    task = gap_task(2, 1, seed=0)
    assert isinstance(task, GapTask) and task.tokens is task[0]


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"n_sequences": 0, "gap": 1, "seed": 0}, "n_sequences"),
    ({"n_sequences": 2.5, "gap": 1, "seed": 0}, "n_sequences"),
    ({"n_sequences": 2, "gap": -1, "seed": 0}, "gap"),
    ({"n_sequences": 2, "gap": True, "seed": 0}, "gap"),
    ({"n_sequences": 2, "gap": 1, "seed": -3}, "seed"),
    ({"n_sequences": 2, "gap": 1, "seed": None}, "seed"),
    ({"n_sequences": 2, "gap": 1, "seed": 0, "n_countries": 1}, "n_countries"),
    ({"n_sequences": 2, "gap": 1, "seed": 0, "n_countries": 9}, "n_countries"),
])
def test_bad_arguments_raise_value_error_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        gap_task(**kwargs)


def test_seed_is_required():
    with pytest.raises(TypeError):
        gap_task(2, 1)


def test_unknown_word():
    with pytest.raises(ValueError, match="'paris' is not in the vocabulary"):
        gap_vocabulary().index("paris")
