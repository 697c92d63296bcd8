"""Provenance of a report run: what ran, with which code, data and versions, and when.

Nothing here records the host name or user: reports are meant to be shared.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_PACKAGES",
    "collect_provenance",
    "file_sha256",
    "git_state",
    "inputs_fingerprint",
    "package_versions",
    "params_hash",
    "utc_now",
]

#: Distributions whose versions every report records (those installed).
DEFAULT_PACKAGES = (
    "mmexplain",
    "torch",
    "captum",
    "shap",
    "transformers",
    "numpy",
    "pandas",
    "scikit-learn",
    "plotly",
    "papermill",
    "nbconvert",
    "nbformat",
    "ipykernel",
)

#: Keys a notebook may record that are copied into the provenance.
RESULT_PROVENANCE_KEYS = ("data_fingerprint", "checkpoint_hash", "data_provenance")


def utc_now() -> str:
    """Current UTC time as ISO 8601 with microseconds (sortable, no host information)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


@functools.lru_cache(maxsize=8)
def git_state(cwd: str | None = None) -> tuple[str, bool | None]:
    """Commit of the git checkout containing ``cwd`` and whether tracked files changed.

    Read-only: uses ``git --no-optional-locks`` so that it never rewrites the index.

    Parameters
    ----------
    cwd : str, optional
        A folder inside the repository; the current directory by default.

    Returns
    -------
    (str, bool or None)
        The commit hash (``"unknown"`` outside a repository or without git) and the
        dirty flag (None when unknown).
    """

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "--no-optional-locks", *args],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return "unknown", None
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit, (None if status is None else bool(status))


def package_versions(names: Iterable[str] = DEFAULT_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (from package metadata; nothing is imported).

    Parameters
    ----------
    names : iterable of str
        Distribution names; the ones not installed are left out.

    Returns
    -------
    dict of str -> str
    """
    versions: dict[str, str] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def params_hash(notebook: str, parameters: Mapping[str, Any]) -> str:
    """Identity of a run: hash of the notebook's name and its (JSON) parameters.

    Parameters
    ----------
    notebook : str
        The notebook's file name (not its folder, so a moved checkout keeps its runs).
    parameters : mapping
        The parameters passed to the notebook, JSON-safe, without ``results_path``.

    Returns
    -------
    str
        ``"sha256:<hex>"``.
    """
    payload = json.dumps(
        {"notebook": notebook, "parameters": dict(parameters)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()


@functools.lru_cache(maxsize=256)
def _cached_sha256(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


def _data_files(path: Path) -> list[Path]:
    """The files a manifest reads beside itself (none for other files or unreadable ones)."""
    if path.suffix.lower() not in (".csv", ".parquet", ".pq"):
        return []
    from ..data import manifest_files
    from ..exceptions import DataError

    try:
        return manifest_files(path)[1:]
    except (DataError, OSError):
        return []


def inputs_fingerprint(
    parameters: Mapping[str, Any], cwd: str | os.PathLike[str] | None = None
) -> str:
    """Fingerprint of the input files a run's parameters name (a manifest, a config...).

    Every string among the parameter values (nested in lists and dicts too) that names an
    existing file, relative to ``cwd``, contributes its path and the SHA-256 of its bytes; a
    manifest also contributes its sidecar and every image it names
    (:func:`mmexplain.data.manifest_files`).
    Folders and other strings do not count. A report made from other file contents is
    stale even when its parameters are the same.

    Parameters
    ----------
    parameters : mapping
        The run's parameters.
    cwd : str or PathLike, optional
        Where relative paths are resolved (the kernels' working directory); default the
        current directory.

    Returns
    -------
    str
        ``"sha256:<hex>"``; the same for runs that name no file.
    """
    base = Path(cwd) if cwd is not None else Path.cwd()
    found: dict[str, str] = {}

    def visit(value: Any) -> None:
        if isinstance(value, Mapping):
            for v in value.values():
                visit(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                visit(v)
        elif isinstance(value, str) and value and len(value) < 4096 and "\0" not in value:
            path = base / value
            try:
                st = path.stat()
            except (OSError, ValueError):
                return
            if path.is_file():
                found[value] = _cached_sha256(str(path.resolve()), st.st_size, st.st_mtime_ns)
                for extra in _data_files(path):  # a manifest's images and sidecar count too
                    est = extra.stat()
                    found[f"{value}::{extra}"] = _cached_sha256(str(extra.resolve()), est.st_size, est.st_mtime_ns)

    visit(dict(parameters))
    payload = json.dumps(sorted(found.items()), separators=(",", ":"))
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()


def collect_provenance(
    *,
    notebook: Path,
    parameters: Mapping[str, Any],
    defaults: Mapping[str, Any],
    results: Mapping[str, Any],
    started: str,
    finished: str,
    seconds: float,
    kernel_name: str | None = None,
    cwd: str | None = None,
) -> dict[str, Any]:
    """Assemble the ``provenance`` block of a run JSON.

    Parameters
    ----------
    notebook : Path
        The input notebook (hashed).
    parameters : mapping
        Parameters passed to the run.
    defaults : mapping
        The notebook's defaults: literal values, or the source text of non-literal ones.
    results : mapping
        What the notebook recorded; ``data_fingerprint`` / ``checkpoint_hash`` are copied.
    started, finished : str
        UTC ISO timestamps.
    seconds : float
        Wall-clock duration.
    kernel_name : str, optional
        The kernel the notebook ran on.
    cwd : str, optional
        Folder whose git checkout is recorded; the current directory by default.

    Returns
    -------
    dict
    """
    effective = {**defaults, **parameters}
    commit, dirty = git_state(cwd)
    prov: dict[str, Any] = {
        "parameters": effective,
        "defaults_used": sorted(set(defaults) - set(parameters)),
        "seed": effective.get("seed"),
        "device": effective.get("device"),
        "git_commit": commit,
        "git_dirty": dirty,
        "notebook_sha256": file_sha256(notebook),
        "kernel": kernel_name,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "packages": package_versions(),
        "started": started,
        "finished": finished,
        "seconds": round(seconds, 3),
    }
    for key in RESULT_PROVENANCE_KEYS:
        if key in results:
            prov[key] = results[key]
    return prov
