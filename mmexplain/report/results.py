"""Record a notebook's results as JSON, from inside the notebook, and read them back.

A report notebook declares ``results_path = ""`` in its parameters cell; the runner
injects a path and the notebook calls :func:`record` with the numbers it wants the report
(and the batch index) to show. This module is imported inside notebook kernels, so it
imports nothing heavy: numpy, pandas and torch values are recognised by duck typing.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

from ..exceptions import ReportError

__all__ = ["SCHEMA_VERSION", "atomic_write_text", "load_results", "record", "to_jsonable"]

#: Version of the run JSON written by :func:`mmexplain.report.execute.run_notebook`.
SCHEMA_VERSION = 1


def to_jsonable(value: Any, *, name: str = "value") -> Any:
    """Convert ``value`` to plain JSON types (dict, list, str, int, float, bool, None).

    Parameters
    ----------
    value : Any
        Numbers, strings, bools, None, lists/tuples/sets, dicts (keys become strings),
        numpy scalars and arrays, pandas DataFrames (as a list of records) and Series
        (as a dict), torch tensors, paths, dates.
    name : str
        Where the value came from, used in error messages.

    Returns
    -------
    Any
        A JSON-safe value. Non-finite floats (nan, inf) become None, because JSON has
        no spelling for them.

    Raises
    ------
    ReportError
        If the value (or something nested in it) has no JSON form; the message names it.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, name=f"{name}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, name=f"{name}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        items = [to_jsonable(v, name=f"{name}{{...}}") for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    # pandas DataFrame -> records, Series -> dict (duck-typed: no pandas import here).
    if hasattr(value, "to_dict") and hasattr(value, "columns"):
        return to_jsonable(value.to_dict(orient="records"), name=name)
    if hasattr(value, "to_dict") and hasattr(value, "index") and hasattr(value, "dtype"):
        return to_jsonable(value.to_dict(), name=name)
    # torch tensors: move to host memory first.
    if hasattr(value, "detach") and hasattr(value, "cpu") and hasattr(value, "tolist"):
        return to_jsonable(value.detach().cpu().tolist(), name=name)
    # numpy arrays and scalars (and anything else array-like with tolist/item).
    if hasattr(value, "tolist") and callable(value.tolist):
        return to_jsonable(value.tolist(), name=name)
    if hasattr(value, "item") and callable(value.item):
        return to_jsonable(value.item(), name=name)
    raise ReportError(
        f"{name} of type {type(value).__module__}.{type(value).__qualname__} cannot be stored as "
        "JSON; pass numbers, strings, lists, dicts, numpy values or pandas DataFrames."
    )


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()
_FILE_MODE = 0o666 & ~_UMASK
DIR_MODE = 0o777 & ~_UMASK


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically: a temp file in the same folder, then os.replace.

    Readers see either the old file or the new one, never a half-written file.

    Parameters
    ----------
    path : str or PathLike
        Destination file; its folder must exist.
    text : str
        UTF-8 content.

    Returns
    -------
    Path
        The destination path.
    """
    dest = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; give the usual umask-based mode
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return dest


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"results file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ReportError(f"results file {path} is not readable JSON: {err}") from None
    if not isinstance(data, dict):
        raise ReportError(
            f"results file {path} must hold a JSON object; got {type(data).__name__}."
        )
    return data


def record(results_path: str | os.PathLike[str] | None, **values: Any) -> None:
    """Merge ``values`` into the results JSON at ``results_path`` (call it from a notebook).

    Parameters
    ----------
    results_path : str or PathLike or None
        The notebook's ``results_path`` parameter. Empty or None (the notebook run by
        hand): nothing is written, but the values are still checked.
    **values
        Names and values to record; later calls overwrite earlier keys. See
        :func:`to_jsonable` for the accepted types.

    Returns
    -------
    None
        Nothing, so that a ``record(...)`` ending a notebook cell prints no dict into the
        report; read the file back with :func:`load_results`.

    Raises
    ------
    ReportError
        If a value has no JSON form, or the existing file is not a JSON object.

    Examples
    --------
    >>> record("", accuracy=0.91, n_samples=200)  # checked, nothing written, nothing shown
    """
    converted = {key: to_jsonable(val, name=f"record({key}=...)") for key, val in values.items()}
    if not results_path:
        return
    path = Path(results_path)
    merged = _read_json(path) if path.exists() else {}
    merged.update(converted)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(merged, indent=2, sort_keys=True, allow_nan=False) + "\n")


def load_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a results JSON: what a notebook recorded, or a run JSON written by the runner.

    Parameters
    ----------
    path : str or PathLike
        A JSON file, or a run folder ``<out>/<run_id>/`` (reads ``<run_id>.json`` inside).

    Returns
    -------
    dict
        The parsed JSON object. For a run JSON, the notebook's values are under
        ``"results"`` and the envelope carries ``"schema_version"``, ``"status"``,
        ``"parameters"``, ``"provenance"`` and ``"error"``.

    Raises
    ------
    ReportError
        If the file is missing, not JSON, not an object, or has a newer schema version.
    """
    p = Path(path)
    if p.is_dir():
        p = p / f"{p.name}.json"
    data = _read_json(p)
    version = data.get("schema_version")
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise ReportError(
            f"{p} has schema_version {version}; this mmexplain reads up to {SCHEMA_VERSION}."
        )
    return data
