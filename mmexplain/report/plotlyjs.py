"""plotly.js stored once per report folder, shared by its pages.

plotly.js is 4.6 MB; embedding it in every page made each report page 5-8.5 MB. By default
the runner writes ``plotly-<version>.min.js`` once into the report folder (``--out``) and
each page loads it with a relative ``<script src>`` (``../plotly-3.3.0.min.js`` from
``<run-id>/``). The version is in the name so that pages written by an older plotly keep
the plotly.js their figures were made for. Pages stay offline: the file is local.
``self_contained=True`` (``--self-contained``) embeds plotly.js in each page instead, for
pages that must work alone (mailed, copied elsewhere).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from .results import atomic_write_text

__all__ = ["page_plotlyjs", "plotlyjs_name", "plotlyjs_src", "share_plotlyjs", "write_plotlyjs"]


def plotlyjs_name() -> str:
    """The shared file's name, ``plotly-<plotly.js version>.min.js``."""
    from plotly.offline import get_plotlyjs_version

    return f"plotly-{get_plotlyjs_version()}.min.js"


def plotlyjs_src(out_dir: str | os.PathLike[str], page_dir: str | os.PathLike[str]) -> str:
    """The relative URL, from a page in ``page_dir``, of the shared file in ``out_dir``.

    Parameters
    ----------
    out_dir : str or PathLike
        The report folder (where the file lives).
    page_dir : str or PathLike
        The folder the page will finally be in (``<out_dir>/<run_id>`` or its ``failed/``).

    Returns
    -------
    str
        A POSIX relative path, e.g. ``"../plotly-3.3.0.min.js"``.
    """
    rel = os.path.relpath(Path(out_dir).absolute() / plotlyjs_name(), Path(page_dir).absolute())
    return Path(rel).as_posix()


def write_plotlyjs(out_dir: str | os.PathLike[str]) -> Path:
    """Write the shared plotly.js into ``out_dir`` unless it is already there.

    Written atomically (a temp file, then rename), so parallel runs and a reader never see
    half a file.

    Parameters
    ----------
    out_dir : str or PathLike
        The report folder; it must exist.

    Returns
    -------
    Path
        The file.
    """
    path = Path(out_dir) / plotlyjs_name()
    if not path.is_file():
        from plotly.offline import get_plotlyjs

        atomic_write_text(path, get_plotlyjs())
    return path


def page_plotlyjs(document: str) -> Literal["shared", "inline", "none"]:
    """How a report page written by :mod:`mmexplain.report.html` gets plotly.js.

    Only the page's ``<head>`` is read: notebook outputs are in the body, sanitised, and
    cannot add a script there.

    Parameters
    ----------
    document : str
        The HTML of the page.

    Returns
    -------
    {"shared", "inline", "none"}
        ``"shared"``: it loads the shared ``plotly-*.min.js`` file; ``"inline"``: it embeds
        plotly.js; ``"none"``: it has no figures, so it needs neither.
    """
    end = document.find("</head>")
    head = document[: end if end >= 0 else len(document)]
    for mode in ("shared", "inline"):
        if f'data-mmexplain="plotlyjs-{mode}"' in head:
            return mode  # type: ignore[return-value]
    return "none"


_INLINE_OPEN = 'data-mmexplain="plotlyjs-inline">'


def share_plotlyjs(document: str, src: str) -> str:
    """A page that embeds plotly.js (``data-mmexplain="plotlyjs-inline"``, e.g. the static
    explorer, :mod:`mmexplain.explore.static`) rewritten to load the shared file at ``src``.

    Parameters
    ----------
    document : str
        The HTML of the page.
    src : str
        The relative URL of the shared file (:func:`plotlyjs_src`).

    Returns
    -------
    str
        The page with its inline plotly.js replaced by a ``<script src>``; unchanged when it
        does not embed plotly.js.
    """
    import html

    at = document.find(_INLINE_OPEN)
    if at < 0:
        return document
    start = document.rfind("<script", 0, at)
    end = document.find("</script>", at)
    if start < 0 or end < 0:
        return document
    tag = (f'<script type="text/javascript" charset="utf-8" data-mmexplain="plotlyjs-shared" '
           f'src="{html.escape(src)}"></script>')
    return document[:start] + tag + document[end + len("</script>"):]
