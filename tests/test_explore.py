"""The explorer's controller (mmexplain.explore.views) and its widget, on tiny trained models."""

from __future__ import annotations

import json
import threading

import pytest
import torch

from mmexplain.exceptions import ConfigError

POOL = [0, 1, 2, 3]


@pytest.fixture(scope="module")
def vqa_run():
    from _explore_fixtures import tiny_vqa_run

    return tiny_vqa_run()


@pytest.fixture(scope="module")
def explorer(vqa_run):
    from mmexplain.explore import Explorer

    return Explorer(vqa_run, ids=POOL)


def _probs(run, x):
    with torch.no_grad():
        return run.model(**x).softmax(1)[0]


def test_default_methods_are_the_single_pass_ones(explorer):
    from mmexplain.attribution import METHODS

    assert explorer.methods == ["saliency", "input_x_gradient"]  # DeepLift: no rule for the GRU text encoder
    assert all(METHODS.get(m).single_pass for m in explorer.methods)
    assert "ig" in explorer.on_demand and "saliency" not in explorer.on_demand


def test_selection_changes_prediction_and_maps(vqa_run, explorer):
    data = vqa_run.splits.test
    a, b = explorer.select(5), explorer.select(9)
    assert (a.index, b.index) == (5, 9) and explorer.current is b
    for v in (a, b):
        p = _probs(vqa_run, data.inputs([v.index]))
        names = data.label_names
        assert v.predicted == names[int(p.argmax())]
        assert v.probability == pytest.approx(float(p.max()), abs=1e-6)
        assert v.true == names[int(data.targets[v.index])]
    assert not torch.equal(a.maps["saliency"]["image"], b.maps["saliency"]["image"])
    assert a.maps["saliency"]["image"].shape == data.inputs([5])["image"][0].shape
    assert set(a.maps) == {"saliency", "input_x_gradient"} and set(a.maps["saliency"]) == {"image", "question"}
    sv = a.card.shapley
    assert sv is not None and sv.values.sum().item() + sv.base_value.item() == pytest.approx(sv.full_value.item())
    assert a.interactions.shape == (2, 2) and 0 <= a.interaction_share <= 1


def test_dropping_a_modality_gives_the_prediction_at_the_reference(vqa_run, explorer):
    from mmexplain.analysis import baselines_for

    data = vqa_run.splits.test
    plain = explorer.select(7)
    for m in ("image", "question"):
        explorer.reset()
        view = explorer.drop(m)
        x = data.inputs([7])
        x[m] = baselines_for(vqa_run, x)[m]
        p = _probs(vqa_run, x)
        assert view.probability == pytest.approx(float(p.max()), abs=1e-6)
        assert view.predicted == data.label_names[int(p.argmax())]
        assert (view.predicted, pytest.approx(view.probability, abs=1e-6)) == plain.removed[m]  # the card's "without"
        assert m in view.what_if and "absent" in view.what_if[m]
    assert explorer.current.tokens("question") == []  # the dropped question has no real tokens
    back = explorer.reset()
    assert back.what_if == {} and back.probability == plain.probability


def test_edited_text_changes_tokens_and_prediction(vqa_run, explorer):
    explorer.select(3)
    text = "what color is the shape?"
    view = explorer.edit("question", text)
    assert view.tokens("question") == ["what", "color", "is", "the", "shape", "?"]
    assert view.card.texts["question"] == text and view.what_if["question"] == f"text edited to {text!r}"
    x = vqa_run.splits.test.inputs([3])
    x["question"] = vqa_run.tokenizer.encode([text]).ids
    p = _probs(vqa_run, x)
    assert view.probability == pytest.approx(float(p.max()), abs=1e-6)
    other = explorer.edit("question", "is there a circle in the image?")
    assert other.tokens("question")[:3] == ["is", "there", "a"]
    assert not torch.equal(other.maps["saliency"]["question"], view.maps["saliency"]["question"])


def test_replace_takes_the_modality_of_another_decision(vqa_run, explorer):
    explorer.select(2)
    view = explorer.replace("image", 11)
    x = vqa_run.splits.test.inputs([2])
    x["image"] = vqa_run.splits.test.inputs([11])["image"]
    assert view.probability == pytest.approx(float(_probs(vqa_run, x).max()), abs=1e-6)
    assert torch.equal(view.card.inputs["image"], x["image"])


