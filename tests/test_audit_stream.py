"""Streaming decision audits: the rows' numbers, chunked resumable writing, the CLI."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import mmexplain.auditing.engines as engines
from mmexplain.attribution import attribute
from mmexplain.audit import decision_cards
from mmexplain.auditing import audit_run, audit_schema, column, decision_rows, read_audit_metadata
from mmexplain.cli import main
from mmexplain.exceptions import ConfigError
from mmexplain.training import load_run, predict, train_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models (tests/conftest.py)

ROOT = Path(__file__).resolve().parents[1]
FAST = ["saliency", "input_x_gradient"]  # cheap gradient methods for the streaming tests


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny concat model on planted data (GRU text: DeepLift's rules do not hold), saved."""
    out = tmp_path_factory.mktemp("audit") / "run"
    train_run("synthetic:additive", "concat", epochs=1, limit=200, progress=False, out=out)
    return out


@pytest.fixture(scope="module")
def run(run_dir):
    return load_run(run_dir)


@pytest.fixture(scope="module")
def rows(run):
    ids = torch.tensor([0, 3, 7, 11])
    return ids, decision_rows(run, ids, methods=["ig", "occlusion", "deeplift"])


def test_rows_follow_the_schema(run, rows) -> None:
    _, table = rows
    assert table.schema.equals(audit_schema(["ig", "occlusion", "deeplift"], run.model.modalities),
                               check_metadata=True)
    assert column("total", method="ig", modality="image") == "ig_total__image"
    assert table.schema.field("ig_total__image").metadata[b"unit"].startswith(b"logit")
    with pytest.raises(ConfigError, match="'__'"):
        audit_schema(["ig"], ["a__b"])


def test_rows_are_the_librarys_numbers(run, rows) -> None:
    ids, table = rows
    df = table.to_pandas()
    data = run.splits.test
    x = data.inputs(ids)
    logits = predict(run.model, data.subset(ids)).double()
    pred = logits.argmax(1)
    assert df["index"].tolist() == ids.tolist()
    assert df["predicted_label"].tolist() == pred.tolist()
    assert df["correct"].tolist() == (pred == data.targets[ids]).tolist()
    np.testing.assert_allclose(df["output"], logits.gather(1, pred[:, None]).squeeze(1), rtol=1e-6)
    np.testing.assert_allclose(df["probability"], logits.softmax(1).max(1).values, rtol=1e-6)
    mods = run.model.modalities
    # efficiency: Shapley values sum to f(x) - f(reference); shares sum to one
    total = sum(df[column("shapley", modality=m)] for m in mods)
    np.testing.assert_allclose(total, df["output"] - df["reference_output"], atol=1e-9)
    np.testing.assert_allclose(sum(df[column("shapley_share", modality=m)] for m in mods), 1.0, atol=1e-12)
    assert df["interaction_share"].between(0, 1).all()
    # prediction with each modality removed = the model on the reference-filled input
    with torch.no_grad():
        for m in mods:
            absent = dict(x)
            absent[m] = run.model.reference.fill(m, x[m]).expand_as(x[m])
            p = run.model(**absent).double().softmax(1)
            assert df[column("removed_label", modality=m)].tolist() == p.argmax(1).tolist()
            np.testing.assert_allclose(df[column("removed_probability", modality=m)], p.max(1).values, rtol=1e-6)
    # each method's columns are its AttributionResult's
    ig = attribute(run.model, x, method="ig", target=pred)
    np.testing.assert_allclose(df["ig_completeness_error"], ig.completeness_error, rtol=1e-6, atol=1e-9)
    for j, m in enumerate(ig.modality_names):
        np.testing.assert_allclose(df[column("total", method="ig", modality=m)], ig.totals[:, j], rtol=1e-6)
        np.testing.assert_allclose(df[column("share", method="ig", modality=m)], ig.shares()[:, j], rtol=1e-6)
    assert df["occlusion_completeness_error"].isna().all()  # not promised
    # DeepLift is left out on a GRU: null columns, and every row says why
    assert table.column("deeplift_total__image").null_count == len(ids)
    assert all(any(f.startswith("deeplift: left out") for f in flags) for flags in df["trust_flags"])
    assert (df["n_trust_flags"] == df["trust_flags"].map(len)).all()


def test_rows_agree_with_decision_cards(run, rows) -> None:
    ids, table = rows
    cards = decision_cards(run, ids, methods=["ig", "occlusion", "deeplift"])
    df = table.to_pandas()
    for k, card in enumerate(cards):
        assert list(df["trust_flags"][k]) == card.flags
        for m, share in card.shapley_shares.items():
            assert math.isclose(df[column("shapley_share", modality=m)][k], share, rel_tol=1e-9)
        assert df["predicted_name"][k] == card.predicted and df["true_name"][k] == card.true


def _count_chunks(monkeypatch) -> list[list[int]]:
    """Record the indices of every decision_rows call the engine makes."""
    calls: list[list[int]] = []
    real = engines.decision_rows

    def counting(run, idx, **kw):
        calls.append(list(idx))
        return real(run, idx, **kw)

    monkeypatch.setattr(engines, "decision_rows", counting)
    return calls


class _Stop(Exception):
    pass


