#!/usr/bin/env python3
"""The two quick-start commands, each installing what it needs (idempotently).

    python3 tasks.py report   # the default report on easy-VQA, into reports/
    python3 tasks.py test     # ruff + the whole test suite

Only the Python standard library is used here: this runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
TORCH = "torch==2.13.0"  # the CPU wheel; see pyproject.toml's note on the torch range


def sh(*cmd: str | os.PathLike, **kw) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def ensure_env(extras: str) -> None:
    """Create .venv and install the project with ``extras`` unless already done for this
    exact pyproject.toml (a stamp file records the hash)."""
    stamp = VENV / f".installed-{extras or 'base'}"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == want and PY.exists():
        return
    if not PY.exists():
        sh(sys.executable, "-m", "venv", VENV)
    sh(PY, "-m", "pip", "install", "-q", "--upgrade", "pip")
    probe = subprocess.run([str(PY), "-c", "import torch"], capture_output=True)
    if probe.returncode != 0:
        sh(PY, "-m", "pip", "install", "-q", TORCH)
    sh(PY, "-m", "pip", "install", "-q", "-e", f".[{extras}]" if extras else ".", cwd=ROOT)
    sh(PY, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3", "--display-name", "Python 3 (mmexplain)")
    stamp.write_text(want)


def ensure_chromium() -> None:
    """Headless Chromium + ChromeDriver for the HTML report tests (Debian packages)."""
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        sh("apt-get", "update", "-qq")
        sh("apt-get", "install", "-y", "-qq", "chromium", "chromium-driver",
           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        return
    sys.exit("tasks.py test: the browser tests need Debian's chromium and chromium-driver: "
             "run `sudo apt-get install -y chromium chromium-driver` and retry.")


def env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}


def report(args: list[str]) -> int:
    ensure_env("")
    # one notebook per core (at most 4): the runner trains first with every core, then the
    # notebooks share them (258 s on 2 cores, against about 350 s one at a time)
    jobs = str(max(1, min(4, os.cpu_count() or 1)))
    cmd = [str(VENV / "bin" / "mmexplain"), "report", "--default", "--jobs", jobs, *args]
    return subprocess.run(cmd, cwd=ROOT, env=env()).returncode


def test(args: list[str]) -> int:
    ensure_env("test")
    ensure_chromium()
    rc = subprocess.run([str(VENV / "bin" / "ruff"), "check", "mmexplain", "tests", "benchmarks", "tasks.py"],
                        cwd=ROOT, env=env()).returncode
    if rc:
        return rc
    # one pytest-xdist worker per core (at most 4); a test file stays on one worker, so a
    # module's shared fixture (e.g. the executed notebooks) is built once
    workers = str(max(1, min(4, os.cpu_count() or 1)))
    default = ["-q", "-n", workers, "--dist", "loadfile", "--durations", "15"]
    return subprocess.run([str(PY), "-m", "pytest", *(args or default)], cwd=ROOT, env=env()).returncode


def main() -> int:
    commands = {"report": report, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
