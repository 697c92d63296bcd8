"""``explorer.html``: the explorer's views of a few decisions, precomputed, in one offline page.

The page holds, per decision, what :class:`~mmexplain.explore.DecisionView` gives the
widget -- the audit card's HTML (prediction, shares, prediction without each modality, trust
panel, flags), each method's figures per modality, the Shapley bars and the interaction
matrix -- and a few lines of script that switch decision and method with ``Plotly.react``.
No kernel is needed. plotly.js is inline by default; the report runner points a report's
page at the folder's shared copy instead (:func:`mmexplain.report.plotlyjs.share_plotlyjs`).
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..report.records import EXPLORER_PAGE
from .views import DecisionView, Explorer

__all__ = ["EXPLORER_PAGE", "explorer_data", "explorer_html", "report_explorer_path", "write_explorer"]

_SCRIPT = """
(function () {
  const data = JSON.parse(document.getElementById('mmx-static-data').textContent);
  const decision = document.getElementById('mmx-static-decision');
  const method = document.getElementById('mmx-static-method');
  const maps = document.getElementById('mmx-static-maps');
  const config = {responsive: true, displaylogo: false};
  data.decisions.forEach(function (d, k) {
    const o = document.createElement('option');
    o.value = String(k); o.textContent = d.label; decision.appendChild(o);
  });
  function draw(div, fig) {
    Plotly.react(div, fig.data, Object.assign({template: data.template}, fig.layout), config);
  }
  function render() {
    const d = data.decisions[Number(decision.value)];
    const keep = method.value;
    method.textContent = '';
    d.methods.forEach(function (m) {
      const o = document.createElement('option'); o.value = m; o.textContent = m; method.appendChild(o);
    });
    method.value = d.methods.indexOf(keep) >= 0 ? keep : d.methods[0];
    document.getElementById('mmx-static-card').innerHTML = d.card_html;
    render_maps();
    draw(document.getElementById('mmx-static-shapley'), d.shapley);
    draw(document.getElementById('mmx-static-interaction'), d.interaction);
  }
  function render_maps() {
    const d = data.decisions[Number(decision.value)];
    const figs = d.maps[method.value];
    d.modalities.forEach(function (m, j) {
      let div = maps.children[j];
      if (!div) { div = document.createElement('div'); div.className = 'mmx-static-map'; maps.appendChild(div); }
      div.setAttribute('data-modality', m);
      draw(div, figs[m]);
    });
  }
  decision.addEventListener('change', render);
  method.addEventListener('change', render_maps);
  render();
})();
"""


def _compact(node: Any) -> Any:
    """Float64 typed arrays of plotly JSON as float32 (half the bytes; display precision)."""
    if isinstance(node, dict):
        if node.get("dtype") == "f8" and isinstance(node.get("bdata"), str):
            a = np.frombuffer(base64.b64decode(node["bdata"]), dtype="<f8").astype("<f4")
            return {**node, "dtype": "f4", "bdata": base64.b64encode(a.tobytes()).decode("ascii")}
        return {k: _compact(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_compact(v) for v in node]
    return node


def _figure(fig: Any, shared: dict[str, Any]) -> Any:
    """A figure as plotly JSON without its template, which goes once into ``shared``."""
    import plotly.io as pio

    out = _compact(json.loads(pio.to_json(fig, validate=False)))
    template = out.get("layout", {}).pop("template", None)
    if template is not None:
        shared.setdefault("template", template)
    return out


def explorer_data(views: Sequence[DecisionView]) -> dict[str, Any]:
    """What the page holds: per decision its label, card HTML, summary and figures (plotly JSON).

    Parameters
    ----------
    views : sequence of DecisionView

    Returns
    -------
    dict
        ``decisions``: one dict per view with ``index``, ``label``, ``summary``
        (:meth:`DecisionView.summary`), ``card_html``, ``modalities``, ``methods``, ``maps``
        (method -> modality -> figure), ``shapley`` and ``interaction`` (figures);
        ``template``: the plotly template every figure is drawn with (stored once).
    """
    out: list[dict[str, Any]] = []
    shared: dict[str, Any] = {}
    for v in views:
        verdict = "right" if v.correct else "wrong"
        flag = f", {len(v.flags)} flags" if v.flags else ""
        out.append({
            "index": v.index,
            "label": f"{v.index}: {v.predicted} ({v.probability:.2f}), true {v.true}, {verdict}{flag}",
            "summary": v.summary(),
            "card_html": v.card.html(),
            "modalities": v.modalities,
            "methods": list(v.methods),
            "maps": {m: {mod: _figure(f, shared) for mod, f in v.method_figures(m).items()} for m in v.methods},
            "shapley": _figure(v.shapley_figure(), shared),
            "interaction": _figure(v.interaction_figure(), shared),
        })
    return {"template": shared.get("template"), "decisions": out}


def explorer_html(views: Sequence[DecisionView], *, title: str = "Explorer",
                  plotlyjs_src: str | None = None) -> str:
    """The static explorer page of ``views``.

    Parameters
    ----------
    views : sequence of DecisionView
        The decisions, in the order of the page's decision list (at least one).
    title : str, default="Explorer"
        Escaped.
    plotlyjs_src : str, optional
        URL of a plotly.js file to load; default: plotly.js inline (the page works alone).

    Returns
    -------
    str
        The HTML document. The data sits in a ``<script type="application/json">`` with
        every ``<`` escaped, so no text in it can close the script.
    """
    from ..exceptions import ConfigError

    if not views:
        raise ConfigError("views is empty; pass at least one DecisionView.")
    payload = json.dumps(explorer_data(views), allow_nan=False, separators=(",", ":")).replace("<", "\\u003c")
    if plotlyjs_src is None:
        from plotly.offline import get_plotlyjs

        plotly = f'<script type="text/javascript" data-mmexplain="plotlyjs-inline">{get_plotlyjs()}</script>'
    else:
        plotly = (f'<script type="text/javascript" charset="utf-8" data-mmexplain="plotlyjs-shared" '
                  f'src="{html.escape(plotlyjs_src)}"></script>')
    t = html.escape(title)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{t}</title>
<script type="text/javascript">window.PlotlyConfig = {{MathJaxConfig: 'local'}};</script>
{plotly}
<style>body{{font-family:sans-serif;margin:1em 2em}} #mmx-static-maps,#mmx-static-summary{{display:flex;flex-wrap:wrap}}
#mmx-static-maps>div,#mmx-static-summary>div{{width:440px;height:380px}} table{{border-collapse:collapse}}
td,th{{padding:2px 6px;border-bottom:1px solid #ddd}}</style>
</head><body>
<h1>{t}</h1>
<p>Precomputed explanations of the audited decisions (no kernel needed): choose a decision and a method.
Open <code>notebooks/00_explore.ipynb</code> to edit inputs and compute other methods.</p>
<p><label>Decision <select id="mmx-static-decision" class="mmx-static-decision"></select></label>
<label>Method <select id="mmx-static-method" class="mmx-static-method"></select></label></p>
<div id="mmx-static-card" class="mmx-static-card"></div>
<div id="mmx-static-maps" class="mmx-static-maps"></div>
<div id="mmx-static-summary"><div id="mmx-static-shapley" class="mmx-static-shapley"></div>
<div id="mmx-static-interaction" class="mmx-static-interaction"></div></div>
<script type="application/json" id="mmx-static-data">{payload}</script>
<script type="text/javascript">{_SCRIPT}</script>
</body></html>
"""


