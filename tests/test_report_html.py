"""HTML export: sanitising, offline plotly, provenance; then real reports in headless Chromium."""

from __future__ import annotations

from pathlib import Path

import nbformat
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from _page_checks import page_noise

from mmexplain.exceptions import ReportError
from mmexplain.report import RunRecord, RunSpec, run_batch
from mmexplain.report.html import (
    external_resources,
    notebook_to_html,
    plotly_figure_from_output,
    prepare_notebook,
    provenance_table_html,
    sanitize_html,
)
from mmexplain.report.plotlyjs import page_plotlyjs, plotlyjs_name

NB = Path(__file__).parent / "fixtures" / "notebooks"
XSS = "<script>window.__xss=1</script>"
PAYLOAD = f'{XSS} "double" \'single\' & <img src=x onerror="window.__xss=2">'


def _fig() -> go.Figure:
    return go.Figure(
        go.Bar(x=["a", "b"], y=[1, 2], name="</script><script>window.__xss=1</script>")
    )


def _notebook_with(*outputs: dict) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("secret_code = 1")
    cell.outputs = [nbformat.v4.new_output("display_data", data=d) for d in outputs]
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title"), cell])


# ------------------------------------------------------------------------------ unit tests


def test_sanitize_escapes_scripts_and_keeps_tables() -> None:
    out = sanitize_html(
        f"<p class='t'>{PAYLOAD}</p><table><tr><td style='color: red'>1</td></tr></table>"
    )
    assert "<script" not in out and "onerror" not in out
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in out
    assert '<td style="color: red;">1</td>' in out and '<p class="t">' in out
    assert "<a>x</a>" == sanitize_html('<a href="javascript:alert(1)">x</a>')
    assert "<iframe" not in sanitize_html('<iframe src="https://example.com"></iframe>')
    # in-page anchors work; an id that could clobber a JavaScript global is dropped
    assert sanitize_html('<a href="#decision-7">7</a><div id="decision-7">card</div>') == (
        '<a href="#decision-7">7</a><div id="decision-7">card</div>')
    assert sanitize_html('<div id="Plotly">x</div><img id="__xss">') == '<div>x</div><img>'


def test_external_resources_finds_fetches_only() -> None:
    page = (
        '<script src="https://cdn.x/a.js"></script><link rel="stylesheet" href="//cdn.x/s.css">'
        '<script type="module">import "https://cdn.x/m.mjs"</script>'
        '<style>@import url("https://f.x/font.css"); a{background:url(http://i.x/a.png)}</style>'
        '<a href="https://plotly.com">link</a><script>var u = "https://not.fetched";</script>'
        '<img src="data:image/png;base64,AA">'
    )
    found = external_resources(page)
    assert len(found) == 5 and not any("plotly.com" in f or "not.fetched" in f for f in found)
    assert external_resources("<html><script>x()</script></html>") == []


def test_plotly_figures_are_rebuilt_from_either_renderer() -> None:
    fig = _fig()
    bundle = {"application/vnd.plotly.v1+json": fig.to_plotly_json() | {"config": {"x": 1}}}
    parsed = plotly_figure_from_output(bundle)
    assert (
        parsed is not None and list(parsed[0]["data"][0]["y"]) == [1, 2] and parsed[1] == {"x": 1}
    )
    html_out = {
        "text/html": pio.to_html(
            fig,
            include_plotlyjs=False,
            full_html=False,
            include_mathjax="cdn",
            post_script="console.log(1)",
        )
    }
    parsed = plotly_figure_from_output(html_out)
    assert parsed is not None and parsed[0]["data"][0]["name"].startswith("</script>")
    assert plotly_figure_from_output({"text/html": "<div>no figure</div>"}) is None
    fake = (
        '<div class="plotly-graph-div"></div><script>Plotly.newPlot("i", window.__xss=1)</script>'
    )
    assert plotly_figure_from_output({"text/html": fake}) is None


