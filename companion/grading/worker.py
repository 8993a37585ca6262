"""Grade one notebook, in a process of its own: ``python -m companion.grading.worker``.

The request comes as JSON on stdin (from :mod:`companion.grading.run`): the notebook's
cells (already read and checked by the grader), the exercises of its lesson, the seed of
the run, the limits, the temporary folder, and a secret key. The worker

1. draws each exercise's random cases (its own process; the kernel never sees the
   reference results);
2. runs the cells one by one in a fresh kernel whose working folder is the temporary
   folder: a cell past ``timeout`` is interrupted and the next cell runs; a dead or stuck
   kernel is replaced for the remaining cells; each cell's kept output is capped;
3. right after the last cell that defines an exercise's function (or at the end), has the
   kernel evaluate that function on the cases and write only plain data to a file;
4. computes each verdict with :func:`companion.exercises.core.verdict`, in this process.

It writes one line on stdout: ``COMPANION-REPORT <hmac> <json>``, signed with the key, so
that nothing the kernel prints or writes can pass for the worker's report.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from companion.grading import processes
from companion.quick_imports import skip_the_iri_grammar


def _nbformat():
    """nbformat, imported in the worker only: it pulls in jsonschema, whose format checkers
    take over a second to import, and the command line must answer usage errors at once."""
    skip_the_iri_grammar()
    import nbformat

    return nbformat


REPORT_PREFIX = "COMPANION-REPORT"
TIMEOUT_ERROR = "CellTimeout"
MAX_KERNEL_STARTS = 20
PREAMBLE = "import companion.exercises, companion.grading.kernel_side"
PREAMBLE_TIMEOUT = 300.0


def sign(key: str, payload: str) -> str:
    return hmac.new(key.encode(), payload.encode(), hashlib.sha256).hexdigest()


@dataclass
class Request:
    cells: list[dict]
    exercises: list[str]
    seed: int
    timeout: float
    notebook_timeout: float
    workdir: str
    key: str
    memory: int | None = None
    sandbox: bool = False
    output_cap: int = 2 * 2**20


@dataclass
class _Evaluation:
    data: dict | None = None
    problem: str = ""
    seconds: float = 0.0


@dataclass
class _State:
    """What happened while the notebook ran."""

    errors: dict[int, tuple[str, str]] = field(default_factory=dict)  # cell -> (name, text)
    evaluations: dict[str, _Evaluation] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# --- where each exercise is evaluated ----------------------------------------------------


def bound_names(source: str) -> set[str]:
    """Names a cell binds at top level (``def``, ``class``, assignment, import)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - the plain source is still worth parsing
        pass
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return names


def evaluation_points(cells: list[dict], exercise_ids: list[str]) -> dict[str, int | None]:
    """For each exercise, the index of the last code cell that defines its name (evaluated
    right after it), or None (evaluated after the last cell)."""
    points: dict[str, int | None] = dict.fromkeys(exercise_ids)
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            for name in bound_names(cell["source"]) & set(exercise_ids):
                points[name] = index
    return points


# --- running the notebook ----------------------------------------------------------------


def _client_class():
    skip_the_iri_grammar()
    from nbclient import NotebookClient

    class CappedClient(NotebookClient):
        """A client that keeps at most ``output_cap`` bytes of each cell's output."""

        output_cap = 2 * 2**20

        def output(self, outs, msg, display_id, cell_index):
            sizes = self.__dict__.setdefault("_output_sizes", {})
            size = sum(len(str(v)) for v in msg.get("content", {}).values())
            used = sizes.get(cell_index, 0)
            sizes[cell_index] = used + size
            if used + size <= self.output_cap:
                return super().output(outs, msg, display_id, cell_index)
            if used <= self.output_cap and msg.get("msg_type") != "error":
                outs.append(_nbformat().v4.new_output(
                    "stream", name="stderr",
                    text=f"[output truncated by the grader after {self.output_cap} bytes]\n"))
            if msg.get("msg_type") == "error":  # errors are always kept (small, needed)
                content = msg["content"]
                outs.append(_nbformat().v4.new_output(
                    "error", ename=str(content.get("ename", ""))[:200],
                    evalue=str(content.get("evalue", ""))[:2000], traceback=[]))
            return None

    return CappedClient