def test_exported_card_json_equals_the_audit_card(vqa_run, explorer, tmp_path):
    from mmexplain.audit import decision_cards

    view = explorer.select(13)
    html_path, json_path = view.export(tmp_path / "card")
    card = decision_cards(vqa_run, torch.tensor([13]), methods=explorer.methods)[0]
    assert json.loads(json_path.read_text()) == json.loads(json.dumps(card.summary()))
    page = html_path.read_text()
    assert "Sample 13" in page and "plotly" in page
    summary = view.summary()  # the explorer's extra numbers beside the card's
    assert summary["shapley_shares"] == card.summary()["shapley_shares"]
    assert summary["interaction_share"] == pytest.approx(view.interaction_share, abs=1e-4)


def test_deferred_trust_panel_is_added_by_check(vqa_run):
    from mmexplain.explore import Explorer

    ex = Explorer(vqa_run, ids=[0], defer_trust=True)
    assert ex.current.checked  # the pool's views are always checked
    quick = ex.select(21)
    assert not quick.checked and quick.flags == [] and quick.card.summary()["trust"] == {}
    full = ex.check()
    assert full.checked and ex.current is full and full.trust_table()["method"].tolist() == ex.methods
    assert full.probability == quick.probability and torch.equal(full.maps["saliency"]["image"],
                                                                  quick.maps["saliency"]["image"])
    assert ex.select(21) is full  # a checked view serves the quick request too
    eager = Explorer(vqa_run, ids=[0])
    assert json.dumps(full.summary()) == json.dumps(eager.select(21).summary())  # check() adds the same panel
    ex.drop("image")
    eager.drop("image")
    assert json.dumps(ex.check().summary()) == json.dumps(eager.current.summary())


def test_filters_and_sorting(explorer):
    d = explorer.decisions
    assert list(d["index"]) == POOL
    wrong = explorer.filter(correct=False)
    assert (~wrong["correct"]).all() and len(wrong) == (~d["correct"]).sum()
    by_inter = explorer.filter(sort="interaction")["interaction_share"].tolist()
    assert by_inter == sorted(by_inter, reverse=True)
    assert (explorer.filter(flagged=True)["flags"] != "").all()
    label = d["predicted"].iloc[0]
    assert (explorer.filter(label=label).eval("true == @label or predicted == @label")).all()
    confident = explorer.filter(min_confidence=0.5)
    assert (confident["probability"] >= 0.5).all()


def test_on_demand_method_and_cancel(explorer):
    from mmexplain.explore import Cancelled

    explorer.select(1)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        explorer.compute("smoothgrad", cancel=cancel)
    assert "smoothgrad" not in explorer.current.methods  # the view is unchanged
    view = explorer.compute("smoothgrad")
    assert view.methods == ["saliency", "input_x_gradient", "smoothgrad"] and "smoothgrad" in view.maps
    assert explorer.select(2).methods == ["saliency", "input_x_gradient"]  # a new decision: live methods only


@pytest.mark.parametrize("call, match", [
    (lambda ex: ex.select(10**6), "index must be a position"),
    (lambda ex: ex.drop("audio"), "modality='audio'"),
    (lambda ex: ex.edit("image", "a cat"), "cannot be edited"),
    (lambda ex: ex.edit("question", 3), "value for 'question'"),
    (lambda ex: ex.filter(sort="loudest"), "sort='loudest'"),
    (lambda ex: ex.filter(correct="yes"), "correct must be"),
    (lambda ex: ex.compute("saliency"), "method='saliency'"),
])
def test_bad_input_is_one_config_error(explorer, call, match):
    with pytest.raises(ConfigError, match=match):
        call(explorer)


@pytest.mark.parametrize("ids", ["[0, 1]", [0, 10**6], []])
def test_bad_ids_are_one_config_error(vqa_run, ids):
    from mmexplain.explore import Explorer

    with pytest.raises(ConfigError, match="ids must be"):
        Explorer(vqa_run, ids=ids)


