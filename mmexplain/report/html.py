"""Export an executed notebook to one standalone, offline, code-free HTML report.

What this module guarantees about the HTML it writes:

* code inputs are hidden (nbconvert ``exclude_input=True``); markdown and outputs stay;
* nothing is loaded from the network: the lab template's require.js, MathJax, mermaid and
  widget-manager tags are removed, and plotly.js is loaded once, in ``<head>``, only when
  the notebook has plotly figures: embedded, or from a local file beside the page
  (``plotlyjs_src``, see :mod:`mmexplain.report.plotlyjs`);
* every plotly figure renders, whichever renderer the notebook used: figures are rebuilt
  from their JSON (the ``application/vnd.plotly.v1+json`` bundle, or the arguments of the
  ``Plotly.newPlot`` call of the ``notebook`` renderer's HTML) with :func:`plotly.io.to_html`;
* outputs are treated as data, not code: ``text/html`` and ``text/markdown`` outputs are
  sanitised with bleach (unsafe tags are escaped, so an injected ``<script>`` shows as
  text), and JavaScript / widget outputs are dropped (a widget's text fallback too: it is a
  repr such as a progress bar's last state). Markdown *cells* are the notebook's
  own source and are kept as written;
* a provenance table (parameters, seed, git commit, versions, timings, status) heads the
  report, with every value HTML-escaped.
"""

from __future__ import annotations

import copy
import html
import json
import re
import threading
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any

import nbformat

from ..exceptions import ReportError

__all__ = [
    "external_resources",
    "notebook_to_html",
    "plotly_figure_from_output",
    "prepare_notebook",
    "provenance_table_html",
    "sanitize_html",
]

PROVENANCE_TAG = "mmexplain-provenance"

_TEMPLATE_NAME = "mmexplain_report.html.j2"
# Extends the lab template and empties every block that loads something from a CDN.
_TEMPLATE = r"""{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}
{%- if resources.mmexplain_plotlyjs_src -%}
<script type="text/javascript">window.PlotlyConfig = {MathJaxConfig: 'local'};</script>
<script type="text/javascript" charset="utf-8" data-mmexplain="plotlyjs-shared" src="{{ resources.mmexplain_plotlyjs_src | e }}"></script>
{%- elif resources.mmexplain_plotlyjs -%}
<script type="text/javascript">window.PlotlyConfig = {MathJaxConfig: 'local'};</script>
<script type="text/javascript" data-mmexplain="plotlyjs-inline">{{ resources.mmexplain_plotlyjs }}</script>
{%- endif -%}
{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}
<style type="text/css">
.mmx-provenance { font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px;
  border: 1px solid #ccc; border-radius: 4px; padding: 8px 12px; margin: 8px 0 16px 0; }
.mmx-provenance table { border-collapse: collapse; }
.mmx-provenance th, .mmx-provenance td { text-align: left; vertical-align: top;
  padding: 2px 10px 2px 0; border-bottom: 1px solid #eee; }
.mmx-provenance code { white-space: pre-wrap; word-break: break-all; }
.mmx-status-ok { color: #1a7f37; font-weight: bold; }
.mmx-status-failed { color: #cf222e; font-weight: bold; }
</style>
{%- endblock extra_css -%}
"""

# ---------------------------------------------------------------------------------------------
# Sanitising untrusted outputs
# ---------------------------------------------------------------------------------------------

_SAFE_TAGS = frozenset(
    "a abbr b blockquote br caption code col colgroup dd del details div dl dt em figcaption "
    "figure h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p pre q s samp small span strong "
    "style sub summary sup table tbody td tfoot th thead tr u ul var".split()
)
_SAFE_ATTRS = frozenset(
    "class title style colspan rowspan border align valign width height alt scope".split()
)


#: In-page anchors (``<a href="#decision-17">`` to ``<div id="decision-17">``). An id must
#: hold a hyphen, so it is never a JavaScript identifier and cannot clobber a global such
#: as ``Plotly`` through the DOM's named properties.
_ANCHOR_ID = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)+")


def _allow_attribute(tag: str, name: str, value: str) -> bool:
    if name in _SAFE_ATTRS:
        return True
    if name == "id":
        return _ANCHOR_ID.fullmatch(value) is not None
    lowered = value.strip().lower()
    if tag == "a" and name == "href":
        return not lowered.startswith("data:")
    if tag == "img" and name == "src":
        return lowered.startswith("data:image/")  # no remote images: reports work offline
    return False


_local = threading.local()  # bleach Cleaner instances are not thread-safe


