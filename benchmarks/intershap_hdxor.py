"""InterSHAP on HD-XOR: reproduce the FCNN column of Wenderoth et al. (AAAI-25), Table 2.

Regenerates the two-modality HD-XOR data (``generate_synthetic_data_XOR`` in
``generate_data/generate_data.py`` of https://github.com/LauraWenderoth/InterSHAP), trains
their early-fusion FCNN (``EarlyFusionFeedForwardNN``: concat -> D/2 -> D/4 -> 2, ReLU,
Adam lr 1e-4, weight decay 1e-4, batch 5000, 200 epochs, cross-entropy), and computes the
global InterSHAP score with :func:`mmexplain.attribution.shapley.modality_shapley` in
background (interventional) mode.

HD-XOR, as in the reference generator: two random bits ``b0, b1`` per sample, label
``b0 xor b1``; a latent vector of dimension d = 200 is drawn per modality and projected by
a fixed random matrix ``U(-0.5, 0.5)`` of shape (dim_m, d):

* ``synergy``: modality m's latent is ``N(±0.35, 2.0)`` with the sign of bit m, so each
  modality carries one bit and the label needs both;
* ``uniqueness0`` / ``uniqueness1``: one modality's latent holds both bits (two halves,
  ``N(±0.35, 1)``), the other modality is ``N(0, 1)`` noise;
* ``redundancy``: both modalities get the same latent holding both bits
  (``N(±0.25, 1)``).

Game, as in the reference explainer (``MultiModalExplainer``): the value is the softmax
probability of the class the model predicts on the full input; absent modalities are
filled from validation samples (the reference draws 1500 at random per coalition, we use
``--background`` fixed ones). Global score: ``sum_{i != j} |Phi_ij| / sum_{i, j} |Phi_ij|``
on the interaction matrices averaged over the test samples ("pooled", the library default
and the aggregate of the reference ``interaction_index_dataset.py``); we also print the
mean of the per-sample ratios ("mean", what the reference ``interaction_metric`` logs)
and the pooled score of the logit game (our library's default game).

Assumptions where the reference is silent for two modalities: modality sizes 200 and 100
(the first two of their 3-modality script, ``--dim_modalities 200 100 150``), a 70/15/15
stratified split as in their generator, seeds 1, 42, 113 as in their README.

Usage::

    python benchmarks/intershap_hdxor.py                      # one seed, a few minutes on 2 cores
    python benchmarks/intershap_hdxor.py --seeds 1 42 113     # the reference protocol (3x longer)
    python benchmarks/intershap_hdxor.py --n-samples 5000 --epochs 100 --seeds 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from torch import nn

from mmexplain.attribution.shapley import modality_shapley

SETTINGS = ("uniqueness0", "uniqueness1", "synergy", "redundancy")
# Wenderoth et al. 2025, Table 2 / repository README, FCNN row (InterSHAP in %).
PAPER_FCNN = {"uniqueness0": "0.2 ± 0.1", "uniqueness1": "3.1 ± 0.4", "synergy": "98.0", "redundancy": "38.6 ± 0.5"}


def hd_xor(setting: str, n: int, dims: tuple[int, int], d: int, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    """Vectorised re-implementation of the reference ``generate_synthetic_data_XOR`` (2 modalities)."""
    proj = [rng.uniform(-0.5, 0.5, size=(dim, d)) for dim in dims]
    bits = rng.integers(0, 2, size=(n, 2))
    label = (bits.sum(1) == 1).astype(np.int64)
    sign = np.where(bits == 1, 1.0, -1.0)  # (n, 2)

    def halves(loc: float) -> np.ndarray:
        # First half of the latent encodes bit 0, second half bit 1.
        first = rng.normal(loc=(loc * sign[:, :1]), scale=1.0, size=(n, d // 2))
        second = rng.normal(loc=(loc * sign[:, 1:]), scale=1.0, size=(n, d // 2))
        return np.concatenate([first, second], axis=1)

    if setting == "redundancy":
        shared = halves(0.25)
        latent = [shared, shared]
    elif setting.startswith("uniqueness"):
        latent = [rng.normal(0.0, 1.0, size=(n, d)) for _ in dims]
        latent[int(setting[-1])] = halves(0.35)
    elif setting == "synergy":
        latent = [rng.normal(loc=0.35 * sign[:, m : m + 1], scale=2.0, size=(n, d)) for m in range(2)]
    else:
        raise ValueError(f"setting={setting!r} is not allowed; choose one of {list(SETTINGS)}.")
    return [z @ p.T for z, p in zip(latent, proj)], label


class EarlyFusionFCNN(nn.Module):
    """The reference ``EarlyFusionFeedForwardNN``, taking the modalities as keywords."""

    def __init__(self, input_size: int, n_classes: int = 2) -> None:
        super().__init__()
        h1 = input_size // 2
        h2 = h1 // 2
        self.net = nn.Sequential(
            nn.Linear(input_size, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(), nn.Linear(h2, n_classes)
        )

    def forward(self, m0: torch.Tensor, m1: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([m0, m1], dim=1))


class Softmax(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, **xs: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(**xs), dim=1)


def train(model: nn.Module, x: dict[str, torch.Tensor], y: torch.Tensor, args: argparse.Namespace, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=500, gamma=0.2)
    loss_fn = nn.CrossEntropyLoss()
    n = y.shape[0]
    model.train()
    for _ in range(args.epochs):
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, args.batch_size):
            idx = perm[start : start + args.batch_size]
            opt.zero_grad()
            loss = loss_fn(model(m0=x["m0"][idx], m1=x["m1"][idx]), y[idx])
            loss.backward()
            opt.step()
        sched.step()
    model.eval()


def run_one(setting: str, seed: int, args: argparse.Namespace) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    mods, label = hd_xor(setting, args.n_samples, (200, 100), 200, rng)
    idx = np.arange(args.n_samples)
    tr, rest = train_test_split(idx, test_size=0.3, stratify=label, random_state=seed)
    va, te = train_test_split(rest, test_size=0.5, stratify=label[rest], random_state=seed)

    def split(rows: np.ndarray) -> dict[str, torch.Tensor]:
        return {f"m{m}": torch.tensor(mods[m][rows], dtype=torch.float32) for m in range(2)}

    x_tr, x_va, x_te = split(tr), split(va), split(te)
    y_tr, y_te = torch.tensor(label[tr]), torch.tensor(label[te])
    model = EarlyFusionFCNN(300)
    train(model, x_tr, y_tr, args, seed)

    with torch.no_grad():
        pred = model(**x_te).argmax(1)
    f1 = f1_score(y_te.numpy(), pred.numpy(), average="macro")

    explain = {k: v[: args.explain] for k, v in x_te.items()}
    background = {k: v[: args.background] for k, v in x_va.items()}
    target = pred[: args.explain]
    prob = modality_shapley(Softmax(model), explain, target=target, background=background)
    logit = modality_shapley(model, explain, target=target, background=background)
    return {
        "f1": 100 * f1,
        "prob_pooled": 100 * prob.interaction_share(aggregate="pooled"),
        "prob_mean": 100 * prob.interaction_share(aggregate="mean"),
        "logit_pooled": 100 * logit.interaction_share(aggregate="pooled"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-samples", type=int, default=20000, help="HD-XOR samples per setting (reference: 20000)")
    parser.add_argument("--epochs", type=int, default=200, help="training epochs (reference: 200)")
    parser.add_argument("--batch-size", type=int, default=5000, help="reference: 5000")
    parser.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (reference: 1e-4)")
    parser.add_argument("--explain", type=int, default=500, help="test samples explained (reference: 2000)")
    parser.add_argument("--background", type=int, default=200, help="validation samples filling absent modalities")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1], help="reference: 1 42 113")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    start = time.perf_counter()
    print(
        f"HD-XOR, 2 modalities (200 + 100 dims), n={args.n_samples}, epochs={args.epochs}, "
        f"explain={args.explain}, background={args.background}, seeds={args.seeds}"
    )
    print("InterSHAP in % (mean ± std over seeds); prob = softmax of the predicted class as in the paper;")
    print("pooled = ratio of the sample-averaged matrices (library default), mean = mean per-sample ratio")
    header = (
        f"{'setting':<12} {'F1 macro':>12} {'prob pooled':>12} {'prob mean':>12} "
        f"{'logit pooled':>12} {'paper FCNN':>12}"
    )
    print(header)
    for setting in args.settings:
        runs = [run_one(setting, seed, args) for seed in args.seeds]

        def cell(key: str, _runs: list[dict[str, float]] = runs) -> str:
            vals = np.array([r[key] for r in _runs])
            return f"{vals.mean():.1f} ± {vals.std():.1f}" if len(vals) > 1 else f"{vals[0]:.1f}"

        print(
            f"{setting:<12} {cell('f1'):>12} {cell('prob_pooled'):>12} {cell('prob_mean'):>12} "
            f"{cell('logit_pooled'):>12} {PAPER_FCNN[setting]:>12}",
            flush=True,
        )
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
