"""The notebook-level tables of :mod:`mmexplain.analysis`, against hand-computed cases."""

from __future__ import annotations

import math

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
