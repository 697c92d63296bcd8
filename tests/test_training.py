"""Training on planted data: the fusion strategies behave as theory says; runs are deterministic."""

from __future__ import annotations

import copy
import dataclasses
import json
import math

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
               "--epochs", "2", "--limit", "500", "--quiet", "--schedule", "onecycle", "--no-class-weights",
               "--modality-dropout", "0.2"])
    assert rc == 0
    params = json.loads((out / "config.json").read_text())["params"]
    assert (params["schedule"], params["class_weights"], params["modality_dropout"]) == ("onecycle", False, 0.2)
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
    rc = main(["train", "--modality-dropout", "1", "--out", str(tmp_path / "x")])
    assert rc == 2
    assert "argument --modality-dropout: must be a number in [0, 1); got 1" in capsys.readouterr().err


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


# -- learning-rate schedules ----------------------------------------------------------------


def _lrs(schedule: str, *, lr: float = 1e-2, epochs: int = 4, steps: int = 5, warmup: float = 0.25) -> list[float]:
    """The rate the optimizer holds before each of ``epochs * steps`` updates."""
    from mmexplain.training import TrainConfig, make_scheduler

    w = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.AdamW([w], lr=lr)
    sched = make_scheduler(opt, TrainConfig(epochs=epochs, lr=lr, schedule=schedule, warmup=warmup), steps)
    out = []
    for _ in range(epochs * steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_onecycle_rises_to_lr_over_the_warmup_then_anneals():
    lrs = _lrs("onecycle")  # 20 steps, warm-up 0.25: the peak is step 4
    assert lrs[0] == pytest.approx(1e-2 / 25)
    assert max(lrs) == pytest.approx(1e-2) and lrs.index(max(lrs)) == 4
    assert all(a < b for a, b in zip(lrs[:4], lrs[1:5]))
    assert all(a > b for a, b in zip(lrs[4:], lrs[5:]))
    assert lrs[-1] == pytest.approx(1e-2 / 25e4)


def test_cosine_warms_up_linearly_then_decays_to_zero():
    lrs = _lrs("cosine")  # warm-up: 5 of 20 steps
    assert lrs[:5] == pytest.approx([1e-2 * k / 5 for k in range(1, 6)])
    assert all(a > b for a, b in zip(lrs[4:], lrs[5:]))
    assert lrs[-1] == pytest.approx(1e-2 * 0.5 * (1 + math.cos(math.pi * 15 / 16)))
    assert _lrs("constant") == [1e-2] * 20


def test_training_follows_and_records_the_schedule():
    from mmexplain.training import TrainConfig

    run = train_run("synthetic:additive", "late", epochs=3, seed=1, limit=300, progress=False, lr=1e-3,
                    schedule="onecycle")
    steps = math.ceil(len(run.splits.train) / 64)
    expected = _lrs("onecycle", lr=1e-3, epochs=3, steps=steps, warmup=TrainConfig().warmup)
    assert [row["lr"] for row in run.metrics["history"]] == pytest.approx(expected[::steps][: len(run.history)])
    assert run.metrics["schedule"] == {"name": "onecycle", "lr": 1e-3, "epochs": 3, "batch_size": 64,
                                       "weight_decay": 1e-4, "warmup": 0.3}
    assert len(run.metrics["epoch_seconds"]) == len(run.history)
    assert "warmup" not in TrainConfig(schedule="constant").describe_schedule()


def test_schedule_is_part_of_the_run_identity(tmp_path):
    from mmexplain.exceptions import ConfigError
    from mmexplain.training import load_or_train, run_params

    assert run_params()["schedule"] == "constant"
    with pytest.raises(ConfigError, match="schedule='warp'; expected one of onecycle, cosine, constant"):
        run_params(schedule="warp")
    common = dict(dataset="synthetic:additive", fusion="late", epochs=1, limit=200, progress=False)
    a = load_or_train(tmp_path, schedule="cosine", **common)
    b = load_or_train(tmp_path, schedule="constant", **common)
    assert a.directory != b.directory  # different cache keys
    for run, name in ((a, "cosine"), (b, "constant")):
        assert json.loads((run.directory / "config.json").read_text())["params"]["schedule"] == name
        assert json.loads((run.directory / "metrics.json").read_text())["schedule"]["name"] == name
        assert run.metrics["schedule"]["name"] == name  # load_run brings it back


# -- frozen encoders: cached once per distinct input, exactly ------------------------------------


@pytest.fixture(scope="module")
def easy_vqa_minilm(easy_vqa_small):
    """300 training questions of easy-VQA tokenized for MiniLM, and a frozen-MiniLM attention model."""
    from mmexplain.data.text import MiniLMTokenizer
    from mmexplain.models import ModelConfig, build_model

    splits, _ = easy_vqa_small
    tok = MiniLMTokenizer()
    base = splits.train.subset(torch.arange(300))
    ids = tok.encode(base.meta["texts"]["question"]).ids  # the store holds each distinct question once
    data = dataclasses.replace(base, stores={**base.stores, "question": ids})
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_name("attention", text_encoder="minilm"), data, tok)
    return data, model


