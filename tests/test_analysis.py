"""The notebook-level tables of :mod:`mmexplain.analysis`, against hand-computed cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import torch

from mmexplain.analysis import localisation_table
from mmexplain.attribution import AttributionResult


def test_localisation_table_averages_defined_samples_and_counts_them(trained_synthetic) -> None:
    run = trained_synthetic("image_only", "concat", epochs=1, limit=200)
    data = run.splits["test"]
    image = next(s for s in run.model.modality_specs if s.kind == "image")
    idx = torch.arange(3)
    evidence = data.evidence_for(image.name, idx).bool()  # (3, H, W)
    mask = evidence.unsqueeze(1).expand(*data.inputs(idx)[image.name].shape)  # (3, C, H, W)
    assert all(0 < int(e.sum()) < e.numel() for e in evidence)  # neither empty nor full
    maps = torch.zeros(mask.shape)
    maps[0][mask[0]] = 1.0       # all positive mass inside the evidence: 1.0
    maps[1][~mask[1]] = 1.0      # all outside: 0.0
    # sample 2 stays all zero: no positive mass, so mass-in-mask is undefined there
    res = AttributionResult(method="hand", maps={image.name: maps}, modalities=[image])

    table = localisation_table(run, idx, {"hand": res}).set_index("metric")
    mass = table.loc["mass_in_mask"]
    assert mass["n_defined"] == 2 and math.isclose(mass["value"], 0.5)  # (1.0 + 0.0) / 2, not / 3
    assert math.isclose(mass["chance"], float(evidence.flatten(1).float().mean()), rel_tol=1e-6)


# ------------------------------------------------------------------------------ helpers

RUN = ("image_only", "concat")  # trained once per session (tests/conftest.py), shared by the tests below
RUN_OPTIONS = {"epochs": 1, "limit": 200}


def _run(trained_synthetic):
    return trained_synthetic(*RUN, **RUN_OPTIONS)


# ------------------------------------------------------------------------------ localisation


def test_localisation_table_gives_chance_for_every_metric(trained_synthetic) -> None:
    from mmexplain.analysis import valid_masks
    from mmexplain.metrics import chance_level

    run = _run(trained_synthetic)
    data = run.splits["test"]
    idx = torch.arange(4)
    specs = {s.name: s for s in run.model.modality_specs}
    x = data.inputs(idx)
    maps = {m: torch.randn(x[m].shape[:2] if s.kind_info.integer_ids else x[m].shape, generator=torch.Generator().manual_seed(0))
            for m, s in specs.items()}
    res = AttributionResult(method="hand", maps=maps, modalities=list(specs.values()))

    table = localisation_table(run, idx, {"hand": res})
    assert set(table.metric) == {"mass_in_mask", "pointing_game", "evidence_rank", "reciprocal_rank"}
    assert table["chance"].notna().all()
    assert (table["vs_chance"] - (table["value"] - table["chance"])).abs().max() < 1e-12
    rows = table.set_index("metric")
    ev = data.evidence_for("text", idx)
    vm = valid_masks(run, idx)["text"]
    assert math.isclose(rows.loc["evidence_rank", "chance"], float(chance_level("evidence_rank", ev, vm).mean()),
                        rel_tol=1e-6)
    assert math.isclose(rows.loc["reciprocal_rank", "chance"],
                        float(chance_level("reciprocal_rank", ev, vm).mean()), rel_tol=1e-6)
    assert rows.loc["evidence_rank", "better"] == "lower" and rows.loc["mass_in_mask", "better"] == "higher"


# ------------------------------------------------------------------------------ sanity


def test_sanity_table_has_a_row_per_modality_and_the_methods_verdict(trained_synthetic) -> None:
    from mmexplain.analysis import OVERALL, sanity_table

    run = _run(trained_synthetic)
    table = sanity_table(run, torch.arange(3), ["saliency"], max_steps=2)
    assert list(table.columns) == ["method", "modality", "final_correlation", "passed"]
    per_mod = table[table.modality != OVERALL]
    assert list(per_mod.modality) == run.model.modalities
    overall = table[table.modality == OVERALL]
    assert len(overall) == 1 and bool(overall.passed.iloc[0]) == bool(per_mod.passed.all())


# ------------------------------------------------------------------------------ trust panel


def _sanity(run, failing: str) -> pd.DataFrame:
    """A sanity table (the shape sanity_table returns) where saliency fails on one modality."""
    from mmexplain.analysis import OVERALL

    rows = [{"method": "saliency", "modality": m, "final_correlation": 0.9 if m == failing else 0.1,
             "passed": m != failing} for m in run.model.modalities]
    rows.append({"method": "saliency", "modality": OVERALL, "final_correlation": 0.4, "passed": False})
    rows += [{"method": "ig", "modality": m, "final_correlation": 0.1, "passed": True}
             for m in [*run.model.modalities, OVERALL]]
    return pd.DataFrame(rows)


def test_trust_panel_shows_each_check_per_method(trained_synthetic) -> None:
    from mmexplain.analysis import completeness_table, explain, faithfulness_table, trust_panel

    run = _run(trained_synthetic)
    idx = torch.arange(4)
    methods = ["ig", "saliency", "deeplift"]
    results = explain(run, idx, methods)
    assert "deeplift" not in results  # the synthetic text encoder is a GRU: DeepLift's rules do not hold
    faith, curves = faithfulness_table(run, idx, results)
    panel = trust_panel(run, idx, results, methods=methods, sanity=_sanity(run, "text"), curves=curves)

    frame = panel.to_frame().set_index("method")
    words = panel.table().set_index("method")
    assert list(frame.index) == methods
    # completeness: IG's largest relative error, as completeness_table has it; not promised by saliency
    comp = completeness_table(results).set_index("method")
    assert math.isclose(frame.loc["ig", "relative_completeness_error"], comp.loc["ig", "max_relative_error"])
    assert words.loc["saliency", "completeness"] == "not promised"
    assert frame.loc["ig", "step_cap_hits"] == sum(results["ig"].meta["hit_step_cap"])
    # sanity: the failing modality is named; a method not in the table was not run
    assert words.loc["saliency", "sanity (model)"] == "failed on text"
    assert frame.loc["saliency", "sanity_failed"] == ["text"] and not frame.loc["saliency", "sanity_passed"]
    assert words.loc["ig", "sanity (model)"] == "passed"
    # faithfulness: the mean of faithfulness_table's deletion rows
    dele = faith[(faith["mode"] == "deletion")].groupby("method")[["auc", "random_auc"]].mean()
    for m in ("ig", "saliency"):
        assert math.isclose(frame.loc[m, "deletion_auc"], dele.loc[m, "auc"], rel_tol=1e-9)
        assert math.isclose(frame.loc[m, "random_auc"], dele.loc[m, "random_auc"], rel_tol=1e-9)
    # rules: DeepLift left out, with the reason
    assert frame.loc["deeplift", "left_out"] and not frame.loc["deeplift", "rules_hold"]
    assert "GRU" in words.loc["deeplift", "rules"] and words.loc["deeplift", "rules"].startswith("left out")
    assert words.loc["ig", "rules"] == "hold"
    # the panel computes the same deletion curves itself when not given them
    again = trust_panel(run, idx, results, methods=methods).to_frame().set_index("method")
    assert math.isclose(again.loc["ig", "deletion_auc"], frame.loc["ig", "deletion_auc"], rel_tol=1e-9)
    assert again.loc["saliency", "sanity_passed"] is pd.NA
    json.dumps(panel.summary(), allow_nan=False)


def test_trust_panel_per_sample_rows_aggregate_to_the_panel(trained_synthetic) -> None:
    from mmexplain.analysis import explain, trust_panel, valid_masks
    from mmexplain.metrics import rank_agreement

    run = _run(trained_synthetic)
    idx = torch.arange(3)
    # IG held to 2 steps without refinement room: every sample that does not converge hits the cap
    results = explain(run, idx, ["ig", "occlusion"], ig={"n_steps": 2, "max_steps": 2, "tolerance": 1e-9})
    panel = trust_panel(run, idx, results)
    caps = results["ig"].meta["hit_step_cap"]
    assert any(caps)
    assert panel.to_frame().set_index("method").loc["ig", "step_cap_hits"] == sum(caps)
    assert f"{sum(caps)} of 3 samples hit the cap" in panel.table().set_index("method").loc["ig", "IG step cap"]
    assert any("step cap" in f for f in results["ig"].flags)
    vm = valid_masks(run, idx)
    for k in range(3):
        one = panel.to_frame(k).set_index("method")
        rel = results["ig"].relative_completeness_error[k]
        assert math.isclose(one.loc["ig", "relative_completeness_error"], float(rel))
        assert one.loc["ig", "step_cap_hits"] == int(caps[k])
        r = [float(rank_agreement(results["ig"].maps[m][k:k + 1], results["occlusion"].maps[m][k:k + 1],
                                  absolute=True, valid_mask=None if m not in vm else vm[m][k:k + 1])[0])
             for m in run.model.modalities]
        assert math.isclose(one.loc["ig", "agreement"], float(np.nanmean(r)), rel_tol=1e-9)
        assert one.loc["ig", "agreement"] == one.loc["occlusion", "agreement"]  # two methods: one pair


def test_trust_panel_shows_the_flags_of_a_method_run_where_its_rules_fail(trained_synthetic) -> None:
    from mmexplain.analysis import explain, trust_panel

    run = _run(trained_synthetic)
    idx = torch.arange(2)
    results = explain(run, idx, ["deeplift", "saliency"], include_invalid=True)
    assert any("GRU" in f for f in results["deeplift"].flags)
    frame = trust_panel(run, idx, results).to_frame().set_index("method")
    assert not frame.loc["deeplift", "rules_hold"] and not frame.loc["deeplift", "left_out"]
    assert "GRU" in frame.loc["deeplift", "flags"]
    assert frame.loc["saliency", "rules_hold"]
