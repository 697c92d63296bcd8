"""SHAP methods: the maskers' hierarchies, Owen values with modalities as unions, expected gradients."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.cluster.hierarchy import is_monotonic, is_valid_linkage
from torch import nn

from mmexplain import ModalitySpec
from mmexplain.attribution import modality_shapley
from mmexplain.attribution.methods import METHODS, attribute, feature_groups
from mmexplain.attribution.shap_methods import JointMasker, _split_budget
from mmexplain.exceptions import ConfigError


@pytest.fixture(autouse=True)
def _one_thread():
    # the models here are tiny: thread hand-offs would cost more than the arithmetic
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


SPECS = [ModalitySpec("image", "image"), ModalitySpec("text", "tokens", embedding_layer="emb", pad_id=0),
         ModalitySpec("tabular", "tabular")]


class AdditiveMM(nn.Module):
    """Additive over units but nonlinear inside them: logits_c = Σ_pixels a_c·tanh(2·pixel)
    + Σ_t tanh(emb(token_t))·W_c + Σ_f b_c·tabular_f²."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.a = nn.Parameter(torch.randn(3, 16, generator=g))
        self.emb = nn.Embedding(10, 5, padding_idx=0)
        self.tok = nn.Linear(5, 3, bias=False)
        self.b = nn.Parameter(torch.randn(3, 3, generator=g))

    def forward(self, image, text, tabular):
        img = torch.tanh(2 * image.flatten(1)) @ self.a.T
        return img + self.tok(torch.tanh(self.emb(text))).sum(1) + (tabular**2) @ self.b.T


