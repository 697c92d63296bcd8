"""Small models shared by several test modules (plain functions, not fixtures)."""

from __future__ import annotations

import torch

from mmexplain import fit_reference
from mmexplain.modality import ModalitySpec
from mmexplain.models.model import ModelConfig, MultimodalModel


def reference_model():
    """A small built-in regression model (image, text, tabular) with a fitted, clearly non-zero
    reference, and ``draw(n)``: n more samples from the same distribution."""
    specs = [ModalitySpec("image", "image"), ModalitySpec("text", "tokens"), ModalitySpec("tabular", "tabular")]
    shapes = {"image": (3, 6, 6), "text": (5,), "tabular": (4,)}
    torch.manual_seed(0)
    model = MultimodalModel(ModelConfig(fusion="concat", dim=8, hidden=8), specs, shapes, 1, {"text": 9}).eval()
    g = torch.Generator().manual_seed(2)

    def draw(n: int) -> dict[str, torch.Tensor]:
        return {
            "image": torch.rand(n, 3, 6, 6, generator=g) + 1.0,
            "text": torch.randint(1, 9, (n, 5), generator=g),
            "tabular": torch.randn(n, 4, generator=g) + 3.0,
        }

    model.reference = fit_reference(model, draw(40))
    return model, draw, g
