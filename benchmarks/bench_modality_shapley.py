"""Benchmark: exact modality Shapley values, Captum vs mmexplain vs the forward-pass floor.

For M = 2, 3, 4 modalities (one image-like modality, the rest vectors) this builds one
fusion model and, on the same N samples, times

* ``captum_s``: Captum's ``ShapleyValues`` with a feature mask that makes each modality one
  feature (it walks all M! orderings: M·M! + 1 forward passes of N rows);
* ``ours_s``: :func:`mmexplain.attribution.shapley.modality_shapley` (defaults: one pass;
  for built-in models (``--model builtin``) the factorised path: encoders once, the fusion
  over the coalitions -- ``full_s`` then times ``factorised=False`` beside it);
* ``floor_s``: one no-grad forward pass over the prebuilt batch of all N·2^M coalition
  inputs -- the least any exact method that runs every coalition in one pass must spend
  (ours runs 1 + N(2^M - 1) rows: the shared all-zero input once, so it can beat it);
* ``chunked_s``: ``modality_shapley(..., max_batch_size=--chunk)``. On a CPU a huge batch
  can cost more per row than cache-sized chunks (or less, with several threads), so this
  column shows what chunking buys on the machine at hand.

On a CPU shared with other processes use ``--threads 1``: with more OpenMP threads than
free cores, every op's barrier waits on a descheduled thread and small batches (Captum's)
slow down ~10x, which flatters the batched methods.

Times are the best of ``--repeats`` runs after one warm-up, the three methods taking
turns in every repeat (robust to load from other processes on a shared machine). ``max_abs_diff`` compares
Captum's and our values.

Usage::

    python benchmarks/bench_modality_shapley.py --device cpu --n 64 --repeats 3
"""

from __future__ import annotations

import argparse
import math

import torch
from _timing import timed_interleaved  # sibling module: benchmarks run as scripts
from torch import nn

from mmexplain.attribution.shapley import modality_shapley

IMAGE_SHAPE = (3, 32, 32)
VECTOR_DIM = 64
N_CLASSES = 10


class ImageEncoder(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.out_dim = 2 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FusionModel(nn.Module):
    """Intermediate fusion: CNN for the image, MLPs for vectors, MLP head with a product term."""

    def __init__(self, m: int, size: str) -> None:
        super().__init__()
        width, hidden = (32, 256) if size == "moderate" else (4, 16)
        self.names = ["image"] + [f"vec{i}" for i in range(1, m)]
        self.image = ImageEncoder(width)
        self.vectors = nn.ModuleDict(
            {
                name: nn.Sequential(nn.Linear(VECTOR_DIM, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
                for name in self.names[1:]
            }
        )
        d = self.image.out_dim + hidden * (m - 1)
        self.head = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, N_CLASSES))
        self.gate = nn.Linear(d, N_CLASSES)

    def forward(self, **xs: torch.Tensor) -> torch.Tensor:
        feats = [self.image(xs["image"])] + [self.vectors[k](xs[k]) for k in self.names[1:]]
        h = torch.cat(feats, dim=1)
        return self.head(h) * torch.sigmoid(self.gate(h))


BUILTIN_MODALITIES = ["image", "tabular", "audio", "text"]


def make_builtin(m: int, n: int, device: torch.device) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """A built-in mmexplain concat-fusion model (CNN, MLP, 1-D CNN, GRU encoders) and N
    planted-data test samples with the first M of image, tabular, audio, text."""
    from mmexplain.data import load_dataset
    from mmexplain.models import ModelConfig, build_model

    splits, tok = load_dataset("synthetic:additive", limit=max(8 * n, 512), seed=0, modalities=BUILTIN_MODALITIES[:m])
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_name("concat"), splits.train, tok)
    return model.to(device).eval(), {k: v.to(device) for k, v in splits.test.inputs(range(n)).items()}


