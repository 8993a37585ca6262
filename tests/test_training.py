"""The small training loop: it learns an easy task, is reproducible, clips, and stops on
divergence."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from companion import cells  # noqa: E402
from companion.tasks import gap_task  # noqa: E402
from companion.training import (  # noqa: E402
    History,
    SequenceClassifier,
    accuracy,
    train,
    train_classifier,
)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(cell="rnn", seed=0):
    vocab = gap_task(1, 1, seed=0).vocab
    return SequenceClassifier(len(vocab), len(vocab.languages), cell=cell, hidden_size=16,
                              seed=seed)


@pytest.mark.parametrize("cell", cells.KINDS)
def test_shapes(cell):
    tokens, _, _ = gap_task(5, 2, seed=0, as_tensors=True)
    assert tuple(_model(cell)(tokens).shape) == (5, 4)


def test_learns_a_short_gap():
    train, test = gap_task(500, 1, seed=0), gap_task(200, 1, seed=1)
    history = train_classifier(_model(), train, steps=120, lr=0.01, eval_data=test,
                               eval_every=60, progress=False)
    assert isinstance(history, History)
    assert len(history.loss) == len(history.grad_norm) == 120
    assert history.eval_steps == [0, 60, 120]
    assert history.eval_accuracy[0] < 0.5 and history.final_accuracy > 0.95
    assert history.clipped == 0 and history.diverged_at is None


def test_same_seeds_same_history_and_model_seed_leaves_global_rng_alone():
    data = gap_task(200, 2, seed=0)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    runs = [train_classifier(_model(seed=3), data, steps=15, progress=False, seed=4)
            for _ in range(2)]
    assert torch.rand(1) == before  # neither the model nor the batches used the global RNG
    assert runs[0].loss == runs[1].loss
    other = train_classifier(_model(seed=3), data, steps=15, progress=False, seed=5)
    assert other.loss != runs[0].loss


def test_clipping_caps_the_step_and_counts_clipped_steps():
    data = gap_task(200, 2, seed=0)
    model = _model()
    history = train_classifier(model, data, steps=10, lr=0.1, optimizer="sgd",
                               clip_norm=1e-3, progress=False)
    assert history.clipped == 10
    # Every SGD step moved the parameters by at most lr * clip_norm.
    before = [p.detach().clone() for p in _model().parameters()]
    distance = math.sqrt(sum(float(((p.detach() - q) ** 2).sum())
                             for p, q in zip(model.parameters(), before, strict=True)))
    assert distance <= 10 * 0.1 * 1e-3 * (1 + 1e-4)


def test_divergence_stops_training():
    data = gap_task(100, 2, seed=0)
    model = _model()
    with torch.no_grad():
        model.readout.weight.fill_(float("inf"))
    history = train_classifier(model, data, steps=20, progress=False)
    assert history.diverged_at == 1 and len(history.loss) == 1


def test_accuracy_accepts_numpy_and_restores_mode():
    model = _model()
    model.train()
    tokens, targets, _ = gap_task(30, 1, seed=0)
    value = accuracy(model, (tokens, targets))
    assert 0.0 <= value <= 1.0 and model.training


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"steps": 0}, "steps"), ({"steps": 5, "batch_size": 0}, "batch_size"),
    ({"steps": 5, "lr": 0.0}, "lr"), ({"steps": 5, "clip_norm": -1.0}, "clip_norm"),
    ({"steps": 5, "optimizer": "rmsprop"}, "optimizer"),
])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        train_classifier(_model(), gap_task(4, 1, seed=0), progress=False, **kwargs)


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="^cell must"):
        SequenceClassifier(10, 2, cell="transformer")
    with pytest.raises(ValueError, match="^hidden_size must"):
        SequenceClassifier(10, 2, hidden_size=0)


def test_bad_data_shapes():
    with pytest.raises(ValueError, match="data must be"):
        train_classifier(_model(), (np.zeros((3, 4), int), np.zeros(5, int)), steps=1,
                         progress=False)


def test_the_loop_evaluates_on_schedule_and_times_every_step():
    model = torch.nn.Linear(3, 1)
    data = torch.randn(8, 3)
    seen = []

    def next_batch(step):
        seen.append(step)
        return data

    history = train(model, next_batch, lambda m, batch: m(batch).pow(2).mean(), steps=7,
                    lr=0.1, evaluate=lambda m: float(m.weight.detach().abs().sum()),
                    eval_every=3)
    assert seen == list(range(1, 8))
    assert history.eval_steps == [0, 3, 6, 7]
    assert len(history.scores) == len(history.eval_seconds) == 4
    assert history.eval_seconds == sorted(history.eval_seconds)
    assert len(history.step_seconds) == len(history.loss) == 7
    assert history.eval_seconds[-1] == pytest.approx(sum(history.step_seconds))
    assert history.seconds >= history.eval_seconds[-1]
    assert history.mean_loss_before(6, 3) == pytest.approx(np.mean(history.loss[3:6]))
    assert history.train_perplexity(2)[4] == pytest.approx(np.exp(np.mean(history.loss[3:5])))


def test_the_loop_stops_before_updating_on_divergence_and_evaluates_there():
    model = torch.nn.Linear(2, 1)
    before = model.weight.detach().clone()
    losses = iter([1.0, float("nan")])

    def loss_of(m, batch):
        return m(batch).sum() * 0 + next(losses)

    history = train(model, lambda step: torch.ones(1, 2), loss_of, steps=5, lr=0.1,
                    evaluate=lambda m: 0.0, eval_every=10)
    assert history.diverged_at == 2 and history.eval_steps == [0, 2]
    assert len(history.loss) == 2
    torch.testing.assert_close(model.weight.detach(), before)  # zero gradient, then no step
