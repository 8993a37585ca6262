"""companion.bench: the plan, the rows, the report and the load warning, with a fake runner
(nothing here asserts anything about timings), plus the real workers on a tiny size."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from companion import bench, cells

from .lesson_tools import ROOT


def fake_runner(calls):
    """A runner that records its calls and returns fixed times: NumPy 2 ms, torch 1 ms."""

    def run(library, kind, size, threads, min_time, min_repeats):
        calls.append((library, kind, tuple(size), threads))
        if library == "numpy":
            return {"times": [0.003, 0.002, 0.002], "floor_times": [0.001],
                    "exp_times": [0.0002], "cache_bytes": 4_000_000}
        return {"times": [0.001, 0.001], "saved_bytes": 2_000_000, "fused": kind == "lstm",
                "torch_threads": threads}

    return run


def test_grid_has_a_row_for_every_cell_size_and_thread_count(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "cpu_count", lambda: 2)
    calls = []
    saved = tmp_path / "grid.json"
    assert bench.main(["--grid", "--json", str(saved)], runner=fake_runner(calls)) == 0
    out = capsys.readouterr().out
    record = json.loads(saved.read_text())
    assert bench.report(record["rows"], notes=record["notes"]) in out  # what the README pastes
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ", record["started"])
    assert record["finished"] >= record["started"]
    titles = {cell.title for cell in cells.CELLS.values()}
    rows = [line.split() for line in out.splitlines() if line.split()[:1] and
            line.split()[0] in titles and not line.startswith(" ")]
    expected = {(cell.title, T, B, H, n) for cell in cells.CELLS.values()
                for T, B, H in bench.GRID_SIZES for n in (1, 2)}
    assert {(r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows} == expected
    assert len(rows) == len(expected) == len(cells.CELLS) * 5 * 2
    # Each library in its own call, NumPy first in round 0; torch only for cells that have it.
    for kind, cell in cells.CELLS.items():
        libraries = [c[0] for c in calls if c[1] == kind]
        assert libraries.count("numpy") == 10
        assert libraries.count("torch") == (10 if cell.torch_class else 0)


def test_row_arithmetic():
    calls = []
    (row,) = bench.measure(bench.plan(["lstm"], [(100, 32, 128)], [1]), min_time=0,
                           min_repeats=1, runner=fake_runner(calls))
    assert row["numpy"]["median"] == 0.002 and row["torch"]["median"] == 0.001
    assert bench.ratio(row) == pytest.approx(2.0)
    assert row["flops"] == 3 * 2 * 100 * 32 * 4 * 128 * 256
    line = bench.format_row(row)
    assert " 2.00 " in line and "50%" in line and "fused" in line  # floor 1 ms of 2 ms
    assert " 1.20 " in line  # mm+exp: (1 ms + 0.2 ms) / 1 ms
    assert "4.00" in line and "2.00" in line  # cache MB, torch MB
    del row["exp"]  # a grid measured before the exp/tanh floor was
    assert bench.mm_plus_exp(row) is None and " 2.00      -     4.00 " in bench.format_row(row)


def test_rounds_alternate_the_libraries():
    calls = []
    bench.measure(bench.plan(["gru"], [(3, 2, 4)], [1]), min_time=0, min_repeats=1, rounds=3,
                  runner=fake_runner(calls))
    assert [c[0] for c in calls] == ["numpy", "torch", "torch", "numpy", "numpy", "torch"]


def test_cells_without_torch_class_time_numpy_only(monkeypatch):
    rnn = cells.CELLS["rnn"]
    monkeypatch.setitem(cells.CELLS, "plain", cells.Cell(
        "plain", "Plain", rnn.module_name, rnn.gate_names, rnn.state_names, None, None))
    calls = []
    (row,) = bench.measure(bench.plan(["plain"], [(3, 2, 4)], [1]), min_time=0,
                           min_repeats=1, runner=fake_runner(calls))
    assert [c[0] for c in calls] == ["numpy"]
    assert bench.ratio(row) is None and bench.why_slower(row) is None
    assert "(no torch class)" in bench.format_row(row)


def test_why_slower_names_the_fused_kernel_and_per_step_overhead():
    calls = []
    rows = bench.measure(bench.plan(["lstm", "gru"], [(50, 1, 32)], [1]), min_time=0,
                         min_repeats=1, runner=fake_runner(calls))
    lstm_row, gru_row = rows
    why = bench.why_slower(lstm_row)
    assert bench.FUSED_KERNEL in why and "per-step overhead at batch 1" in why
    assert "step by step" in bench.format_row(gru_row)
    text = bench.report(rows)
    assert "Above 1.5x torch:" in text and bench.FUSED_KERNEL in text


def test_targets_count_the_points_that_meet_them_and_name_those_that_miss():
    rows = bench.measure(bench.plan(["rnn", "lstm", "cifg"], [(100, 32, 128), (50, 1, 32)],
                                    [1, 2]), min_time=0, min_repeats=1, runner=fake_runner([]))
    # fake times: NumPy 2 ms, torch 1 ms, matmuls 1 ms -> ratio 2.0 and 2.0x the floor
    lines = bench.target_lines(rows)
    assert lines == [
        "  RNN and GRU at most torch's time: 0 of 4 points (missed: RNN T=100 B=32 H=128 1 "
        "thread(s) 2.00x; RNN T=100 B=32 H=128 2 thread(s) 2.00x; RNN T=50 B=1 H=32 1 "
        "thread(s) 2.00x; RNN T=50 B=1 H=32 2 thread(s) 2.00x)",
        "  LSTM at most 1.3x its own matmuls, batch >= 16: 0 of 2 points (missed: LSTM T=100 "
        "B=32 H=128 1 thread(s) 2.00x, its matmuls and exp/tanh calls alone 1.20x; LSTM T=100 "
        "B=32 H=128 2 thread(s) 2.00x, its matmuls and exp/tanh calls alone 1.20x, its "
        "matmuls plus its 1-thread time outside them (NumPy's elementwise calls run on one "
        "core) 2.00x)",
        "  LSTM at most 2.5x torch, batch < 16: 2 of 2 points",
        "  LSTM at most 1.5x torch, default size, 1 thread: 0 of 1 points (missed: LSTM T=100 "
        "B=32 H=128 1 thread(s) 2.00x)",
    ]
    assert "Targets (medians" in bench.report(rows)
    cifg_only = [row for row in rows if row["kind"] == "cifg"]  # no target covers the CIFG
    assert bench.target_lines(cifg_only) == [] and "Targets" not in bench.report(cifg_only)


def test_one_core_bound_adds_the_1_thread_time_outside_the_matmuls_to_the_2_thread_matmuls():
    def row(threads, numpy_ms, floor_ms, size=(100, 32, 128)):
        return {"kind": "lstm", "size": list(size), "threads": threads,
                "numpy": {"median": numpy_ms / 1e3}, "floor": {"median": floor_ms / 1e3}}

    one, two = row(1, 45.0, 33.0), row(2, 30.0, 18.0)
    other_size = row(1, 90.0, 20.0, size=(100, 64, 256))
    assert bench.one_core_bound(two, [other_size, one, two]) == pytest.approx(1 + 12 / 18)
    assert bench.one_core_bound(one, [one, two]) is None  # 1 thread: nothing to add
    assert bench.one_core_bound(two, [other_size, two]) is None  # no 1-thread twin measured


def test_unsteady_points_are_those_whose_repeats_spread_over_a_fifth_of_their_median():
    rows = bench.measure(bench.plan(["lstm", "cifg"], [(50, 1, 32)], [1]), min_time=0,
                         min_repeats=1, runner=fake_runner([]))
    # fake NumPy times [3, 2, 2] ms: quartiles 2 and 2.5 ms, a spread of 25%; torch's none
    assert bench.spread(rows[0]["numpy"]) == pytest.approx(0.25)
    assert bench.unsteady_lines(rows) == ["  LSTM T=50 B=1 H=32 1 thread(s): numpy 25%",
                                          "  CIFG T=50 B=1 H=32 1 thread(s): numpy 25%"]
    assert "Unsteady (interquartile range over 20% of the median" in bench.report(rows)
    rows[0]["numpy"].update(q1=0.002, q3=0.0023)  # 15%: steady enough
    assert bench.unsteady_lines(rows[:1]) == []


@pytest.mark.parametrize("load, warned", [(0.2, False), (5.0, True)])
def test_loaded_machine_warning(monkeypatch, capsys, load, warned):
    monkeypatch.setattr(bench.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(bench, "cpu_count", lambda: 2)
    bench.main(["--quick", "--cells", "rnn", "--sizes", "3,2,4"], runner=fake_runner([]))
    captured = capsys.readouterr()
    assert ("WARNING: the machine is loaded before" in captured.err) == warned
    assert ("WARNING: the machine is loaded after" in captured.out) == warned


def test_load_warning_discounts_the_bench_itself():
    assert bench.load_warning("after", 2.3, cpus=4, own=2) is None
    assert bench.load_warning("after", 4.5, cpus=4, own=2) is not None
    assert bench.load_warning("before", 0.9, cpus=4) is None
    assert "load average 1.50 on 2 CPU(s)" in bench.load_warning("before", 1.5, cpus=2)


@pytest.mark.parametrize("argv, message", [
    (["--sizes", "3,2"], "a size is T,B,H (three integers), got '3,2'"),
    (["--sizes", "3,0,4"], "T, B and H must be positive, got '3,0,4'"),
    (["--threads", "0"], "must be a positive integer, got '0'"),
    (["--cells", "lstmm"], "invalid choice: 'lstmm'"),
])
def test_bad_arguments_are_rejected_with_their_text(capsys, argv, message):
    with pytest.raises(SystemExit):
        bench.main(argv, runner=fake_runner([]))
    assert message in capsys.readouterr().err


def test_numpy_worker_measures_the_cache_without_inputs_and_parameters():
    T, B, H = 3, 2, 4
    result = bench.numpy_worker("lstm", (T, B, H), 1, min_time=0.0, min_repeats=1)
    assert len(result["times"]) >= 1 and len(result["floor_times"]) >= 1
    item = np.dtype(np.float32).itemsize
    # hs and cs (T+1, B, H), tanh_cs (T, B, H), acts (T, B, 4H): x and params not counted.
    assert result["cache_bytes"] == item * (2 * (T + 1) * B * H + T * B * H + T * B * 4 * H)


@pytest.mark.parametrize("kind", cells.KINDS)
def test_matmul_floor_runs_for_every_cell(kind):
    bench.matmul_floor(kind, (3, 2, 4))()


def _transcendental_calls(monkeypatch, run) -> list[tuple[str, int]]:
    """(function, elements) of every np.exp and np.tanh call ``run()`` makes."""
    calls = []
    for name in ("exp", "tanh"):
        original = getattr(np, name)

        def recorded(values, *args, _name=name, _original=original, **kwargs):
            calls.append((_name, np.size(values)))
            return _original(values, *args, **kwargs)

        monkeypatch.setattr(np, name, recorded)
    run()
    monkeypatch.undo()
    return calls


@pytest.mark.parametrize("kind", cells.KINDS)
def test_the_exp_tanh_floor_makes_the_calls_the_fast_kernel_makes(monkeypatch, kind):
    """TRANSCENDENTALS against the cell's fast forward and backward (default options), call
    for call, and the floor's function makes exactly those calls."""
    assert set(bench.TRANSCENDENTALS) == set(cells.KINDS)
    T, B, H = 3, 2, 5
    cell = cells.get(kind)
    params, x, d_outputs = bench._inputs(kind, (T, B, H))

    def forward_backward():
        _, _, cache = cell.module.forward(x, params, None, **cell.default_options)
        cell.module.backward(d_outputs, cache)

    expected = [(name, blocks * B * H) for _ in range(T)
                for name, blocks in bench.TRANSCENDENTALS[kind]]
    assert _transcendental_calls(monkeypatch, forward_backward) == expected
    floor = lambda: bench.transcendental_floor(kind, (T, B, H))()  # noqa: E731
    assert _transcendental_calls(monkeypatch, floor) == expected


