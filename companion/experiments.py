"""Chapter 6: a plain RNN, two LSTMs (PyTorch's default biases, and forget-gate bias 1), the
GRU and the coupled LSTM (CIFG) trained side by side on tasks with long-range dependencies,
for a sweep of sequence lengths and several seeds.

* :data:`MODELS`, :data:`TASKS` -- the race's entrants and its tasks (how each is generated,
  read out, scored and judged);
* :func:`run_one` -- train one model on one task at one length with one seed
  (:func:`companion.training.train`) and return a JSON-ready record (learning curve, final
  score, success, time per step);
* :func:`run_sweep` -- many runs, **resumable**: each finished run is appended as one line to
  a JSON-lines file, and runs already in the file are skipped;
* :func:`load_sweep` -- read such a file back;
* :func:`time_per_step` -- the cost of one training step of each model, measured in turns.

Parameter counts and matched sizes are in :mod:`companion.sizing`, the models in
:mod:`companion.models`.

The full sweep behind the chapter's figures is regenerated with::

    python -m companion.experiments --full

which writes ``companion/data/sweep_results.jsonl`` (interrupt it at any time and run the same
command again to continue; a model added to :data:`FULL` later is run into the same file).
``--tiny`` runs a seconds-long version into another file.

Everything runs on the CPU with one thread (``torch.set_num_threads(1)``), so that the time
per step of the cells is compared on equal terms and results are reproducible.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from companion import cells
from companion.models import SequenceModel
from companion.sizing import matched_hidden_size, param_count
from companion.tasks import ADDING_BASELINE_MSE, adding_task, copy_task, gap_task
from companion.training import one_thread_machine, train

__all__ = ["MODELS", "MODEL_LABELS", "TASKS", "SweepConfig", "FULL", "TINY", "run_one",
           "run_sweep", "load_sweep", "time_per_step", "task_model"]

DATA_DIR = Path(__file__).resolve().parent / "data"
SWEEP_FILE = DATA_DIR / "sweep_results.jsonl"

# model label -> (cell kind, initial forget-gate bias or None for PyTorch's default)
MODELS = {
    "rnn": ("rnn", None),
    "lstm": ("lstm", None),
    "lstm_fb1": ("lstm", 1.0),
    "gru": ("gru", None),
    "cifg": ("cifg", None),
}
MODEL_LABELS = {
    "rnn": "RNN (tanh)",
    "lstm": "LSTM",
    "lstm_fb1": "LSTM, forget bias 1",
    "gru": "GRU",
    "cifg": "CIFG (coupled LSTM)",
}


# ---------------------------------------------------------------------------------------------
# Tasks as seen by the training loop


@dataclass(frozen=True)
class TaskSpec:
    """How a task is generated, read out, scored and judged.

    Attributes:
        name: ``"adding"``, ``"copy"`` or ``"gap"``.
        length_name: what the sweep's length means for this task.
        metric: name of the score (``"mse"`` lower is better; ``"accuracy"`` higher).
        chance: the score of a model that ignores the informative inputs.
        success: a run is a success when its final score beats this threshold.
    """

    name: str
    length_name: str
    metric: str
    chance: float
    success: float

    @property
    def higher_is_better(self) -> bool:
        return self.metric == "accuracy"

    def succeeded(self, score: float) -> bool:
        if not math.isfinite(score):
            return False
        return score >= self.success if self.higher_is_better else score <= self.success


COPY_SYMBOLS, COPY_REMEMBER, GAP_COUNTRIES, EMBEDDING_DIM = 8, 3, 4, 8
TASKS = {
    "adding": TaskSpec("adding", "sequence length T", "mse", ADDING_BASELINE_MSE,
                       success=0.1 * ADDING_BASELINE_MSE),
    "copy": TaskSpec("copy", "delay (blank steps)", "accuracy", 1 / COPY_SYMBOLS, success=0.9),
    "gap": TaskSpec("gap", "gap (filler words)", "accuracy", 1 / GAP_COUNTRIES, success=0.9),
}


def task_batch(task: str, n: int, length: int, seed: int):
    """``(inputs, targets)`` torch tensors for ``n`` fresh sequences of ``task``."""
    if task == "adding":
        data = adding_task(n, length, seed=seed, as_tensors=True)
    elif task == "copy":
        data = copy_task(n, length, seed=seed, n_remember=COPY_REMEMBER,
                         n_symbols=COPY_SYMBOLS, as_tensors=True)
    elif task == "gap":
        data = gap_task(n, length, seed=seed, n_countries=GAP_COUNTRIES, as_tensors=True)
    else:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
    return data[0], data[1]


def task_sizes(task: str) -> tuple[int | None, int, int]:
    """``(vocab_size or None, input size seen by the recurrent layer, output size)``."""
    if task == "adding":
        return None, 2, 1
    if task == "copy":
        return COPY_SYMBOLS + 2, EMBEDDING_DIM, COPY_SYMBOLS
    if task == "gap":
        vocab = gap_task(1, 0, seed=0, n_countries=GAP_COUNTRIES).vocab
        return len(vocab), EMBEDDING_DIM, GAP_COUNTRIES
    raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")


def task_model(cell: str, task: str, hidden_size: int, *, seed: int,
               forget_bias: float | None = None) -> SequenceModel:
    """The :class:`companion.models.SequenceModel` of kind ``cell`` sized for ``task``."""
    vocab_size, input_size, output_size = task_sizes(task)
    return SequenceModel(cell, vocab_size, input_size, hidden_size, output_size, seed=seed,
                         forget_bias=forget_bias)


def _loss_and_score(task: str, model: SequenceModel, inputs, targets):
    """Training loss (a tensor) and the task's score (a float) on one batch."""
    if task == "adding":
        prediction = model(inputs)[0, :, 0]
        loss = nn.functional.mse_loss(prediction, targets)
        return loss, float(loss.detach())
    if task == "copy":
        logits = model(inputs, n_out=targets.shape[0])  # (K, B, A)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                           targets.reshape(-1))
    else:
        logits = model(inputs)[0]  # (B, C)
        loss = nn.functional.cross_entropy(logits, targets)
    score = float((logits.argmax(-1) == targets).double().mean())
    return loss, score


