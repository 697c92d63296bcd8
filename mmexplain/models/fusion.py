"""Fusion strategies: where and how modalities meet.

Every fusion takes a dict of per-modality features and returns outputs (N, n_outputs), and
declares its own *levels* (:class:`FusionLevel`): the places between the encoders and the
decision where modality contributions can be measured, each either one module per modality
(branches, before the modalities meet) or one module whose output mixes them (joint). The
modules are ``nn.Identity`` taps or the fusion's own layers, placed so that everything
downstream of a level depends on that level's output only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from ..registry import Registry

FUSIONS: Registry[type[Fusion]] = Registry("fusion")

#: The stages of a model, in the order data flows through them (input is the zeroth).
STAGES = ("encoder output", "where the modalities are combined", "fused representation", "decision")


@dataclass(frozen=True)
class FusionLevel:
    """A place inside a model where each modality's contribution is measured.

    Parameters
    ----------
    name : str
        Short name used in tables (``"encoder"``, ``"projection"``, ``"fused"``, ``"decision"``).
    stage : str
        One of :data:`STAGES`.
    about : str
        One sentence for a reader: what the representation at this level is.
    branches : dict of str -> nn.Module, optional
        One module per modality, each depending on that modality only: the level's
        representation is their outputs together, so no cross-modal term exists here.
    joint : nn.Module, optional
        One module whose output is the whole representation at this level; it may mix the
        modalities, so its change splits into per-modality and cross-modal parts.
        With neither ``branches`` nor ``joint`` the level is the model's output itself.
    output_is_sum : bool, default=False
        The model's output is the plain sum of the branches' outputs (late fusion): nothing
        downstream mixes the modalities, so cross-modal terms are zero by construction.
    extras : callable, optional
        ``extras(features, pick) -> {column: {modality: Tensor (N,)}}``: further
        per-modality numbers this level can report (e.g. gated fusion's gates), computed
        from the encoders' features; ``pick(outputs) -> (N,)`` selects the explained output.
    """

    name: str
    stage: str
    about: str
    branches: Mapping[str, nn.Module] | None = None
    joint: nn.Module | None = None
    output_is_sum: bool = False
    extras: Callable[..., dict[str, dict[str, torch.Tensor]]] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"FusionLevel {self.name!r}: stage={self.stage!r}; choose one of {list(STAGES)}.")
        if self.branches is not None and self.joint is not None:
            raise ValueError(f"FusionLevel {self.name!r}: give branches or joint, not both.")
        if self.output_is_sum and self.branches is None:
            raise ValueError(f"FusionLevel {self.name!r}: output_is_sum needs branches.")

    @property
    def kind(self) -> str:
        """``"branches"``, ``"joint"`` or ``"output"``."""
        return "branches" if self.branches is not None else "joint" if self.joint is not None else "output"

    @property
    def has_cross_terms(self) -> bool:
        """Whether cross-modal terms can be non-zero here (a joint level or the output)."""
        return self.branches is None


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
    #: True when the fusion's own levels end with the decision (the model adds none).
    decides = False
    #: True when the fusion exposes cross-modal attention (:meth:`attention`).
    attends = False

    def __init__(self, modalities: list[str], dim: int, n_outputs: int, hidden: int = 128) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.dim, self.n_outputs, self.hidden = dim, n_outputs, hidden
        # per-modality taps where the branches meet, and one where the joint representation is
        # formed: parameter-free, so checkpoints are unaffected
        self.taps = nn.ModuleDict({m: nn.Identity() for m in self.modalities})
        self.combined = nn.Identity()

    def levels(self) -> list[FusionLevel]:
        """This fusion's levels between the encoders and the output, in data-flow order.

        A level whose numbers would provably equal another's (the same tensor, or a linear map
        of one branch) is not declared.
        """
        return []

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


@FUSIONS.register("early", "feature-level: shallow per-modality stems joined before a deep shared trunk")
class EarlyFusion(Fusion):
    shallow_encoders = True

    def __init__(self, modalities: list[str], dim: int, n_outputs: int, hidden: int = 128) -> None:
        super().__init__(modalities, dim, n_outputs, hidden)
        self.trunk = mlp(dim * len(modalities), hidden, n_outputs, depth=3)

    def levels(self) -> list[FusionLevel]:
        # the stems' outputs are joined as they are (the encoder level): the trunk's first
        # hidden layer is where the modalities first mix
        return [FusionLevel("fused", "fused representation",
                            "the deep trunk's first hidden layer, where the concatenated low-level features first mix",
                            joint=self.trunk[1])]

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.trunk(torch.cat([features[m] for m in self.modalities], dim=1))


class _ProjectedFusion(Fusion):
    """Intermediate fusions: project each modality, combine, then an MLP head."""

    combined_dim: int

    def __init__(self, modalities: list[str], dim: int, n_outputs: int, hidden: int = 128) -> None:
        super().__init__(modalities, dim, n_outputs, hidden)
        self.proj = nn.ModuleDict({m: nn.Sequential(nn.Linear(dim, hidden), self.activation()) for m in modalities})
        self.head = mlp(self.combined_dim_for(len(modalities), hidden), hidden, n_outputs)

    activation = nn.ReLU
    #: True when ``combine`` is a sum of per-modality pieces (concatenation, addition): the
    #: modalities then first mix in the head's hidden layer, which is the fused level.
    additive_combine = False
    combine_about = ""

    @property
    def decides(self) -> bool:  # type: ignore[override]
        return self.additive_combine

    def combined_dim_for(self, m: int, hidden: int) -> int:
        return hidden

    def projected(self, features: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        return [self.taps[m](self.proj[m](features[m])) for m in self.modalities]

    def combine(self, parts: list[torch.Tensor]) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def levels(self) -> list[FusionLevel]:
        projection = FusionLevel("projection", "where the modalities are combined",
                                 f"each modality's projection, just before they are {self.combine_about}",
                                 branches=dict(self.taps.items()))
        if self.additive_combine:
            # the output is a linear read-out of this layer, so the decision would repeat its numbers
            fused = FusionLevel("fused", "fused representation",
                                f"the head's hidden layer: the {self.combine_about} projections pass one linear "
                                "layer and a ReLU, where the modalities first mix; the output is a linear read-out "
                                "of it, so this is also the decision's split", joint=self.head[1])
        else:
            fused = FusionLevel("fused", "fused representation",
                                f"the projections {self.combine_about}: the representation the head reads",
                                joint=self.combined, extras=self.level_extras)
        return [projection, fused]

    level_extras = None

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.combined(self.combine(self.projected(features))))


@FUSIONS.register("concat", "intermediate: project each modality, concatenate, MLP head")
class ConcatFusion(_ProjectedFusion):
    additive_combine = True
    combine_about = "concatenated"

    def combined_dim_for(self, m: int, hidden: int) -> int:
        return m * hidden

    def combine(self, parts: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(parts, dim=1)


@FUSIONS.register("sum", "intermediate: project each modality, add, MLP head")
class SumFusion(_ProjectedFusion):
    additive_combine = True
    combine_about = "added"

    def combine(self, parts: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(parts).sum(0)


@FUSIONS.register("product", "intermediate: project each modality (tanh), elementwise product, MLP head")
class ProductFusion(_ProjectedFusion):
    activation = nn.Tanh
    combine_about = "multiplied element by element"

    def combine(self, parts: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(parts).prod(0)


@FUSIONS.register("gated", "intermediate: sigmoid gates from all modalities weight each projection")
class GatedFusion(_ProjectedFusion):
    activation = nn.Tanh
    combine_about = "weighted by gates computed from all modalities and added"

    def __init__(self, modalities: list[str], dim: int, n_outputs: int, hidden: int = 128) -> None:
        super().__init__(modalities, dim, n_outputs, hidden)
        self.gate = nn.Linear(len(modalities) * hidden, len(modalities) * hidden)

    def gates(self, parts: list[torch.Tensor]) -> list[torch.Tensor]:
        """Each modality's gate values (N, hidden), in (0, 1), from all projections."""
        return list(torch.sigmoid(self.gate(torch.cat(parts, dim=1))).chunk(len(parts), dim=1))

    def combine(self, parts: list[torch.Tensor], closed: str | None = None) -> torch.Tensor:
        gates = self.gates(parts)
        return sum(g * p for m, g, p in zip(self.modalities, gates, parts) if m != closed)

    @torch.no_grad()
    def level_extras(self, features: dict[str, torch.Tensor], pick: Callable[[torch.Tensor], torch.Tensor]) -> dict:
        """``gate``: a modality's mean gate value; ``closed_gate_change``: how the explained
        output (``pick(outputs) -> (N,)``) changes when that modality's gate is closed (set to
        0) and everything else is kept."""
        parts = self.projected(features)
        full = pick(self.head(self.combine(parts)))
        gate = {m: g.mean(1) for m, g in zip(self.modalities, self.gates(parts))}
        closed = {m: pick(self.head(self.combine(parts, closed=m))) - full for m in self.modalities}
        return {"gate": gate, "closed_gate_change": closed}


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

    def levels(self) -> list[FusionLevel]:
        return [
            FusionLevel("projection", "where the modalities are combined",
                        "each modality's small projection, before the outer product", branches=dict(self.taps.items())),
            FusionLevel("fused", "fused representation",
                        "the outer product of the [projection; 1] vectors: relative to the reference it splits "
                        "exactly into unimodal, bimodal (and higher) blocks, the rows of this level",
                        joint=self.combined),
        ]

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        out = None
        for m in self.modalities:
            z = self.taps[m](self.proj[m](features[m]))
            z = torch.cat([z, torch.ones_like(z[:, :1])], dim=1)  # the 1 keeps unimodal terms
            out = z if out is None else (out.unsqueeze(-1) * z.unsqueeze(1)).flatten(1)
        return self.head(self.combined(out))


