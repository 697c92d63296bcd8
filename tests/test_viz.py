"""Plotly figures: trace counts, data shapes, sorting, escaping of hostile strings."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest
import torch

from mmexplain import viz
from mmexplain.attribution.result import AttributionResult
from mmexplain.modality import ModalitySpec

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _assert_safe(fig: go.Figure) -> None:
    """No raw hostile markup anywhere in the figure's JSON or standalone HTML."""
    for text in (fig.to_json(), fig.to_html(include_plotlyjs=False, full_html=False)):
        assert "<script>alert" not in text
        assert "\\u003cscript\\u003ealert" not in text.lower()  # JSON may write < as \u003c
    assert ESCAPED in json.dumps(json.loads(fig.to_json()), ensure_ascii=False)


def _basic(fig: go.Figure) -> None:
    assert isinstance(fig, go.Figure)
    assert fig.layout.title.text
    assert fig.layout.template.layout.to_plotly_json() == pio.templates[viz.TEMPLATE].layout.to_plotly_json()


def test_setup_notebook_sets_renderer(monkeypatch):
    monkeypatch.setattr(pio.renderers, "default", "json")
    assert viz.setup_notebook() == "notebook"
    assert pio.renderers.default == "notebook"


def test_setup_notebook_skips_only_jsonschemas_iri_parser():
    """In a fresh kernel-like process the notebooks' setup imports jsonschema (through
    plotly's renderers and nbformat) without building rfc3987_syntax's parser; notebooks
    still validate, and the package stays importable."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from mmexplain import viz\n"
        "viz.setup_notebook()\n"
        "import plotly.io as pio; pio.renderers['notebook']\n"
        "assert 'jsonschema' in sys.modules and 'rfc3987_syntax' not in sys.modules, sorted(sys.modules)[:5]\n"
        "import nbformat\n"
        "nbformat.validate(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('1')]))\n"
        "try:\n"
        "    nbformat.validate({'nbformat': 4})\n"
        "except nbformat.ValidationError:\n"
        "    print('invalid caught')\n"
        "import rfc3987_syntax\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["invalid", "caught", "ok"]


def test_image_attribution_overlay_is_channel_sum():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, 8, 10, generator=g)
    attr = torch.randn(3, 8, 10, generator=g)
    fig = viz.image_attribution(image, attr, title="ig: image")
    _basic(fig)
    assert [t.type for t in fig.data] == ["image", "heatmap"]
    np.testing.assert_allclose(np.asarray(fig.data[1].z), attr.double().sum(0).numpy(), rtol=1e-12)
    assert np.asarray(fig.data[0].z).shape == (8, 10, 3)
    heat = fig.data[1]
    assert heat.zmin == -heat.zmax and heat.zmax == pytest.approx(float(attr.sum(0).abs().max()))
    assert fig.layout.yaxis.autorange == "reversed"
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text


def test_image_attribution_grey_hw_attribution_and_mask():
    image = np.linspace(0, 1, 36).reshape(1, 6, 6)
    attr = np.zeros((6, 6))
    mask = np.zeros((1, 6, 6), dtype=bool)
    mask[0, 2:4, 2:4] = True
    fig = viz.image_attribution(image, attr, mask=torch.from_numpy(mask), title=HOSTILE)
    assert [t.type for t in fig.data] == ["image", "heatmap", "contour"]
    assert np.asarray(fig.data[0].z).shape == (6, 6, 3)
    np.testing.assert_array_equal(np.asarray(fig.data[2].z), mask[0].astype(float))
    assert fig.data[1].zmax == 1.0  # all-zero attribution still gets a valid range
    _assert_safe(fig)


def test_image_attribution_rejects_size_mismatch():
    with pytest.raises(ValueError, match="image is"):
        viz.image_attribution(np.zeros((3, 4, 4)), np.zeros((5, 5)))


def test_token_attribution_escapes_and_filters():
    tokens = ["what", "is", HOSTILE, "?", "[PAD]", "[PAD]"]
    scores = torch.tensor([0.1, -0.2, 0.9, 0.0, 5.0, 5.0])
    valid = torch.tensor([True, True, True, True, False, False])
    fig = viz.token_attribution(tokens, scores, valid=valid, title=f"ig {HOSTILE}")
    _basic(fig)
    assert len(fig.data) == 1 and fig.data[0].type == "heatmap"
    z = np.asarray(fig.data[0].z, dtype=float)
    np.testing.assert_allclose(z.ravel(), [0.1, -0.2, 0.9, 0.0], rtol=1e-6)
    assert fig.data[0].text[0][2] == ESCAPED
    assert fig.data[0].zmax == pytest.approx(0.9) and fig.data[0].zmin == pytest.approx(-0.9)
    _assert_safe(fig)
    assert "&lt;script&gt;" in fig.layout.title.text


def test_token_attribution_wraps_rows_and_checks_lengths():
    fig = viz.token_attribution([f"t{i}" for i in range(10)], np.arange(10.0), per_row=4)
    z = np.asarray(fig.data[0].z, dtype=float)
    assert z.shape == (3, 4)
    np.testing.assert_array_equal(z.ravel()[:10], np.arange(10.0))
    assert np.isnan(z.ravel()[10:]).all()
    with pytest.raises(ValueError, match="tokens but"):
        viz.token_attribution(["a"], [1.0, 2.0])


def test_tabular_attribution_sorted_by_magnitude():
    names = ["age", "income", HOSTILE, "height"]
    scores = torch.tensor([0.1, -3.0, 2.0, -0.5])
    fig = viz.tabular_attribution(names, scores)
    _basic(fig)
    bar = fig.data[0]
    assert len(fig.data) == 1 and bar.orientation == "h"
    np.testing.assert_allclose(bar.x, [-3.0, 2.0, -0.5, 0.1])
    assert list(bar.y) == ["income", ESCAPED, "height", "age"]
    assert fig.layout.yaxis.autorange == "reversed"  # largest |score| on top
    assert bar.marker.color[0] != bar.marker.color[1]  # negative and positive differ
    _assert_safe(fig)
    assert list(viz.tabular_attribution(names, scores, top_k=2).data[0].y) == ["income", ESCAPED]


def test_audio_attribution_two_panels():
    wav = torch.sin(torch.linspace(0, 20, 200)).view(1, -1)
    sc = torch.randn(1, 200)
    fig = viz.audio_attribution(wav, sc, sample_rate=100)
    _basic(fig)
    assert [t.type for t in fig.data] == ["scatter", "heatmap"]
    assert len(fig.data[0].y) == 200
    np.testing.assert_allclose(np.asarray(fig.data[1].z), sc.double().numpy())
    assert fig.data[0].x[-1] == pytest.approx(1.99)
    with pytest.raises(ValueError):
        viz.audio_attribution(np.zeros(10), np.zeros(11))


def test_modality_shares_grouped_and_plain():
    df = pd.DataFrame({
        "method": ["ig", "ig", "saliency", "saliency", "ig", "ig"],
        "modality": ["image", HOSTILE, "image", HOSTILE, "image", HOSTILE],
        "share": [0.6, 0.4, 0.2, 0.8, 0.8, 0.2],
    })
    fig = viz.modality_shares(df, by="method")
    _basic(fig)
    assert len(fig.data) == 2
    assert list(fig.data[0].x) == ["ig", "saliency"]
    np.testing.assert_allclose(fig.data[0].y, [0.7, 0.2])
    assert fig.data[1].name == ESCAPED
    assert fig.data[0].error_y.array is not None  # ig's mean is over two rows
    _assert_safe(fig)

    plain = viz.modality_shares({"image": [0.2, 0.4], "text": 0.7})
    assert len(plain.data) == 1
    assert list(plain.data[0].x) == ["image", "text"]
    np.testing.assert_allclose(plain.data[0].y, [0.3, 0.7])
    series = viz.modality_shares(pd.Series([0.25, 0.75], index=["a", "b"]))
    np.testing.assert_allclose(series.data[0].y, [0.25, 0.75])
    with pytest.raises(ValueError, match="by="):
        viz.modality_shares(df, by="nope")


def test_modality_shares_from_attribution_result_by_bool_column():
    specs = [ModalitySpec("image", "image"), ModalitySpec("tab", "tabular")]
    res = AttributionResult("ig", {"image": torch.ones(2, 1, 2, 2), "tab": torch.tensor([[4.0, 0.0], [-1.0, -3.0]])}, specs)
    fig = viz.modality_shares(res)
    np.testing.assert_allclose(fig.data[0].y, res.shares().mean(0).numpy())
    frame = res.to_frame().assign(correct=[True, True, False, False])
    fig = viz.modality_shares(frame, by="correct")
    assert list(fig.data[0].x) == ["True", "False"]


def test_fusion_level_shares_plain_and_faceted():
    levels = pd.DataFrame({
        "level": ["encoder", "encoder", "fusion", "fusion"],
        "modality": ["image", "text", "image", "text"],
        "share": [0.3, 0.7, 0.5, 0.5],
    })
    fig = viz.fusion_level_shares(levels)
    _basic(fig)
    assert len(fig.data) == 2
    assert list(fig.data[0].x) == ["encoder", "fusion"]
    np.testing.assert_allclose(fig.data[1].y, [0.7, 0.5])

    comp = pd.concat([levels.assign(fusion="early"), levels.assign(fusion=HOSTILE, share=[0.1, 0.9, 0.2, 0.8])])
    fig = viz.fusion_level_shares(comp)
    assert len(fig.data) == 4
    assert {t.xaxis for t in fig.data} == {"x", "x2"}
    assert [t.showlegend for t in fig.data] == [True, True, False, False]
    np.testing.assert_allclose(fig.data[2].y, [0.1, 0.2])
    _assert_safe(fig)
    with pytest.raises(ValueError, match="level"):
        viz.fusion_level_shares(levels.drop(columns="level"))


def test_perturbation_curves_mean_and_random():
    fr = np.linspace(0, 1, 5)
    c = SimpleNamespace(fractions=fr, curve=np.array([[1, 0.5, 0.2, 0.1, 0], [1, 0.7, 0.4, 0.1, 0.0]]),
                        random_curve=np.ones((2, 5)), mode="deletion")
    d = {"fractions": fr, "curve": np.linspace(1, 0, 5), "random_curve": np.linspace(1, 0.5, 5), "mode": "deletion"}
    fig = viz.perturbation_curves({"image": c, HOSTILE: d})
    _basic(fig)
    assert len(fig.data) == 4
    np.testing.assert_allclose(fig.data[0].y, [1, 0.6, 0.3, 0.1, 0])
    np.testing.assert_allclose(fig.data[1].y, np.ones(5))
    assert fig.data[1].line.dash == "dash" and fig.data[0].line.color == fig.data[1].line.color
    assert fig.layout.title.text == "Deletion curves"
    _assert_safe(fig)


def test_confusion_matrix_and_hostile_labels():
    m = [[5, 1], [2, 7]]
    fig = viz.confusion_matrix(m, ["cat", HOSTILE])
    _basic(fig)
    assert len(fig.data) == 1
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), np.array(m))
    assert list(fig.data[0].x) == ["cat", ESCAPED]
    assert fig.layout.xaxis.title.text == "predicted class" and fig.layout.yaxis.title.text == "true class"
    _assert_safe(fig)
    norm = viz.confusion_matrix(torch.tensor(m), normalize=True)
    np.testing.assert_allclose(np.asarray(norm.data[0].z).sum(1), [1.0, 1.0])
    with pytest.raises(ValueError):
        viz.confusion_matrix(np.zeros((2, 3)))


def test_learning_curves():
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "val_accuracy": 0.5 + e / 10} for e in (1, 2, 3)]
    fig = viz.learning_curves(history)
    _basic(fig)
    assert [t.name for t in fig.data] == ["train loss", "val loss", "val accuracy"]
    assert list(fig.data[0].x) == [1, 2, 3]
    assert fig.data[2].yaxis == "y2"
    regression = viz.learning_curves([{"epoch": 1, "train_loss": 1.0, "val_loss": 2.0, "val_mse": 2.0}])
    assert len(regression.data) == 2
    empty = viz.learning_curves([])
    assert len(empty.data) == 0 and empty.layout.annotations


def test_interaction_matrix_symmetric_scale():
    mat = torch.tensor([[0.0, -0.3], [-0.3, 0.1]])
    fig = viz.interaction_matrix(mat, [ModalitySpec("image", "image"), HOSTILE])
    _basic(fig)
    assert len(fig.data) == 1
    np.testing.assert_allclose(np.asarray(fig.data[0].z), mat.double().numpy())
    assert fig.data[0].zmin == pytest.approx(-0.3) and fig.data[0].zmax == pytest.approx(0.3)
    assert list(fig.data[0].x) == ["image", ESCAPED]
    _assert_safe(fig)


def test_robustness_curve():
    fig = viz.robustness_curve(np.array([0, 0.5, 1.0]), torch.tensor([0.9, 0.7, 0.4]), name=HOSTILE, metric="accuracy")
    _basic(fig)
    assert len(fig.data) == 1
    np.testing.assert_allclose(fig.data[0].y, [0.9, 0.7, 0.4])
    assert fig.layout.yaxis.title.text == "accuracy"
    _assert_safe(fig)
    with pytest.raises(ValueError):
        viz.robustness_curve([0, 1], [1.0])


def test_quotes_use_entities_plotly_decodes():
    fig = viz.tabular_attribution(['say "hi"', "it's"], [1.0, 0.5], title="a & b")
    assert list(fig.data[0].y) == ["say &#34;hi&#34;", "it&#39;s"]
    assert fig.layout.title.text == "a &amp; b"


def test_figures_are_independent_and_leave_renderer_alone():
    before = pio.renderers.default
    a = viz.tabular_attribution(["x"], [1.0])
    b = viz.tabular_attribution(["x"], [1.0])
    assert a is not b and a.to_json() == b.to_json()
    assert pio.renderers.default == before