# ---------------------------------------------------------------------------------------------
# One run, and a resumable sweep


@dataclass(frozen=True)
class SweepConfig:
    """Everything that defines a sweep; stored in the results file's first line.

    ``lengths`` maps each task to its lengths; ``lstm_hidden`` sets the parameter budget:
    every model gets about as many recurrent parameters as an LSTM with this hidden size.
    """

    lengths: dict = field(default_factory=lambda: {
        "adding": [10, 25, 50, 100], "copy": [5, 10, 20, 40], "gap": [5, 10, 20, 40]})
    models: tuple = ("rnn", "lstm", "lstm_fb1", "gru", "cifg")
    seeds: tuple = (0, 1, 2)
    steps: int = 1500
    batch_size: int = 64
    lr: float = 3e-3
    clip_norm: float = 1.0
    lstm_hidden: int = 32
    eval_every: int = 50
    n_test: int = 1000
    timing_lengths: tuple = (10, 25, 50, 100, 200)
    timing_repeats: int = 30

    def runs(self) -> list[tuple[str, str, int, int]]:
        """Every ``(task, model, length, seed)``, shortest runs first within a task."""
        return [(task, model, length, seed)
                for task, lengths in self.lengths.items()
                for length in lengths
                for model in self.models
                for seed in self.seeds]

    def as_json(self) -> dict:
        data = asdict(self)
        data["models"], data["seeds"] = list(self.models), list(self.seeds)
        data["timing_lengths"] = list(self.timing_lengths)
        return data