def make_inputs(m: int, n: int, device: torch.device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    inputs = {"image": torch.randn(n, *IMAGE_SHAPE, generator=g)}
    for i in range(1, m):
        inputs[f"vec{i}"] = torch.randn(n, VECTOR_DIM, generator=g)
    return {k: v.to(device) for k, v in inputs.items()}


def coalition_batch(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """All N·2^M coalition inputs (zeros for absent modalities), coalition-major."""
    names = list(inputs)
    n_coal = 1 << len(names)
    out = {}
    for bit, name in enumerate(names):
        x = inputs[name]
        present = torch.tensor([(c >> bit) & 1 for c in range(n_coal)], dtype=torch.bool, device=x.device)
        present = present.view(n_coal, *([1] * x.dim()))
        out[name] = torch.where(present, x.unsqueeze(0), torch.zeros_like(x).unsqueeze(0)).flatten(0, 1)
    return out


def run(args: argparse.Namespace) -> list[dict[str, float]]:
    from captum.attr import ShapleyValues

    device = torch.device(args.device)
    torch.manual_seed(0)
    rows = []
    for m in args.modalities:
        if args.model == "builtin":
            model, inputs = make_builtin(m, args.n, device)
        else:
            model = FusionModel(m, args.model).to(device).eval()
            inputs = make_inputs(m, args.n, device)
        names = list(inputs)
        with torch.no_grad():
            n_classes = model(**inputs).shape[1]
        target = torch.arange(args.n, device=device) % n_classes

        def forward(*xs: torch.Tensor, _names: list[str] = names, _model: nn.Module = model) -> torch.Tensor:
            return _model(**dict(zip(_names, xs)))

        masks = tuple(
            torch.full((1, *inputs[k].shape[1:]), i, dtype=torch.long, device=device) for i, k in enumerate(names)
        )
        captum = ShapleyValues(forward)

        def run_captum(
            _c: ShapleyValues = captum, _i: dict = inputs, _m: tuple = masks, _t: torch.Tensor = target
        ) -> torch.Tensor:
            attr = _c.attribute(tuple(_i.values()), target=_t, feature_mask=_m, perturbations_per_eval=args.captum_ppe)
            return torch.stack([a.reshape(a.shape[0], -1)[:, 0] for a in attr], 1)

        def run_ours(_model: nn.Module = model, _i: dict = inputs, _t: torch.Tensor = target) -> torch.Tensor:
            return modality_shapley(_model, _i, target=_t).values

        def run_chunked(_model: nn.Module = model, _i: dict = inputs, _t: torch.Tensor = target) -> torch.Tensor:
            return modality_shapley(_model, _i, target=_t, max_batch_size=args.chunk).values

        batch = coalition_batch(inputs)

        def run_floor(_model: nn.Module = model, _b: dict = batch) -> torch.Tensor:
            with torch.no_grad():
                return _model(**_b)

        def run_full(_model: nn.Module = model, _i: dict = inputs, _t: torch.Tensor = target) -> torch.Tensor:
            return modality_shapley(_model, _i, target=_t, factorised=False).values

        fns = {"captum": run_captum, "ours": run_ours, "floor": run_floor}
        if args.chunk:
            fns["chunked"] = run_chunked
        if getattr(model, "modality_factorised", False):
            fns["full"] = run_full
        best, results = timed_interleaved(fns, args.repeats, device)
        captum_s, ours_s, floor_s = best["captum"], best["ours"], best["floor"]
        diff = (results["captum"].double().cpu() - results["ours"]).abs().max().item()
        rows.append(
            {
                "M": m,
                "captum_s": captum_s,
                "ours_s": ours_s,
                "floor_s": floor_s,
                "speedup": captum_s / ours_s,
                "ours/floor": ours_s / floor_s,
                "max_abs_diff": diff,
                "chunked_s": best.get("chunked", float("nan")),
                "full_s": best.get("full", float("nan")),
                # Rows through the model: Captum M*M!+1 passes of N; ours 1 + N(2^M - 1).
                "captum_rows": (m * math.factorial(m) + 1) * args.n,
                "ours_rows": 1 + args.n * ((1 << m) - 1),
                "floor_rows": args.n * (1 << m),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--n", type=int, default=64, help="samples explained (default 64)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method; the best is reported")
    parser.add_argument("--modalities", type=int, nargs="+", default=[2, 3, 4], help="values of M (default 2 3 4)")
    parser.add_argument(
        "--model",
        choices=["moderate", "small", "builtin"],
        default="moderate",
        help="moderate: forward time dominates; small: per-call overhead dominates; "
        "builtin: an mmexplain concat model (factorised Shapley)",
    )
    parser.add_argument("--captum-ppe", type=int, default=1, help="Captum perturbations_per_eval (default 1)")
    parser.add_argument(
        "--chunk",
        type=int,
        default=64,
        help="also time modality_shapley(max_batch_size=CHUNK) (column chunked_s); 0 to skip",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but torch.cuda.is_available() is False")
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = run(args)
    print(
        f"device={args.device} model={args.model} N={args.n} repeats={args.repeats} "
        f"captum_ppe={args.captum_ppe} threads={torch.get_num_threads()} torch={torch.__version__}"
    )
    header = f"{'M':>2} {'captum_s':>10} {'ours_s':>10} {'floor_s':>10} {'speedup':>8} {'ours/floor':>10} {'max|diff|':>10} {'chunked_s':>10} {'full_s':>8}  rows captum/ours/floor"
    print(header)
    for r in rows:
        print(
            f"{r['M']:>2} {r['captum_s']:>10.4f} {r['ours_s']:>10.4f} {r['floor_s']:>10.4f} "
            f"{r['speedup']:>7.1f}x {r['ours/floor']:>10.2f} {r['max_abs_diff']:>10.2e} {r['chunked_s']:>10.4f} {r['full_s']:>8.4f}  "
            f"{r['captum_rows']}/{r['ours_rows']}/{r['floor_rows']}"
        )


if __name__ == "__main__":
    main()
