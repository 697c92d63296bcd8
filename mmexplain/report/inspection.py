"""Read a notebook's ``parameters`` cell (as papermill does) and check values against it."""

from __future__ import annotations

import ast
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError
from .records import RESULTS_PARAMETER

__all__ = ["NotebookParameter", "escape_format", "inspect_parameters", "validate_parameters"]

_MISSING = object()
_TYPES: dict[str, type] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "list": list,
    "tuple": list,
    "dict": dict,
}


@dataclass(frozen=True)
class NotebookParameter:
    """One name of a notebook's ``parameters`` cell, as papermill inspects it.

    Attributes
    ----------
    name : str
    type : type or None
        int, float, str, bool, list or dict, inferred from the annotation or the literal
        default; None when unknown (e.g. a default of ``None`` or an expression).
    default_source : str
        The default as written in the cell.
    default : Any
        The literal default, or None when it is not a literal.
    help : str
    literal : bool
        Whether the default is a Python literal (``default`` holds its value).
    """

    name: str
    type: type | None
    default_source: str
    default: Any
    help: str = ""
    literal: bool = True

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` can stand for this parameter's default."""
        t = self.type
        if t is None:
            return True
        if t is bool:
            return isinstance(value, bool)
        if t is int:
            return isinstance(value, int) and not isinstance(value, bool)
        if t is float:
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if t is list:
            return isinstance(value, (list, tuple))
        if t is dict:
            return isinstance(value, Mapping)
        return isinstance(value, t)


def _infer_type(annotation: str, default: Any) -> type | None:
    if annotation and annotation != "None":
        base = annotation.split("[", 1)[0].strip().lower()
        if base in _TYPES:
            return _TYPES[base]
        return None
    if default is _MISSING or default is None:
        return None
    return _TYPES.get(type(default).__name__)


@functools.lru_cache(maxsize=64)
def _inspect_cached(
    path: str, mtime_ns: int, size: int
) -> tuple[bool, tuple[NotebookParameter, ...]]:
    import nbformat
    import papermill

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # nbformat raises several types for unreadable files
        raise ConfigError(f"notebook {path} is not a readable .ipynb file: {err}") from None
    has_cell = any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells)
    raw = papermill.inspect_notebook(escape_format(Path(path))) if has_cell else {}
    params = []
    for name, info in raw.items():
        source = info.get("default") or ""
        try:
            default = ast.literal_eval(source)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            default = _MISSING
        params.append(
            NotebookParameter(
                name=name,
                type=_infer_type(info.get("inferred_type_name") or "", default),
                default_source=source,
                default=None if default is _MISSING else default,
                help=info.get("help") or "",
                literal=default is not _MISSING,
            )
        )
    return has_cell, tuple(params)


def inspect_parameters(notebook: str | os.PathLike[str]) -> dict[str, NotebookParameter]:
    """The parameters a notebook declares in its cell tagged ``parameters``.

    Parameters
    ----------
    notebook : str or PathLike

    Returns
    -------
    dict of str -> NotebookParameter
        Empty when the notebook has no parameters cell.

    Raises
    ------
    ConfigError
        If the file does not exist or is not a notebook.
    """
    path = Path(notebook)
    try:
        st = path.stat()
    except OSError:
        raise ConfigError(f"notebook {path} does not exist.") from None
    if not path.is_file():
        raise ConfigError(f"notebook {path} is not a file.")
    _, params = _inspect_cached(str(path.resolve()), st.st_mtime_ns, st.st_size)
    return {p.name: p for p in params}


def validate_parameters(
    notebook: str | os.PathLike[str], parameters: Mapping[str, Any]
) -> dict[str, NotebookParameter]:
    """Check ``parameters`` against the notebook's parameters cell, before running anything.

    Parameters
    ----------
    notebook : str or PathLike
    parameters : mapping
        Name -> value to inject.

    Returns
    -------
    dict of str -> NotebookParameter
        The notebook's declared parameters.

    Raises
    ------
    ConfigError
        For an unknown name (listing the known ones), ``results_path`` (set by the runner),
        or a value whose type cannot stand for the default's (naming parameter, value and
        expected type).
    """
    declared = inspect_parameters(notebook)
    problems = []
    for name, value in parameters.items():
        if name == RESULTS_PARAMETER:
            problems.append(f"parameter {name!r} is set by the report runner; do not pass it.")
            continue
        param = declared.get(name)
        if param is None:
            known = ", ".join(n for n in declared if n != RESULTS_PARAMETER) or "none"
            if not declared:
                problems.append(
                    f"unknown parameter {name!r}: the notebook has no cell tagged 'parameters'."
                )
            else:
                problems.append(f"unknown parameter {name!r}; known parameters: {known}.")
            continue
        if not param.accepts(value):
            problems.append(
                f"parameter {name!r}={value!r} is a {type(value).__name__}, but the notebook "
                f"expects {param.type.__name__ if param.type else 'any'} "
                f"(default {param.default_source})."
            )
    if problems:
        raise ConfigError(f"{notebook}: " + " ".join(problems))
    return declared


def escape_format(path: Path) -> str:
    """``path`` as papermill wants it: it ``str.format()``s input and output paths."""
    # papermill str.format()s input and output paths with the parameters.
    return str(path).replace("{", "{{").replace("}", "}}")
