"""One run at a time per run folder, and the clean-up of what killed runs leave behind.

Used by the report runner (``<out>/<run_id>/``) and by ``mmexplain train --out``. A run holds ``<out_dir>/.<run_id>.lock`` while it executes and writes. The lock is an
``flock`` on that file, so the kernel releases it when its process dies, however it dies;
the file also records the owner (pid, host, process start time, when) for the message a
second run gets. A lock file nobody holds was left by a killed run: it is stale, and the
next run takes it over. Temporary folders are named ``.<run_id>+tmp.*`` / ``.<run_id>+old.*``
(``+`` cannot occur in a run id, so one run's prefix never matches another's) and are
removed by whoever next holds that run's lock.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .exceptions import RunLockedError

__all__ = [
    "TEMP_KINDS",
    "lock_path",
    "make_temp_dir",
    "run_lock",
    "swap_into_place",
    "sweep",
    "temp_prefix",
]

#: Kinds of temporary folder a run makes next to its run folder.
TEMP_KINDS = ("tmp", "old")
_LEGACY_AGE_S = 3600.0  # temp folders of runners before locks: removed once surely dead


def lock_path(out_dir: Path, run_id: str) -> Path:
    """``<out_dir>/.<run_id>.lock``."""
    return out_dir / f".{run_id}.lock"


def temp_prefix(run_id: str, kind: str) -> str:
    """Name prefix of a run's temporary folders of ``kind`` (one of :data:`TEMP_KINDS`)."""
    return f".{run_id}+{kind}."


def make_temp_dir(parent: Path, run_id: str) -> Path:
    """A new ``.<run_id>+tmp.*`` folder in ``parent``, with the usual (umask) permissions."""
    path = Path(tempfile.mkdtemp(prefix=temp_prefix(run_id, "tmp"), dir=parent))
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o777 & ~mask)  # mkdtemp makes 0700; the run folder is meant to be shared
    return path


def _process_start(pid: int) -> str | None:
    # Field 22 of /proc/<pid>/stat: start time in clock ticks since boot (Linux); it tells
    # a reused pid from the original owner.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _owner() -> dict[str, Any]:
    pid = os.getpid()
    return {
        "pid": pid,
        "host": socket.gethostname(),
        "start": _process_start(pid),
        "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _describe(info: dict[str, Any] | None) -> str:
    if not info:
        return "another process"
    return f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}"


def _read(fd: int) -> dict[str, Any] | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 4096).decode() or "null")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _open_locked(path: Path, wait: bool = False) -> int | None:
    """Open ``path`` and take its flock; None when another process holds it (``wait=False``)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        # The holder we waited for may have unlinked the file: lock the one now at ``path``.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _holder(path: Path) -> dict[str, Any] | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return _read(fd)
    finally:
        os.close(fd)


def _remove_temporaries(out_dir: Path, run_id: str) -> list[Path]:
    removed = []
    for kind in TEMP_KINDS:
        for p in out_dir.glob(f"{temp_prefix(run_id, kind)}*"):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


@contextlib.contextmanager
def run_lock(
    out_dir: str | os.PathLike[str], run_id: str, *, wait: bool = False
) -> Iterator[list[Path]]:
    """Hold ``run_id``'s lock in ``out_dir``; on entry remove its stale temporary folders.

    Parameters
    ----------
    out_dir : str or PathLike
        The reports folder (must exist).
    run_id : str
        The run folder's name.
    wait : bool, default=False
        Wait for a live holder to finish instead of raising.

    Yields
    ------
    list of Path
        The stale temporary folders that were removed.

    Raises
    ------
    RunLockedError
        Another live process holds the lock; the message names it. Nothing is touched.
    """
    out = Path(out_dir)
    path = lock_path(out, run_id)
    fd = _open_locked(path, wait)
    if fd is None:
        raise RunLockedError(
            f"run {run_id!r} in {out} is in progress ({_describe(_holder(path))}; lock {path}); "
            "wait for it to finish."
        )
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(_owner()).encode())
        yield _remove_temporaries(out, run_id)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # still holding the flock: nobody can have taken it meanwhile
        os.close(fd)


def sweep(out_dir: str | os.PathLike[str]) -> list[Path]:
    """Remove what killed runs left in ``out_dir``: stale locks and their temporary folders.

    A lock or temporary folder of a run that a live process holds is left alone.

    Parameters
    ----------
    out_dir : str or PathLike

    Returns
    -------
    list of Path
        What was removed.
    """
    out = Path(out_dir)
    if not out.is_dir():
        return []
    run_ids = set()
    for p in out.iterdir():
        name = p.name
        if name.startswith(".") and name.endswith(".lock") and p.is_file():
            run_ids.add(name[1 : -len(".lock")])
        elif name.startswith(".") and "+" in name and p.is_dir():
            run_ids.add(name[1:].split("+", 1)[0])
    removed: list[Path] = []
    for run_id in sorted(run_ids):
        path = lock_path(out, run_id)
        fd = _open_locked(path)
        if fd is None:
            continue  # a live run
        try:
            removed.extend(_remove_temporaries(out, run_id))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            removed.append(path)
        finally:
            os.close(fd)
    # Runners before locks named temporaries ``.<run_id>.<random>.tmp`` / ``.<run_id>.old-*``.
    now = time.time()
    for p in out.iterdir():
        legacy = p.name.startswith(".") and (p.name.endswith(".tmp") or ".old-" in p.name)
        if legacy and p.is_dir() and now - p.stat().st_mtime > _LEGACY_AGE_S:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def swap_into_place(tmp_dir: Path, dest: Path, run_id: str) -> None:
    """Replace folder ``dest`` by ``tmp_dir`` with renames only (never a half-written folder).

    The previous ``dest`` is moved aside to a ``.<run_id>+old.*`` folder next to it, then
    removed; if the second rename fails it is moved back.
    """
    old = None
    if dest.exists():
        old = dest.with_name(f"{temp_prefix(run_id, 'old')}{uuid.uuid4().hex[:8]}")
        os.replace(dest, old)
    try:
        os.replace(tmp_dir, dest)
    except BaseException:
        if old is not None:
            os.replace(old, dest)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