def test_interrupted_audit_resumes_without_recomputing(run_dir, tmp_path, monkeypatch) -> None:
    out = tmp_path / "a.parquet"
    parts = tmp_path / "a.parquet.parts"
    kw = {"limit": 20, "batch_size": 8, "methods": FAST, "steps": 4}

    def stop_after_first(chunk):
        if chunk.number == 1:
            raise _Stop

    with pytest.raises(_Stop):
        audit_run(run_dir, out, on_chunk=stop_after_first, **kw)
    assert not out.exists()
    done = sorted(p.name for p in parts.glob("part-*.parquet"))
    assert done == ["part-000000.parquet", "part-000001.parquet"]
    stamps = {p: (parts / p).stat().st_mtime_ns for p in done}
    # a torn part of chunk 2 (as a kill mid-write would leave under another writer) is redone
    (parts / "part-000002.parquet").write_bytes(b"PAR1 torn")

    with pytest.raises(ConfigError, match="batch_size: 8 -> 4"):
        audit_run(run_dir, out, **{**kw, "batch_size": 4})

    calls = _count_chunks(monkeypatch)
    seen = []
    result = audit_run(run_dir, out, on_chunk=lambda c: seen.append(
        (c.number, {p: (parts / p).stat().st_mtime_ns for p in done})), **kw)
    assert calls == [list(range(16, 20))]
    assert seen == [(2, stamps)]  # the finished parts were never rewritten
    assert (result.chunks_computed, result.chunks_reused, result.n_rows) == (1, 2, 20)
    assert not parts.exists()

    # bit for bit the file of an uninterrupted run
    fresh = audit_run(run_dir, tmp_path / "b.parquet", **kw)
    assert fresh.chunks_computed == 3
    assert out.read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert pq.ParquetFile(out).num_row_groups == 3
    meta = read_audit_metadata(out)
    loaded = load_run(run_dir)
    assert meta["provenance"]["checkpoint_sha256"] == loaded.checkpoint_sha256
    assert meta["provenance"]["data_fingerprint"] == loaded.data_fingerprint
    assert meta["provenance"]["reference"]["choices"] == loaded.model.reference.to_dict()["choices"]
    assert {"torch", "pyarrow", "mmexplain"} <= set(meta["provenance"]["package_versions"])
    assert meta["arguments"]["batch_size"] == 8 and meta["arguments"]["methods"] == FAST


def test_killed_audit_resumes_from_its_finished_chunks(run_dir, tmp_path, monkeypatch) -> None:
    out = tmp_path / "k.parquet"
    parts = tmp_path / "k.parquet.parts"
    argv = ["audit", "--run", str(run_dir), "--out", str(out), "--batch-size", "4", "--methods", "ig", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mmexplain", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not (parts / "part-000001.parquet").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    if out.exists():
        pytest.skip("the audit finished before it could be killed")
    assert (parts / "part-000001.parquet").exists(), proc.stderr.read().decode()[-2000:]
    done = {int(p.stem.split("-")[1]) for p in parts.glob("part-*.parquet")}
    calls = _count_chunks(monkeypatch)
    assert main(argv) == 0  # takes over the dead process's lock
    n = len(load_run(run_dir).splits.test)
    assert done and sorted(c[0] // 4 for c in calls) == sorted(set(range(math.ceil(n / 4))) - done)
    assert pq.read_table(out).column("index").to_pylist() == list(range(n))


def test_finished_audit_is_not_overwritten(run, tmp_path, monkeypatch) -> None:
    out = tmp_path / "a.parquet"
    audit_run(run, out, limit=6, batch_size=6, methods=["saliency"], steps=4)
    before = out.read_bytes()
    with pytest.raises(ConfigError, match="already holds a finished audit.*force"):
        audit_run(run, out, limit=6, batch_size=6, methods=["saliency"], steps=4)
    assert out.read_bytes() == before
    calls = _count_chunks(monkeypatch)
    again = audit_run(run, out, limit=6, batch_size=6, methods=["saliency"], steps=4, force=True)
    assert again.chunks_computed == 1 and calls == [list(range(6))]
    assert out.read_bytes() == before  # same run, same arguments: the same bytes
    with pytest.raises(ConfigError, match="methods: unknown method 'nope'"):
        audit_run(run, tmp_path / "c.parquet", methods=["nope"])
    with pytest.raises(ConfigError, match="unknown audit engine 'spark'; known: local, ray"):
        audit_run(run, tmp_path / "c.parquet", engine="spark")


def test_cli_audit(run_dir, tmp_path, capsys) -> None:
    out = tmp_path / "cli.parquet"
    args = ["audit", "--run", str(run_dir), "--out", str(out), "--limit", "10", "--batch-size", "5", "--quiet"]
    args += ["--methods", "saliency"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {"out": str(out), "rows": 10, "chunks_computed": 2, "chunks_reused": 0}
    assert pq.read_table(out).num_rows == 10

    assert main(args) == 2
    assert "already holds a finished audit" in capsys.readouterr().err
    assert main([*args[:-1], "ig,nope"]) == 2
    err = capsys.readouterr().err
    assert "--methods" in err and "'nope'" in err and len(err.strip().splitlines()) == 1
    assert main([*args, "--batch-size", "0"]) == 2
    assert "--batch-size" in capsys.readouterr().err
    assert main(["audit", "--run", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "--run" in capsys.readouterr().err
