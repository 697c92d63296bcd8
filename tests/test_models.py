"""Models: every fusion runs, declares its levels, and round-trips through a checkpoint."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from mmexplain.data import make_synthetic
from mmexplain.exceptions import CheckpointError, ConfigError
from mmexplain.models import (
    FUSIONS,
    STAGES,
    ModelConfig,
    build_model,
    load_checkpoint,
    save_checkpoint,
)


@pytest.fixture(scope="module")
def data4():
    return make_synthetic("additive", n=16, modalities=("image", "text", "tabular", "audio"), seed=0)


@pytest.mark.parametrize("fusion", FUSIONS.names())
def test_every_fusion_forward_and_points(fusion, data4):
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_name(fusion), data4).eval()
    x = data4.inputs(range(5))
    out = model(**x)
    assert out.shape == (5, 2)
    levels = model.fusion_levels()
    assert levels[0].name == "encoder" and len(levels) >= 2
    assert len({lv.name for lv in levels}) == len(levels)
    order = [STAGES.index(lv.stage) for lv in levels]
    assert order == sorted(order), f"{fusion}: levels in data-flow order"
    assert sum(lv.kind == "output" for lv in levels) <= 1
    for lv in levels:
        if lv.kind == "output":
            continue
        mods = dict(lv.branches) if lv.branches is not None else {"joint": lv.joint}
        if lv.branches is not None:
            assert set(mods) == set(data4.modality_names), (fusion, lv.name)
        seen = {}
        hooks = [m.register_forward_hook(lambda mod, i, o, k=k, seen=seen: seen.__setitem__(k, o)) for k, m in mods.items()]
        model(**x)
        for h in hooks:
            h.remove()
        assert set(seen) == set(mods), f"{fusion}/{lv.name}: every level's module runs in forward"
    # the token modality declares its embedding layer, which exists
    spec = next(s for s in model.modality_specs if s.kind == "tokens")
    assert isinstance(model.get_submodule(spec.embedding_layer), torch.nn.Embedding)


def test_late_fusion_output_is_weighted_sum_of_decisions(data4):
    model = build_model(ModelConfig.from_name("late"), data4).eval()
    x = data4.inputs(range(3))
    (decision,) = [lv for lv in model.fusion_levels() if lv.stage == "decision"]
    assert decision.output_is_sum
    taps = decision.branches
    outs = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, k=k: outs.__setitem__(k, o)) for k, m in taps.items()]
    y = model(**x)
    for h in hooks:
        h.remove()
    assert torch.allclose(sum(outs.values()), y, atol=1e-6)
    assert torch.allclose(model.fusion.weights, torch.full((4,), 0.25))


def test_baseline_preset_is_cnn_lstm_half_half():
    d = make_synthetic("image_only", n=8, modalities=("image", "text"))
    model = build_model(ModelConfig.from_name("baseline"), d)
    assert model.config.fusion == "late" and model.config.text_encoder == "lstm"
    assert model.fusion.weights.tolist() == [0.5, 0.5]
    assert isinstance(model.encoders["text"].rnn, torch.nn.LSTM)


def test_unknown_fusion_lists_known():
    with pytest.raises(ConfigError, match="unknown fusion 'nope'; known: early, concat"):
        ModelConfig.from_name("nope")
    with pytest.raises(ConfigError, match="dim"):
        ModelConfig.from_name("concat", dim=1)


def test_minilm_encoder_loads_offline_and_embeds():
    from mmexplain.data.text import MiniLMTokenizer
    from mmexplain.models import MiniLMTextEncoder

    tok = MiniLMTokenizer()
    enc = tok.encode(["what color is the shape?", "is there a red circle?"])
    model = MiniLMTextEncoder(out_dim=8).eval()
    with torch.no_grad():
        h = model.backbone(enc.ids)
    assert h.shape == (2, tok.max_length, 384)
    # a real pretrained model: different sentences get clearly different embeddings
    pooled = (h * enc.valid.unsqueeze(-1)).sum(1) / enc.valid.sum(1, keepdim=True)
    cos = torch.nn.functional.cosine_similarity(pooled[0], pooled[1], dim=0)
    assert 0.0 < float(cos) < 0.95
    assert not any(p.requires_grad for p in model.transformer.parameters())


def test_checkpoint_round_trip_and_mismatch(tmp_path, data4):
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_name("tensor"), data4).eval()
    save_checkpoint(tmp_path, model, note="x")
    loaded = load_checkpoint(tmp_path)
    x = data4.inputs(range(4))
    assert torch.equal(loaded.model(**x), model(**x))
    assert loaded.config["note"] == "x" and "torch" in loaded.config["versions"]
    # tampered weights: the hash no longer matches
    w = tmp_path / "model.safetensors"
    state = load_file(str(w))
    key = next(iter(state))
    state[key] = state[key] + 1
    save_file(state, str(w))
    with pytest.raises(CheckpointError, match="does not match config.json"):
        load_checkpoint(tmp_path)
    # weights of another architecture: a clear mismatch error, not a crash
    save_checkpoint(tmp_path, model)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["model"]["config"]["fusion"] = "concat"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="weights do not match config.json's architecture"):
        load_checkpoint(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json not found"):
        load_checkpoint(tmp_path)
