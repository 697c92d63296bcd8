"""Tests for mmexplain.attribution.emap: exact on additive models, chance on XOR, and the
formula checked by brute force on tiny batches."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from mmexplain.attribution.emap import EMAPResult, emap
from mmexplain.exceptions import ConfigError


class Additive(nn.Module):
    """f = g_a(x_a) + g_b(x_b) (+ g_c(x_c)), in float64 so 'exact' means ~1e-12."""

    def __init__(self, dims: list[int], n_out: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.g = nn.ModuleList(nn.Sequential(nn.Linear(d, 8), nn.Tanh(), nn.Linear(8, n_out)) for d in dims)
        self.double()

    def forward(self, **xs: torch.Tensor) -> torch.Tensor:
        return sum(g(x) for g, x in zip(self.g, xs.values()))


class Interacting(nn.Module):
    def __init__(self, dims: list[int], n_out: int = 3) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.l = nn.Linear(sum(dims), 8)
        self.o = nn.Linear(8, n_out)
        self.double()

    def forward(self, **xs: torch.Tensor) -> torch.Tensor:
        x = torch.cat(list(xs.values()), dim=1)
        h = torch.tanh(self.l(x))
        return self.o(h * h.roll(1, dims=1))


def _inputs(dims: list[int], n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {f"m{i}": torch.randn(n, d, generator=g, dtype=torch.float64) for i, d in enumerate(dims)}


@pytest.mark.parametrize("dims", [[3, 2], [3, 2, 4]])
def test_additive_model_is_its_own_projection(dims: list[int]) -> None:
    model = Additive(dims).eval()
    inputs = _inputs(dims, 20)
    with torch.no_grad():
        logits = model(**inputs)
    labels = logits.argmax(1)
    res = emap(model, inputs, target=labels)
    torch.testing.assert_close(res.projected_logits, logits, atol=1e-10, rtol=0)
    torch.testing.assert_close(res.model_logits, logits, atol=0, rtol=0)
    assert res.model_metric == res.projection_metric == 1.0
    assert res.gap == 0.0


def _xor_model(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    z = 4 * (a + b - 2 * a * b)[:, 0] - 2  # +2 when a xor b, else -2
    return torch.stack([torch.zeros_like(z), z], 1)


def test_xor_projection_is_at_chance() -> None:
    # Every combination of two binary modalities 8 times: the additive part of XOR is
    # constant, so the projection ties everywhere and scores chance.
    grid = torch.tensor(list(itertools.product([0.0, 1.0], repeat=2))).repeat(8, 1)
    inputs = {"a": grid[:, :1], "b": grid[:, 1:]}
    labels = (grid[:, 0] != grid[:, 1]).long()
    res = emap(_xor_model, inputs, target=labels)
    assert res.model_metric == 1.0
    assert res.projection_metric == pytest.approx(0.5)
    torch.testing.assert_close(res.projected_logits, torch.zeros(32, 2, dtype=torch.float64))

    g = torch.Generator().manual_seed(3)
    bits = torch.randint(0, 2, (200, 2), generator=g).float()
    res = emap(_xor_model, {"a": bits[:, :1], "b": bits[:, 1:]}, target=(bits[:, 0] != bits[:, 1]).long(), max_samples=128)
    assert res.model_metric == 1.0
    assert abs(res.projection_metric - 0.5) < 0.15
    assert res.indices.shape == (128,)


def _brute_force(model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The projection by explicit loops: per-modality means with the other modalities of
    sample j, minus (M-1) times the mean of all those evaluations."""
    names = list(inputs)
    n = inputs[names[0]].shape[0]
    m = len(names)
    rows = {}
    for mod in range(m):
        for i in range(n):
            for j in range(n):
                batch = {k: (inputs[k][i : i + 1] if b == mod else inputs[k][j : j + 1]) for b, k in enumerate(names)}
                rows[mod, i, j] = model(**batch)[0].double()
    grand = torch.stack(list(rows.values())).mean(0)
    out = []
    for i in range(n):
        acc = -(m - 1) * grand
        for mod in range(m):
            acc = acc + torch.stack([rows[mod, i, j] for j in range(n)]).mean(0)
        out.append(acc)
    return torch.stack(out)


