"""The static explorer page (mmexplain.explore.static): its numbers, its plotly.js, and how it
behaves in headless Chromium, offline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

CHROMIUM = "/usr/bin/chromium"
IDS = [0, 3, 5]
XSS = "is there a <script>window.__xss=1</script> shape?"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A tiny easy-VQA run's explorer page over three audited decisions (notebook 04's way)."""
    import dataclasses

    from _explore_fixtures import tiny_vqa_run

    from mmexplain.audit import decision_cards
    from mmexplain.explore import Explorer, write_explorer

    shared = tiny_vqa_run()
    test = dataclasses.replace(shared.splits.test, meta={**shared.splits.test.meta,
                                                         "texts": {"question": list(shared.splits.test.meta["texts"]["question"])}})
    run = dataclasses.replace(shared, splits=dataclasses.replace(shared.splits, test=test))
    row = int(run.splits.test.rows["question"][IDS[1]])
    run.splits.test.meta["texts"]["question"][row] = XSS  # hostile text shown on a card
    methods = ["saliency", "input_x_gradient"]
    cards = decision_cards(run, torch.tensor(IDS), methods=methods)
    ex = Explorer(run, ids=IDS, methods=methods, cards=cards)
    path = write_explorer(tmp_path_factory.mktemp("explorer") / "explorer.html", ex)
    return path, cards


def _data(document: str) -> dict:
    raw = re.search(r'<script type="application/json" id="mmx-static-data">(.*?)</script>', document, re.S)
    return json.loads(raw.group(1))


def test_page_holds_the_audit_cards_numbers(page):
    path, cards = page
    document = path.read_text()
    data = _data(document)
    assert [d["index"] for d in data["decisions"]] == IDS
    for d, card in zip(data["decisions"], cards):
        summary = {k: v for k, v in d["summary"].items() if k not in ("interaction_share", "interactions")}
        assert summary == json.loads(json.dumps(card.summary()))
        assert d["methods"] == ["saliency", "input_x_gradient"]
        assert set(d["maps"]["saliency"]) == {"image", "question"}
    assert 'data-mmexplain="plotlyjs-inline"' in document  # alone, it works offline
    assert "<script>window.__xss" not in document  # the hostile text is data, escaped


def test_shared_plotlyjs_rewrite(page, tmp_path):
    from mmexplain.report.plotlyjs import page_plotlyjs, share_plotlyjs

    document = page[0].read_text()
    shared = share_plotlyjs(document, "../plotly-x.min.js")
    assert page_plotlyjs(shared) == "shared" and 'src="../plotly-x.min.js"' in shared
    assert len(shared) < len(document) - 3_000_000  # plotly.js itself is gone
    assert share_plotlyjs(shared, "../other.js") == shared  # nothing inline left to share


def test_runner_shares_the_explorers_plotlyjs_and_keeps_it(tmp_path, page):
    from mmexplain.report.execute import _extra_pages
    from mmexplain.report.plotlyjs import page_plotlyjs, plotlyjs_name

    out, tmp = tmp_path / "reports", tmp_path / "reports" / ".tmp-run"
    tmp.mkdir(parents=True)
    (tmp / "explorer.html").write_text(page[0].read_text())
    extra = _extra_pages(tmp, out, out / "run-1", self_contained=False)
    assert list(extra) == ["explorer"]
    assert page_plotlyjs((tmp / "explorer.html").read_text()) == "shared"
    assert (out / plotlyjs_name()).is_file()
    tmp2 = tmp_path / "reports" / ".tmp-run2"
    tmp2.mkdir()
    (tmp2 / "explorer.html").write_text(page[0].read_text())
    _extra_pages(tmp2, out, out / "run-2", self_contained=True)
    assert page_plotlyjs((tmp2 / "explorer.html").read_text()) == "inline"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium")
def test_page_in_headless_chromium_offline(page):
    from playwright.sync_api import sync_playwright

    path, cards = page
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            pg = browser.new_page()
            pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            pg.on("pageerror", lambda e: errors.append(str(e)))
            pg.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
            pg.add_init_script("window.__xss = false; window.alert = function () { window.__xss = true; };")
            pg.goto(path.as_uri())
            pg.wait_for_selector("#mmx-static-maps .main-svg")
            assert pg.locator("#mmx-static-decision option").count() == len(IDS)
            assert pg.locator("#mmx-static-maps > .mmx-static-map.js-plotly-plot").count() == 2  # image, question
            assert pg.locator("#mmx-static-shapley.js-plotly-plot").count() == 1
            assert f"Sample {IDS[0]}" in pg.locator("#mmx-static-card").inner_text()

            def image_z() -> str:  # the drawn heat map's values (a typed array spec or a list)
                return pg.evaluate("JSON.stringify(document.querySelector('#mmx-static-maps > div').data[1].z)")

            def shares() -> str:
                return pg.evaluate("JSON.stringify(document.getElementById('mmx-static-shapley').data[0].y)")

            z0, s0 = image_z(), shares()
            pg.select_option("#mmx-static-decision", "1")
            card = pg.locator("#mmx-static-card").inner_text()
            assert f"Sample {IDS[1]}" in card and "window.__xss=1" in card  # shown as text
            assert image_z() != z0 and shares() != s0  # the figures follow the decision
            title = pg.evaluate("document.querySelector('#mmx-static-maps > div').layout.title.text")
            assert title.startswith("saliency")
            pg.select_option("#mmx-static-method", "input_x_gradient")
            title = pg.evaluate("document.querySelector('#mmx-static-maps > div').layout.title.text")
            assert title.startswith("input_x_gradient")
            assert pg.evaluate("window.__xss") is False
        finally:
            browser.close()
    assert errors == [] and requests == []
