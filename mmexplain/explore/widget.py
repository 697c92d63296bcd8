"""The explorer widget: a thin ipywidgets layer over :class:`~mmexplain.explore.Explorer`.

Every control calls one controller method and redraws from the :class:`DecisionView` it
returns; nothing here computes an explanation. Figures are plotly ``FigureWidget``\\ s
(anywidget), drawn by :mod:`mmexplain.viz` as the audit cards draw them.
"""

from __future__ import annotations

import html
import threading
import time
from pathlib import Path
from typing import Any

import ipywidgets as W
import pandas as pd

from ..exceptions import ConfigError
from .edits import Edit, free_edit
from .views import Cancelled, DecisionView, Explorer

__all__ = ["ExplorerWidget"]

_FIG_SIZE = {"width": 360, "height": 320, "margin": {"l": 30, "r": 10, "t": 40, "b": 30}}


def _fw(fig: Any) -> Any:
    import plotly.graph_objects as go

    return go.FigureWidget(fig.to_dict(), _validate=False)  # validated once already, by viz


def _cls(widget: W.Widget, *names: str) -> W.Widget:
    for n in names:
        widget.add_class(n)
    return widget


class ExplorerWidget(W.VBox):
    """Browse decisions, see their explanations, ask what-ifs, export a card.

    Built by :func:`explore`. Every control has a stable ``description`` and CSS class
    (for tests and for driving it from a browser):

    ====================================== ==================================================
    CSS class                              control
    ====================================== ==================================================
    ``mmx-explore``                        the whole widget
    ``mmx-explore-filter-class``           Dropdown: class (true or predicted), or all
    ``mmx-explore-filter-correct``         ToggleButtons: all / right / wrong
    ``mmx-explore-filter-confidence``      FloatRangeSlider: predicted probability range
    ``mmx-explore-filter-flagged``         Checkbox: only decisions the trust checks flagged
    ``mmx-explore-sort``                   Dropdown: index / interaction / confidence order
    ``mmx-explore-decision``               Select: the filtered decisions (value = index)
    ``mmx-explore-prediction``             HTML: prediction, probability, truth, what-if
    ``mmx-explore-opacity``                FloatSlider: heat-map opacity on images
    ``mmx-explore-maps``                   Box: each method's map of each modality
    ``mmx-explore-shapley``                FigureWidget box: modality Shapley shares
    ``mmx-explore-interaction``            FigureWidget box: interaction matrix
    ``mmx-explore-trust``                  HTML: trust panel and flags (checked in a thread after each update)
    ``mmx-explore-drop-<modality>``        Button: set the modality to the model's reference
    ``mmx-explore-replace-<modality>``     BoundedIntText: take the modality from decision i
    ``mmx-explore-edit-<modality>``        Text (text kinds) / FloatText (values kinds)
    ``mmx-explore-feature-<modality>``     Dropdown: which feature a values edit sets
    ``mmx-explore-apply-<modality>``       Button: apply the edit (or, with no text typed, the replace)
    ``mmx-explore-reset``                  Button: undo every edit
    ``mmx-explore-method``                 Dropdown: a slower method, computed on demand
    ``mmx-explore-compute``                Button: compute it (in a thread)
    ``mmx-explore-cancel``                 Button: cancel it (the result is discarded)
    ``mmx-explore-status``                 HTML: what is running / how long the update took
    ``mmx-explore-export-path``            Text: where to write the card (without suffix)
    ``mmx-explore-export``                 Button: write ``<path>.html`` and ``<path>.json``
    ====================================== ==================================================

    Attributes
    ----------
    explorer : Explorer
        The controller; ``widget.explorer.current`` is the view shown.
    """

    def __init__(self, explorer: Explorer, *, export_path: str = "explorer-card") -> None:
        self.explorer = explorer
        ex = explorer
        self._thread: threading.Thread | None = None
        self._checker: threading.Thread | None = None
        self._cancel: threading.Event | None = None
        self._busy = False
        # -- browse
        self.filter_class = _cls(W.Dropdown(options=[("all classes", None)] + [(c, c) for c in ex.labels],
                                            description="Class"), "mmx-explore-filter-class")
        self.filter_correct = _cls(W.ToggleButtons(options=[("all", None), ("right", True), ("wrong", False)],
                                                   description="Decisions"), "mmx-explore-filter-correct")
        self.filter_confidence = _cls(W.FloatRangeSlider(value=(0.0, 1.0), min=0.0, max=1.0, step=0.05,
                                                         description="Confidence"), "mmx-explore-filter-confidence")
        self.filter_flagged = _cls(W.Checkbox(value=False, description="Flagged only"), "mmx-explore-filter-flagged")
        self.sort = _cls(W.Dropdown(options=[("index", "index"), ("highest interaction", "interaction"),
                                             ("most confident", "confidence"),
                                             ("least confident", "least_confidence")], description="Sort"),
                         "mmx-explore-sort")
        self.decision = _cls(W.Select(options=[], rows=10, description="Decision",
                                      layout=W.Layout(width="420px")), "mmx-explore-decision")
        # -- show
        self.prediction = _cls(W.HTML(), "mmx-explore-prediction")
        self.opacity = _cls(W.FloatSlider(value=0.7, min=0.0, max=1.0, step=0.05, description="Opacity"),
                            "mmx-explore-opacity")
        self.maps = _cls(W.VBox(), "mmx-explore-maps")
        self.shapley = _cls(W.Box(), "mmx-explore-shapley")
        self.interaction = _cls(W.Box(), "mmx-explore-interaction")
        self.trust = _cls(W.HTML(), "mmx-explore-trust")
        self.status = _cls(W.HTML(), "mmx-explore-status")
        # FigureWidgets by slot (("map", modality, method), ("shapley",), ("interaction",)),
        # reused from view to view, each in a frame that hides it when its slot is not shown
        self._figures: dict[tuple[str, ...], Any] = {}
        self._frames: dict[tuple[str, ...], W.Box] = {}
        self._rows: dict[str, W.HBox] = {}  # one row of maps per modality
        # -- what-if, per modality as its kind allows
        self.drop: dict[str, W.Button] = {}
        self.replace: dict[str, W.BoundedIntText] = {}
        self.edit: dict[str, W.Widget] = {}
        self.feature: dict[str, W.Dropdown] = {}
        self.apply: dict[str, W.Button] = {}
        self.free: dict[str, Edit] = {}  # each modality's free-form edit (explore.edits) ...
        self.controls: dict[str, dict[str, W.Widget]] = {}  # ... and its controls by role (edit, feature)
        rows = []
        n = len(ex.data) - 1
        for m in ex.run.model.modalities:
            self.drop[m] = _cls(W.Button(description=f"drop {m}", tooltip=f"set {m} to the model's reference"),
                                f"mmx-explore-drop-{m}")
            self.replace[m] = _cls(W.BoundedIntText(value=0, min=0, max=n, description=f"{m} from",
                                                    layout=W.Layout(width="180px")), f"mmx-explore-replace-{m}")
            parts: list[W.Widget] = [self.drop[m], self.replace[m]]
            edit = free_edit(ex.run, m)
            if edit is not None:
                self.free[m] = edit
                self.controls[m] = {role: _cls(c, f"mmx-explore-{role}-{m}") for role, c in edit.controls(ex, m).items()}
                for role, control in self.controls[m].items():
                    getattr(self, role)[m] = control
                parts += self.controls[m].values()
            self.apply[m] = _cls(W.Button(description=f"apply {m}"), f"mmx-explore-apply-{m}")
            parts.append(self.apply[m])
            self.drop[m].on_click(lambda _b, m=m: self._act(lambda: ex.drop(m)))
            self.apply[m].on_click(lambda _b, m=m: self._apply(m))
            rows.append(W.HBox(parts))
        self.reset = _cls(W.Button(description="reset edits"), "mmx-explore-reset")
        self.reset.on_click(lambda _b: self._act(ex.reset))
        # -- slower methods, on demand
        self.method = _cls(W.Dropdown(options=ex.on_demand, description="Method"), "mmx-explore-method")
        self.compute = _cls(W.Button(description="compute", button_style="info"), "mmx-explore-compute")
        self.cancel = _cls(W.Button(description="cancel", disabled=True), "mmx-explore-cancel")
        self.compute.on_click(lambda _b: self.start_compute(self.method.value))
        self.cancel.on_click(lambda _b: self.cancel_compute())
        # -- export
        self.export_path = _cls(W.Text(value=export_path, description="Card path"), "mmx-explore-export-path")
        self.export = _cls(W.Button(description="export card"), "mmx-explore-export")
        self.export_out = W.HTML()
        self.export.on_click(lambda _b: self._export())

        for w in (self.filter_class, self.filter_correct, self.filter_confidence, self.filter_flagged, self.sort):
            w.observe(lambda _c: self.refilter(), names="value")
        self.decision.observe(self._on_decision, names="value")
        self.opacity.observe(lambda _c: self._set_opacity(), names="value")

        browse = W.VBox([self.filter_class, self.filter_correct, self.filter_confidence, self.filter_flagged,
                         self.sort, self.decision])
        show = W.VBox([self.prediction, self.opacity, self.maps, W.HBox([self.shapley, self.interaction]),
                       self.trust])
        what_if = W.VBox([W.HTML("<b>What if</b> (absent = the model's reference)"), *rows, self.reset])
        slow = W.HBox([self.method, self.compute, self.cancel])
        export = W.HBox([self.export_path, self.export, self.export_out])
        super().__init__([W.HBox([browse, W.VBox([self.status, what_if, slow, export])]), show])
        self.add_class("mmx-explore")
        self.refilter()
        self.show(ex.current)

    # -- reactions -----------------------------------------------------------------------------
    def refilter(self) -> pd.DataFrame:
        """Apply the filter controls to the decision list; keep the selection when it passes."""
        lo, hi = self.filter_confidence.value
        rows = self.explorer.filter(label=self.filter_class.value, correct=self.filter_correct.value,
                                    min_confidence=lo, max_confidence=hi,
                                    flagged=True if self.filter_flagged.value else None, sort=self.sort.value)
        current = self.decision.value
        self.decision.options = [
            (f"{r.index}: {r.predicted} ({r.probability:.2f}) true {r.true}{' ⚑' if r.flagged else ''}", int(r.index))
            for r in rows.itertuples()]
        if current in set(rows["index"]):
            self.decision.value = current
        return rows

    def _on_decision(self, change: dict) -> None:
        if change["new"] is not None:
            self._act(lambda: self.explorer.select(int(change["new"])))

    def _apply(self, m: str) -> None:
        ex, edit = self.explorer, self.free.get(m)
        value = None if edit is None else edit.read(self.controls[m])
        if value is not None:
            self._act(lambda: ex.edit(m, value))
        else:
            self._act(lambda: ex.replace(m, int(self.replace[m].value)))

    def _act(self, fn: Any) -> DecisionView | None:
        t0 = time.perf_counter()
        try:
            view = fn()
        except ConfigError as err:
            self.status.value = f"<span style='color:#b00'>{html.escape(str(err))}</span>"
            return None
        self.show(view)
        self.status.value = f"updated in {1000 * (time.perf_counter() - t0):.0f} ms"
        self.start_check()
        return view

    def start_check(self) -> threading.Thread | None:
        """Build the current view's trust panel in a thread and show it when done (None when
        the view has it already)."""
        if self.explorer.current.checked:
            return None

        def work() -> None:
            try:
                view = self.explorer.check()
            except Exception as err:  # shown, never lost in a thread
                self.trust.value = f"<span style='color:#b00'>{html.escape(f'{type(err).__name__}: {err}')}</span>"
                return
            if view is self.explorer.current:
                self._show_trust(view)

        self._checker = threading.Thread(target=work, name="mmx-explore-check", daemon=True)
        self._checker.start()
        return self._checker

    def start_compute(self, method: str) -> threading.Thread:
        """Compute ``method`` for the current view in a thread; :meth:`cancel_compute` stops waiting."""
        self._cancel = threading.Event()
        cancel = self._cancel
        self.compute.disabled, self.cancel.disabled = True, False
        self.status.value = f"computing {html.escape(method)} … (cancel discards it)"

        def work() -> None:
            t0 = time.perf_counter()
            try:
                view = self.explorer.compute(method, cancel=cancel)
            except Cancelled:
                return
            except Exception as err:  # shown, never lost in a thread
                self.status.value = f"<span style='color:#b00'>{html.escape(f'{type(err).__name__}: {err}')}</span>"
            else:
                if view is self.explorer.current:  # not if another decision was chosen meanwhile
                    self.show(view)
                self.status.value = f"{html.escape(method)} computed in {time.perf_counter() - t0:.1f} s"
            finally:
                self.compute.disabled, self.cancel.disabled = False, True

        self._thread = threading.Thread(target=work, name="mmx-explore-compute", daemon=True)
        self._thread.start()
        return self._thread

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the background work (trust check, on-demand method) to finish."""
        for t in (self._checker, self._thread):
            if t is not None:
                t.join(timeout)

    def cancel_compute(self) -> None:
        """Discard the running on-demand computation (it finishes in the background)."""
        if self._cancel is not None:
            self._cancel.set()
        self.compute.disabled, self.cancel.disabled = False, True
        self.status.value = "cancelled"

    def _export(self) -> None:
        try:
            html_path, json_path = self.explorer.export(Path(self.export_path.value))
        except (OSError, ConfigError) as err:
            self.export_out.value = f"<span style='color:#b00'>{html.escape(str(err))}</span>"
            return
        self.export_out.value = f"wrote {html.escape(str(html_path))} and {html.escape(str(json_path))}"

    def map_figures(self, view: DecisionView | None = None) -> list[list[Any]]:
        """The FigureWidgets of ``view``'s maps (default: the current view's): one list per
        modality, one FigureWidget per method drawn so far."""
        view = self.explorer.current if view is None else view
        return [[self._figures[s] for s in (("map", m, method) for method in view.methods) if s in self._figures]
                for m in view.modalities]

    def _set_opacity(self, view: DecisionView | None = None) -> None:
        for row in self.map_figures(view):
            for fw in row:
                for tr in fw.data:
                    if tr.name == "attribution" and tr.type == "heatmap":
                        tr.opacity = self.opacity.value

    # -- drawing -------------------------------------------------------------------------------
    def show(self, view: DecisionView) -> None:
        """Draw ``view``: prediction, each method's maps side by side, Shapley, interactions, trust."""
        e = html.escape
        verdict = "right" if view.correct else "wrong"
        texts = "".join(f"<br><b>{e(m)}</b>: {e(t)}" for m, t in view.card.texts.items())
        what_if = ("<br><b>What-if</b>: " + "; ".join(f"{e(m)} {e(w)}" for m, w in view.what_if.items())
                   if view.what_if else "")
        without = "; ".join(f"without {e(m)}: {e(lab)} ({p:.2f})" for m, (lab, p) in view.removed.items())
        self.prediction.value = (
            f"<div><b>Decision {view.index}</b>: predicted <b class='mmx-predicted'>{e(view.predicted)}</b> "
            f"({view.probability:.3f}), true {e(view.true)} — {verdict}{what_if}{texts}<br><small>{without}"
            "</small></div>")
        figs = {method: view.method_figures(method) for method in view.methods}
        for m in view.modalities:
            for method in view.methods:
                self._draw(("map", m, method), figs[method][m])
        # figures are shown or hidden, never taken off the page: plotly's FigureWidget view
        # keeps listening after it is removed, and fails on every later update of its figure
        for m in view.modalities:
            row = self._rows.setdefault(m, W.HBox())
            slots = [s for s in self._frames if s[:2] == ("map", m)]
            for slot in slots:
                self._frames[slot].layout.display = "" if slot[2] in view.methods else "none"
            if list(row.children) != [self._frames[s] for s in slots]:
                row.children = [self._frames[s] for s in slots]
        self.maps.children = [self._rows[m] for m in view.modalities]
        self._set_opacity(view)
        self.shapley.children = [self._draw(("shapley",), view.shapley_figure())]
        self.interaction.children = [self._draw(("interaction",), view.interaction_figure())]
        self._show_trust(view)
        self.method.options = view.on_demand

    def _draw(self, slot: tuple[str, ...], fig: Any) -> W.Box:
        """Show ``fig`` in the FigureWidget of ``slot``, made on first use and redrawn in place
        after (every new FigureWidget sends plotly.js, about 5 MB, to the browser: a change
        of decision took tens of seconds in JupyterLab); returns the widget's frame."""
        fig.update_layout(**_FIG_SIZE)
        fw = self._figures.get(slot)
        if fw is None:
            fw = self._figures[slot] = _fw(fig)
            self._frames[slot] = W.Box([fw])
        else:
            fw.update(data=fig.data, layout=fig.layout, overwrite=True)
        return self._frames[slot]

    def _show_trust(self, view: DecisionView) -> None:
        if not view.checked:
            self.trust.value = "<p><i>checking how far to trust these explanations …</i></p>"
            return
        flags = "".join(f"<li>{html.escape(f)}</li>" for f in view.flags)
        self.trust.value = (f"{view.card.trust_html()}<p>Flags: {'<ul>' + flags + '</ul>' if flags else 'none'}</p>")

