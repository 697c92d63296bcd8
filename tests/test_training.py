"""Training on planted data: the fusion strategies behave as theory says; runs are deterministic."""

from __future__ import annotations

import json

import pytest
import torch

from mmexplain.cli import main
from mmexplain.models import FUSIONS
from mmexplain.training import load_run, train_run

INTERMEDIATE = ["concat", "sum", "product", "gated", "tensor", "lowrank", "attention", "early"]


@pytest.mark.parametrize("fusion", ["late", "late-learned"])
def test_interaction_defeats_late_fusion(trained_synthetic, fusion):
    acc = trained_synthetic("interaction", fusion).metrics["test"]["accuracy"]
    assert abs(acc - 0.5) < 0.1, f"{fusion} cannot represent XOR, yet reached {acc:.3f}"


@pytest.mark.parametrize("fusion", INTERMEDIATE)
def test_interaction_is_learned_by_intermediate_fusions(trained_synthetic, fusion):
    acc = trained_synthetic("interaction", fusion).metrics["test"]["accuracy"]
    assert acc >= 0.9, f"{fusion}: {acc:.3f}"


@pytest.mark.parametrize("fusion", FUSIONS.names())
def test_image_only_is_learned_by_every_fusion(trained_synthetic, fusion):
    acc = trained_synthetic("image_only", fusion).metrics["test"]["accuracy"]
    assert acc >= 0.95, f"{fusion}: {acc:.3f}"


def test_same_seed_same_numbers(tmp_path):
    a = train_run("synthetic:additive", "gated", epochs=2, seed=3, limit=400, progress=False)
    b = train_run("synthetic:additive", "gated", epochs=2, seed=3, limit=400, progress=False)
    c = train_run("synthetic:additive", "gated", epochs=2, seed=4, limit=400, progress=False)
    assert a.metrics["history"] == b.metrics["history"]
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert a.metrics["history"] != c.metrics["history"]


def test_regression_target_reports_mse(tmp_path):
    run = train_run("synthetic:additive:regression", "concat", epochs=3, limit=600, progress=False, out=tmp_path)
    assert {"mse", "mae", "r2"} <= set(run.metrics["test"])
    loaded = load_run(tmp_path)
    assert loaded.data_fingerprint == run.data_fingerprint


def test_cli_train_evaluate_fusions(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--dataset", "synthetic:image_only", "--fusion", "late", "--out", str(out),
               "--epochs", "2", "--limit", "500", "--quiet"])
    assert rc == 0
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "config.json", "metrics.json"}
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("accuracy", "macro_f1", "macro_precision", "macro_recall", "confusion_matrix", "label_names"):
        assert key in metrics
    assert metrics["label_names"] == ["negative", "positive"]
    capsys.readouterr()
    assert main(["evaluate", "--run", str(out), "--split", "test"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["accuracy"] == pytest.approx(metrics["accuracy"])
    assert main(["fusions"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert {line.split()[0] for line in listed} >= set(FUSIONS.names()) | {"baseline"}


def test_cli_bad_input_exit_code(tmp_path, capsys):
    rc = main(["train", "--dataset", "synthetic:nope", "--out", str(tmp_path / "x"), "--quiet"])
    assert rc == 2
    assert "synthetic:<mode>" in capsys.readouterr().err
    rc = main(["train", "--dataset", "synthetic:image_only", "--fusion", "warp", "--out", str(tmp_path / "x")])
    assert rc == 2
    assert "unknown fusion 'warp'" in capsys.readouterr().err
    rc = main(["train", "--device", "tpu", "--out", str(tmp_path / "x")])
    assert rc == 2
    assert "argument --device" in (err := capsys.readouterr().err) and "'tpu'" in err


def test_load_or_train_retrains_when_the_data_changed(tmp_path):
    from PIL import Image

    from mmexplain.training import load_or_train

    rows = ["image,text,label"]
    for i in range(12):
        Image.new("RGB", (64, 64), (200, 30, 30) if i % 2 else (30, 30, 200)).save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png,what colour {i},{'red' if i % 2 else 'blue'}")
    manifest = tmp_path / "m.csv"
    manifest.write_text("\n".join(rows) + "\n")
    cache = tmp_path / "models"
    first = load_or_train(cache, dataset=str(manifest), fusion="concat", epochs=1, progress=False)
    manifest.write_text(manifest.read_text().replace("what colour 3", "which colour 3"))
    # the cached model no longer matches the data: trained again, not an error
    second = load_or_train(cache, dataset=str(manifest), fusion="concat", epochs=1, progress=False)
    assert second.data_fingerprint != first.data_fingerprint
    assert load_run(second.directory).data_fingerprint == second.data_fingerprint
    assert second.directory == first.directory
    assert sorted(p.name for p in cache.iterdir()) == [first.directory.name]  # no lock left


def test_predict_encodes_shared_rows_once_and_matches_forward(easy_vqa_small):
    from mmexplain.models import ModelConfig, build_model
    from mmexplain.training.trainer import predict

    splits, tok = easy_vqa_small
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_name("attention"), splits.train, tok).eval()
    data = splits.test.subset(torch.arange(300))
    seen: list[int] = []
    hook = model.encoders["image"].register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape[0]))
    fast = predict(model, data, batch_size=128)
    hook.remove()
    distinct = len(torch.unique(data.rows["image"]))
    assert sum(seen) < 300 and sum(seen) >= distinct  # questions share images: each encoded once a batch
    with torch.no_grad():
        plain = model(**data.inputs(torch.arange(300)))
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)
