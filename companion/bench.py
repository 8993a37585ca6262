"""Benchmark: the NumPy cells' forward + backward against ``torch.nn`` on the CPU, each alone.

``python -m companion.bench`` times every cell of :mod:`companion.cells` at the default size
(``T=100, B=32, D=H=128``, float32, forward + backward) with 1 and 2 threads;
``--grid`` times the grid of the course's README (cells x 5 sizes x threads 1 and 2);
``--quick`` makes every measurement short (a smoke test, not a measurement).

How it measures:

* **Each library alone.** Every measurement runs in a fresh subprocess that imports only the
  library it times (the NumPy worker never imports torch), with ``OMP_NUM_THREADS``,
  ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` set to the thread count before anything is
  imported (and ``torch.set_num_threads``).  Timing both in one process lets OpenBLAS's spinning
  idle threads steal torch's cores, and hides page faults; separate processes avoid both.
* **Median and spread.** A worker times forward + backward repeatedly (after warm-up) until it
  has run at least ``--min-time`` seconds and ``--repeats`` times; the report gives the median
  and the interquartile range.  ``--rounds`` repeats every (NumPy, torch) pair of processes.
* **The machine's load** is read with ``os.getloadavg()`` before and after the run and compared
  with the number of CPUs; a loaded machine gets a warning, since its timings mean little.
* **The matmul floor**: the NumPy worker also times the cell's own matmuls alone (input
  projections, the recurrent product of every step forward and backward, the input and weight
  gradients), with preallocated outputs.  No implementation built on these BLAS calls can be
  faster; "matmul share" is floor / NumPy time and "x floor" its inverse.
* **The exp/tanh floor**: it also times the exp and tanh calls the fast kernels make each step
  (:data:`TRANSCENDENTALS`) alone, on arrays of the same shapes.  NumPy runs them on one core
  whatever the thread count, and at the default size they cost a sizeable fraction of the
  matmuls: "mm+exp" is (matmuls + exp/tanh calls) / matmuls, the lowest "x floor" a kernel
  making these calls can reach, however few its other calls.
* **Memory**: bytes held by the forward's cache (arrays other than the inputs and parameters)
  next to the bytes of the tensors torch's autograd saves for the backward, measured with
  ``torch.autograd.graph.saved_tensors_hooks`` (again without inputs and parameters).

* **Targets**: the report ends by checking the rows against the speed targets in
  :data:`TARGETS` (RNN and GRU at most torch's time; the LSTM at most 1.3x its matmul floor at
  batch >= 16, at most 2.5x torch below batch 16, at most 1.5x torch at the default size
  with 1 thread), with the points that miss them, and lists the unsteady points: those whose
  repeats spread over more than 20% of their median (a single run of them says little).

FLOP count (matmuls only): forward ``2 T B G H (D + H)`` with ``G`` weight blocks (1 RNN, 3 GRU,
4 LSTM), backward twice that (input, recurrent and weight gradients).

Torch runs its LSTM on the CPU as one fused oneDNN kernel over the whole sequence
(``aten::mkldnn_rnn_layer``, reported in the "torch kernel" column), while its RNN and GRU go step
by step through autograd.  The NumPy cells are a Python loop of NumPy calls: at small batch the
time is dominated by the per-call overhead (about a microsecond per call, tens of calls a step),
and the matmuls alone already take about as long as torch's fused LSTM.  Where the LSTM stays
above 1.5x torch the report says which of the two applies.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

from companion import cells

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
DEFAULT_SIZE = (100, 32, 128)  # (T, B, H) with D = H
GRID_SIZES = ((100, 32, 128), (50, 1, 32), (100, 64, 256), (200, 16, 512), (1000, 8, 64))
GRID_THREADS = (1, 2)
LOADED_SHARE = 0.25  # warn when others keep more than this share of the CPUs busy
FUSED_KERNEL = "aten::mkldnn_rnn_layer"


# --------------------------------------------------------------------------- arithmetic


def matmul_flops(steps: int, batch: int, input_size: int, hidden: int, gate_count: int) -> int:
    """Matmul FLOPs of one forward + backward: forward ``2 T B G H (D + H)``, backward twice."""
    return 3 * 2 * steps * batch * gate_count * hidden * (input_size + hidden)


def summarize(values) -> dict:
    """Median, quartiles, min and count of a list of seconds."""
    values = sorted(values)
    if len(values) >= 2:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    else:
        q1 = q3 = values[0]
    return {"median": statistics.median(values), "q1": q1, "q3": q3, "min": values[0],
            "n": len(values)}


def cpu_count() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def load_warning(when: str, load: float, cpus: int, own: float = 0.0) -> str | None:
    """A warning if other processes keep more than ``LOADED_SHARE`` of the CPUs busy.

    ``load`` is the 1-minute load average, ``own`` what this bench itself contributes to it
    (up to its thread count after it has run, 0 before).
    """
    others = load - own
    if others <= LOADED_SHARE * cpus:
        return None
    return (f"WARNING: the machine is loaded {when} the run: 1-minute load average {load:.2f} "
            f"on {cpus} CPU(s) (about {max(others, 0):.1f} beyond this bench); timings are "
            "unreliable, re-measure on an idle machine")


# The transcendental calls the fast kernels (companion/fast/) make each step: (NumPy function,
# how many (B, H) gate blocks it runs on).  Each cell computes its sigmoid gates, and the LSTM's
# and CIFG's tanh gate, in one exp call (companion/fast/_ops.py); the LSTM's and CIFG's tanh
# of the cell, the GRU's candidate and the RNN's state take one tanh each.  The backward needs
# none.  tests/test_bench.py checks these against the kernels' calls.
TRANSCENDENTALS = {
    "rnn": (("tanh", 1),),
    "lstm": (("exp", 4), ("tanh", 1)),
    "gru": (("exp", 2), ("tanh", 1)),
    "cifg": (("exp", 3), ("tanh", 1)),
}


# --------------------------------------------------------------------------- workers


def _inputs(kind: str, size, seed: int = 0):
    import numpy as np

    steps, batch, hidden = size
    rng = np.random.default_rng(seed)
    params = cells.get(kind).module.init_params(hidden, hidden, seed=seed, dtype=np.float32)
    x = rng.standard_normal((steps, batch, hidden)).astype(np.float32)
    d_outputs = rng.standard_normal((steps, batch, hidden)).astype(np.float32)
    return params, x, d_outputs


def _time(function, min_time: float, min_repeats: int, max_repeats: int = 1000) -> list[float]:
    for _ in range(2):  # warm-up: allocator, BLAS thread pool, torch's kernels
        function()
    times, start = [], time.perf_counter()
    while len(times) < min_repeats or (time.perf_counter() - start < min_time
                                       and len(times) < max_repeats):
        begin = time.perf_counter()
        function()
        times.append(time.perf_counter() - begin)
    return times


def _owned_bytes(value, exclude: set[int], seen: set[int]) -> int:
    """Bytes of the distinct NumPy buffers in a (nested) cache, without those in ``exclude``."""
    import numpy as np

    if isinstance(value, dict):
        return sum(_owned_bytes(v, exclude, seen) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_owned_bytes(v, exclude, seen) for v in value)
    if not isinstance(value, np.ndarray):
        return 0
    base = _root(value)
    if id(base) in exclude or id(base) in seen:
        return 0
    seen.add(id(base))
    return base.nbytes


def _root(array):
    """The array that owns the memory of a (chain of) NumPy views."""
    while getattr(array, "base", None) is not None and hasattr(array.base, "base"):
        array = array.base
    return array


def cache_bytes(cache: dict, inputs) -> int:
    """Bytes the cache holds beyond the arrays in ``inputs`` (the data and the parameters)."""
    exclude = {id(_root(a)) for a in inputs}
    return _owned_bytes(cache, exclude, set())


def matmul_floor(kind: str, size, dtype="float32", seed: int = 0):
    """A function running the cell's matmuls of one forward + backward, outputs preallocated."""
    import numpy as np

    steps, batch, hidden = size
    gates = cells.get(kind).gate_count * hidden
    rng = np.random.default_rng(seed)

    def draw(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x, w_ih, w_hh = draw(steps * batch, hidden), draw(gates, hidden), draw(gates, hidden)
    w_hh_t = np.ascontiguousarray(w_hh.T)
    hs, da = draw(steps + 1, batch, hidden), draw(steps, batch, gates)
    acts, recurrent, dh = draw(steps * batch, gates), draw(batch, gates), draw(batch, hidden)
    dx, dw_ih, dw_hh = draw(steps * batch, hidden), draw(gates, hidden), draw(gates, hidden)
    da_flat, hs_flat = da.reshape(steps * batch, gates), hs[:-1].reshape(steps * batch, hidden)

    def run():
        np.matmul(x, w_ih.T, out=acts)  # input projections of all steps
        for t in range(steps):
            np.matmul(hs[t], w_hh_t, out=recurrent)  # forward recurrence
        for t in range(steps - 1, -1, -1):
            np.matmul(da[t], w_hh, out=dh)  # backward recurrence
        np.matmul(da_flat, w_ih, out=dx)
        np.matmul(da_flat.T, x, out=dw_ih)
        np.matmul(da_flat.T, hs_flat, out=dw_hh)

    return run


def transcendental_floor(kind: str, size, dtype="float32", seed: int = 0):
    """A function making the exp and tanh calls of one forward (:data:`TRANSCENDENTALS`) on
    preallocated arrays of standard normal numbers (a step's pre-activations)."""
    import numpy as np

    steps, batch, hidden = size
    rng = np.random.default_rng(seed)
    calls = [(getattr(np, name), rng.standard_normal((steps, blocks, batch, hidden)).astype(dtype),
              np.empty((blocks, batch, hidden), dtype)) for name, blocks in TRANSCENDENTALS[kind]]

    def run():
        for t in range(steps):
            for function, inputs, out in calls:
                function(inputs[t], out=out)

    return run


def numpy_worker(kind: str, size, threads: int, min_time: float, min_repeats: int) -> dict:
    """Time the NumPy cell (its default, fast path) and its matmul floor."""
    cell = cells.get(kind)
    params, x, d_outputs = _inputs(kind, size)

    def step():
        _, _, cache = cell.module.forward(x, params, None, **cell.default_options)
        cell.module.backward(d_outputs, cache)

    _, _, cache = cell.module.forward(x, params, None, **cell.default_options)
    return {
        "times": _time(step, min_time, min_repeats),
        "floor_times": _time(matmul_floor(kind, size), min_time, min_repeats),
        "exp_times": _time(transcendental_floor(kind, size), min_time, min_repeats),
        "cache_bytes": cache_bytes(cache, [x, *params.values()]),
    }


def torch_worker(kind: str, size, threads: int, min_time: float, min_repeats: int) -> dict:
    """Time ``torch.nn.<torch_class>``; report its saved-tensor bytes and its fused kernel."""
    import torch

    from companion.interop import to_torch

    torch.set_num_threads(threads)
    cell = cells.get(kind)
    params, x, d_outputs = _inputs(kind, size)
    module = to_torch(params, getattr(torch.nn, cell.torch_class)(x.shape[2], size[2]))
    module = module.to(torch.float32)
    x_torch = torch.from_numpy(x).requires_grad_(True)
    d_out_torch = torch.from_numpy(d_outputs)

    def step():
        module.zero_grad(set_to_none=True)
        x_torch.grad = None
        outputs, _ = module(x_torch)
        outputs.backward(d_out_torch)

    times = _time(step, min_time, min_repeats)
    inputs = {p.untyped_storage().data_ptr() for p in module.parameters()}
    inputs.add(x_torch.untyped_storage().data_ptr())
    saved = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in inputs:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        outputs, _ = module(x_torch)
    del outputs
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        step()
    names = {event.name for event in profile.events()}
    return {"times": times, "saved_bytes": sum(saved.values()),
            "fused": FUSED_KERNEL in names, "torch_threads": torch.get_num_threads()}


WORKERS = {"numpy": numpy_worker, "torch": torch_worker}


def run_worker(library: str, kind: str, size, threads: int, min_time: float,
               min_repeats: int) -> dict:
    """Run one measurement in a fresh Python process with the thread variables set."""
    spec = {"library": library, "kind": kind, "size": list(size), "threads": threads,
            "min_time": min_time, "min_repeats": min_repeats}
    env = dict(os.environ, **{var: str(threads) for var in THREAD_VARS})
    done = subprocess.run([sys.executable, "-m", "companion.bench", "--worker", json.dumps(spec)],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{library} worker for {kind} {size} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _worker_main(spec_json: str) -> int:
    spec = json.loads(spec_json)
    function = WORKERS[spec.pop("library")]
    spec["size"] = tuple(spec["size"])
    print(json.dumps(function(**spec)))
    return 0


# --------------------------------------------------------------------------- the plan


def plan(kinds, sizes, threads) -> list[dict]:
    """Every measurement point: one per (cell, size, thread count)."""
    return [{"kind": cells.get(kind).kind, "size": tuple(size), "threads": n}
            for kind in kinds for size in sizes for n in threads]


def measure(points, *, min_time: float, min_repeats: int, rounds: int = 1,
            runner=run_worker, log=None) -> list[dict]:
    """Time every point: NumPy and torch alternate in separate processes, ``rounds`` times."""
    rows = []
    for point in points:
        has_torch = cells.get(point["kind"]).torch_class is not None
        libraries = ["numpy", "torch"] if has_torch else ["numpy"]
        results = {library: [] for library in libraries}
        for round_index in range(rounds):
            order = libraries if round_index % 2 == 0 else libraries[::-1]
            for library in order:
                results[library].append(runner(library, point["kind"], point["size"],
                                               point["threads"], min_time, min_repeats))
        rows.append(_row(point, results))
        if log:
            log(format_row(rows[-1]))
    return rows


def _row(point, results) -> dict:
    cell = cells.get(point["kind"])
    steps, batch, hidden = point["size"]
    numpy_runs = results["numpy"]
    row = dict(point, title=cell.title,
               flops=matmul_flops(steps, batch, hidden, hidden, cell.gate_count),
               numpy=summarize([t for run in numpy_runs for t in run["times"]]),
               floor=summarize([t for run in numpy_runs for t in run["floor_times"]]),
               exp=summarize([t for run in numpy_runs for t in run["exp_times"]]),
               cache_bytes=numpy_runs[0]["cache_bytes"], torch=None, saved_bytes=None,
               fused=None)
    if results.get("torch"):
        torch_runs = results["torch"]
        row.update(torch=summarize([t for run in torch_runs for t in run["times"]]),
                   saved_bytes=torch_runs[0]["saved_bytes"], fused=torch_runs[0]["fused"])
    return row


# --------------------------------------------------------------------------- the report


def ratio(row) -> float | None:
    """NumPy median / torch median (``None`` without a torch class)."""
    return None if row["torch"] is None else row["numpy"]["median"] / row["torch"]["median"]


def why_slower(row) -> str | None:
    """Why the NumPy cell stays above 1.5x torch, if it does."""
    r = ratio(row)
    if r is None or r <= 1.5:
        return None
    steps, batch, _ = row["size"]
    numpy_s, floor_s = row["numpy"]["median"], row["floor"]["median"]
    per_step_us = (numpy_s - floor_s) / steps * 1e6
    reasons = []
    if row["fused"]:
        reasons.append(f"torch runs one fused oneDNN kernel ({FUSED_KERNEL}); NumPy's matmuls "
                       f"alone take {floor_s / row['torch']['median']:.2f}x torch's time")
    if batch < 16:
        reasons.append(f"per-step overhead at batch {batch}: {per_step_us:.0f} us a step "
                       "outside the matmuls, tens of NumPy calls of about 1 us each")
    elif floor_s < 0.75 * numpy_s:
        of_it = ("" if "exp" not in row else
                 f", {row['exp']['median'] / steps * 1e6:.0f} us of it the exp and tanh calls")
        reasons.append(f"elementwise work: {per_step_us:.0f} us a step outside the matmuls"
                       + of_it)
    return "; ".join(reasons) or None


def _point(row) -> str:
    steps, batch, hidden = row["size"]
    return f"{row['title']} T={steps} B={batch} H={hidden} {row['threads']} thread(s)"


def x_floor(row) -> float:
    """NumPy's time over its own matmuls' time (the matmul floor)."""
    return row["numpy"]["median"] / row["floor"]["median"]


def mm_plus_exp(row) -> float | None:
    """(matmuls + exp/tanh calls) / matmuls, each timed alone: the lowest ``x_floor`` a kernel
    making these calls can reach (``None`` for grids measured before it was)."""
    if "exp" not in row:
        return None
    return (row["floor"]["median"] + row["exp"]["median"]) / row["floor"]["median"]


class Target(NamedTuple):
    """A speed target: the rows it ``covers``, the ``measure`` compared with ``limit``, and
    ``why(row, rows)``, which says for a row that misses it what that row can reach at best."""

    what: str
    covers: Callable[[dict], bool]
    measure: Callable[[dict], float | None]
    limit: float
    why: Callable[[dict, list], str] | None = None


def _floor_notes(row, rows) -> str:
    """For a row over its matmul limit: how far the exp/tanh calls alone already take it and,
    with more than one thread, how far the work NumPy runs on one core does."""
    least = mm_plus_exp(row)
    note = "" if least is None else f", its matmuls and exp/tanh calls alone {least:.2f}x"
    one_core = one_core_bound(row, rows)
    if one_core is not None:
        note += (f", its matmuls plus its 1-thread time outside them (NumPy's elementwise "
                 f"calls run on one core) {one_core:.2f}x")
    return note


def one_core_bound(row, rows) -> float | None:
    """For a row with more than one thread: (its matmuls + the 1-thread row's time outside
    its matmuls) / its matmuls, the x floor it would reach if only the matmuls sped up.

    NumPy's elementwise functions run on one core whatever the BLAS thread count, so the time
    a cell spends outside its matmuls with 1 thread is, roughly, what it still spends with 2.
    """
    if row["threads"] == 1:
        return None
    single = next((other for other in rows if other["kind"] == row["kind"]
                   and other["size"] == row["size"] and other["threads"] == 1), None)
    if single is None:
        return None
    outside = single["numpy"]["median"] - single["floor"]["median"]
    return 1 + outside / row["floor"]["median"]


# The speed targets the NumPy cells are held to (issue 15).  Torch's LSTM is one fused kernel,
# so the LSTM is held to NumPy's own limit (its matmuls) where the batch is large, and to a
# multiple of torch elsewhere.
TARGETS = (
    Target("RNN and GRU at most torch's time", lambda r: r["kind"] in ("rnn", "gru"), ratio, 1.0),
    Target("LSTM at most 1.3x its own matmuls, batch >= 16",
           lambda r: r["kind"] == "lstm" and r["size"][1] >= 16, x_floor, 1.3,
           why=_floor_notes),
    Target("LSTM at most 2.5x torch, batch < 16",
           lambda r: r["kind"] == "lstm" and r["size"][1] < 16, ratio, 2.5),
    Target("LSTM at most 1.5x torch, default size, 1 thread",
           lambda r: r["kind"] == "lstm" and tuple(r["size"]) == DEFAULT_SIZE
           and r["threads"] == 1, ratio, 1.5),
)


def target_results(rows) -> list[tuple[Target, list[dict], list[dict]]]:
    """For each target that some row covers: ``(target, covered rows, rows that miss it)``."""
    results = []
    for target in TARGETS:
        covered = [row for row in rows if target.covers(row) and target.measure(row) is not None]
        if covered:
            results.append((target, covered,
                            [row for row in covered if target.measure(row) > target.limit]))
    return results


def target_lines(rows) -> list[str]:
    """One line per target that some row covers: how many points meet it, and which miss."""
    lines = []
    for target, covered, missed in target_results(rows):
        line = f"  {target.what}: {len(covered) - len(missed)} of {len(covered)} points"
        if missed:
            line += " (missed: " + "; ".join(
                f"{_point(row)} {target.measure(row):.2f}x"
                + (target.why(row, rows) if target.why else "") for row in missed) + ")"
        lines.append(line)
    return lines


UNSTEADY_SPREAD = 0.2  # an interquartile range wider than this share of the median


def spread(summary) -> float:
    """Interquartile range over the median."""
    return (summary["q3"] - summary["q1"]) / summary["median"]


def unsteady_lines(rows) -> list[str]:
    """The points whose NumPy or torch repeats spread wide: a single run of them says little."""
    lines = []
    for row in rows:
        wide = [f"{library} {spread(row[library]):.0%}" for library in ("numpy", "torch")
                if row[library] is not None and spread(row[library]) > UNSTEADY_SPREAD]
        if wide:
            lines.append(f"  {_point(row)}: {', '.join(wide)}")
    return lines


def _ms(summary) -> str:
    return (f"{summary['median'] * 1e3:8.2f} [{summary['q1'] * 1e3:.2f}-"
            f"{summary['q3'] * 1e3:.2f}]")


HEADER = (f"{'cell':5s} {'T':>5s} {'B':>3s} {'H':>4s} {'thr':>3s} "
          f"{'numpy ms [IQR]':>24s} {'torch ms [IQR]':>24s} {'ratio':>6s} {'GFLOP/s':>8s} "
          f"{'mm share':>8s} {'x floor':>7s} {'mm+exp':>6s} {'cache MB':>8s} {'torch MB':>8s}"
          "  torch kernel")


def format_row(row) -> str:
    steps, batch, hidden = row["size"]
    r = ratio(row)
    share = row["floor"]["median"] / row["numpy"]["median"]
    torch_part = _ms(row["torch"]) if row["torch"] else "(no torch class)"
    saved = "-" if row["saved_bytes"] is None else f"{row['saved_bytes'] / 1e6:8.2f}"
    kernel = "-" if row["fused"] is None else ("fused" if row["fused"] else "step by step")
    least = mm_plus_exp(row)
    return (f"{row['title']:5s} {steps:5d} {batch:3d} {hidden:4d} {row['threads']:3d} "
            f"{_ms(row['numpy']):>24s} {torch_part:>24s} "
            f"{'-' if r is None else f'{r:.2f}':>6s} "
            f"{row['flops'] / row['numpy']['median'] / 1e9:8.1f} {share:8.0%} "
            f"{x_floor(row):7.2f} {'-' if least is None else f'{least:.2f}':>6s} "
            f"{row['cache_bytes'] / 1e6:8.2f} {saved:>8s}  {kernel}")


def report(rows, *, notes=()) -> str:
    lines = [HEADER, *(format_row(row) for row in rows)]
    explained = [(row, why_slower(row)) for row in rows]
    explained = [(row, why) for row, why in explained if why]
    if explained:
        lines.append("")
        lines.append("Above 1.5x torch:")
        for row, why in explained:
            lines.append(f"  {_point(row)}, {ratio(row):.2f}x: {why}")
    targets = target_lines(rows)
    if targets:
        lines += ["", "Targets (medians; a point meets a target at or below its limit):", *targets]
    unsteady = unsteady_lines(rows)
    if unsteady:
        lines += ["", f"Unsteady (interquartile range over {UNSTEADY_SPREAD:.0%} of the median; "
                  "re-measure before trusting these points):", *unsteady]
    lines += ["", *notes]
    return "\n".join(lines)


def machine_notes(load_before, load_after, cpus: int, threads) -> list[str]:
    import platform

    notes = [
        f"forward + backward, float32, D = H; median [interquartile range] of the repeats; each "
        f"library timed alone in its own process with {', '.join(THREAD_VARS)} set to the "
        "thread count; NumPy's BLAS uses exactly that many threads.",
        "mm share = time of the cell's matmuls alone (preallocated outputs) / NumPy's time; "
        "x floor = its inverse; mm+exp = (the matmuls + the cell's exp and tanh calls, each "
        "timed alone) / the matmuls, the lowest x floor a kernel making those calls can reach; "
        "cache MB = the forward cache's arrays, torch MB = the tensors autograd saves (inputs "
        "and parameters excluded from both).",
        f"machine: {cpus} CPU(s) available, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}; load average {load_before:.2f} before, "
        f"{load_after:.2f} after.",
    ]
    for warning in (load_warning("before", load_before, cpus),
                    load_warning("after", load_after, cpus, own=max(threads))):
        if warning:
            notes.append(warning)
    return notes


# --------------------------------------------------------------------------- command line


def _size(text: str):
    try:
        steps, batch, hidden = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a size is T,B,H (three integers), got {text!r}") from None
    if min(steps, batch, hidden) < 1:
        raise argparse.ArgumentTypeError(f"T, B and H must be positive, got {text!r}")
    return steps, batch, hidden


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _parse(argv):
    parser = argparse.ArgumentParser(prog="python -m companion.bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", action="store_true",
                        help="cells x sizes " + " ".join(f"({t},{b},{h})" for t, b, h
                                                         in GRID_SIZES) + " x threads 1, 2")
    parser.add_argument("--quick", action="store_true", help="short measurements (smoke test)")
    parser.add_argument("--cells", nargs="+", default=None, choices=list(cells.KINDS),
                        help="cell kinds (default: all in companion.cells)")
    parser.add_argument("--sizes", nargs="+", type=_size, default=None,
                        help="sizes T,B,H (D = H); default 100,32,128 (the grid's with --grid)")
    parser.add_argument("--threads", nargs="+", type=_positive, default=None,
                        help="thread counts (default 1 2, capped at the CPUs available)")
    parser.add_argument("--min-time", type=float, default=None,
                        help="seconds each worker keeps timing (default 1.0, --quick 0.05)")
    parser.add_argument("--repeats", type=_positive, default=None,
                        help="at least this many timed runs per worker (default 7, --quick 2)")
    parser.add_argument("--rounds", type=_positive, default=1,
                        help="processes per library and point, alternating (default 1)")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _utc_now() -> str:
    import datetime

    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%MZ")


def main(argv=None, runner=run_worker) -> int:
    args = _parse(argv)
    if args.worker:
        return _worker_main(args.worker)
    cpus = cpu_count()
    kinds = args.cells or list(cells.KINDS)
    sizes = args.sizes or (list(GRID_SIZES) if args.grid else [DEFAULT_SIZE])
    threads = args.threads or [n for n in GRID_THREADS if n <= cpus] or [1]
    min_time = args.min_time if args.min_time is not None else (0.05 if args.quick else 1.0)
    repeats = args.repeats or (2 if args.quick else 7)
    started = _utc_now()
    load_before = os.getloadavg()[0]
    warning = load_warning("before", load_before, cpus)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    print(HEADER, file=sys.stderr, flush=True)
    rows = measure(plan(kinds, sizes, threads), min_time=min_time, min_repeats=repeats,
                   rounds=max(1, args.rounds), runner=runner,
                   log=lambda line: print(line, file=sys.stderr, flush=True))
    notes = machine_notes(load_before, os.getloadavg()[0], cpus, threads)
    print(report(rows, notes=notes))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"started": started, "finished": _utc_now(), "rows": rows,
                       "notes": notes}, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