def report_explorer_path(results_path: str | os.PathLike[str]) -> Path | None:
    """Where a report notebook writes its static explorer: :data:`EXPLORER_PAGE` in the folder
    of ``results_path`` (the runner's temporary run folder, moved into place with the report);
    None when ``results_path`` is empty (a notebook opened by hand)."""
    return Path(results_path).parent / EXPLORER_PAGE if str(results_path) else None


def write_explorer(path: str | os.PathLike[str], explorer: Explorer, *, ids: Sequence[int] | None = None,
                   title: str | None = None, plotlyjs_src: str | None = None) -> Path:
    """Write the static explorer of ``explorer``'s decisions to ``path``.

    Parameters
    ----------
    path : str or PathLike
        The page, normally ``<run folder>/explorer.html`` (:data:`EXPLORER_PAGE`).
    explorer : Explorer
        Its views are the page's (e.g. ``Explorer(run, ids=ids, methods=methods, cards=cards)``
        reusing notebook 04's audit cards, so the page and the cards agree).
    ids : sequence of int, optional
        The decisions to put on the page; default every one of ``explorer.decisions``.
    title : str, optional
        Default ``"Explorer: <dataset>, <fusion> fusion"``.
    plotlyjs_src : str, optional
        As :func:`explorer_html`.

    Returns
    -------
    Path
    """
    from ..report.results import atomic_write_text

    chosen = list(explorer.decisions["index"]) if ids is None else [int(i) for i in ids]
    views = [explorer.view(i) for i in chosen]
    run = explorer.run
    title = title or f"Explorer: {run.params.get('dataset', explorer.data.name)}, " \
                     f"{run.params.get('fusion', '?')} fusion"
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, explorer_html(views, title=title, plotlyjs_src=plotlyjs_src))
    return out
