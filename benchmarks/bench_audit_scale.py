"""Audits at scale: decisions per second and peak memory, local engine against Ray.

Every configuration (engine x N) runs in a fresh child process, which audits the first N
test decisions of ``--run`` with IG (``--methods``) plus the exact modality Shapley game
every audit row holds, into a temporary Parquet file. The parent samples the memory of the
child's whole process tree (the Ray cluster the child starts is part of it: GCS, raylet,
workers) every ``--interval`` seconds, as the sum of each process's PSS (``smaps_rollup``;
RSS where PSS is unreadable), so pages shared between workers count once. Linux only.

Engines: ``local`` (one process, ``--threads`` torch threads), ``rayK`` (Ray with K
workers, one CPU and one torch thread each, on a local cluster of K CPUs started for the
run; its start-up time is reported apart and not counted in decisions per second).

Example (the figures of issue 13; the full easy-VQA test split is 9,673 decisions)::

    python benchmarks/bench_audit_scale.py --run reports/models/<run> \\
        --n 500 2000 9673 --engines local ray1 ray2

Prints one row per configuration and, side by side, each engine's throughput and peak
memory as ratios to the local engine's at the same N.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_ENGINE = re.compile(r"local|ray([1-9][0-9]*)")


def _engine(text: str) -> str:
    if not _ENGINE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"engines are local or rayK (K workers, e.g. ray2); got {text!r}")
    return text


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _tree(pid: int) -> list[int]:
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(_children(p))
    return seen


def _memory_kib(pid: int) -> int:
    """PSS of one process in KiB (RSS where smaps_rollup is unreadable; 0 once it is gone)."""
    for path, key in ((f"/proc/{pid}/smaps_rollup", "Pss:"), (f"/proc/{pid}/status", "VmRSS:")):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(key):
                        return int(line.split()[1])
        except OSError:
            continue
    return 0


def _measure(cmd: list[str], interval: float) -> tuple[dict, float]:
    """Run ``cmd``; its JSON output and the peak memory of its process tree, in MiB."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, sum(_memory_kib(p) for p in _tree(proc.pid)))
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
    return json.loads(out.strip().splitlines()[-1]), peak / 1024


def _one(run: str, engine: str, n: int, methods: list[str], batch_size: int, threads: int) -> None:
    """Child: one audit; prints {"rows", "seconds", "startup"} as JSON."""
    import torch

    from mmexplain._ray import ray_cluster
    from mmexplain.auditing import audit_run

    workers = _ENGINE.fullmatch(engine).group(1)
    torch.set_num_threads(1 if workers else threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.parquet"
        kw = {"limit": n, "methods": methods, "batch_size": batch_size}
        if workers is None:
            start = time.perf_counter()
            result = audit_run(run, out, **kw)
            seconds, startup = time.perf_counter() - start, 0.0
        else:
            start = time.perf_counter()
            with ray_cluster(num_cpus=int(workers)):
                startup = time.perf_counter() - start
                start = time.perf_counter()
                result = audit_run(run, out, engine="ray", engine_options={"workers": int(workers)}, **kw)
                seconds = time.perf_counter() - start
    print(json.dumps({"rows": result.n_rows, "seconds": seconds, "startup": startup}))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="a folder `mmexplain train` wrote")
    p.add_argument("--n", type=int, nargs="+", default=[500, 2000, 9673], help="decisions audited")
    p.add_argument("--engines", type=_engine, nargs="+", default=["local", "ray1", "ray2"])
    p.add_argument("--methods", default="ig", help="comma-separated (default: ig)")
    p.add_argument("--batch-size", type=int, default=64, help="decisions per chunk (default: 64)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the local engine (default: 1)")
    # reading smaps_rollup of every Ray process costs about a quarter of a core at 0.2 s
    p.add_argument("--interval", type=float, default=1.0, help="memory sampling period, seconds (default: 1)")
    p.add_argument("--one", nargs=2, metavar=("ENGINE", "N"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    if args.one:
        _one(args.run, args.one[0], int(args.one[1]), methods, args.batch_size, args.threads)
        return
    if not Path(args.run).is_dir():
        raise SystemExit(f"--run {args.run}: no such folder; give a folder `mmexplain train` wrote.")

    results: dict[tuple[str, int], dict] = {}
    print(f"{'engine':<7} {'N':>6} {'rows':>6} {'seconds':>8} {'dec/s':>8} {'startup s':>9} {'peak MiB':>9}")
    for n in args.n:
        for engine in args.engines:
            cmd = [sys.executable, __file__, "--run", args.run, "--one", engine, str(n), "--methods", args.methods,
                   "--batch-size", str(args.batch_size), "--threads", str(args.threads)]
            got, peak = _measure(cmd, args.interval)
            got["dps"], got["peak"] = got["rows"] / got["seconds"], peak
            results[engine, n] = got
            print(f"{engine:<7} {n:>6} {got['rows']:>6} {got['seconds']:>8.1f} {got['dps']:>8.2f} "
                  f"{got['startup']:>9.1f} {peak:>9.0f}", flush=True)

    base = args.engines[0]
    print(f"\nratios to {base} at the same N (throughput x, peak memory x):")
    print(f"{'N':>6} " + " ".join(f"{e + ' dec/s':>12} {e + ' mem':>10}" for e in args.engines))
    for n in args.n:
        ref = results[base, n]
        cells = [f"{results[e, n]['dps'] / ref['dps']:>12.2f} {results[e, n]['peak'] / ref['peak']:>10.2f}"
                 for e in args.engines]
        print(f"{n:>6} " + " ".join(cells))


if __name__ == "__main__":
    main()