def test_two_modality_formula_by_brute_force() -> None:
    model = Interacting([3, 2]).eval()
    inputs = _inputs([3, 2], 4, seed=5)
    res = emap(model, inputs, target=[0, 1, 2, 0])
    # Hessel & Lee: f̂_i = mean_j f(a_i, b_j) + mean_j f(a_j, b_i) - mean_jk f(a_j, b_k).
    with torch.no_grad():
        f = torch.stack(
            [torch.stack([model(m0=inputs["m0"][i : i + 1], m1=inputs["m1"][j : j + 1])[0] for j in range(4)]) for i in range(4)]
        )
    expect = f.mean(1) + f.mean(0) - f.mean((0, 1))
    torch.testing.assert_close(res.projected_logits, expect, atol=1e-12, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(res.projected_logits, _brute_force(model, inputs), atol=1e-12, rtol=0)


def test_three_modality_generalisation_by_brute_force() -> None:
    model = Interacting([2, 2, 1]).eval()
    inputs = _inputs([2, 2, 1], 3, seed=6)
    res = emap(model, inputs, target=[0, 1, 2], max_batch_size=5)
    with torch.no_grad():
        torch.testing.assert_close(res.projected_logits, _brute_force(model, inputs), atol=1e-12, rtol=0)


def test_subsample_is_seeded_and_sorted() -> None:
    model = Interacting([2, 2]).eval()
    inputs = _inputs([2, 2], 30)
    labels = torch.arange(30) % 3
    a = emap(model, inputs, target=labels, max_samples=10, seed=1)
    b = emap(model, inputs, target=labels, max_samples=10, seed=1)
    c = emap(model, inputs, target=labels, max_samples=10, seed=2)
    assert torch.equal(a.indices, b.indices)
    assert not torch.equal(a.indices, c.indices)
    assert torch.equal(a.indices, a.indices.sort().values)
    assert torch.equal(a.labels, labels[a.indices])
    with torch.no_grad():
        sub = {k: v[a.indices] for k, v in inputs.items()}
        torch.testing.assert_close(a.model_logits, model(**sub))
    assert emap(model, inputs, target=labels, max_samples=100).indices.tolist() == list(range(30))


def test_macro_f1_and_regression_mse() -> None:
    model = Interacting([2, 2]).eval()
    inputs = _inputs([2, 2], 12)
    labels = torch.arange(12) % 3
    res = emap(model, inputs, target=labels, target_metric="macro_f1")
    assert res.metric == "macro_f1"
    from sklearn.metrics import f1_score

    assert res.model_metric == pytest.approx(f1_score(labels, res.model_logits.argmax(1), average="macro"))

    def reg(m0: torch.Tensor, m1: torch.Tensor) -> torch.Tensor:
        return (m0 * m1).sum(1)

    y = torch.randn(12, dtype=torch.float64)
    out = emap(reg, inputs, target=y)
    assert out.metric == "mse"
    assert out.projected_logits.shape == (12,)
    assert out.model_metric == pytest.approx(float(((reg(**inputs) - y) ** 2).mean()))
    assert isinstance(out, EMAPResult) and set(out.to_dict()) >= {"metric", "gap", "indices"}


def test_errors() -> None:
    model = Interacting([2, 2]).eval()
    inputs = _inputs([2, 2], 6)
    with pytest.raises(ValueError, match="target has 5 entries but the batch has 6 samples"):
        emap(model, inputs, target=[0] * 5)
    with pytest.raises(ConfigError, match=r"target_metric='auc' is not allowed; choose one of \['accuracy', 'macro_f1'\]"):
        emap(model, inputs, target=[0] * 6, target_metric="auc")
    with pytest.raises(ConfigError, match=r"emap needs at least 2 modalities; inputs has 1"):
        emap(model, {"m0": inputs["m0"]}, target=[0] * 6)
    with pytest.raises(ConfigError, match="max_samples must be an integer >= 1"):
        emap(model, inputs, target=[0] * 6, max_samples=0)


def test_result_frame_and_save_load_round_trip(tmp_path) -> None:
    model = Interacting([2, 2]).eval()
    inputs = _inputs([2, 2], 6)
    res = emap(model, inputs, target=[0, 1, 2, 0, 1, 2])
    back = type(res).load(res.save(tmp_path / "emap"))
    assert back.model_metric == res.model_metric and back.projection_metric == res.projection_metric
    torch.testing.assert_close(back.projected_logits, res.projected_logits)
    frame = res.to_frame()
    assert list(frame.columns) == ["index", "label", "model", "projection"] and len(frame) == 6
    assert frame["model"].tolist() == res.model_logits.argmax(1).tolist()


@pytest.mark.parametrize("fusion", ["attention", "tensor"])
def test_factorised_equals_full_forward_on_builtin_models(fusion: str) -> None:
    """A built-in model's encoders run once per sample, the fusion over the n² pairs; the
    projection is the one the full forward gives."""
    from mmexplain.data import load_dataset
    from mmexplain.models import ModelConfig, build_model

    splits, tok = load_dataset("synthetic:additive", limit=64, seed=0, modalities=["image", "text", "tabular"])
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_name(fusion), splits.train, tok).eval()
    x, y = splits.test.inputs(range(7)), splits.test.target(range(7))
    encoded_rows: list[int] = []
    handle = model.encoders["image"].register_forward_hook(lambda mod, inp, out: encoded_rows.append(inp[0].shape[0]))
    fast = emap(model, x, target=y)  # auto: factorised
    assert encoded_rows == [7]
    encoded_rows.clear()
    full = emap(model, x, target=y, factorised=False)
    assert sum(encoded_rows) == 3 * 7 * 7  # M = 3: M·n² rows
    handle.remove()
    torch.testing.assert_close(fast.projected_logits, full.projected_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast.model_logits, full.model_logits, atol=1e-5, rtol=1e-5)
    assert fast.projection_metric == full.projection_metric