FULL = SweepConfig()
TINY = SweepConfig(lengths={"adding": [6], "copy": [2], "gap": [1]}, models=("rnn", "gru"),
                   seeds=(0,), steps=20, eval_every=10, n_test=64, lstm_hidden=8,
                   timing_lengths=(5,), timing_repeats=3)


def hidden_sizes(task: str, config: SweepConfig) -> dict[str, int]:
    """Parameter-matched hidden size of each model for ``task``."""
    _, input_size, _ = task_sizes(task)
    budget = int(param_count("lstm", input_size, config.lstm_hidden))
    return {model: matched_hidden_size(MODELS[model][0], input_size, budget)
            for model in config.models}


def run_one(task: str, model: str, length: int, seed: int,
            config: SweepConfig = FULL) -> dict:
    """Train one model and return its record (JSON-ready).

    Every step draws a fresh batch (seeded by ``seed`` and the step), so the model never sees
    the same sequence twice and cannot memorise; the test set is the same for every model
    and seed of a given task and length. The loss is backpropagated through the whole
    sequence, the global gradient norm clipped to ``config.clip_norm``, and Adam takes a step
    (:func:`companion.training.train`). Time per step counts the forward pass, the backward
    pass and the update, not the data. A run whose loss or gradient becomes inf or NaN stops
    there; its ``final_score`` is NaN and it does not succeed.
    """
    spec = TASKS[task]
    cell, forget_bias = MODELS[model]
    hidden = hidden_sizes(task, config)[model]
    torch.manual_seed(seed)
    net = task_model(cell, task, hidden, seed=seed, forget_bias=forget_bias)
    test_inputs, test_targets = task_batch(task, config.n_test, length, seed=10_000 + length)

    def next_batch(step):
        return task_batch(task, config.batch_size, length, seed=seed * 1_000_003 + step)

    def loss_of(net, batch):
        return _loss_and_score(task, net, *batch)[0]

    @torch.no_grad()
    def evaluate(net) -> float:
        return _loss_and_score(task, net, test_inputs, test_targets)[1]

    start = time.perf_counter()
    history = train(net, next_batch, loss_of, steps=config.steps, lr=config.lr,
                    clip_norm=config.clip_norm, evaluate=evaluate,
                    eval_every=config.eval_every)
    diverged = history.diverged_at is not None
    final = math.nan if diverged else history.scores[-1]
    return {
        "task": task, "model": model, "cell": cell, "forget_bias": forget_bias,
        "length": length, "seed": seed, "hidden_size": hidden,
        "recurrent_params": int(param_count(cell, task_sizes(task)[1], hidden)),
        "total_params": sum(p.numel() for p in net.parameters()),
        "eval_steps": history.eval_steps, "score": history.scores,
        "train_loss": [history.mean_loss_before(step, config.eval_every)
                       for step in history.eval_steps[1:]],
        "final_score": final,
        "success": spec.succeeded(final),
        "diverged_at": history.diverged_at,
        "ms_per_step": 1000 * statistics.median(history.step_seconds),
        "wall_s": time.perf_counter() - start,
    }


def time_per_step(models: dict[str, tuple[str, int]], task: str = "adding", length: int = 50,
                  *, batch_size: int = 64, repeats: int = 30, seed: int = 0) -> dict[str, float]:
    """Median wall-clock milliseconds of one training step (forward, backward, clipping,
    Adam update) for each model, on the same batch.

    ``models`` maps a label to ``(cell, hidden_size)``. The models take turns, one step each
    per round, so that a change in the machine's load during the measurement affects them
    all alike; after two warm-up rounds, ``repeats`` rounds are timed.
    """
    inputs, targets = task_batch(task, batch_size, length, seed=seed)
    nets = {}
    for label, (cell, hidden) in models.items():
        net = task_model(cell, task, hidden, seed=seed)
        nets[label] = (net, torch.optim.Adam(net.parameters(), lr=1e-3))
    times = {label: [] for label in models}
    for round_ in range(repeats + 2):
        for label, (net, optimizer) in nets.items():
            tic = time.perf_counter()
            loss, _ = _loss_and_score(task, net, inputs, targets)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            if round_ >= 2:
                times[label].append(time.perf_counter() - tic)
    return {label: 1000 * statistics.median(values) for label, values in times.items()}


