"""Benchmark: NumPy LSTM forward + backward against ``torch.nn.LSTM`` on the CPU.

Run ``python -m companion.bench`` (add ``--quick`` for a short run).  Both implementations get
the same shapes (default ``T=100, B=32, D=H=128``, float32), the same parameters and the same
upstream gradients, and are timed in one process, alternating NumPy and torch runs, reporting
medians.

Threads: NumPy's BLAS reads its thread count from the environment when NumPy is first imported
(``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``).  ``--threads N`` sets
those variables *before* importing NumPy when this module is run as a script, and calls
``torch.set_num_threads(N)``; without it both use ``os.cpu_count()`` threads (the default of
both libraries).  If NumPy was already imported (e.g. ``bench.main()`` from a notebook), only
torch's thread count can be changed and the report says so.

FLOP count (matmuls only): forward ``2 * T * B * 4H * (D + H)``, backward twice that (input,
recurrent and weight gradients).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _parse(argv):
    parser = argparse.ArgumentParser(prog="python -m companion.bench", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few repeats (a smoke test)")
    parser.add_argument("--threads", type=int, default=None, help="threads for BLAS and torch")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per library")
    parser.add_argument("--steps", type=int, default=100, help="T")
    parser.add_argument("--batch", type=int, default=32, help="B")
    parser.add_argument("--input-size", type=int, default=128, help="D")
    parser.add_argument("--hidden-size", type=int, default=128, help="H")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    return parser.parse_args(argv)


def _set_thread_env(threads: int | None) -> str:
    """Set BLAS thread variables if NumPy is not imported yet; say what happened."""
    if threads is None:
        return f"default threads (os.cpu_count() = {os.cpu_count()})"
    if "numpy" in sys.modules:
        return (f"NumPy already imported: its BLAS keeps its own thread count; torch uses "
                f"{threads}")
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    return f"{threads} thread(s): {', '.join(_THREAD_VARS)} set before importing NumPy"


def _median(values):
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def run(args) -> dict:
    thread_note = _set_thread_env(args.threads)
    import numpy as np
    import torch

    from companion import lstm
    from companion.interop import to_torch

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    T, B, D, H = args.steps, args.batch, args.input_size, args.hidden_size
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(0)
    params = lstm.init_params(D, H, seed=0, dtype=dtype)
    x = rng.standard_normal((T, B, D)).astype(dtype)
    d_out = rng.standard_normal((T, B, H)).astype(dtype)

    module = to_torch(params, torch.nn.LSTM(D, H).to(getattr(torch, args.dtype)))
    x_torch = torch.from_numpy(x).requires_grad_(True)
    d_out_torch = torch.from_numpy(d_out)

    def numpy_step():
        outputs, _, cache = lstm.forward(x, params)
        lstm.backward(d_out, cache)

    def torch_step():
        module.zero_grad(set_to_none=True)
        x_torch.grad = None
        outputs, _ = module(x_torch)
        outputs.backward(d_out_torch)

    repeats = args.repeats or (5 if args.quick else 30)
    for _ in range(2):  # warm-up (allocator, BLAS thread pool)
        numpy_step()
        torch_step()
    times = {"numpy": [], "torch": []}
    for _ in range(repeats):
        for name, step in (("numpy", numpy_step), ("torch", torch_step)):
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    flops = 3 * 2 * T * B * 4 * H * (D + H)
    result = {name: _median(values) for name, values in times.items()}
    result.update(flops=flops, threads=thread_note, repeats=repeats,
                  torch_threads=torch.get_num_threads(), shape=(T, B, D, H), dtype=str(dtype))
    return result


def report(result: dict) -> str:
    T, B, D, H = result["shape"]
    lines = [
        f"LSTM forward + backward, T={T} B={B} D={D} H={H} {result['dtype']}, "
        f"median of {result['repeats']} alternating runs",
        f"threads: {result['threads']}; torch.get_num_threads() = {result['torch_threads']}",
        f"matmul FLOPs per forward+backward: {result['flops'] / 1e9:.3f} GFLOP",
    ]
    for name in ("numpy", "torch"):
        seconds = result[name]
        lines.append(f"  {name:6s} {seconds * 1e3:8.2f} ms   {result['flops'] / seconds / 1e9:7.1f}"
                     " GFLOP/s")
    lines.append(f"ratio numpy / torch = {result['numpy'] / result['torch']:.2f} "
                 "(goal: <= 1.5)")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = _parse(argv)
    print(report(run(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