class _Runner:
    def __init__(self, request: Request):
        self.request = request
        self.notebook = _nbformat().v4.new_notebook(cells=[
            _nbformat().v4.new_code_cell(c["source"]) if c["cell_type"] == "code"
            else _nbformat().v4.new_markdown_cell(c["source"]) for c in request.cells
        ])
        self.state = _State()
        self.deadline = float("inf")  # set when the first kernel is up (start-up is free)
        self.client = None
        self.starts = 0
        self.replies: dict[int, dict] = {}
        self.completed: list[int] = []  # cells run without a timeout or a dead kernel

    # kernel lifecycle

    def _kernel_argv(self) -> list[str]:
        request = self.request
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        limits = []
        if request.memory:
            limits += ["--memory", str(request.memory)]
        if request.sandbox:
            from companion.grading import sandbox

            limits += ["--nproc", str(sandbox.user_tasks() + sandbox.EXTRA_TASKS),
                       "--fsize", str(sandbox.FILE_SIZE_MB), "--sandboxed"]
        if limits:
            argv = [sys.executable, "-m", "companion.grading.launch", *limits, "--", *argv]
        if request.sandbox:
            from companion.grading import sandbox

            argv = [*sandbox.bwrap_prefix(sandbox.check_available(), request.workdir), *argv]
        return argv

    def start(self) -> bool:
        from jupyter_client import AsyncKernelManager
        from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

        argv = self._kernel_argv()

        class Specs(KernelSpecManager):
            def get_kernel_spec(self, kernel_name):
                return KernelSpec(argv=argv, display_name="companion grader",
                                  language="python", interrupt_mode="message")

        self.starts += 1
        km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=Specs())
        km.transport = "ipc"
        km.ip = os.path.join(self.request.workdir, "ipc", f"k{self.starts}")
        km.connection_file = os.path.join(self.request.workdir, "ipc", f"k{self.starts}.json")
        os.makedirs(os.path.dirname(km.ip), exist_ok=True)
        client = _client_class()(
            self.notebook, km=km, timeout=None, allow_errors=True,
            interrupt_on_timeout=True, shutdown_kernel="immediate", record_timing=False,
            coalesce_streams=False, startup_timeout=120, iopub_timeout=5,
            error_on_timeout={"ename": TIMEOUT_ERROR, "evalue": "", "traceback": []},
            resources={"metadata": {"path": self.request.workdir}},
        )
        client.output_cap = self.request.output_cap
        client.on_cell_executed = self._on_executed
        try:
            client.km = km
            from jupyter_core.utils import run_sync

            run_sync(client.async_start_new_kernel)(
                env=_kernel_env(self.request.workdir), stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            run_sync(client.async_start_new_kernel_client)()
        except Exception as error:  # noqa: BLE001 - reported, the notebook goes on
            self.state.notes.append(f"the kernel could not start: {type(error).__name__}: "
                                    f"{_first_line(error)}")
            self.stop(client)
            return False
        self.client = client
        self._run_extra(PREAMBLE, PREAMBLE_TIMEOUT)  # the grader's imports: not timed
        if self.deadline == float("inf"):
            self.deadline = time.monotonic() + self.request.notebook_timeout
        else:
            self._replay()
        return self.client is not None

    def _run_extra(self, source: str, timeout: float, *, probe: bool = False) -> str:
        """Run a cell that is not part of the notebook."""
        self.notebook.cells.append(_nbformat().v4.new_code_cell(source))
        try:
            return self.execute(len(self.notebook.cells) - 1, timeout, probe=probe)
        finally:
            self.notebook.cells.pop()

    def _replay(self) -> None:
        """After a restart, run again the cells that ran before without killing or
        hanging the kernel, so that later cells find their definitions (the cell that
        killed the kernel is not run again)."""
        for index in list(self.completed):
            if self.client is None or time.monotonic() > self.deadline:
                return
            if self.execute(index, self._cell_timeout()) in ("timeout", "dead"):
                self.completed.remove(index)
            self.notebook.cells[index].outputs = []

    def stop(self, client=None) -> None:
        client = client or self.client
        self.client = None
        if client is None:
            return
        from jupyter_core.utils import run_sync

        try:
            run_sync(client._async_cleanup_kernel)()
        except Exception:  # noqa: BLE001 - already dead
            pass

    def _on_executed(self, cell, cell_index, execute_reply):
        self.replies[cell_index] = execute_reply or {}

    def ensure_kernel(self) -> bool:
        if self.client is not None:
            return True
        if self.starts >= MAX_KERNEL_STARTS:
            return False
        return self.start() or (self.starts < 2 and self.start())

    def execute(self, index: int, timeout: float, *, probe: bool = False) -> str:
        """Run cell ``index``: "ok", "error", "timeout" or "dead". After a timeout the
        kernel is probed and, if it does not answer, stopped (a ``probe`` itself is not
        probed again: a kernel that ignores interrupts would make that endless)."""
        from nbclient.exceptions import DeadKernelError

        client = self.client
        client.timeout_func = lambda cell: timeout
        self.replies.pop(index, None)
        try:
            client.execute_cell(self.notebook.cells[index], index)
        except DeadKernelError:
            self.stop()
            return "dead"
        except Exception as error:  # noqa: BLE001 - a broken connection is a dead kernel
            self.state.notes.append(f"{type(error).__name__}: {_first_line(error)}")
            self.stop()
            return "dead"
        content = self.replies.get(index, {}).get("content", {})
        if content.get("status") == "error" and content.get("ename") == TIMEOUT_ERROR:
            if not probe and not self._responsive():
                self.stop()
            return "timeout"
        return "error" if content.get("status") == "error" else "ok"

    def _responsive(self) -> bool:
        """After an interrupt: whether the kernel runs a trivial cell within a few s."""
        return self._run_extra("pass", 10.0, probe=True) == "ok"

    # the notebook

    def run(self) -> _State:
        request = self.request
        points = evaluation_points(request.cells, request.exercises)
        cases = {eid: _cases(eid, request.seed, position)
                 for position, eid in enumerate(request.exercises)}
        steps = []
        for index, cell in enumerate(request.cells):
            if cell["cell_type"] == "code":
                steps.append(("cell", index))
            steps += [("evaluate", eid) for eid, at in points.items() if at == index]
        steps += [("evaluate", eid) for eid, at in points.items() if at is None]
        for kind, what in steps:
            if time.monotonic() > self.deadline:
                self._skip(kind, what, f"not run: the notebook ran past its time limit "
                                       f"({request.notebook_timeout:g} s)")
                continue
            if not self.ensure_kernel():
                self._skip(kind, what, "not run: " + (self.state.notes or ["no kernel"])[-1])
                continue
            if kind == "cell":
                self._run_cell(what)
            else:
                self._evaluate(what, cases[what])
        self.stop()
        return self.state

    def _skip(self, kind, what, reason: str) -> None:
        if kind == "evaluate":
            self.state.evaluations.setdefault(what, _Evaluation(problem=reason))

    def _cell_timeout(self) -> float:
        return max(0.1, min(self.request.timeout, self.deadline - time.monotonic()))

    def _run_cell(self, index: int) -> None:
        outcome = self.execute(index, self._cell_timeout())
        cell = self.notebook.cells[index]
        if outcome in ("ok", "error"):
            self.completed.append(index)
        if outcome == "timeout":
            self.state.errors[index] = (
                "timeout", f"ran past {self.request.timeout:g} s and was interrupted")
        elif outcome == "dead":
            self.state.errors[index] = ("dead kernel", "the kernel died (restarted, with "
                                                       "the earlier cells run again)")
        elif outcome == "error":
            errors = [o for o in cell.outputs if o.get("output_type") == "error"]
            if errors:
                self.state.errors[index] = (str(errors[-1].get("ename", "Error")),
                                            _first_line(errors[-1].get("evalue", "")))
        cell.outputs = []  # not needed any more: keep the worker's memory small

    def _evaluate(self, exercise_id: str, cases: list[dict]) -> None:
        from companion.exercises import get
        from companion.grading import codec, kernel_side

        folder = os.path.join(self.request.workdir, "grader")
        os.makedirs(folder, exist_ok=True)
        cases_path = os.path.join(folder, f"{exercise_id}-cases.json")
        out_path = os.path.join(folder, f"{exercise_id}-result.json")
        codec.dump(cases, cases_path)
        if os.path.exists(out_path):
            os.remove(out_path)
        per_call = min(get(exercise_id).time_limit, self.request.timeout)
        self.notebook.cells.append(_nbformat().v4.new_code_cell(
            kernel_side.source(exercise_id, cases_path, out_path, per_call)))
        index = len(self.notebook.cells) - 1
        started = time.monotonic()
        try:
            budget = min(per_call * (len(cases) + 1) + 5, self.deadline - time.monotonic())
            outcome = self.execute(index, max(budget, 0.1))
            errors = [o for o in self.notebook.cells[index].outputs
                      if o.get("output_type") == "error"]
        finally:
            self.notebook.cells.pop()
        evaluation = _Evaluation(seconds=time.monotonic() - started)
        if outcome != "ok":
            what = {"timeout": "ran past its time limit and was interrupted",
                    "dead": "the kernel died"}.get(outcome)
            if what is None:
                what = (f"{errors[-1].get('ename')}: {_first_line(errors[-1].get('evalue'))}"
                        if errors else "an error")
            evaluation.problem = f"evaluating your function failed: {what}"
        else:
            try:
                evaluation.data = codec.load(out_path)
            except (OSError, codec.DecodeError) as error:
                evaluation.problem = f"evaluating your function gave no usable result ({error})"
        self.state.evaluations[exercise_id] = evaluation


def _cases(exercise_id: str, seed: int, position: int) -> list[dict]:
    from companion.exercises import get

    return get(exercise_id).make_cases(np.random.default_rng([seed, position]))


def _kernel_env(workdir: str) -> dict[str, str]:
    """The kernel's environment: this ``companion`` first on the path, nothing written to
    the home folder or beside the package, one thread per library."""
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__))))
    paths = [package_parent, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("COMPANION_STRICT", "JPY_", "JUPYTER_RUNTIME"))}
    home = os.path.join(workdir, "home")
    os.makedirs(home, exist_ok=True)
    env.update({
        "PYTHONPATH": os.pathsep.join(paths), "MPLBACKEND": "Agg", "HOME": home,
        "IPYTHONDIR": os.path.join(home, ".ipython"),
        "MPLCONFIGDIR": os.path.join(home, ".matplotlib"), "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "TMPDIR": workdir,
    })
    return env