def test_tabular_value_edit(trained_synthetic):
    from mmexplain.explore import Explorer

    run = trained_synthetic("additive", "concat", epochs=1, limit=200)
    ex = Explorer(run, ids=[0, 1], methods=["saliency"])
    assert ex.edit_kind("tabular") == "values"
    assert ex.edit_kind("image") is None
    ex.select(4)
    view = ex.edit("tabular", {0: 3.0})
    view = ex.edit("tabular", {1: -2.0})  # on top of the first edit
    x = run.splits.test.inputs([4])
    x["tabular"][0, 0], x["tabular"][0, 1] = 3.0, -2.0
    assert view.probability == pytest.approx(float(_probs(run, x).max()), abs=1e-6)
    assert view.what_if["tabular"] == "set tabular[0] = 3, tabular[1] = -2"
    with pytest.raises(ConfigError, match="feature positions"):
        ex.edit("tabular", {99: 1.0})


def test_every_kinds_edit_is_an_edit_the_explorer_knows():
    from mmexplain.explore.edits import EDITS
    from mmexplain.kinds import KINDS

    named = {KINDS.get(k).edit for k in KINDS.names()} - {None}
    assert named and named <= set(EDITS), named - set(EDITS)
    assert {"keep", "drop", "replace"} <= set(EDITS)  # the edits every modality has


def _traces(fw) -> list[str]:
    """A FigureWidget's traces as JSON, without the uids plotly gives each new trace."""
    from plotly.utils import PlotlyJSONEncoder

    return [json.dumps({k: v for k, v in t.to_plotly_json().items() if k != "uid"}, cls=PlotlyJSONEncoder,
                       sort_keys=True) for t in fw.data]


def test_widget_builds_and_reacts_to_its_controls(vqa_run, tmp_path):
    import mmexplain

    w = mmexplain.explore(vqa_run, ids=POOL, export_path=str(tmp_path / "card"))
    assert "mmx-explore" in w._dom_classes
    assert "mmx-explore-decision" in w.decision._dom_classes
    assert "mmx-explore-drop-image" in w.drop["image"]._dom_classes
    assert "mmx-explore-edit-question" in w.edit["question"]._dom_classes
    assert [v for _, v in w.decision.options] == POOL

    shown = [fw for row in w.map_figures() for fw in row]
    before = [_traces(fw) for fw in shown]
    w.decision.value = 2
    assert w.explorer.current.index == 2
    # redrawn in place: a new FigureWidget would send plotly.js (~5 MB) to the browser again
    again = [fw for row in w.map_figures() for fw in row]
    assert [id(fw) for fw in again] == [id(fw) for fw in shown]
    assert [_traces(fw) for fw in again] != before
    w.wait(60)
    assert w.explorer.current.checked and "trust" in w.trust.value
    assert w.explorer.current.predicted in w.prediction.value and "Decision 2" in w.prediction.value
    assert len(w.map_figures()) == 2 and len(w.map_figures()[0]) == 2  # modalities x methods

    w.drop["image"].click()
    assert "image" in w.explorer.current.what_if and "What-if" in w.prediction.value
    w.reset.click()
    w.edit["question"].value = "what shape is it?"
    w.apply["question"].click()
    assert w.explorer.current.card.texts["question"] == "what shape is it?"

    w.opacity.value = 0.25
    heat = [tr for row in w.map_figures() for fw in row for tr in fw.data if tr.name == "attribution"
            and tr.type == "heatmap"]
    assert heat and all(tr.opacity == 0.25 for tr in heat)

    w.filter_correct.value = True
    assert all(w.explorer.decisions.set_index("index").loc[v, "correct"] for _, v in w.decision.options)

    w.export.click()
    assert (tmp_path / "card.json").exists() and "wrote" in w.export_out.value

    w.method.value = "smoothgrad"
    w.start_compute("smoothgrad")
    w.wait(60)
    assert "smoothgrad" in w.explorer.current.methods and "computed" in w.status.value

    w.explorer.select(0)
    w.replace["image"].value = 11
    w.edit["question"].value = ""
    w.apply["image"].click()  # no text: the image comes from the chosen decision
    assert "replaced by decision" in w.explorer.current.what_if["image"]
    w.wait(60)
