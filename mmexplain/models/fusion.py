"""Fusion strategies: where and how modalities meet.

Every fusion takes a dict of per-modality features and returns outputs (N, n_outputs).
Each exposes its *fusion points* by name: at each level, one module per modality whose
output is that modality's share of the representation there. The modules are
``nn.Identity`` taps placed exactly where the modalities meet, so a layer attribution on
them splits back into each modality's branch without any slicing by hand.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import Registry

FUSIONS: Registry[type[Fusion]] = Registry("fusion")


def mlp(in_dim: int, hidden: int, out_dim: int, depth: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = in_dim
    for _ in range(depth):
        layers += [nn.Linear(d, hidden), nn.ReLU()]
        d = hidden
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


class Fusion(nn.Module):
    """Base class.

    Parameters
    ----------
    modalities : list of str
    dim : int
        Feature size of every encoder's output.
    n_outputs : int
        Classes (classification) or 1 (regression).
    hidden : int, default=128
    """

    #: True when the fusion consumes sequences (N, L, D) instead of pooled (N, D) features.
    needs_sequences = False
    #: True when the fusion joins low-level features: encoders stay shallow stems.
    shallow_encoders = False
    #: True when the fusion takes fixed per-modality ``weights`` (``ModelConfig.late_weights``).
    takes_weights = False
    #: True when one modality queries the others (``query``: the first id modality, if any).
    takes_query = False
    #: Name of the level whose taps are in ``self.taps``.
    tap_level = "projection"

    def __init__(self, modalities: list[str], dim: int, n_outputs: int, hidden: int = 128) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.dim, self.n_outputs, self.hidden = dim, n_outputs, hidden
        self.taps = nn.ModuleDict({m: nn.Identity() for m in self.modalities})

    def fusion_points(self) -> dict[str, dict[str, nn.Module]]:
        """Levels of this fusion: level name -> {modality: module whose output is its branch}."""
        return {self.tap_level: dict(self.taps.items())}

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


@FUSIONS.register("early", "feature-level: shallow per-modality stems joined before a deep shared trunk")
class EarlyFusion(Fusion):
    tap_level = "joint_input"
    shallow_encoders = True

    def __init__(self, modalities: list[str], dim: int, n_outputs: int, hidden: int = 128) -> None:
        super().__init__(modalities, dim, n_outputs, hidden)
        self.trunk = mlp(dim * len(modalities), hidden, n_outputs, depth=3)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.trunk(torch.cat([self.taps[m](features[m]) for m in self.modalities], dim=1))


class _ProjectedFusion(Fusion):
    """Intermediate fusions: project each modality, combine, then an MLP head."""

    combined_dim: int

    def __init__(self, modalities: list[str], dim: int, n_outputs: int, hidden: int = 128) -> None:
        super().__init__(modalities, dim, n_outputs, hidden)
        self.proj = nn.ModuleDict({m: nn.Sequential(nn.Linear(dim, hidden), self.activation()) for m in modalities})
        self.head = mlp(self.combined_dim_for(len(modalities), hidden), hidden, n_outputs)

    activation = nn.ReLU

    def combined_dim_for(self, m: int, hidden: int) -> int:
        return hidden

    def projected(self, features: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        return [self.taps[m](self.proj[m](features[m])) for m in self.modalities]

    def combine(self, parts: list[torch.Tensor]) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.combine(self.projected(features)))


@FUSIONS.register("concat", "intermediate: project each modality, concatenate, MLP head")
class ConcatFusion(_ProjectedFusion):
    def combined_dim_for(self, m: int, hidden: int) -> int:
        return m * hidden

    def combine(self, parts: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(parts, dim=1)


@FUSIONS.register("sum", "intermediate: project each modality, add, MLP head")
class SumFusion(_ProjectedFusion):
    def combine(self, parts: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(parts).sum(0)


@FUSIONS.register("product", "intermediate: project each modality (tanh), elementwise product, MLP head")
class ProductFusion(_ProjectedFusion):
    activation = nn.Tanh

    def combine(self, parts: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(parts).prod(0)


@FUSIONS.register("gated", "intermediate: sigmoid gates from all modalities weight each projection")
class GatedFusion(_ProjectedFusion):
    activation = nn.Tanh

    def __init__(self, modalities: list[str], dim: int, n_outputs: int, hidden: int = 128) -> None:
        super().__init__(modalities, dim, n_outputs, hidden)
        self.gate = nn.Linear(len(modalities) * hidden, len(modalities) * hidden)

    def combine(self, parts: list[torch.Tensor]) -> torch.Tensor:
        gates = torch.sigmoid(self.gate(torch.cat(parts, dim=1))).chunk(len(parts), dim=1)
        return sum(g * p for g, p in zip(gates, parts))


def _tensor_dim(n_modalities: int, budget: int = 4096) -> int:
    # keep the outer product (d+1)^M within ~budget features
    return max(2, int(math.floor(budget ** (1 / n_modalities))) - 1)


@FUSIONS.register("tensor", "intermediate: outer product of [projection; 1] vectors (Tensor Fusion Network)")
class TensorFusion(Fusion):
    def __init__(self, modalities: list[str], dim: int, n_outputs: int, hidden: int = 128) -> None:
        super().__init__(modalities, dim, n_outputs, hidden)
        self.small = min(32, _tensor_dim(len(modalities)))
        self.proj = nn.ModuleDict({m: nn.Sequential(nn.Linear(dim, self.small), nn.ReLU()) for m in modalities})
        self.head = mlp((self.small + 1) ** len(modalities), hidden, n_outputs)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        out = None
        for m in self.modalities:
            z = self.taps[m](self.proj[m](features[m]))
            z = torch.cat([z, torch.ones_like(z[:, :1])], dim=1)  # the 1 keeps unimodal terms
            out = z if out is None else (out.unsqueeze(-1) * z.unsqueeze(1)).flatten(1)
        return self.head(out)


@FUSIONS.register("lowrank", "intermediate: low-rank multimodal fusion (LMF), rank-4 modality factors")
class LowRankFusion(Fusion):
    def __init__(self, modalities: list[str], dim: int, n_outputs: int, hidden: int = 128, rank: int = 4) -> None:
        super().__init__(modalities, dim, n_outputs, hidden)
        self.rank = rank
        self.factors = nn.ModuleDict({m: nn.Linear(dim + 1, rank * hidden) for m in modalities})
        self.head = mlp(hidden, hidden, n_outputs)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        fused = None
        for m in self.modalities:
            z = self.taps[m](features[m])
            z = torch.cat([z, torch.ones_like(z[:, :1])], dim=1)
            f = self.factors[m](z).view(len(z), self.rank, self.hidden)
            fused = f if fused is None else fused * f
        return self.head(fused.sum(1))


@FUSIONS.register("late", "decision-level: weighted average of per-modality logits (fixed equal weights)")
class LateFusion(Fusion):
    """Per-modality classifiers whose outputs are averaged with weights.

    Parameters
    ----------
    weights : list of float, optional
        Fixed weights, one per modality (default: equal, e.g. 0.5 / 0.5).
    learned : bool, default=False
        Learn the weights (softmax over free parameters) instead.
    """

    tap_level = "decision"
    takes_weights = True

    def __init__(
        self, modalities: list[str], dim: int, n_outputs: int, hidden: int = 128,
        weights: list[float] | None = None, learned: bool = False,
    ) -> None:
        super().__init__(modalities, dim, n_outputs, hidden)
        self.heads = nn.ModuleDict({m: mlp(dim, hidden, n_outputs) for m in modalities})
        w = torch.tensor(weights if weights is not None else [1.0 / len(modalities)] * len(modalities))
        self.learned = learned
        if learned:
            self.logit_weights = nn.Parameter(torch.zeros(len(modalities)))
        else:
            self.register_buffer("fixed_weights", w / w.sum())

    @property
    def weights(self) -> torch.Tensor:
        return torch.softmax(self.logit_weights, 0) if self.learned else self.fixed_weights

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        w = self.weights
        # the tap sees each modality's *weighted* logits: their sum is the output
        return sum(self.taps[m](w[i] * self.heads[m](features[m])) for i, m in enumerate(self.modalities))


@FUSIONS.register("late-learned", "decision-level: per-modality logits averaged with learned weights")
class LearnedLateFusion(LateFusion):
    takes_weights = False  # its weights are learned

    def __init__(self, modalities: list[str], dim: int, n_outputs: int, hidden: int = 128) -> None:
        super().__init__(modalities, dim, n_outputs, hidden, learned=True)


@FUSIONS.register("attention", "cross-modal attention: text tokens attend over image regions (and other modalities)")
class AttentionFusion(Fusion):
    """The query modality's sequence attends over the other modalities' sequences.

    The query is the first ``tokens`` modality when the model has one (text attends over
    image regions, as in VQA), else the first modality.
    """

    needs_sequences = True
    takes_query = True

    def __init__(
        self, modalities: list[str], dim: int, n_outputs: int, hidden: int = 128,
        query: str | None = None, heads: int = 4,
    ) -> None:
        super().__init__(modalities, dim, n_outputs, hidden)
        self.query = query or modalities[0]
        self.context = [m for m in modalities if m != self.query]
        self.type_embedding = nn.ParameterDict({m: nn.Parameter(torch.zeros(dim)) for m in modalities})
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.head = mlp(3 * dim, hidden, n_outputs)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        q = self.taps[self.query](features[self.query]) + self.type_embedding[self.query]
        ctx = torch.cat(
            [self.taps[m](features[m]) + self.type_embedding[m] for m in self.context], dim=1
        )
        attended, _ = self.attn(q, ctx, ctx, need_weights=False)
        return self.head(torch.cat([attended.mean(1), q.mean(1), ctx.mean(1)], dim=1))