# --- verdicts ----------------------------------------------------------------------------


def judge(request: Request, state: _State) -> list[dict]:
    """One row per exercise: ``{"exercise", "status", "message", "seconds"}``."""
    rows = []
    for position, exercise_id in enumerate(request.exercises):
        evaluation = state.evaluations.get(exercise_id, _Evaluation(problem="not evaluated"))
        status, message = _judge_one(request, state, exercise_id, position, evaluation)
        rows.append({"exercise": exercise_id, "status": status, "message": message,
                     "seconds": round(evaluation.seconds, 3)})
    return rows


def _judge_one(request, state, exercise_id, position, evaluation) -> tuple[str, str]:
    from companion.exercises import get
    from companion.exercises.core import verdict
    from companion.grading import codec

    context = _cell_context(request, state, exercise_id)
    if evaluation.problem:
        return "error", evaluation.problem + context
    data = evaluation.data
    if not isinstance(data, dict) or set(data) != {"missing", "behaviours"}:
        return "error", "the kernel's evaluation result is malformed" + context
    if data["missing"] is True:
        return "error", (f"no function named `{exercise_id}` after running the notebook "
                         "(was its cell deleted or renamed?)" + context)
    cases = _cases(exercise_id, request.seed, position)
    try:
        behaviours = [codec.behaviour_from_data(item) for item in data["behaviours"]]
        if len(behaviours) != len(cases):
            raise codec.DecodeError(f"{len(behaviours)} results for {len(cases)} cases")
    except (codec.DecodeError, TypeError) as error:
        return "error", f"the kernel's evaluation result is malformed ({error})"
    if any(b.error_type == "MemoryError" for b in behaviours):
        limit = f" (--memory {request.memory} MB)" if request.memory else ""
        return "error", f"your function ran out of memory{limit}"
    try:
        status, message = verdict(get(exercise_id), cases, behaviours)
    except Exception as error:  # noqa: BLE001 - odd data must not stop the other rows
        return "error", f"the grader could not judge the result: {type(error).__name__}: " \
                        f"{_first_line(error)}"
    return status, message