class LinearMM(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.img = nn.Linear(16, 3, bias=False)
        self.emb = nn.Embedding(10, 5, padding_idx=0)
        self.tok = nn.Linear(5, 3, bias=False)
        self.tab = nn.Linear(3, 3)

    def forward(self, image, text, tabular):
        return self.img(image.flatten(1)) + self.tok(self.emb(text)).sum(1) + self.tab(tabular)


class IgnoresTabular(nn.Module):
    """Image and text interact; tabular is never read."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 2, padding_idx=0)

    def forward(self, image, text, tabular):
        s = image.flatten(1).sum(1)
        t = self.emb(text).sum((1, 2))
        return torch.stack([torch.tanh(s * t), s - t**2], dim=1)


def _inputs(n=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    text = torch.randint(1, 10, (n, 6), generator=g)
    text[:, -1] = 0  # a pad token: its embedding is the baseline's, so its value is 0
    return {"image": torch.rand(n, 1, 4, 4, generator=g), "text": text, "tabular": torch.randn(n, 3, generator=g)}


ZERO = {"image": torch.zeros(1, 1, 4, 4), "tabular": torch.zeros(1, 3)}


def test_methods_are_registered_with_their_promises():
    assert "shap_partition" in METHODS and "shap_gradient" in METHODS
    assert METHODS.get("shap_partition").complete and not METHODS.get("shap_gradient").complete
    assert "max_evals" in METHODS.get("shap_partition").options
    assert "n_samples" in METHODS.get("shap_gradient").options


# -- the masker -----------------------------------------------------------------------------------
def _unit_sets(z: np.ndarray) -> list[set[int]]:
    n = len(z) + 1
    sets = [{i} for i in range(n)]
    for a, b, _, size in z:
        sets.append(sets[int(a)] | sets[int(b)])
        assert len(sets[-1]) == size
    return sets


def test_clustering_is_a_valid_monotone_linkage_whose_top_merge_joins_the_modalities():
    specs = [*SPECS, ModalitySpec("audio", "audio")]
    # image 8x8 in 2x2 patches: a 4x4 patch grid (16 units); 6 tokens; 3 features; 4 windows
    m = JointMasker(specs, [(1, 8, 8), (6, 5), (3,), (1, 32)], patch_size=2, audio_window=8)
    assert m.shape == (1, 29) and m.unit_ranges == [(0, 16), (16, 22), (22, 25), (25, 29)]
    z = m.clustering
    assert z.shape == (28, 4) and is_valid_linkage(z, throw=True) and is_monotonic(z)
    sets = _unit_sets(z)
    modalities = [set(range(a, b)) for a, b in m.unit_ranges]
    # each modality is a subtree, and the merges above them only join whole modalities
    assert [sets[r] for r in m.modality_roots] == modalities
    n = 29
    first_joint = min(i for i, s in enumerate(sets) if not any(s <= mod for mod in modalities))
    assert z[first_joint - n, 2] > max(z[r - n, 2] for r in m.modality_roots)
    for s in sets[n:]:
        assert any(s <= mod for mod in modalities) or all(mod <= s or not (mod & s) for mod in modalities)
    top = sets[int(z[-1, 0])], sets[int(z[-1, 1])]
    assert top[0] | top[1] == set(range(29)) and all(any(mod <= t for t in top) for mod in modalities)
    # image clusters of 4 patches are 2x2 blocks of the patch grid (spatially coherent)
    quads = [s for s in sets if len(s) == 4 and s <= modalities[0]]
    assert len(quads) == 4
    for q in quads:
        rows, cols = {u // 4 for u in q}, {u % 4 for u in q}
        assert len(rows) == 2 and len(cols) == 2 and max(rows) - min(rows) == 1
    # token and audio clusters are runs of neighbours
    for s in sets[n:]:
        if s <= modalities[1] or s <= modalities[3]:
            assert max(s) - min(s) + 1 == len(s)


def test_masker_replaces_masked_units_by_the_baseline():
    m = JointMasker(SPECS, [(1, 4, 4), (6, 5), (3,)], patch_size=2)
    assert m.mask_shapes() == [(13,)] and len(m.feature_names()[0]) == 13
    g = torch.Generator().manual_seed(0)
    xs = (torch.rand(1, 1, 4, 4, generator=g), torch.randn(1, 6, 5, generator=g), torch.randn(1, 3, generator=g))
    bs = tuple(torch.full_like(x, -7.0) for x in xs)
    row = m.rows(xs, bs)[0]
    mask = np.ones(13, dtype=bool)
    mask[[0, 4 + 2, 12]] = False  # the top-left patch, token 2, tabular feature 2
    out = m.split(m(mask, row), xs)
    groups = feature_groups(SPECS, xs, patch_size=2)
    for x, o, grp in zip(xs, out, groups):
        masked = torch.isin(grp.expand_as(x), torch.tensor([0, 6, 12]))
        assert torch.equal(o[masked], torch.full_like(o[masked], -7.0))
        assert torch.equal(o[~masked], x[~masked])
    assert masked.sum() == 1 and torch.equal(out[0][0, 0, :2, :2], torch.full((2, 2), -7.0))
    assert torch.equal(m.split(m(True, row), xs)[1], xs[1])
    with pytest.raises(ConfigError, match="mask"):
        m(np.ones(5, dtype=bool), row)


def test_one_modality_masker_plays_its_units_under_its_own_tree():
    shapes = [(1, 8, 8), (6, 5), (3,)]
    m = JointMasker(SPECS, shapes, patch_size=2, modality="image")
    assert m.modality == 0 and m.players == (0, 16) and m.shape == (1, 16) and m.n_units == 25
    z = m.clustering
    assert z.shape == (15, 4) and is_valid_linkage(z, throw=True) and is_monotonic(z)
    # the same spatial tree as the image's subtree of the joint hierarchy, ids local
    sets = _unit_sets(z)
    assert sets[m.modality_roots[0]] == set(range(16))
    assert sorted(map(sorted, (s for s in sets if len(s) == 4))) == [
        [0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]
    assert m.feature_names()[0][5] == "image[patch 1,1]"
    t = JointMasker(SPECS, shapes, patch_size=2, modality=1)
    assert t.players == (16, 22) and t.feature_names()[0] == [f"text[{u}]" for u in range(6)]
    assert JointMasker(SPECS, shapes, patch_size=8, modality=0).clustering.shape == (0, 4)
    with pytest.raises(ConfigError, match="modality"):
        JointMasker(SPECS, shapes, modality="audio")


def test_one_modality_masker_keeps_the_other_modalities_as_the_row_has_them():
    m = JointMasker(SPECS, [(1, 4, 4), (6, 5), (3,)], patch_size=2, modality="text")
    g = torch.Generator().manual_seed(0)
    xs = (torch.rand(1, 1, 4, 4, generator=g), torch.randn(1, 6, 5, generator=g), torch.randn(1, 3, generator=g))
    bs = tuple(torch.full_like(x, -7.0) for x in xs)
    # the image present, the tabular features absent: their baseline is in the sample half too
    row = m.rows(xs, bs, [True, True, False])[0]
    mask = np.ones(6, dtype=bool)
    mask[2] = False
    img, txt, tab = m.split(m(mask, row), xs)
    assert torch.equal(img, xs[0]) and torch.equal(tab, bs[2])
    assert torch.equal(txt[0, 2], bs[1][0, 2]) and torch.equal(txt[0, [0, 1, 3, 4, 5]], xs[1][0, [0, 1, 3, 4, 5]])
    assert torch.equal(m.split(m(False, row), xs)[1], bs[1])
    with pytest.raises(ConfigError, match="mask"):
        m(np.ones(13, dtype=bool), row)


# -- shap_partition -------------------------------------------------------------------------------
def test_partition_values_are_the_exact_additive_contributions():
    model, x = AdditiveMM().eval(), _inputs()
    target = torch.tensor([0, 2, 1])
    res = attribute(model, x, method="shap_partition", target=target, baselines=ZERO, modalities=SPECS,
                    patch_size=2, max_evals=500)
    with torch.no_grad():
        a = model.a[target].view(3, 1, 4, 4)
        pix = a * (torch.tanh(2 * x["image"]) - 0.0)
        tok = (torch.tanh(model.emb(x["text"])) - torch.tanh(model.emb(torch.zeros_like(x["text"])))) @ model.tok.weight.T
        tok = tok.gather(2, target.view(3, 1, 1).expand(3, 6, 1)).squeeze(2)
        tab = model.b[target] * x["tabular"] ** 2
    # one value per 2x2 patch, spread evenly over its pixels
    patch = lambda t: t.view(3, 1, 2, 2, 2, 2).sum((3, 5))  # noqa: E731
    torch.testing.assert_close(patch(res.maps["image"]), patch(pix), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(res.maps["image"], patch(pix).repeat_interleave(2, 2).repeat_interleave(2, 3) / 4)
    torch.testing.assert_close(res.maps["text"], tok, atol=1e-5, rtol=1e-4)
    assert torch.all(res.maps["text"][:, -1].abs() < 1e-6)  # the pad token
    torch.testing.assert_close(res.maps["tabular"], tab, atol=1e-5, rtol=1e-4)
    assert float(res.completeness_error.max()) < 1e-5


def test_partition_hand_computed_interaction_owen_values():
    # f = image · tabular_0, image one patch, baselines 0. Between the modalities, Shapley gives
    # each half of f(x); inside the tabular modality (with the image present, weight 1/2, or
    # absent, where f = 0) tab1 is a null player, so tab0 takes the modality's half.
    class Product(nn.Module):
        def forward(self, image, tabular):
            return (image.flatten(1).sum(1) * tabular[:, 0]).unsqueeze(1)

    specs = [ModalitySpec("image", "image"), ModalitySpec("tabular", "tabular")]
    x = {"image": torch.full((2, 1, 2, 2), 0.5), "tabular": torch.tensor([[3.0, 9.0], [-1.0, 4.0]])}
    res = attribute(Product(), x, method="shap_partition", modalities=specs,
                    baselines={"image": "black", "tabular": "zero"}, patch_size=2)
    fx = torch.tensor([6.0, -2.0])
    torch.testing.assert_close(res.maps["image"].sum((1, 2, 3)), fx / 2)
    torch.testing.assert_close(res.maps["tabular"], torch.stack([fx / 2, torch.zeros(2)], 1))


def test_partition_is_efficient_under_a_small_budget_and_ignored_modality_gets_zero():
    model, x = IgnoresTabular().eval(), _inputs()
    res = attribute(model, x, method="shap_partition", target=torch.tensor([0, 1, 1]), modalities=SPECS,
                    patch_size=1, max_evals=40)  # 25 units: far too few evaluations for exact values
    assert float(res.completeness_error.max()) < 1e-5
    totals = res.totals
    assert torch.all(totals[:, 2].abs() < 1e-7)
    assert torch.all(totals[:, :2].abs().sum(1) > 1e-3)


def test_partition_single_unit_gets_the_whole_difference():
    specs = [ModalitySpec("image", "image")]

    class Sq(nn.Module):
        def forward(self, image):
            return (image**2).sum((1, 2, 3))

    x = torch.rand(2, 3, 4, 4)
    res = attribute(Sq(), {"image": x}, method="shap_partition", modalities=specs, patch_size=8)
    torch.testing.assert_close(res.maps["image"].sum((1, 2, 3)), (x**2).sum((1, 2, 3)))


# three small modalities: four pixels (patch_size=1), three tokens, two features
SMALL = [ModalitySpec("image", "image"), ModalitySpec("text", "tokens", embedding_layer="emb", pad_id=0),
         ModalitySpec("tabular", "tabular")]


class Product(nn.Module):
    """f = s_img · s_txt · s_tab, each s the sum of that modality's elements (token
    embeddings summed over tokens and dimensions); 0 whenever a modality is at baseline 0."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.emb = nn.Embedding(6, 2, padding_idx=0)
        with torch.no_grad():
            self.emb.weight.copy_(torch.randn(6, 2, generator=g))
            self.emb.weight[0] = 0.0  # the pad token: s_txt = 0 at the baseline

    def sums(self, image, text, tabular):
        return image.flatten(1).sum(1), self.emb(text).sum((1, 2)), tabular.sum(1)

    def forward(self, image, text, tabular):
        a, b, c = self.sums(image, text, tabular)
        return a * b * c