def test_torch_worker_reports_saved_tensors_and_the_fused_lstm():
    result = bench.torch_worker("lstm", (3, 2, 4), 1, min_time=0.0, min_repeats=1)
    assert result["saved_bytes"] > 0 and result["torch_threads"] == 1
    assert result["fused"] is True  # torch's CPU LSTM: one aten::mkldnn_rnn_layer
    gru = bench.torch_worker("gru", (3, 2, 4), 1, min_time=0.0, min_repeats=1)
    assert gru["fused"] is False  # its GRU goes step by step (chapter 5 and the README say so)


@pytest.mark.slow
def test_quick_command_runs_in_subprocesses_on_a_tiny_size():
    done = subprocess.run(
        [sys.executable, "-m", "companion.bench", "--quick", "--cells", "gru", "--sizes",
         "3,2,4", "--threads", "1"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("GRU ")]
    assert line.split()[1:5] == ["3", "2", "4", "1"]
    assert "step by step" in line


BENCH_DATA = ROOT / "book" / "_data" / "bench"
LATEST = "grid-2026-11-30-20-31.json"
GRU_GATE_MAJOR = "2026-11-30T19:41Z"  # grids started from then on time the gate-major GRU


def _records() -> dict[str, dict]:
    """Every shipped grid's --json output, by file name, oldest first."""
    return {path.name: json.loads(path.read_text())
            for path in sorted(BENCH_DATA.glob("grid-*.json"))}


def _grids() -> dict[str, list[dict]]:
    return {name: record["rows"] for name, record in _records().items()}


def _point(rows, kind, size, threads):
    return next(r for r in rows if (r["kind"], tuple(r["size"]), r["threads"])
                == (kind, size, threads))


def _readme_bench_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## How fast the NumPy cells are"):text.index("## Lint")]
    return re.findall(r"```text\n(.*?)\n```", section, flags=re.DOTALL)


def test_the_readme_shows_the_report_of_the_shipped_grid():
    """Every block the README pastes from the bench is, line for line, part of the report of
    the grid shipped in book/_data/bench: the README cannot show numbers no run gave."""
    record = json.loads((BENCH_DATA / LATEST).read_text())
    report = bench.report(record["rows"], notes=record["notes"])
    blocks = _readme_bench_blocks()
    assert len(blocks) == 3, blocks
    for block in blocks:
        assert block in report, f"a README block is not in the shipped grid's report:\n{block}"
    assert bench.HEADER in blocks[0] and len(blocks[0].splitlines()) == 1 + len(record["rows"])


def _over_torch(rows):
    """The RNN and GRU points above torch's time: (kind, size, threads)."""
    return sorted((r["kind"], tuple(r["size"]), r["threads"]) for r in rows
                  if r["kind"] in ("rnn", "gru") and bench.ratio(r) > 1.0)


def _targets_table(records) -> list[str]:
    """The README's table: for each shipped grid, how many points met each target."""
    header = ["grid finished (UTC)"] + [target.what for target in bench.TARGETS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for record in records.values():
        counts = {target.what: f"{len(covered) - len(missed)} of {len(covered)}"
                  for target, covered, missed in bench.target_results(record["rows"])}
        marks = [mark for mark, applies in (
            ("loaded", any(note.startswith("WARNING") for note in record["notes"])),
            ("GRU before gate-major", (record["started"] or "") < GRU_GATE_MAJOR)) if applies]
        when = record["finished"][11:16] + (f" ({', '.join(marks)})" if marks else "")
        lines.append("| " + " | ".join([when] + [counts[what] for what in header[1:]]) + " |")
    return lines


def _speed_claims(records):
    """(a phrase of the README's reading of the grids, whether the shipped grids bear it out)."""
    grids = {name: record["rows"] for name, record in records.items()}
    latest = grids[LATEST]
    since_gru = [rows for name, rows in grids.items()
                 if (records[name]["started"] or "") >= GRU_GATE_MAJOR]
    default, batch1, batch8 = (100, 32, 128), (50, 1, 32), (1000, 8, 64)

    def fmt(value):
        return f"{value:.2f}x"

    def across(kind, size, threads, measure, rows_list=None):
        values = [measure(_point(rows, kind, size, threads))
                  for rows in (rows_list or grids.values())]
        return f"{fmt(min(values))}–{fmt(max(values))}"

    over = {name: _over_torch(rows) for name, rows in grids.items()}
    missed_points = {point for points in over.values() for point in points}
    worst_over = max(bench.ratio(_point(rows, *point)) for rows in grids.values()
                     for point in _over_torch(rows))
    one, two = _point(latest, "lstm", default, 1), _point(latest, "lstm", default, 2)
    outside_1 = one["numpy"]["median"] - one["floor"]["median"]
    allowed = 0.3 * two["floor"]["median"]
    small_batch = [bench.why_slower(r) for r in latest
                   if r["kind"] == "lstm" and r["size"][1] < 16 and bench.why_slower(r)]
    overheads = [int(n) for why in small_batch for n in re.findall(r"(\d+) us a step", why)]
    small_missed = sum(bench.ratio(_point(rows, "lstm", size, n)) > 2.5
                       for rows in grids.values() for size in (batch1, batch8) for n in (1, 2))
    without_exp = [name for name, rows in grids.items() if bench.mm_plus_exp(rows[0]) is None]
    return [
        ("the three grids before 17:26 also predate the \"mm+exp\" column",
         len(without_exp) == 3 and all(records[name]["finished"] < "2026-11-30T17:26Z"
                                       for name in without_exp)),
        (f"at or below torch's time at every point in {sum(not v for v in over.values())} of "
         f"the {len(grids)} grids", True),
        ("the points that missed were all at (100, 64, 256), by at most "
         f"{worst_over - 1:.0%}", {size for _, size, _ in missed_points} == {(100, 64, 256)}),
        (f"the GRU took {across('gru', (100, 64, 256), 2, bench.ratio, since_gru)} torch's "
         f"time there with 2 threads in the {len(since_gru)} grids since", len(since_gru) >= 2),
        (f"within 1.5x torch at the default size with 1 thread in every grid "
         f"({across('lstm', default, 1, bench.ratio)})",
         all(bench.ratio(_point(rows, "lstm", default, 1)) <= 1.5 for rows in grids.values())),
        (f"{small_missed} of its {4 * len(grids)} points at batch 1 and 8 across the grids "
         "(none in the latest)",
         all(bench.ratio(_point(latest, "lstm", size, n)) <= 2.5
             for size in (batch1, batch8) for n in (1, 2))),
        (f"some {min(overheads)} to {max(overheads)} us a step outside the matmuls in the "
         "latest grid", len(overheads) == 4 and min(overheads) >= 10 and max(overheads) <= 50),
        (f"with 1 thread {across('lstm', default, 1, bench.x_floor)}", True),
        (f"with 2 threads {across('lstm', default, 2, bench.x_floor)}",
         all(bench.x_floor(_point(rows, "lstm", default, 2)) > 1.3 for rows in grids.values())),
        (f"come to {fmt(bench.one_core_bound(two, latest))} its 2-thread matmuls' time in the "
         f"latest grid (it took {fmt(bench.x_floor(two))})", True),
        (f"to {allowed * 1e3:.1f} ms, from {outside_1 * 1e3:.1f} ms with 1 thread",
         allowed < outside_1 * 0.6),
        (f"the exp and tanh calls alone take {one['exp']['median'] * 1e3:.1f} ms",
         one["exp"]["median"] < outside_1),
    ]


def test_the_readme_reads_the_shipped_grids_as_they_are():
    """The README's table of targets met, grid by grid, and each number of its reading of the
    grids, are computed here from the grids of book/_data/bench."""
    records = _records()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = _targets_table(records)
    assert "\n".join(table) in readme, "the README's table of targets should read:\n" + "\n".join(
        table)
    text = " ".join(readme.split())
    claims = _speed_claims(records)
    missing = [phrase for phrase, _ in claims if phrase not in text]
    assert not missing, f"the README does not say what the shipped grids give: {missing}"
    assert all(holds for _, holds in claims), [phrase for phrase, holds in claims if not holds]