def test_cached_frozen_minilm_states_equal_the_transformer_exactly(easy_vqa_minilm):
    from mmexplain.training.trainer import _FeatureCache

    data, model = easy_vqa_minilm
    enc = model.encoders["question"]
    calls: list[int] = []
    hook = enc.transformer.register_forward_hook(lambda mod, inp, out: calls.append(out.last_hidden_state.shape[0]))
    cache = _FeatureCache(model, data, torch.device("cpu"))
    hook.remove()
    distinct = len(torch.unique(data.rows["question"]))
    assert distinct < 100 and sum(calls) == distinct  # each distinct question through MiniLM once
    for mode in (True, False):  # training mode too: a frozen transformer runs no dropout
        model.train(mode)
        idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(1))[:64]
        with torch.no_grad():
            cached = cache.features(model, data, idx, torch.device("cpu"))["question"]
            plain = enc(data.inputs(idx)["question"], sequence=True)
        assert torch.equal(cached, plain)
    model.eval()


def test_training_runs_a_frozen_minilm_once_per_distinct_question(easy_vqa_minilm):
    from mmexplain.data import Splits
    from mmexplain.training import TrainConfig, train_model

    data, model = easy_vqa_minilm
    model = copy.deepcopy(model)
    calls: list[int] = []
    model.encoders["question"].transformer.register_forward_hook(
        lambda mod, inp, out: calls.append(out.last_hidden_state.shape[0]))
    train, val = data.subset(torch.arange(120)), data.subset(torch.arange(240, 270))
    train_model(model, Splits(train, val, val), TrainConfig(epochs=2, batch_size=32), progress=False)
    per_split = [len(torch.unique(d.rows["question"])) for d in (train, val)]
    assert sum(calls) == sum(per_split)  # once up front per split, never again in 2 epochs


# -- modality dropout: training sees each modality at the model's reference ------------------------


def test_absent_modalities_are_encoded_as_the_reference(easy_vqa_small):
    from mmexplain.models import ModelConfig, build_model
    from mmexplain.training.trainer import _FeatureCache

    splits, tok = easy_vqa_small
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_name("concat"), splits.train, tok).eval()
    data = splits.test.subset(torch.arange(64))
    idx = torch.arange(64)
    absent = {"image": torch.arange(64) % 3 == 0, "question": torch.arange(64) % 4 == 1}
    with torch.no_grad():
        got = _FeatureCache(model, data, torch.device("cpu")).features(model, data, idx, torch.device("cpu"), absent)
        x = data.inputs(idx)
        for m, drop in absent.items():  # the model's own meaning of "absent", row by row
            x[m] = torch.where(drop.view(-1, *[1] * (x[m].dim() - 1)), model.reference.fill(m, x[m]), x[m])
        want = {m: model.encoders[m](x[m]) for m in model.modalities}
    for m in model.modalities:
        torch.testing.assert_close(got[m], want[m], atol=1e-5, rtol=1e-5)
        assert not torch.allclose(got[m][absent[m]], got[m][~absent[m]][: int(absent[m].sum())])


def test_modality_dropout_is_part_of_the_run_and_repeats(tmp_path):
    from mmexplain.exceptions import ConfigError
    from mmexplain.training import run_params

    with pytest.raises(ConfigError, match=r"modality_dropout must be a number in \[0, 1\); got 1.5"):
        run_params(modality_dropout=1.5)
    common = dict(epochs=2, seed=3, limit=300, progress=False)
    a = train_run("synthetic:additive", "concat", modality_dropout=0.5, **common)
    b = train_run("synthetic:additive", "concat", modality_dropout=0.5, **common)
    plain = train_run("synthetic:additive", "concat", **common)
    assert a.metrics["history"] == b.metrics["history"]  # seeded: the same draws
    assert a.metrics["history"] != plain.metrics["history"]  # and the draws do something
    assert a.metrics["schedule"]["modality_dropout"] == 0.5 and "modality_dropout" not in plain.metrics["schedule"]