def test_prepare_notebook_drops_scripts_and_sanitises_outputs() -> None:
    from plotly.offline import get_plotlyjs

    loader = {
        "text/html": f"<script>window.PlotlyConfig = {{}};</script>\n<script>{get_plotlyjs()}</script>"
    }
    nb = _notebook_with(
        loader,
        {"application/vnd.plotly.v1+json": _fig().to_plotly_json(), "text/plain": "Figure"},
        {"text/markdown": f"**{PAYLOAD}**"},
        {"application/javascript": "window.__xss=1", "text/plain": "js"},
        {"text/vnd.mermaid": "graph TD; A-->B; </pre><script>window.__xss=1</script>"},
    )
    prepared, n_figures = prepare_notebook(nb, header_html="<div id='h'>header</div>")
    assert n_figures == 1
    outputs = prepared.cells[2].outputs
    assert len(outputs) == 3  # plotly.js loader dropped
    assert "Plotly.newPlot" in outputs[0].data["text/html"]
    assert "<script" not in outputs[1].data["text/markdown"]
    assert list(outputs[2].data) == ["text/plain"]
    assert len(outputs) == 3  # the mermaid-only output is gone
    assert prepared.cells[0].outputs[0].data["text/html"] == "<div id='h'>header</div>"
    assert len(nb.cells) == 2  # input untouched


def test_notebook_to_html_is_offline_code_free_and_embeds_plotly_once() -> None:
    nb = _notebook_with(
        {"application/vnd.plotly.v1+json": _fig().to_plotly_json()},
        {"application/vnd.plotly.v1+json": _fig().to_plotly_json()},
    )
    page = notebook_to_html(nb, title="t<1>")
    assert "secret_code" not in page and external_resources(page) == []
    assert "<script>window.__xss" not in page  # trace names are JSON-escaped by plotly
    assert page.count("* plotly.js v") == 1 and page.count('class="plotly-graph-div"') == 2
    assert "<title>t&lt;1&gt;</title>" in page
    no_fig = notebook_to_html(_notebook_with({"text/plain": "hi"}), title="t")
    assert "plotly.js v" not in no_fig and len(no_fig) < 400_000


def test_notebook_to_html_can_load_a_shared_plotlyjs_file() -> None:
    nb = _notebook_with({"application/vnd.plotly.v1+json": _fig().to_plotly_json()})
    page = notebook_to_html(nb, title="t", plotlyjs_src="../plotly-x.min.js")
    assert "plotly.js v" not in page and len(page) < 400_000
    assert page.count('src="../plotly-x.min.js"') == 1 and external_resources(page) == []
    assert page_plotlyjs(page) == "shared"
    assert page_plotlyjs(notebook_to_html(nb, title="t")) == "inline"
    # a page without figures loads no plotly.js at all
    assert page_plotlyjs(notebook_to_html(_notebook_with({"text/plain": "hi"}), title="t",
                                          plotlyjs_src="../p.js")) == "none"
    for bad in ("https://cdn.plot.ly/plotly.min.js", "/abs/plotly.js", "", "file:///p.js"):
        with pytest.raises(ReportError, match="plotlyjs_src must be a relative path"):
            notebook_to_html(nb, title="t", plotlyjs_src=bad)


def test_widget_outputs_are_dropped_with_their_text_fallback() -> None:
    bar = {"application/vnd.jupyter.widget-view+json": {"model_id": "m", "version_major": 2},
           "text/plain": "  0%|          | 0/16 [00:00<?, ?it/s]"}
    prepared, _ = prepare_notebook(_notebook_with(bar, {"text/plain": "kept"}))
    assert [o.data["text/plain"] for o in prepared.cells[1].outputs] == ["kept"]


def test_page_noise_finds_stderr_warnings_and_dict_reprs() -> None:
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="progress 10%\n"),
        nbformat.v4.new_output("stream", name="stdout", text="/a.py:1: TqdmWarning: IProgress\n"),
        nbformat.v4.new_output("execute_result", data={"text/plain": "{'a': 1}"}, execution_count=1),
    ]
    noise = page_noise(notebook_to_html(nbformat.v4.new_notebook(cells=[cell]), title="t"))
    assert len(noise) == 3, noise
    assert noise[0].startswith("stderr output: progress") and noise[1].startswith("dict repr")
    assert "TqdmWarning: IProgress" in noise[2]
    clean = _notebook_with({"text/plain": "{1, 2}"}, {"text/html": "<b>fine</b>", "text/plain": "x"})
    assert page_noise(notebook_to_html(clean, title="t")) == []


