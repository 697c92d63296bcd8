"""Where a cross-modal attention fusion looks: attention weights and their gradient-weighted flow.

For a fusion that attends (``model.fusion.attends``), each query position (a text token)
spreads attention over the context positions (image regions, other modalities). Raw
attention weights say where a token looks; they do not say whether looking there mattered.
The gradient-weighted flow (Chefer et al., CVPR 2021, "Transformer interpretability beyond
attention visualization", eq. 13 for one layer) keeps both: ``mean_heads(relu(A ⊙ ∂y/∂A))``,
the attention that increased the explained output ``y``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..exceptions import ConfigError
from ..validation import batch_size, check_inputs, check_target
from .methods import _target_output, resolve_specs


@dataclass
class AttentionFlow:
    """Attention of one cross-modal attention layer on N samples.

    Attributes
    ----------
    query : str
        The modality whose positions attend (rows).
    segments : dict of str -> slice
        Which context positions (columns) belong to which context modality.
    weights : Tensor (N, L_query, L_context)
        Attention probabilities averaged over heads (rows sum to 1).
    flow : Tensor (N, L_query, L_context)
        Gradient-weighted attention: ``mean_heads(relu(A ⊙ ∂y/∂A))``, ≥ 0.
    query_valid : Tensor (N, L_query), bool
        The real query positions (not padding); padded rows are zero in ``weights`` and ``flow``.
    grids : dict of str -> (int, int)
        Context modalities whose positions form a 2-D grid of regions (image encoders):
        the grid's (rows, columns).
    """

    query: str
    segments: dict[str, slice]
    weights: torch.Tensor
    flow: torch.Tensor
    query_valid: torch.Tensor
    grids: dict[str, tuple[int, int]]

    def over(self, modality: str, *, which: str = "flow", tokens: torch.Tensor | None = None) -> torch.Tensor:
        """Attention (or flow) to one context modality, summed over the chosen query tokens.

        Parameters
        ----------
        modality : str
            A context modality.
        which : {"flow", "weights"}
        tokens : Tensor (N, L_query) bool, optional
            Which query positions to sum over; default every real position.

        Returns
        -------
        Tensor (N, L_modality), or (N, rows, cols) for a modality with a region grid.
        """
        if modality not in self.segments:
            raise ConfigError(f"modality={modality!r} is not a context of the attention; "
                              f"its context modalities are {list(self.segments)}.")
        if which not in ("flow", "weights"):
            raise ConfigError(f"which={which!r}; choose 'flow' or 'weights'.")
        values = getattr(self, which)[:, :, self.segments[modality]]
        keep = self.query_valid if tokens is None else tokens.bool() & self.query_valid
        summed = (values * keep.unsqueeze(-1)).sum(1)
        grid = self.grids.get(modality)
        return summed.view(len(summed), *grid) if grid else summed

    def region_map(self, modality: str, size: tuple[int, int], *, which: str = "flow",
                   tokens: torch.Tensor | None = None) -> torch.Tensor:
        """The attention to an image-like modality's regions spread over its pixels, (N, H, W).

        Each region's value fills the pixels it covers (nearest neighbour), divided by the
        region's pixel count, so a map's total stays the attention's total.
        """
        grid = self.grids.get(modality)
        if grid is None:
            raise ConfigError(f"modality={modality!r} has no region grid; region maps exist for {list(self.grids)}.")
        regions = self.over(modality, which=which, tokens=tokens)
        pixels = F.interpolate(regions.unsqueeze(1).float(), size=size, mode="nearest").squeeze(1)
        per_region = (size[0] * size[1]) / (grid[0] * grid[1])
        return pixels / per_region


def attention_flow(
    model: nn.Module,
    inputs: Mapping[str, torch.Tensor],
    *,
    target: Any = None,
) -> AttentionFlow:
    """Attention weights and gradient-weighted attention flow of an attention fusion.

    Parameters
    ----------
    model : MultimodalModel
        A built-in model whose fusion attends (``model.fusion.attends``, e.g. ``attention``).
    inputs : dict of str -> Tensor of shape (N, ...)
    target : int, tensor of shape (N,), or None
        The explained output (class index); None for a single-output model.

    Returns
    -------
    AttentionFlow
    """
    fusion = getattr(model, "fusion", None)
    if not getattr(fusion, "attends", False):
        raise ConfigError("attention_flow needs a model whose fusion attends across modalities "
                          "(see `mmexplain fusions`, e.g. 'attention').")
    specs = {s.name: s for s in resolve_specs(model, None)}
    inputs = check_inputs(inputs, modalities=list(specs))
    tgt = check_target(target, batch_size(inputs))
    with torch.no_grad():
        features = model.encode(inputs)
    with torch.enable_grad():
        probs, out = fusion.attention(features)
        y = _target_output(out, None if tgt is None else tgt.to(out.device))
        (grad,) = torch.autograd.grad(y.sum(), probs)
    probs, grad = probs.detach(), grad.detach()
    query = fusion.query
    q_in = inputs[query]
    # real query positions: ids other than the modality's pad id; other query kinds are all real
    spec = specs[query]
    valid = (q_in != spec.pad_id) if spec.kind_info.integer_ids else torch.ones(probs.shape[0], probs.shape[2],
                                                                                 dtype=torch.bool)
    valid = valid.to(probs.device)
    keep = valid.unsqueeze(-1).float()
    weights = probs.mean(1) * keep
    flow = (probs * grad).clamp(min=0).mean(1) * keep
    segments = fusion.context_segments(features)
    grids = {m: tuple(model.encoders[m].grid) for m in segments if hasattr(model.encoders[m], "grid")}
    return AttentionFlow(query, segments, weights.cpu(), flow.cpu(), valid.cpu(), grids)
