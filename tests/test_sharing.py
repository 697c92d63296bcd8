"""Explanations shared by the notebooks of one report batch (:mod:`mmexplain.sharing`)."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

import mmexplain.analysis as A
from mmexplain import sharing
from mmexplain.training import load_run, save_run


def test_a_batch_computes_each_explanation_once_and_every_notebook_reads_the_same_copy(
    trained_synthetic, tmp_path, monkeypatch
):
    save_run(trained_synthetic("image_only", "concat", epochs=1, limit=200), tmp_path / "run")
    run = load_run(tmp_path / "run")
    idx = torch.arange(4)
    alone = A.explain(run, idx, ["ig", "saliency"])  # outside a batch: nothing is stored
    calls = []
    original = A.attribute
    monkeypatch.setattr(A, "attribute", lambda *a, **k: calls.append(k["method"]) or original(*a, **k))
    with sharing.shared_results() as folder:
        assert os.environ[sharing.ENV] == str(folder)
        first = A.explain(run, idx, ["ig", "saliency"])
        assert calls == ["ig", "saliency"]
        # another notebook (another process) asking for the same results reads them back
        code = ("import torch, mmexplain.analysis as A\nfrom mmexplain.training import load_run\n"
                "A.attribute = None  # computing would fail: the result must be read back\n"
                f"r = A.explain(load_run({str(tmp_path / 'run')!r}), torch.arange(4), ['ig'])\n"
                "print(float(r['ig'].maps['image'].abs().sum()))")
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        second = A.explain(run, idx, ["ig", "saliency"])
        assert calls == ["ig", "saliency"]  # nothing computed again
        changed = A.explain(run, idx, ["ig"], ig={"n_steps": 20, "tolerance": 0})  # other options
        assert calls == ["ig", "saliency", "ig"]
        assert len(list(folder.glob("*.json"))) == 3
    assert not folder.exists() and sharing.ENV not in os.environ
    for m in ("ig", "saliency"):
        for name in alone[m].maps:  # the shared copy holds the very numbers
            assert torch.equal(first[m].maps[name], alone[m].maps[name])
            assert torch.equal(second[m].maps[name], alone[m].maps[name])
        assert first[m].to_frame().equals(second[m].to_frame())
    assert float(other.stdout) == float(alone["ig"].maps["image"].abs().sum())
    assert changed["ig"].params["n_steps"] == 20