def test_provenance_table_escapes_everything() -> None:
    table = provenance_table_html(
        {
            "run_id": "r",
            "notebook": "nb.ipynb",
            "status": "failed",
            "error": {"ename": "ValueError", "evalue": XSS, "cell_index": 2},
            "parameters": {"title": PAYLOAD, "n": [1, 2]},
            "provenance": {"seed": 1, "git_commit": "abc", "packages": {"plotly": "7"}},
        }
    )
    assert "<script" not in table and "<img" not in table
    assert "&lt;script&gt;" in table and "(cell 2)" in table and "plotly 7" in table


# ------------------------------------------------------------------------ in a real browser


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunRecord]:
    out = tmp_path_factory.mktemp("html-reports")
    specs = [
        RunSpec(NB / "simple.ipynb", {"label": "nb-renderer"}, "notebook_renderer"),
        RunSpec(NB / "simple.ipynb", {"renderer": "plotly_mimetype"}, "mimetype_renderer"),
        RunSpec(NB / "xss.ipynb", {"title": PAYLOAD}, "xss"),
        RunSpec(NB / "raises.ipynb", {"x": 3}, "raises"),
    ]
    records = run_batch(specs, out, jobs=2)
    # the same notebook with plotly.js in the page, in a folder of its own
    alone = tmp_path_factory.mktemp("html-self-contained")
    records += run_batch([RunSpec(NB / "simple.ipynb", {"label": "alone"}, "self_contained")],
                         alone, self_contained=True)
    return {r.run_id: r for r in records}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("run_id", "mode"),
    [("notebook_renderer", "shared"), ("mimetype_renderer", "shared"), ("self_contained", "inline")],
)
def test_plotly_figure_renders_offline_without_console_errors(
    reports: dict[str, RunRecord], run_id: str, mode: str
) -> None:
    from browser import open_report

    rec = reports[run_id]
    assert rec.ok
    document = rec.html_path.read_text()
    assert page_plotlyjs(document) == mode
    shared = rec.html_path.parents[1] / plotlyjs_name()
    # shared: one file beside the run folders; self-contained: none, the page works alone
    assert shared.is_file() == (mode == "shared")
    assert f'src="../{plotlyjs_name()}"' in document if mode == "shared" else "plotly.js v" in document
    page = open_report(rec.html_path)
    assert page.console_errors == []
    assert page.figures == 1 and page.rendered == 1
    assert "Report provenance" in page.text and "alpha=0.5" in page.text
    assert "import plotly" not in page.text and "record(results_path" not in page.text


@pytest.mark.slow
def test_injected_markup_is_shown_as_text_not_run(reports: dict[str, RunRecord]) -> None:
    from browser import open_report

    rec = reports["xss"]
    assert rec.ok and rec.results["title"] == PAYLOAD
    page = open_report(rec.html_path)
    assert not page.xss, "a <script> from a parameter ran in the report"
    assert page.dialogs == [] and page.console_errors == []
    assert f"Title (markdown): {XSS}" in page.text
    assert f"Title (html): {XSS}" in page.text
    assert f"Parameter title\t{PAYLOAD}" in page.text  # provenance table, fully escaped


@pytest.mark.slow
def test_failed_report_shows_the_error(reports: dict[str, RunRecord]) -> None:
    from browser import open_report

    rec = reports["raises"]
    assert rec.status == "failed" and rec.html_path.is_file()
    page = open_report(rec.html_path)
    assert page.console_errors == [] and page.figures == 0
    assert "ValueError: boom x=3 (cell 3)" in page.text
    assert "An Exception was encountered" in page.text
    assert "never runs" not in page.text
