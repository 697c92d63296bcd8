"""Explore a run's decisions: an interactive widget, and a static page for reports.

* :func:`explore` (also ``mmexplain.explore``) opens the widget in JupyterLab;
* :class:`Explorer` / :class:`DecisionView` (:mod:`.views`) are its state and views,
  usable without a browser;
* :func:`write_explorer` (:mod:`.static`) writes ``explorer.html``: the same views of a
  few decisions, precomputed, in one offline page.

ipywidgets and plotly's ``FigureWidget`` load only when a widget is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .static import EXPLORER_PAGE, explorer_html, report_explorer_path, write_explorer
from .views import DEFAULT_POOL, Cancelled, DecisionView, Explorer, as_run, interactive_methods

if TYPE_CHECKING:
    import pandas as pd

    from .widget import ExplorerWidget

__all__ = ["DEFAULT_POOL", "EXPLORER_PAGE", "Cancelled", "DecisionView", "Explorer", "ExplorerWidget", "as_run",
           "explore", "explorer_html", "interactive_methods", "report_explorer_path", "write_explorer"]


def explore(run_or_model: Any, data: Any = None, *, ids: Sequence[int] | None = None,
            methods: Sequence[str] | None = None, split: str = "test", sanity: pd.DataFrame | None = None,
            export_path: str = "explorer-card") -> ExplorerWidget:
    """Open the explorer on a run's decisions (JupyterLab 4: ipywidgets 8 + anywidget).

    Parameters
    ----------
    run_or_model : Run, str, PathLike or model
        A trained run, a saved run's folder, or a model with ``modality_specs`` (then
        ``data`` is required); see :func:`as_run`.
    data : MultimodalDataset, optional
        The decisions to browse; default the run's test split.
    ids : sequence of int, optional
        Positions of the decisions to list; default :data:`DEFAULT_POOL` seeded ones.
    methods : sequence of str, optional
        Methods run on every selection and edit; default the ``single_pass`` ones
        (:func:`interactive_methods`); the others are computed on demand.
    split : str, default="test"
    sanity : pandas.DataFrame, optional
        A :func:`~mmexplain.analysis.sanity_table` for the trust panel.
    export_path : str, default="explorer-card"
        Default path of exported cards (``.html`` and ``.json`` are added).

    Returns
    -------
    ExplorerWidget
        Display it (make it a cell's value); ``.explorer`` is the controller. Its controls'
        CSS classes are listed in :class:`~mmexplain.explore.widget.ExplorerWidget`.

    Raises
    ------
    ConfigError
        A bad argument, named.
    """
    from .widget import ExplorerWidget  # ipywidgets / anywidget only when a widget is made

    # the view comes first, its trust panel follows in the widget's thread
    return ExplorerWidget(Explorer(as_run(run_or_model, data), ids=ids, methods=methods, split=split,
                                   sanity=sanity, defer_trust=True), export_path=export_path)


def __getattr__(name: str) -> Any:
    if name == "ExplorerWidget":
        from .widget import ExplorerWidget

        return ExplorerWidget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