class Lopsided(Product):
    """Not symmetric in the modalities: f = 2·s_img·s_txt·s_tab² + 3·s_img·s_txt + 0.5·s_tab − s_img.
    (The three-way term matters: with pairwise interactions only, any binary hierarchy over the
    modalities would give their Shapley values too.)"""

    def forward(self, image, text, tabular):
        a, b, c = self.sums(image, text, tabular)
        return 2 * a * b * c**2 + 3 * a * b + 0.5 * c - a


def _small_inputs(n=2, seed=4):
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.rand(n, 1, 2, 2, generator=g) + 0.5, "text": torch.randint(1, 6, (n, 3), generator=g),
            "tabular": torch.randn(n, 2, generator=g)}


def _small_baselines(n=2):
    # per-sample tabular baselines: f(baseline) differs from 0 and between samples
    return {"image": torch.zeros(1, 1, 2, 2), "text": torch.zeros(1, 3, dtype=torch.long),
            "tabular": torch.tensor([[0.5, -1.0], [2.0, 0.25]])[:n]}


def _totals(res, specs=SMALL):
    return torch.stack([res.maps[s.name].flatten(1).sum(1).double() for s in specs], 1)


@pytest.mark.parametrize("model_cls", [Product, Lopsided])
def test_partition_totals_are_modality_shapley_values_in_every_modality_order(model_cls):
    model, x, base = model_cls().eval(), _small_inputs(), _small_baselines()
    exact = modality_shapley(model, x, baselines=base).values  # columns image, text, tabular
    for order in itertools.permutations(range(3)):
        res = attribute(model, x, method="shap_partition", modalities=[SMALL[k] for k in order],
                        baselines=base, patch_size=1)
        torch.testing.assert_close(_totals(res), exact, atol=1e-5, rtol=1e-5)
        assert all(res.meta["owen_exact"]) and max(res.meta["n_evals"]) <= 500


