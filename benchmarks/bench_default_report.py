"""Benchmark: the default report (the README's main command) -- wall time and peak memory.

Runs ``mmexplain report --default --force --out OUT`` under ``/usr/bin/time -v`` from an
installed environment (trained-model cache emptied first, so training is included) and
prints the wall-clock time, the peak resident memory of the largest process (``/usr/bin/time``
reports the maximum over the runner and every kernel it waited for, not their sum) and each
notebook's own time from the run's JSON results. The budget is 5 minutes on 2 CPU cores.

Usage::

    python benchmarks/bench_default_report.py [--out /tmp/default-report] [--jobs N]

Needs GNU time (Debian package ``time``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 300.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="report folder (default: a fresh temporary one)")
    parser.add_argument("--jobs", type=int, default=max(1, min(4, os.cpu_count() or 1)),
                        help="passed to mmexplain report --jobs (default: one per core, at most 4, "
                             "as `python3 tasks.py report` runs it)")
    args = parser.parse_args()
    if not Path("/usr/bin/time").exists():
        parser.error("/usr/bin/time not found; install GNU time (apt-get install -y time)")
    exe = shutil.which("mmexplain") or str(Path(sys.executable).parent / "mmexplain")
    out = Path(args.out or tempfile.mkdtemp(prefix="mmexplain-default-"))
    shutil.rmtree(out / "models", ignore_errors=True)  # include training in the measurement
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = ["/usr/bin/time", "-v", exe, "report", "--default", "--force", "--out", str(out), "--jobs", str(args.jobs)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    stats = dict(re.findall(r"^\s*(.+?): (\S+)$", proc.stderr, flags=re.M))
    wall = _seconds(stats.get("Elapsed (wall clock) time (h:mm:ss or m:ss)", "nan"))
    peak_mib = int(stats.get("Maximum resident set size (kbytes)", "0")) / 1024

    print(f"command: {' '.join(cmd[2:])}  (exit {proc.returncode}, cpus={os.cpu_count()})")
    for path in sorted(out.glob("*/*.json")):
        data = json.loads(path.read_text())
        seconds = data.get("provenance", {}).get("seconds", float("nan"))
        print(f"  {path.parent.name}/{path.stem:<60} {data.get('status', '?'):>6} {seconds:>7.1f} s")
    print(f"wall time      {wall:8.1f} s   (budget {BUDGET_S:.0f} s: {wall / BUDGET_S:.2f} of it)")
    print(f"peak RSS       {peak_mib:8.0f} MiB (largest single process)")
    print(f"user+sys CPU   {float(stats.get('User time (seconds)', 'nan')) + float(stats.get('System time (seconds)', 'nan')):8.1f} s")
    if proc.returncode:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
    return proc.returncode


def _seconds(clock: str) -> float:
    parts = [float(p) for p in clock.split(":")]
    return sum(p * 60**i for i, p in enumerate(reversed(parts)))


if __name__ == "__main__":
    sys.exit(main())
