"""Where relative paths in notebook parameters point: the project root, from any folder.

JupyterLab starts a notebook's kernel in the notebook's own folder (``notebooks/``), while
``mmexplain report`` runs kernels at the repository root. The notebooks' defaults
(``model_cache = "reports/models"``) are written relative to the root, so a relative path is
resolved against the **project root**: the nearest folder at or above the working directory
that holds ``notebooks/default_report.yaml``. Without one (mmexplain installed with pip, used
in a folder of your own), the working directory is used, as plain Python would.

Absolute paths are returned unchanged, so the report runner's absolute paths keep working.
"""

from __future__ import annotations

import os
from pathlib import Path

from .exceptions import ConfigError

__all__ = ["PROJECT_MARKER", "project_root", "resolve_dataset", "resolve_path"]

#: The file, relative to a folder, that marks that folder as an mmexplain project root.
PROJECT_MARKER = Path("notebooks") / "default_report.yaml"



def project_root(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest folder at or above ``start`` that holds ``notebooks/default_report.yaml``.

    Parameters
    ----------
    start : str or PathLike, optional
        Where to start looking. Default: the current working directory.

    Returns
    -------
    Path or None
        The absolute project root, or None when no folder up to the file-system root has
        the marker.
    """
    here = Path.cwd() if start is None else Path(start).absolute()
    for folder in (here, *here.parents):
        if (folder / PROJECT_MARKER).is_file():
            return folder
    return None


def resolve_path(path: str | os.PathLike[str], *, start: str | os.PathLike[str] | None = None) -> Path:
    """An absolute path for ``path``: itself if absolute, else under the project root.

    Parameters
    ----------
    path : str or PathLike
        A file or folder, e.g. the ``model_cache`` parameter; it need not exist.
    start : str or PathLike, optional
        The working directory to search the project root from. Default: the current one.

    Returns
    -------
    Path
        ``path`` unchanged when absolute; otherwise ``project_root(start) / path``, or
        ``start / path`` when there is no project root.

    Raises
    ------
    ConfigError
        If ``path`` is not a string or path, or is empty.
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ConfigError(f"path must be a non-empty string or path; got {path!r}.")
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    base = Path.cwd() if start is None else Path(start).absolute()
    return (project_root(base) or base) / p


def resolve_dataset(spec: str, *, start: str | os.PathLike[str] | None = None) -> str:
    """The ``dataset`` parameter with a relative manifest path made absolute.

    Built-in names (``easy-vqa``, ``synthetic:...``) and absolute paths come back as given.
    A relative path is resolved like :func:`resolve_path` when it names a manifest (a
    ``.csv`` / ``.parquet`` / ``.pq`` file) or an existing file under the project root; any
    other string is left as it is, so :func:`mmexplain.data.load_dataset` names it in its
    error.

    Parameters
    ----------
    spec : str
        The ``dataset`` parameter of a notebook.
    start : str or PathLike, optional
        The working directory to search the project root from. Default: the current one.

    Returns
    -------
    str
    """
    if not isinstance(spec, str) or not spec or spec == "easy-vqa" or spec.startswith("synthetic:"):
        return spec
    if Path(spec).expanduser().is_absolute():
        return spec
    resolved = resolve_path(spec, start=start)
    from .data.manifest import MANIFEST_SUFFIXES  # the data package imports torch: only when needed

    if resolved.suffix.lower() in MANIFEST_SUFFIXES or resolved.is_file():
        return str(resolved)
    return spec