def sanitize_html(fragment: str) -> str:
    """Make an untrusted HTML (or markdown) fragment inert.

    Allowed: text formatting, tables (incl. pandas' ``<style>``), inline images as data
    URIs, links; ``style`` attributes go through bleach's CSS sanitiser. Everything else
    (``<script>``, event handlers, iframes, SVG, forms...) is escaped, so it shows as text.

    Parameters
    ----------
    fragment : str
        HTML from a notebook output (``text/html`` or ``text/markdown``).

    Returns
    -------
    str
        The sanitised fragment.
    """
    cleaner = getattr(_local, "cleaner", None)
    if cleaner is None:
        import bleach
        from bleach.css_sanitizer import ALLOWED_CSS_PROPERTIES, CSSSanitizer

        cleaner = _local.cleaner = bleach.Cleaner(
            tags=_SAFE_TAGS,
            attributes=_allow_attribute,
            protocols={"http", "https", "mailto", "data"},
            css_sanitizer=CSSSanitizer(allowed_css_properties=ALLOWED_CSS_PROPERTIES),
            strip=False,
            strip_comments=True,
        )
    return cleaner.clean(fragment)


# ---------------------------------------------------------------------------------------------
# Plotly figures
# ---------------------------------------------------------------------------------------------

_PLOTLY_MIME = "application/vnd.plotly.v1+json"
_NEWPLOT = re.compile(r'Plotly\.newPlot\(\s*"(?P<id>[^"\\<>]{1,100})"\s*,\s*')
_ADDFRAMES = re.compile(r"Plotly\.addFrames\(\s*'(?P<id>[^'\\<>]{1,100})'\s*,\s*")
_PLOTLYJS_BANNER = re.compile(r"<script[^>]*>\s*/\*\*?\s*\n?\s*\*?\s*plotly\.js v\d")


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _parse_newplot(source: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Recover (figure dict, config) from the HTML plotly's ``to_html`` wrote, or None."""
    match = _NEWPLOT.search(source)
    if match is None:
        return None
    decoder = json.JSONDecoder()
    pos = match.end()
    parts: list[Any] = []
    try:
        for i in range(3):
            value, pos = decoder.raw_decode(source, pos)
            parts.append(value)
            if i < 2:
                sep = re.compile(r"\s*,\s*").match(source, pos)
                if sep is None:
                    return None
                pos = sep.end()
    except json.JSONDecodeError:
        return None
    data, layout, config = parts
    if not (isinstance(data, list) and isinstance(layout, dict) and isinstance(config, dict)):
        return None
    fig: dict[str, Any] = {"data": data, "layout": layout}
    frames = _ADDFRAMES.search(source, pos)
    if frames is not None and frames.group("id") == match.group("id"):
        try:
            value, _ = decoder.raw_decode(source, frames.end())
        except json.JSONDecodeError:
            value = None
        if isinstance(value, list):
            fig["frames"] = value
    return fig, config


def plotly_figure_from_output(
    data: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Find a plotly figure in one output's mime bundle.

    Parameters
    ----------
    data : mapping
        The ``data`` of a ``display_data`` / ``execute_result`` output.

    Returns
    -------
    (dict, dict) or None
        The figure (``data``, ``layout``, maybe ``frames``) and its config, or None when the
        output holds no plotly figure.
    """
    bundle = data.get(_PLOTLY_MIME)
    if isinstance(bundle, Mapping) and "data" in bundle:
        fig = {k: bundle[k] for k in ("data", "layout", "frames") if k in bundle}
        config = bundle.get("config") or {}
        return copy.deepcopy(fig), dict(config)
    source = data.get("text/html")
    if source is not None:
        text = _text(source)
        if text.count('class="plotly-graph-div"') == 1:
            return _parse_newplot(text)
    return None


def _figure_html(fig: dict[str, Any], config: Mapping[str, Any]) -> str:
    import plotly.io as pio

    return pio.to_html(
        fig,
        config=dict(config),
        include_plotlyjs=False,
        include_mathjax=False,
        full_html=False,
        validate=False,
        default_width="100%",
        default_height=525,
    )


def _is_plotlyjs_bundle(data: Mapping[str, Any]) -> bool:
    """True for the output the ``notebook`` renderer emits to load plotly.js itself."""
    source = data.get("text/html")
    if source is None:
        return False
    text = _text(source)
    return len(text) > 100_000 and _PLOTLYJS_BANNER.search(text[:5000]) is not None


# ---------------------------------------------------------------------------------------------
# Notebook preparation and export
# ---------------------------------------------------------------------------------------------

_WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
_DROP_MIMES = (
    "application/javascript",
    "text/javascript",
    _WIDGET_MIME,
    "application/vnd.jupyter.widget-state+json",
    "text/vnd.mermaid",  # the lab template inserts it unescaped, and mermaid.js is not loaded
)


def prepare_notebook(
    nb: nbformat.NotebookNode, *, header_html: str = ""
) -> tuple[nbformat.NotebookNode, int]:
    """Return a copy of ``nb`` ready for export, and its number of plotly figures.

    Plotly figures are rebuilt from their JSON, plotly.js loader outputs are dropped,
    script/widget outputs are dropped, HTML/markdown outputs are sanitised and
    ``header_html`` (trusted, e.g. :func:`provenance_table_html`) becomes the first cell.

    Parameters
    ----------
    nb : NotebookNode
        An executed notebook; it is not modified.
    header_html : str
        Trusted HTML shown before the first cell; empty for none.

    Returns
    -------
    (NotebookNode, int)
    """
    nb = copy.deepcopy(nb)
    n_figures = 0
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") not in ("display_data", "execute_result"):
                kept.append(output)
                continue
            data = output.get("data", {})
            if _is_plotlyjs_bundle(data) or _WIDGET_MIME in data:
                continue
            figure = plotly_figure_from_output(data)
            if figure is not None:
                n_figures += 1
                output["data"] = {
                    "text/html": _figure_html(*figure),
                    "text/plain": _text(data.get("text/plain", "")) or "<plotly figure>",
                }
                kept.append(output)
                continue
            for mime in list(data):
                if mime in _DROP_MIMES or mime == _PLOTLY_MIME:
                    del data[mime]
                elif mime in ("text/html", "text/markdown"):
                    data[mime] = sanitize_html(_text(data[mime]))
            if data:
                kept.append(output)
        cell["outputs"] = kept
    if header_html:
        header = nbformat.v4.new_code_cell(source="")
        header.metadata["tags"] = [PROVENANCE_TAG]
        header.outputs = [
            nbformat.v4.new_output(
                "display_data",
                data={"text/html": header_html, "text/plain": "report provenance"},
            )
        ]
        header["id"] = PROVENANCE_TAG
        nb.cells.insert(0, header)
    return nb, n_figures


def notebook_to_html(
    nb: nbformat.NotebookNode,
    *,
    title: str,
    header_html: str = "",
    plotlyjs_src: str | None = None,
) -> str:
    """Export an executed notebook as offline HTML: no code, no network, working plots.

    Parameters
    ----------
    nb : NotebookNode
        The executed (possibly partially executed) notebook; not modified.
    title : str
        The page title (escaped by the template).
    header_html : str
        Trusted HTML put at the top, e.g. :func:`provenance_table_html`.
    plotlyjs_src : str, optional
        A relative URL of a local plotly.js file (:func:`mmexplain.report.plotlyjs.plotlyjs_src`)
        that pages with figures load instead of embedding plotly.js; the caller writes the
        file there (:func:`~mmexplain.report.plotlyjs.write_plotlyjs`). Default None: the page
        embeds plotly.js and works alone.

    Returns
    -------
    str
        The HTML document.

    Raises
    ------
    ReportError
        If the HTML would still load something from the network, or ``plotlyjs_src`` is
        not a relative path.
    """
    if plotlyjs_src is not None and (
        not isinstance(plotlyjs_src, str)
        or not plotlyjs_src
        or re.match(r"^([a-z][a-z0-9+.-]*:|/)", plotlyjs_src, re.IGNORECASE)
    ):
        raise ReportError(
            f"plotlyjs_src must be a relative path such as '../plotly.min.js'; got {plotlyjs_src!r}."
        )
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    prepared, n_figures = prepare_notebook(nb, header_html=header_html)
    exporter = HTMLExporter(
        template_name="lab",
        template_file=_TEMPLATE_NAME,
        extra_loaders=[DictLoader({_TEMPLATE_NAME: _TEMPLATE})],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        exclude_anchor_links=True,
    )
    resources: dict[str, Any] = {"metadata": {"name": title}}
    if n_figures and plotlyjs_src is not None:
        resources["mmexplain_plotlyjs_src"] = plotlyjs_src
    elif n_figures:
        from plotly.offline import get_plotlyjs

        resources["mmexplain_plotlyjs"] = get_plotlyjs()
    prepared.metadata["title"] = title
    body, _ = exporter.from_notebook_node(prepared, resources=resources)
    external = external_resources(body)
    if external:
        raise ReportError(f"report {title!r} would load external resources: {external[:5]}")
    return body


class _ResourceFinder(HTMLParser):
    _SRC_TAGS = {"script", "img", "iframe", "audio", "video", "source", "embed", "track", "input"}
    _IMPORT = re.compile(
        r"""(?:\bimport\s*\(?\s*|@import\s+(?:url\()?\s*)["']((?:https?:)?//[^"']+)"""
    )
    _CSS_URL = re.compile(r"""url\(\s*["']?((?:https?:)?//[^"')\s]+)""")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in: str | None = None

    @staticmethod
    def _remote(url: str | None) -> bool:
        u = (url or "").strip().lower()
        return u.startswith(("http:", "https:", "//"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in self._SRC_TAGS and self._remote(a.get("src")):
            self.found.append(f"<{tag} src={a['src']}>")
        if tag == "link" and self._remote(a.get("href")):
            self.found.append(f"<link href={a['href']}>")
        if tag == "object" and self._remote(a.get("data")):
            self.found.append(f"<object data={a['data']}>")
        if tag in ("script", "style"):
            self._in = tag if (tag == "style" or a.get("type") == "module") else None

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.found.extend(f"import {u}" for u in self._IMPORT.findall(data))
        elif self._in == "style":
            urls = self._IMPORT.findall(data) + self._CSS_URL.findall(data)
            self.found.extend(f"css {u}" for u in dict.fromkeys(urls))


def external_resources(document: str) -> list[str]:
    """List what an HTML document would fetch from the network when opened.

    Looks at ``src`` of script/img/iframe/media tags, ``<link href>``, ``<object data>``,
    imports in ``<script type="module">`` and ``@import`` / ``url()`` in ``<style>``.
    Plain links (``<a href>``) and URLs inside scripts' string literals are not fetches.

    Parameters
    ----------
    document : str
        The HTML.

    Returns
    -------
    list of str
        One description per external reference; empty when the page is self-contained.
    """
    finder = _ResourceFinder()
    finder.feed(document)
    finder.close()
    return finder.found


# ---------------------------------------------------------------------------------------------
# Provenance header
# ---------------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _rows_text(rows: Any, limit: int = 50) -> str:
    """Row numbers as text: ``3 rows: 2, 7, 9`` (the first ``limit``, then how many more)."""
    rows = list(rows)
    shown = ", ".join(str(r) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"{len(rows)} row{'s' if len(rows) != 1 else ''} (from 1, after the header): {shown}{more}"


def provenance_table_html(envelope: Mapping[str, Any]) -> str:
    """Render a run's provenance as an HTML table (every value escaped).

    Parameters
    ----------
    envelope : mapping
        The run JSON (see :mod:`mmexplain.report.records`): ``run_id``, ``notebook``,
        ``status``, ``error``, ``parameters`` and ``provenance``.

    Returns
    -------
    str
        A ``<div class="mmx-provenance">`` fragment.
    """
    esc = html.escape
    prov = envelope.get("provenance") or {}
    status = str(envelope.get("status", "unknown"))
    rows: list[tuple[str, str]] = []

    def row(label: str, value: Any, *, code: bool = True) -> None:
        text = esc(_fmt(value))
        rows.append((esc(label), f"<code>{text}</code>" if code else text))

    status_html = f'<span class="mmx-status-{esc(status)}">{esc(status)}</span>'
    error = envelope.get("error")
    if error:
        where = f" (cell {error.get('cell_index')})" if error.get("cell_index") is not None else ""
        status_html += esc(f" {error.get('ename')}: {error.get('evalue')}{where}")
    rows.append(("Status", status_html))
    row("Run id", envelope.get("run_id", ""))
    row("Notebook", envelope.get("notebook", ""))
    params = envelope.get("parameters") or {}
    if params:
        for name in sorted(params):
            row(f"Parameter {name}", params[name])
    else:
        row("Parameters", "(notebook defaults)", code=False)
    effective = prov.get("parameters") or {}
    defaults = {k: effective[k] for k in prov.get("defaults_used") or [] if k in effective}
    if defaults:
        row("Defaults used", ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(defaults.items())))
    for key, label in (
        ("seed", "Seed"),
        ("device", "Device"),
        ("git_commit", "Git commit"),
        ("git_dirty", "Uncommitted changes"),
        ("notebook_sha256", "Notebook SHA-256"),
        ("data_fingerprint", "Data fingerprint"),
        ("checkpoint_hash", "Checkpoint hash"),
        ("python", "Python"),
        ("started", "Started (UTC)"),
        ("finished", "Finished (UTC)"),
        ("seconds", "Seconds"),
    ):
        if key in prov and prov[key] is not None:
            row(label, prov[key])
    data = prov.get("data_provenance") or {}
    for key, label in (("source", "Data source"), ("sidecar", "Data sidecar"), ("missing_policy", "Missing values")):
        if data.get(key):
            row(label, data[key])
    for column, rows_ in sorted((data.get("imputed_rows") or {}).items()):
        row(f"Imputed rows ({column})", _rows_text(rows_), code=False)
    if data.get("dropped_rows"):
        row("Dropped rows", _rows_text(data["dropped_rows"]), code=False)
    cut = data.get("truncated_rows") or {}
    if cut.get("rows"):
        row(f"Texts cut to {cut.get('max_tokens')} tokens ({cut.get('column')})", _rows_text(cut["rows"]), code=False)
    versions = prov.get("packages") or {}
    if versions:
        row("Packages", ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return (
        f'<div class="mmx-provenance"><strong>Report provenance</strong><table>{body}</table></div>'
    )