def test_partition_product_unit_values_by_hand():
    # baselines 0: only the coalition of both other modalities (Shapley weight 1/3) gives a
    # nonzero game, additive over the modality's units; so each modality's total is f(x)/3 and
    # each unit gets its own sum times the other modalities' sums, over 3
    model, x = Product().eval(), _small_inputs()
    zero = {"image": torch.zeros(1, 1, 2, 2), "tabular": torch.zeros(1, 2)}
    res = attribute(model, x, method="shap_partition", modalities=SMALL, baselines=zero, patch_size=1)
    with torch.no_grad():
        a, b, c = model.sums(**x)
        tok = model.emb(x["text"]).sum(2)
    torch.testing.assert_close(_totals(res), (a * b * c / 3).double().unsqueeze(1).expand(2, 3))
    torch.testing.assert_close(res.maps["image"], x["image"] * (b * c / 3).view(2, 1, 1, 1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(res.maps["text"], tok * (a * c / 3).view(2, 1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(res.maps["tabular"], x["tabular"] * (a * b / 3).view(2, 1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("max_evals", [24, 40, 500])
def test_partition_completeness_and_exact_totals_under_any_budget(max_evals):
    # 24 = 12 runs x their two end points: no run splits anything, yet the totals stay exact
    model, x, base = Lopsided().eval(), _small_inputs(), _small_baselines()
    res = attribute(model, x, method="shap_partition", modalities=SMALL, baselines=base, patch_size=1,
                    max_evals=max_evals)
    with torch.no_grad():
        fx = model(**x).double()
        fb = model(image=torch.zeros(2, 1, 2, 2), text=torch.zeros(2, 3, dtype=torch.long),
                   tabular=base["tabular"]).double()
    torch.testing.assert_close(_totals(res).sum(1), fx - fb, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(_totals(res), modality_shapley(model, x, baselines=base).values, atol=1e-5, rtol=1e-5)
    assert max(res.meta["n_evals"]) <= max_evals and all(res.meta["owen_exact"]) == (max_evals == 500)
    again = attribute(model, x, method="shap_partition", modalities=SMALL, baselines=base, patch_size=1,
                      max_evals=max_evals)
    assert all(torch.equal(res.maps[k], again.maps[k]) for k in res.maps)  # seeded


def test_partition_one_unit_modality_gets_its_modality_shapley_value():
    # the image is one patch (patch_size=8 > 2): valued from the 2^3 coalition values
    model, x, base = Lopsided().eval(), _small_inputs(), _small_baselines()
    res = attribute(model, x, method="shap_partition", modalities=SMALL, baselines=base, patch_size=8)
    exact = modality_shapley(model, x, baselines=base).values
    torch.testing.assert_close(_totals(res), exact, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(res.maps["image"], (exact[:, 0] / 4).view(2, 1, 1, 1).expand(2, 1, 2, 2).float())
    assert max(res.meta["n_evals"]) <= 500 and min(res.meta["n_evals"]) > 8


class Tangled(nn.Module):
    """Nonlinear in every unit, with interactions inside and across modalities."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.emb = nn.Embedding(5, 2, padding_idx=0)
        self.w = nn.Parameter(torch.randn(6, 6, generator=g))

    def forward(self, image, text, tabular):
        z = torch.cat([image.flatten(1), self.emb(text).sum(2), tabular], 1)
        return torch.tanh(z @ self.w).prod(1) + z[:, 0] * z[:, 3] * z[:, 5] - z[:, 1] ** 2 * z[:, 2]


def test_partition_matches_brute_force_owen_values_with_modalities_as_unions():
    # two units per modality, so each modality's tree is flat: the classic Owen value
    # φ_i = Σ_R Σ_T |R|!(3−|R|−1)!/3! · |T|!(2−|T|−1)!/2! · (v(R ∪ T ∪ i) − v(R ∪ T)),
    # R a set of other modalities (all their units), T ⊆ i's modality ∖ {i}
    g = torch.Generator().manual_seed(1)
    model = Tangled().eval()
    x = {"image": torch.randn(1, 1, 1, 2, generator=g), "text": torch.tensor([[3, 4]]),
         "tabular": torch.randn(1, 2, generator=g)}
    base = {"image": torch.zeros(1, 1, 1, 2), "text": torch.zeros(1, 2, dtype=torch.long),
            "tabular": torch.zeros(1, 2)}
    res = attribute(model, x, method="shap_partition", modalities=SMALL, baselines=base, patch_size=1)
    got = torch.cat([res.maps[k].flatten().double() for k in ("image", "text", "tabular")])

    def v(units):
        keep = torch.tensor([u in units for u in range(6)])
        with torch.no_grad():
            return float(model(image=torch.where(keep[:2].view(1, 1, 1, 2), x["image"], base["image"]),
                               text=torch.where(keep[2:4].view(1, 2), x["text"], base["text"]),
                               tabular=torch.where(keep[4:].view(1, 2), x["tabular"], base["tabular"])))

    def w(size, players):
        return math.factorial(size) * math.factorial(players - size - 1) / math.factorial(players)

    want = []
    for k in range(3):
        for i in (2 * k, 2 * k + 1):
            mate = i + 1 if i % 2 == 0 else i - 1  # the other unit of modality k
            total = 0.0
            others = [j for j in range(3) if j != k]
            for r in range(3):
                for rs in itertools.combinations(others, r):
                    q = {u for j in rs for u in (2 * j, 2 * j + 1)}
                    for t in (set(), {mate}):
                        total += w(r, 3) * w(len(t), 2) * (v(q | t | {i}) - v(q | t))
            want.append(total)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), atol=1e-6, rtol=1e-5)


def test_split_budget_fills_runs_up_to_their_needs():
    needs = np.array([10, 10, 26, 26])
    assert list(_split_budget(100, needs, np.ones(4))) == [10, 10, 26, 26]
    # equal shares of 15: the 10s are capped and their surplus goes to the others
    assert list(_split_budget(60, needs, np.ones(4))) == [10, 10, 20, 20]
    got = _split_budget(30, needs, np.array([1.0, 1.0, 2.0, 2.0]))
    assert list(got) == [4, 4, 10, 10] and got.sum() <= 30


def test_partition_rejects_bad_options():
    model, x = AdditiveMM().eval(), _inputs(1)
    with pytest.raises(ConfigError, match="max_evals"):
        attribute(model, x, method="shap_partition", target=0, modalities=SPECS, max_evals=1)
    # 3 modalities of several units: 3 x 2^2 Partition runs, 2 evaluations each at least
    with pytest.raises(ConfigError, match=r"max_evals=23 is below the 24 .* max_evals >= 24"):
        attribute(model, x, method="shap_partition", target=0, modalities=SPECS, patch_size=2, max_evals=23)
    with pytest.raises(ConfigError, match="patch_size"):
        attribute(model, x, method="shap_partition", target=0, modalities=SPECS, patch_size=0)


# -- shap_gradient --------------------------------------------------------------------------------
def _linear_expected(model, x, target, bg):
    img = model.img.weight[target].view(-1, 1, 4, 4) * (x["image"] - bg["image"].mean(0))
    emb = model.emb(x["text"]) - model.emb(bg["text"]).mean(0)
    tok = (emb @ model.tok.weight.T).gather(2, target.view(-1, 1, 1).expand(-1, 6, 1)).squeeze(2)
    tab = model.tab.weight[target] * (x["tabular"] - bg["tabular"].mean(0))
    return {"image": img.detach(), "text": tok.detach(), "tabular": tab.detach()}


def test_gradient_on_a_linear_model_is_w_times_x_minus_background():
    model, x = LinearMM().eval(), _inputs()
    target = torch.tensor([1, 0, 2])
    one = {"image": torch.full((1, 1, 4, 4), 0.25), "text": torch.zeros(1, 6, dtype=torch.long),
           "tabular": torch.ones(1, 3)}
    res = attribute(model, x, method="shap_gradient", target=target, modalities=SPECS, background=one,
                    n_samples=8)
    for name, want in _linear_expected(model, x, target, one).items():
        torch.testing.assert_close(res.maps[name], want, atol=1e-5, rtol=1e-4)
    # several background rows: the sampled rows' mean approaches the background mean
    g = torch.Generator().manual_seed(3)
    many = {"image": torch.rand(2, 1, 4, 4, generator=g), "text": torch.randint(0, 10, (2, 6), generator=g),
            "tabular": torch.randn(2, 3, generator=g)}
    res = attribute(model, x, method="shap_gradient", target=target, modalities=SPECS, background=many,
                    n_samples=400)
    for name, want in _linear_expected(model, x, target, many).items():
        scale = float(want.abs().max())
        torch.testing.assert_close(res.maps[name], want, atol=0.15 * scale, rtol=0)


def test_gradient_default_background_and_ignored_modality():
    model, x = IgnoresTabular().eval(), _inputs()
    res = attribute(model, x, method="shap_gradient", target=1, modalities=SPECS, n_samples=16)
    assert res.maps["text"].shape == (3, 6) and res.maps["image"].shape == (3, 1, 4, 4)
    assert torch.all(res.totals[:, 2] == 0) and torch.all(res.totals[:, :2].abs().sum(1) > 0)
    with pytest.raises(ConfigError, match="background"):
        attribute(model, x, method="shap_gradient", target=1, modalities=SPECS, background="median")
    with pytest.raises(ConfigError, match="background"):
        attribute(model, x, method="shap_gradient", target=1, modalities=SPECS,
                  background={"image": torch.zeros(1, 1, 4, 4)})
