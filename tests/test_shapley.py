"""Tests for mmexplain.attribution.shapley: exactness against brute force, hand-derived
games, Captum agreement, background mode, result helpers and pinned error messages."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from mmexplain.attribution.shapley import (
    ModalityShapley,
    modality_shapley,
    share_by_group,
)
from mmexplain.exceptions import AttributionError, ConfigError

# ----------------------------------------------------------------------------- helpers

SHAPES = [(3,), (2, 2), (4,), (1, 3), (2,), (3,)]


def make_inputs(m: int, n: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {f"mod{i}": torch.randn(n, *SHAPES[i], generator=g) for i in range(m)}


class ConcatMLP(nn.Module):
    """Nonlinear model over the concatenated modalities, with multiplicative terms."""

    def __init__(self, m: int, n_out: int = 3, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        d = sum(math.prod(SHAPES[i]) for i in range(m))
        self.a = nn.Linear(d, 16)
        self.b = nn.Linear(d, 16)
        self.out = nn.Linear(16, n_out)
        self.n_out = n_out

    def forward(self, **xs: torch.Tensor) -> torch.Tensor:
        x = torch.cat([v.flatten(1) for v in xs.values()], dim=1)
        h = torch.tanh(self.a(x)) * torch.relu(self.b(x) + 0.1)
        y = self.out(h) + 0.3 * x[:, :1] * x[:, -1:]
        return y[:, 0] if self.n_out == 1 else y


def _select(out: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    out = out.double()
    if out.dim() == 1:
        out = out[:, None]
    if target is None:
        return out[:, 0]
    return out.gather(1, target.view(-1, 1)).squeeze(1)


def brute_game(model, inputs, target=None, baselines=None, background=None):
    """v(S) for every coalition S (frozenset of modality indices), by separate forward passes."""
    names = list(inputs)
    n = next(iter(inputs.values())).shape[0]
    if isinstance(target, int):
        target = torch.full((n,), target)
    values = {}
    for size in range(len(names) + 1):
        for s in itertools.combinations(range(len(names)), size):
            if background is None:
                batch = {}
                for i, name in enumerate(names):
                    b = (baselines or {}).get(name, torch.zeros_like(inputs[name][:1]))
                    batch[name] = inputs[name] if i in s else b.expand_as(inputs[name])
                values[frozenset(s)] = _select(model(**batch), target)
            else:
                k = next(iter(background.values())).shape[0]
                acc = torch.zeros(n, dtype=torch.float64)
                for j in range(k):
                    batch = {
                        name: inputs[name] if i in s else background[name][j : j + 1].expand_as(inputs[name])
                        for i, name in enumerate(names)
                    }
                    acc += _select(model(**batch), target)
                values[frozenset(s)] = acc / k
    return values


def brute_shapley(v: dict, m: int) -> torch.Tensor:
    """Average marginal contributions over all m! orderings."""
    n = next(iter(v.values())).shape[0]
    phi = torch.zeros(n, m, dtype=torch.float64)
    for perm in itertools.permutations(range(m)):
        s: set[int] = set()
        for p in perm:
            before = v[frozenset(s)]
            s.add(p)
            phi[:, p] += v[frozenset(s)] - before
    return phi / math.factorial(m)


def brute_interactions(v: dict, m: int) -> torch.Tensor:
    """InterSHAP matrix from the definition: half the Shapley interaction index off the
    diagonal, main effects on it."""
    phi = brute_shapley(v, m)
    n = phi.shape[0]
    out = torch.zeros(n, m, m, dtype=torch.float64)
    for i, j in itertools.permutations(range(m), 2):
        rest = [p for p in range(m) if p not in (i, j)]
        for size in range(len(rest) + 1):
            for s in itertools.combinations(rest, size):
                s_ = frozenset(s)
                w = math.factorial(size) * math.factorial(m - size - 2) / math.factorial(m - 1)
                delta = v[s_ | {i, j}] - v[s_ | {i}] - v[s_ | {j}] + v[s_]
                out[:, i, j] += w * delta / 2
    for i in range(m):
        out[:, i, i] = phi[:, i] - out[:, i, :].sum(1)
    return out


# ----------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5])
def test_matches_brute_force_permutations(m: int) -> None:
    inputs = make_inputs(m, n=4, seed=m)
    model = ConcatMLP(m, seed=m).eval()
    target = torch.tensor([0, 2, 1, 2])
    res = modality_shapley(model, inputs, target=target)
    v = brute_game(model, inputs, target=target)
    torch.testing.assert_close(res.values, brute_shapley(v, m), atol=1e-5, rtol=0)
    torch.testing.assert_close(res.interactions, brute_interactions(v, m), atol=1e-5, rtol=0)
    assert res.modalities == list(inputs)
    # Coalition columns: bit i set = modality i present.
    for c in range(1 << m):
        s = frozenset(i for i in range(m) if c >> i & 1)
        torch.testing.assert_close(res.coalition_values[:, c], v[s], atol=1e-5, rtol=0)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_efficiency_and_matrix_sums(m: int) -> None:
    inputs = make_inputs(m, n=6, seed=10 + m)
    baselines = {name: torch.randn(1, *x.shape[1:]) for name, x in inputs.items()}
    res = modality_shapley(ConcatMLP(m).eval(), inputs, baselines=baselines, target=1)
    assert res.values.dtype == torch.float64
    torch.testing.assert_close(res.values.sum(1) + res.base_value, res.full_value, atol=1e-10, rtol=0)
    torch.testing.assert_close(res.interactions.sum((1, 2)), res.full_value - res.base_value, atol=1e-10, rtol=0)
    torch.testing.assert_close(res.interactions.sum(2), res.values, atol=1e-10, rtol=0)
    torch.testing.assert_close(res.interactions, res.interactions.transpose(1, 2), atol=0, rtol=0)


def test_per_sample_and_partial_baselines() -> None:
    inputs = make_inputs(3, n=4, seed=3)
    model = ConcatMLP(3).eval()
    baselines = {
        "mod0": torch.randn(4, 3),  # per sample
        "mod1": torch.randn(2, 2),  # one sample's shape
        # mod2 missing -> zeros
    }
    res = modality_shapley(model, inputs, baselines=baselines, target=0)
    full_bl = {"mod0": baselines["mod0"], "mod1": baselines["mod1"][None]}
    v = brute_game(model, inputs, target=0, baselines=full_bl)
    torch.testing.assert_close(res.values, brute_shapley(v, 3), atol=1e-5, rtol=0)


def test_additive_model_exact() -> None:
    g = [nn.Linear(3, 1), nn.Linear(4, 1)]

    def model(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.sin(g[0](a))[:, 0] + g[1](b)[:, 0] ** 2

    inputs = {"a": torch.randn(7, 3), "b": torch.randn(7, 4)}
    baselines = {"a": torch.randn(1, 3), "b": torch.randn(1, 4)}
    with torch.no_grad():
        ga = lambda x: torch.sin(g[0](x))[:, 0].double()  # noqa: E731
        gb = lambda x: (g[1](x)[:, 0] ** 2).double()  # noqa: E731
        expect = torch.stack(
            [ga(inputs["a"]) - ga(baselines["a"]), gb(inputs["b"]) - gb(baselines["b"])], 1
        )
    res = modality_shapley(model, inputs, baselines=baselines)
    torch.testing.assert_close(res.values, expect, atol=1e-6, rtol=0)
    off = res.interactions[:, 0, 1]
    assert off.abs().max() < 1e-6
    torch.testing.assert_close(torch.diagonal(res.interactions, dim1=1, dim2=2), res.values)
    assert res.interaction_share() < 1e-5


def test_pure_product_splits_equally_and_is_all_interaction() -> None:
    inputs = {"a": torch.randn(6, 1), "b": torch.randn(6, 1)}
    res = modality_shapley(lambda a, b: (a * b)[:, 0], inputs)
    p = (inputs["a"] * inputs["b"])[:, 0].double()
    torch.testing.assert_close(res.values, torch.stack([p / 2, p / 2], 1))
    # Hand-derived: Phi_ab = (v(ab) - v(a) - v(b) + v(∅)) / 2 = p/2, main effects 0.
    torch.testing.assert_close(res.interactions[:, 0, 1], p / 2)
    torch.testing.assert_close(torch.diagonal(res.interactions, dim1=1, dim2=2), torch.zeros(6, 2, dtype=torch.float64))
    assert res.interaction_share() == pytest.approx(1.0)
    assert torch.allclose(res.interaction_share(per_sample=True), torch.ones(6, dtype=torch.float64))
    assert res.interaction_share(aggregate="pooled") == pytest.approx(1.0)
    torch.testing.assert_close(res.shares(), torch.full((6, 2), 0.5, dtype=torch.float64))


def test_triple_product_hand_derived() -> None:
    # f = abc, zero baselines: Phi_ij = p/4 off the diagonal (only S={k} contributes, weight
    # 1!0!/(2*2!)), phi_i = p/3, so Phi_ii = p/3 - p/2 = -p/6; InterSHAP = 1.5 / 2 = 0.75.
    inputs = {k: torch.randn(5, 1) for k in "abc"}
    res = modality_shapley(lambda a, b, c: (a * b * c)[:, 0], inputs)
    p = (inputs["a"] * inputs["b"] * inputs["c"])[:, 0].double()
    expect = torch.full((5, 3, 3), 0.25, dtype=torch.float64) * p.view(-1, 1, 1)
    expect[:, range(3), range(3)] = (-p / 6).view(-1, 1)
    torch.testing.assert_close(res.interactions, expect)
    assert res.interaction_share() == pytest.approx(0.75)


def test_background_mode_matches_brute_force_averaging() -> None:
    m = 3
    inputs = make_inputs(m, n=4, seed=21)
    background = make_inputs(m, n=5, seed=22)
    model = ConcatMLP(m, seed=2).eval()
    res = modality_shapley(model, inputs, target=torch.tensor([0, 1, 2, 0]), background=background)
    v = brute_game(model, inputs, target=torch.tensor([0, 1, 2, 0]), background=background)
    torch.testing.assert_close(res.values, brute_shapley(v, m), atol=1e-5, rtol=0)
    torch.testing.assert_close(res.interactions, brute_interactions(v, m), atol=1e-5, rtol=0)
    assert res.background_size == 5
    # The all-absent value is the mean output over the background, the same for all samples.
    with torch.no_grad():
        expect_base = model(**background).double().mean(0)[[0, 1, 2, 0]]
    torch.testing.assert_close(res.base_value, expect_base, atol=1e-6, rtol=0)


def test_background_with_one_sample_equals_baseline() -> None:
    inputs = make_inputs(2, n=3, seed=5)
    bl = {k: torch.randn(1, *v.shape[1:]) for k, v in inputs.items()}
    model = ConcatMLP(2).eval()
    a = modality_shapley(model, inputs, baselines=bl, target=2)
    b = modality_shapley(model, inputs, target=2, background=bl)
    torch.testing.assert_close(a.coalition_values, b.coalition_values)


def test_target_forms() -> None:
    inputs = make_inputs(3, n=4, seed=7)
    model = ConcatMLP(3).eval()
    by_int = modality_shapley(model, inputs, target=2)
    by_tensor = modality_shapley(model, inputs, target=torch.full((4,), 2))
    by_list = modality_shapley(model, inputs, target=[2, 2, 2, 2])
    torch.testing.assert_close(by_int.values, by_tensor.values)
    torch.testing.assert_close(by_int.values, by_list.values)
    mixed = modality_shapley(model, inputs, target=torch.tensor([0, 1, 2, 1]))
    for i, t in enumerate([0, 1, 2, 1]):
        one = modality_shapley(model, {k: v[i : i + 1] for k, v in inputs.items()}, target=t)
        torch.testing.assert_close(mixed.values[i], one.values[0], atol=1e-6, rtol=0)
    assert mixed.target.tolist() == [0, 1, 2, 1]

    scalar = ConcatMLP(3, n_out=1).eval()
    res_1d = modality_shapley(scalar, inputs)  # output (N,)
    res_2d = modality_shapley(lambda **kw: scalar(**kw)[:, None], inputs)  # output (N, 1)
    torch.testing.assert_close(res_1d.values, res_2d.values)
    assert res_1d.target is None


def test_captum_shapley_values_agree() -> None:
    from captum.attr import ShapleyValues

    inputs = make_inputs(3, n=5, seed=11)
    model = ConcatMLP(3, seed=4).eval()
    names = list(inputs)
    target = torch.tensor([0, 1, 2, 1, 0])

    def forward(*xs: torch.Tensor) -> torch.Tensor:
        return model(**dict(zip(names, xs)))

    masks = tuple(torch.full((1, *inputs[k].shape[1:]), i, dtype=torch.long) for i, k in enumerate(names))
    attr = ShapleyValues(forward).attribute(tuple(inputs.values()), target=target, feature_mask=masks)
    captum = torch.stack([a.reshape(5, -1)[:, 0] for a in attr], 1).double()
    ours = modality_shapley(model, inputs, target=target)
    torch.testing.assert_close(ours.values, captum, atol=1e-5, rtol=0)


def test_token_ids_default_to_id_zero_and_int_baselines() -> None:
    emb = nn.Embedding(10, 4)
    lin = nn.Linear(6, 2)

    def model(ids: torch.Tensor, tab: torch.Tensor) -> torch.Tensor:
        return lin(torch.cat([emb(ids).mean(1), tab], 1)) * tab.sum(1, keepdim=True)

    inputs = {"ids": torch.randint(1, 10, (4, 5)), "tab": torch.randn(4, 2)}
    res = modality_shapley(model, inputs, target=1)
    v = brute_game(model, inputs, target=1, baselines={"ids": torch.zeros(1, 5, dtype=torch.long)})
    torch.testing.assert_close(res.values, brute_shapley(v, 2), atol=1e-6, rtol=0)

    pad = modality_shapley(model, inputs, baselines={"ids": 3}, target=1)
    v3 = brute_game(model, inputs, target=1, baselines={"ids": torch.full((1, 5), 3)})
    torch.testing.assert_close(pad.values, brute_shapley(v3, 2), atol=1e-6, rtol=0)


def test_chunking_gives_same_result() -> None:
    inputs = make_inputs(4, n=6, seed=8)
    model = ConcatMLP(4).eval()
    one = modality_shapley(model, inputs, target=1)
    chunked = modality_shapley(model, inputs, target=1, max_batch_size=7)
    torch.testing.assert_close(one.values, chunked.values, atol=1e-6, rtol=0)
    bg = make_inputs(4, n=3, seed=9)
    one_bg = modality_shapley(model, inputs, target=1, background=bg)
    chunked_bg = modality_shapley(model, inputs, target=1, background=bg, max_batch_size=5)
    torch.testing.assert_close(one_bg.values, chunked_bg.values, atol=1e-6, rtol=0)


def test_batched_forward_count_and_mode_untouched() -> None:
    model = ConcatMLP(3).train()
    calls: list[int] = []

    def counting(**kw: torch.Tensor) -> torch.Tensor:
        calls.append(next(iter(kw.values())).shape[0])
        assert not torch.is_grad_enabled()
        return model(**kw)

    inputs = make_inputs(3, n=8)
    res = modality_shapley(counting, inputs, target=0)
    # One pass; the shared all-absent input runs once: 1 + N (2^M - 1) rows.
    assert calls == [1 + 8 * 7]
    calls.clear()
    modality_shapley(counting, make_inputs(3, n=20), target=0, max_batch_size=64)
    assert calls == [64, 64, 13]
    assert model.training
    assert not res.values.requires_grad


@pytest.mark.parametrize("fusion", ["concat", "attention", "tensor", "late"])
def test_factorised_equals_full_forward_on_builtin_models(fusion: str) -> None:
    from mmexplain.data import load_dataset
    from mmexplain.models import ModelConfig, build_model

    splits, tok = load_dataset("synthetic:additive", limit=64, seed=0,
                               modalities=["image", "text", "tabular", "audio"])
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_name(fusion), splits.train, tok).eval()
    assert model.modality_factorised
    x = splits.test.inputs(range(6))
    encoded_rows: list[int] = []
    handle = model.encoders["image"].register_forward_hook(
        lambda mod, inp, out: encoded_rows.append(inp[0].shape[0]))
    fast = modality_shapley(model, x, target=1)  # auto: factorised
    assert encoded_rows == [6 + 1]  # each distinct row once: N inputs + the shared baseline
    encoded_rows.clear()
    full = modality_shapley(model, x, target=1, factorised=False)
    assert encoded_rows == [1 + 6 * 15]
    handle.remove()
    torch.testing.assert_close(fast.values, full.values, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast.interactions, full.interactions, atol=1e-5, rtol=1e-5)
    bg = splits.val.inputs(range(3))
    torch.testing.assert_close(modality_shapley(model, x, target=1, background=bg).values,
                               modality_shapley(model, x, target=1, background=bg, factorised=False).values,
                               atol=1e-5, rtol=1e-5)
    with pytest.raises(AttributionError, match="factorised=True needs model.encode"):
        modality_shapley(ConcatMLP(2), make_inputs(2), target=0, factorised=True)


# ----------------------------------------------------------------------------- helpers on the result


def test_shares_frames_and_json_round_trip() -> None:
    inputs = make_inputs(3, n=4, seed=12)
    res = modality_shapley(ConcatMLP(3).eval(), inputs, target=[0, 1, 2, 0])
    shares = res.shares()
    torch.testing.assert_close(shares.sum(1), torch.ones(4, dtype=torch.float64))
    expect = res.values.abs() / res.values.abs().sum(1, keepdim=True)
    torch.testing.assert_close(shares, expect)
    mean = res.mean_shares()
    assert list(mean.index) == list(inputs)
    assert mean.to_numpy() == pytest.approx(expect.mean(0).numpy())

    frame = res.to_frame()
    assert list(frame.columns) == ["sample", "modality", "value", "share"]
    assert len(frame) == 12
    row = frame[(frame["sample"] == 2) & (frame["modality"] == "mod1")].iloc[0]
    assert row["value"] == pytest.approx(float(res.values[2, 1]))

    back = ModalityShapley.from_dict(json.loads(json.dumps(res.to_dict())))
    torch.testing.assert_close(back.values, res.values)
    torch.testing.assert_close(back.interactions, res.interactions)
    torch.testing.assert_close(back.coalition_values, res.coalition_values)
    assert back.modalities == res.modalities
    assert back.target.tolist() == [0, 1, 2, 0]


def test_interaction_share_aggregates() -> None:
    # Sample 0 has no interaction (ratio 0), sample 1 only interaction (ratio 1): "mean"
    # gives 1/2; "pooled" averages the matrices first: off 1 / total 1.5 = 2/3.
    phi = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]]], dtype=torch.float64)
    res = ModalityShapley(
        values=phi.sum(2),
        interactions=phi,
        modalities=["a", "b"],
        base_value=torch.zeros(2, dtype=torch.float64),
        full_value=phi.sum((1, 2)),
        coalition_values=torch.zeros(2, 4, dtype=torch.float64),
    )
    assert res.interaction_share(per_sample=True).tolist() == [0.0, 1.0]
    assert res.interaction_share(aggregate="mean") == pytest.approx(0.5)
    assert res.interaction_share() == pytest.approx(2 / 3)
    with pytest.raises(ConfigError, match=r"aggregate='median' is not allowed; choose one of \['pooled', 'mean'\]"):
        res.interaction_share(aggregate="median")


def test_zero_game_gives_nan_shares() -> None:
    inputs = {"a": torch.zeros(2, 1), "b": torch.ones(2, 1)}
    res = modality_shapley(lambda a, b: (a * b)[:, 0], inputs)
    assert torch.isnan(res.shares()).all()
    assert math.isnan(res.interaction_share())


def test_share_by_group() -> None:
    shares = torch.tensor([[0.2, 0.8], [0.4, 0.6], [1.0, 0.0], [float("nan"), float("nan")]])
    frame = share_by_group(shares, ["x", "x", "y", "y"], modalities=["img", "txt"])
    assert list(frame.columns) == ["img", "txt", "n"]
    assert frame.loc["x", "img"] == pytest.approx(0.3)
    assert frame.loc["y", "txt"] == pytest.approx(0.0)
    assert frame.loc["y", "n"] == 2

    res = modality_shapley(ConcatMLP(2).eval(), make_inputs(2, n=4), target=1)
    by_correct = share_by_group(res, np.array([True, False, True, True]))
    assert isinstance(by_correct, pd.DataFrame)
    assert list(by_correct.columns) == ["mod0", "mod1", "n"]
    with pytest.raises(ValueError, match="groups has 3 labels but shares has 4 rows"):
        share_by_group(res, [0, 1, 2])


# ----------------------------------------------------------------------------- errors


def _model(**kw: torch.Tensor) -> torch.Tensor:
    return sum(v.flatten(1).sum(1) for v in kw.values())


def test_error_mismatched_batch_sizes() -> None:
    with pytest.raises(ValueError, match="inputs tensors disagree on batch size"):
        modality_shapley(_model, {"a": torch.zeros(3, 2), "b": torch.zeros(4, 2)})


def test_error_unknown_baseline_key() -> None:
    with pytest.raises(ValueError, match=r"baselines has unknown modality \['c'\]; modalities are \['a', 'b'\]"):
        modality_shapley(_model, make_two(), baselines={"c": torch.zeros(1, 2)})


def test_error_too_many_modalities() -> None:
    inputs = {f"m{i}": torch.zeros(2, 1) for i in range(7)}
    with pytest.raises(ConfigError, match="inputs has 7 modalities; modality_shapley supports 1 to 6"):
        modality_shapley(_model, inputs)


def test_error_background_with_baselines() -> None:
    with pytest.raises(ConfigError, match="Pass either baselines= or background=, not both"):
        modality_shapley(_model, make_two(), baselines={"a": torch.zeros(1, 2)}, background=make_two())


def test_error_wrong_target_length() -> None:
    with pytest.raises(ValueError, match="target has 3 entries but the batch has 4 samples"):
        modality_shapley(ConcatMLP(2).eval(), make_inputs(2, n=4), target=[0, 1, 2])


def test_error_target_none_for_multi_output_and_out_of_range() -> None:
    with pytest.raises(ConfigError, match="target=None is only allowed for a scalar-output model"):
        modality_shapley(ConcatMLP(2).eval(), make_inputs(2, n=4))
    with pytest.raises(ConfigError, match="target holds class index 3, but the model returns 3 outputs"):
        modality_shapley(ConcatMLP(2).eval(), make_inputs(2, n=4), target=3)


def test_error_bad_baseline_shape_and_dtype() -> None:
    with pytest.raises(ValueError, match=r"baselines\['a'\] has shape \(3,\), which does not broadcast"):
        modality_shapley(_model, make_two(), baselines={"a": torch.zeros(3)})
    with pytest.raises(TypeError, match=r"baselines\['ids'\] is floating point"):
        modality_shapley(_model, {"ids": torch.ones(2, 3, dtype=torch.long)}, baselines={"ids": torch.full((1, 3), 0.5)})


def test_error_background_shape() -> None:
    with pytest.raises(ValueError, match=r"background\['a'\] has sample shape \(3,\) but inputs\['a'\] has \(2,\)"):
        modality_shapley(_model, make_two(), background={"a": torch.zeros(4, 3), "b": torch.zeros(4, 2)})
    with pytest.raises(ValueError, match=r"background is missing modality \['b'\]"):
        modality_shapley(_model, make_two(), background={"a": torch.zeros(4, 2)})


def test_error_model_output_shape() -> None:
    from mmexplain.exceptions import AttributionError

    with pytest.raises(AttributionError, match=r"returned shape \(.*, 2, 2\)"):
        modality_shapley(lambda a, b: torch.zeros(a.shape[0], 2, 2), make_two())


def make_two() -> dict[str, torch.Tensor]:
    return {"a": torch.randn(4, 2), "b": torch.randn(4, 2)}