@FUSIONS.register("lowrank", "intermediate: low-rank multimodal fusion (LMF), rank-4 modality factors")
class LowRankFusion(Fusion):
    def __init__(self, modalities: list[str], dim: int, n_outputs: int, hidden: int = 128, rank: int = 4) -> None:
        super().__init__(modalities, dim, n_outputs, hidden)
        self.rank = rank
        self.factors = nn.ModuleDict({m: nn.Linear(dim + 1, rank * hidden) for m in modalities})
        self.head = mlp(hidden, hidden, n_outputs)

    def levels(self) -> list[FusionLevel]:
        # each modality's factors are a linear map of its encoder output (same numbers as the
        # encoder level), so the first new level is their product
        return [FusionLevel("fused", "fused representation",
                            f"the sum over {self.rank} ranks of the product of the modalities' factors: the same "
                            "split into unimodal and cross-modal parts as tensor fusion, through the factors",
                            joint=self.combined)]

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        fused = None
        for m in self.modalities:
            z = features[m]
            z = torch.cat([z, torch.ones_like(z[:, :1])], dim=1)
            f = self.factors[m](z).view(len(z), self.rank, self.hidden)
            fused = f if fused is None else fused * f
        return self.head(self.combined(fused.sum(1)))


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

    takes_weights = True
    decides = True

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

    def levels(self) -> list[FusionLevel]:
        return [FusionLevel("decision", "decision",
                            "each modality's weighted logits; the output is their sum, so the modalities never "
                            "mix and the cross-modal share is 0 by construction",
                            branches=dict(self.taps.items()), output_is_sum=True)]

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
    attends = True

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

    def levels(self) -> list[FusionLevel]:
        return [FusionLevel("fused", "fused representation",
                            f"what the head reads: the {self.query} sequence's attention over "
                            f"{', '.join(self.context)} (cross-modal), beside each side's mean",
                            joint=self.combined)]

    def context_segments(self, features: dict[str, torch.Tensor]) -> dict[str, slice]:
        """Which key positions of the attention belong to which context modality."""
        out, start = {}, 0
        for m in self.context:
            out[m] = slice(start, start + features[m].shape[1])
            start += features[m].shape[1]
        return out

    def _query_context(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        q = features[self.query] + self.type_embedding[self.query]
        ctx = torch.cat([features[m] + self.type_embedding[m] for m in self.context], dim=1)
        return q, ctx

    def attention(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The attention probabilities and the output they give.

        Returns
        -------
        probs : Tensor (N, heads, L_query, L_context)
            Softmax weights of each head (rows sum to 1), part of the autograd graph, so the
            gradient of the output with respect to them can be taken.
        output : Tensor (N, n_outputs)
            The model's output computed through ``probs`` (equal to ``forward``).
        """
        q, ctx = self._query_context(features)
        a = self.attn
        n, lq, d = q.shape
        h, hd = a.num_heads, d // a.num_heads
        w, b = a.in_proj_weight, a.in_proj_bias
        qp = nn.functional.linear(q, w[:d], b[:d]).view(n, lq, h, hd).transpose(1, 2)
        kp = nn.functional.linear(ctx, w[d:2 * d], b[d:2 * d]).view(n, -1, h, hd).transpose(1, 2)
        vp = nn.functional.linear(ctx, w[2 * d:], b[2 * d:]).view(n, -1, h, hd).transpose(1, 2)
        probs = torch.softmax(qp @ kp.transpose(-1, -2) / math.sqrt(hd), dim=-1)
        attended = a.out_proj((probs @ vp).transpose(1, 2).reshape(n, lq, d))
        return probs, self.head(torch.cat([attended.mean(1), q.mean(1), ctx.mean(1)], dim=1))

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        q, ctx = self._query_context({m: self.taps[m](features[m]) for m in self.modalities})
        attended, _ = self.attn(q, ctx, ctx, need_weights=False)
        return self.head(self.combined(torch.cat([attended.mean(1), q.mean(1), ctx.mean(1)], dim=1)))