def _timing_models(config: SweepConfig) -> dict[str, tuple[str, int]]:
    """The cells that have a PyTorch kernel (``nn.RNN``, ``nn.LSTM``, ``nn.GRU``) at matched
    parameter counts, and at the LSTM's hidden size.  Kinds without one (the CIFG, a loop
    written in Python) are left out: their time would measure our loop, not the cell."""
    matched = hidden_sizes("adding", config)
    built_in = [kind for kind in cells.KINDS if cells.get(kind).torch_class is not None]
    models = {f"{cell} (matched, H={matched[cell]})": (cell, matched[cell])
              for cell in built_in if cell in matched}
    models.update({f"{cell} (H={config.lstm_hidden})": (cell, config.lstm_hidden)
                   for cell in built_in if cell != "lstm"})
    return models


def _key(record: dict) -> tuple:
    if record.get("type") == "timing":
        return "timing", record["length"]
    return record["task"], record["model"], record["length"], record["seed"]


def load_sweep(path=SWEEP_FILE) -> tuple[dict, list[dict], dict | None]:
    """``(meta, runs, summary)`` from a results file written by :func:`run_sweep`.

    ``meta`` holds the configuration, ``runs`` one record per finished run (training runs have
    ``type == "run"``, time-per-step measurements ``type == "timing"``), ``summary`` the
    latest summary line (total time, machine), or ``None`` if no sweep has finished. A line
    cut short by an interruption is ignored (that run is redone on the next call).
    """
    meta, runs, summary = {}, {}, None
    path = Path(path)
    if not path.exists():
        return meta, [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        kind = item.get("type")
        if kind == "meta":
            meta = item
        elif kind in ("run", "timing"):
            runs[_key(item)] = item
        elif kind == "summary":
            summary = item
    return meta, list(runs.values()), summary


def _append(path: Path, item: dict) -> None:
    with open(path, "a+", encoding="utf-8") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() > 0:  # a run interrupted mid-line leaves no newline: start afresh
            handle.seek(handle.tell() - 1)
            if handle.read(1) != "\n":
                handle.write("\n")
        handle.write(json.dumps(item) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _extends(new: dict, old: dict) -> bool:
    """Whether configuration ``new`` is ``old`` with models added after its own."""
    same = {key: value for key, value in new.items() if key != "models"}
    return (same == {key: value for key, value in old.items() if key != "models"}
            and new["models"][:len(old["models"])] == old["models"])


def run_sweep(config: SweepConfig = FULL, path=SWEEP_FILE, *, progress: bool = True) -> list:
    """Run every ``(task, model, length, seed)`` of ``config`` not yet in ``path``.

    Each finished run is appended to ``path`` at once, so an interrupted sweep loses at most
    the run in progress; calling again continues where it stopped. The file's first line
    records the configuration, and a file made with another configuration is refused, unless
    ``config`` only adds models at the end of the file's list: then a new configuration line is
    appended and only the new models' runs are made (timings are not redone). A
    summary line is appended whenever the sweep is complete: ``training_seconds``, the sum of
    the wall-clock time of every run and measurement in the file (the sweep's duration, however
    many times it was interrupted), the machine and the library versions.

    Returns:
        All run records in the file, old and new.
    """
    from tqdm.auto import tqdm

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta, runs, _ = load_sweep(path)
    if meta and meta["config"] != config.as_json():
        if not _extends(config.as_json(), meta["config"]):
            raise ValueError(f"{path} was made with another configuration; "
                             "use another file or delete it")
        meta = {}  # the same sweep with models added: record the new configuration
    if not meta:
        _append(path, {"type": "meta", "config": config.as_json(),
                       "created": time.strftime("%Y-%m-%d %H:%M:%S")})
    done = {_key(run) for run in runs}
    everything = [("timing", length) for length in config.timing_lengths] + config.runs()
    todo = [key for key in everything if key not in done]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    started = time.perf_counter()
    try:
        bar = tqdm(total=len(everything), initial=len(everything) - len(todo),
                   desc="sweep", disable=not progress)
        for key in todo:
            if key[0] == "timing":
                bar.set_postfix_str(f"time per step, length={key[1]}")
                record = _timing_record(config, key[1])
            else:
                task, model, length, seed = key
                bar.set_postfix_str(f"{task} {model} length={length} seed={seed}")
                record = {"type": "run", **run_one(task, model, length, seed, config)}
            _append(path, record)
            runs.append(record)
            bar.update()
        bar.close()
    finally:
        torch.set_num_threads(threads)
    if todo:
        _append(path, {
            "type": "summary", "runs": len(runs),
            "training_seconds": sum(run["wall_s"] for run in runs),
            "last_invocation_seconds": time.perf_counter() - started,
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": one_thread_machine(),
            "python": platform.python_version(), "torch": torch.__version__,
        })
    return runs


def _timing_record(config: SweepConfig, length: int) -> dict:
    """The time per training step of the timing models at ``length``, as a sweep record
    (with when it was measured and the load average just before)."""
    load, tic = os.getloadavg()[0], time.perf_counter()
    models = _timing_models(config)
    ms = time_per_step(models, "adding", length, batch_size=config.batch_size,
                       repeats=config.timing_repeats)
    return {"type": "timing", "task": "adding", "length": length,
            "hidden_size": {label: h for label, (_, h) in models.items()},
            "ms_per_step": ms, "wall_s": time.perf_counter() - tic,
            "measured": time.strftime("%Y-%m-%d %H:%M:%S"), "load_before": load,
            "machine": one_thread_machine(), "torch": torch.__version__}


def retime(config: SweepConfig = FULL, path=SWEEP_FILE, *, progress: bool = True) -> list:
    """Measure the time per training step of every timing length of ``config`` again, and
    append the new records to ``path`` (:func:`load_sweep` keeps the latest record of each
    length). Each record says when it was measured and the load average before it, which
    should be near 0: the models take turns, which protects their ratios from a load that
    changes, but a steady load of other work slows every step and moves the ratios."""
    from tqdm.auto import tqdm

    meta, _, _ = load_sweep(path)
    if not meta or meta["config"] != config.as_json():
        raise ValueError(f"{path} holds no sweep made with this configuration")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    records = []
    try:
        for length in tqdm(config.timing_lengths, desc="time per step", disable=not progress):
            record = _timing_record(config, length)
            _append(Path(path), record)
            records.append(record)
    finally:
        torch.set_num_threads(threads)
    return records


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m companion.experiments",
        description="Train RNN, LSTM, GRU and CIFG on the adding, copy and gap tasks "
                    "(resumable).")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--full", action="store_true", help="the chapter's full sweep")
    which.add_argument("--tiny", action="store_true", help="a seconds-long smoke test")
    which.add_argument("--retime", action="store_true",
                       help="measure the full sweep's time per step again (well under a "
                            "minute; on an otherwise idle machine)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"results file (default: {SWEEP_FILE} for --full)")
    args = parser.parse_args(argv)
    if args.retime:
        path = args.out or SWEEP_FILE
        records = retime(FULL, path)
        print(f"{len(records)} timing records appended to {path}")
        return 0
    config = FULL if args.full else TINY
    path = args.out or (SWEEP_FILE if args.full else Path("sweep_tiny.jsonl"))
    runs = run_sweep(config, path)
    print(f"{len(runs)} runs in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