def _cell_context(request: Request, state: _State, exercise_id: str) -> str:
    """The errors of the cells that define the exercise's function, as a suffix."""
    notes = []
    for index, cell in enumerate(request.cells):
        if cell["cell_type"] == "code" and index in state.errors and (
                exercise_id in bound_names(cell["source"])
                or f"def {exercise_id}" in cell["source"]):
            name, text = state.errors[index]
            notes.append(f"{name} in {describe_cell(request.cells, index)}: {text}")
    return ("; " + "; ".join(notes)) if notes else ""


def describe_cell(cells: list[dict], index: int) -> str:
    """``cell 4 [def sigmoid(z):]``: 1-based, counting every cell, with its first line."""
    lines = [line.strip() for line in cells[index]["source"].splitlines() if line.strip()]
    first = lines[0] if lines else ""
    first = first if len(first) <= 40 else first[:39] + "…"
    return f"cell {index + 1} [{first}]"


def _first_line(value) -> str:
    lines = str(value).strip().splitlines()
    return lines[0][:500] if lines else ""


def main() -> int:
    skip_the_iri_grammar()
    # Orphans of the kernel (a daemon it started) come back to this process, which kills
    # them before it reports; and a process of the same user cannot read this one's memory,
    # where the key is.
    processes.become_subreaper()
    processes.make_undumpable()
    raw = json.loads(sys.stdin.read())
    request = Request(**raw)
    os.chdir(request.workdir)
    state = _Runner(request).run()
    processes.kill_descendants()
    payload = json.dumps({"rows": judge(request, state), "notes": state.notes},
                         ensure_ascii=True)
    sys.stdout.write(f"{REPORT_PREFIX} {sign(request.key, payload)} {payload}\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
