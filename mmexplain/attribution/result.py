"""One result type for every attribution method."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from ..exceptions import AttributionError
from ..modality import ModalitySpec


@dataclass
class AttributionResult:
    """Attributions of one method for a batch of N samples.

    Attributes
    ----------
    method : str
        Registry name of the method (``mmexplain.attribution.METHODS``).
    maps : dict of str -> Tensor
        Per modality, one score per input unit: image (N, C, H, W), tokens (N, T) (summed
        over the embedding dimension), tabular (N, F), audio like its input.
    modalities : list of ModalitySpec
    target : LongTensor of shape (N,) or None
        The explained output (None for a scalar output).
    baselines : dict of str -> str
        What "absent" meant for each modality (the reference, in words).
    params : dict
        The method's parameters (``n_steps``, ``patch_size`` …).
    signed : bool
        The maps are signed contributions (their sums mean something); False for magnitude
        maps (Saliency, SmoothGrad). Decides how :meth:`shares` aggregates.
    output, reference_output : Tensor of shape (N,) or None
        f(x) and f(reference) for the target, as the model computes them (float64).
    output_delta : Tensor of shape (N,) or None
        ``output − reference_output``.
    completeness_error : Tensor of shape (N,) or None
        |Σ attributions − (f(x) − f(reference))| where the method promises completeness
        (Integrated Gradients, DeepLift, SHAP Partition); None otherwise.
    flags : list of str
        What a reader must know before trusting the maps (a method whose rules do not hold
        for the model, IG samples that hit the step cap unconverged, ...).
    meta : dict
    """

    method: str
    maps: dict[str, torch.Tensor]
    modalities: list[ModalitySpec]
    target: torch.Tensor | None = None
    baselines: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    signed: bool = True
    output: torch.Tensor | None = None
    reference_output: torch.Tensor | None = None
    output_delta: torch.Tensor | None = None
    completeness_error: torch.Tensor | None = None
    flags: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def modality_names(self) -> list[str]:
        return [m.name for m in self.modalities]

    @property
    def n_samples(self) -> int:
        return len(next(iter(self.maps.values())))

    @property
    def totals(self) -> torch.Tensor:
        """Signed per-sample, per-modality sums (N, M), columns in ``modality_names`` order."""
        return torch.stack([self.maps[m].flatten(1).sum(1).double() for m in self.modality_names], dim=1)

    def shares(self) -> torch.Tensor:
        """Modality shares (N, M), rows summing to 1 (NaN for a sample with no attribution).

        Signed maps: ``|total_m| / Σ_k |total_k|`` (MM-SHAP's rule, as for modality Shapley
        values); magnitude maps (``signed=False``): each modality's Σ|unit score| over the
        sum of them, since their signs carry no contribution.
        """
        t = (self.totals if self.signed else torch.stack(
            [self.maps[m].flatten(1).abs().sum(1).double() for m in self.modality_names], dim=1)).abs()
        s = t.sum(1, keepdim=True)
        return torch.where(s > 0, t / s.clamp_min(1e-300), torch.full_like(t, float("nan")))

    def one(self, k: int) -> AttributionResult:
        """The result of sample ``k`` alone (a batch of one)."""
        def pick(v):
            return None if v is None else v[k:k + 1]

        return AttributionResult(
            method=self.method, maps={m: v[k:k + 1] for m, v in self.maps.items()}, modalities=self.modalities,
            target=pick(self.target), baselines=self.baselines, params=self.params, signed=self.signed,
            output=pick(self.output), reference_output=pick(self.reference_output),
            output_delta=pick(self.output_delta), completeness_error=pick(self.completeness_error),
            flags=self.flags, meta={},
        )

    @property
    def relative_completeness_error(self) -> torch.Tensor | None:
        """completeness_error / |f(x) − f(baseline)| per sample (N,), or None."""
        if self.completeness_error is None or self.output_delta is None:
            return None
        return self.completeness_error / self.output_delta.abs().clamp_min(1e-12)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one row per (sample, modality) with total, share and the method."""
        totals, shares = self.totals, self.shares()
        rows = []
        for i in range(self.n_samples):
            for j, m in enumerate(self.modality_names):
                rows.append({
                    "sample": i, "modality": m, "method": self.method,
                    "target": None if self.target is None else int(self.target[i]),
                    "total": float(totals[i, j]), "share": float(shares[i, j]),
                })
        return pd.DataFrame(rows)

    # -- persistence: JSON for everything small, safetensors for the maps -------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``<path>.json`` and ``<path>.safetensors``; returns the JSON path."""
        path = Path(path)
        tensors = {f"map.{m}": v.detach().cpu().contiguous() for m, v in self.maps.items()}
        for name in ("target", "output", "reference_output", "output_delta", "completeness_error"):
            v = getattr(self, name)
            if v is not None:
                tensors[name] = v.detach().cpu().contiguous()
        save_file(tensors, str(path.with_suffix(".safetensors")))
        info = {
            "schema_version": 2,
            "method": self.method,
            "modalities": [m.to_dict() for m in self.modalities],
            "baselines": self.baselines,
            "params": self.params,
            "signed": self.signed,
            "flags": self.flags,
            "meta": self.meta,
        }
        path.with_suffix(".json").write_text(json.dumps(info, indent=2, default=str))
        return path.with_suffix(".json")

    @classmethod
    def load(cls, path: str | os.PathLike) -> AttributionResult:
        """Read a result written by :meth:`save` (no pickle involved)."""
        path = Path(path)
        try:
            info = json.loads(path.with_suffix(".json").read_text())
            tensors = load_file(str(path.with_suffix(".safetensors")))
        except (OSError, json.JSONDecodeError) as e:
            raise AttributionError(f"cannot load attribution result {path}: {e}") from None
        specs = [ModalitySpec(**m) for m in info["modalities"]]
        return cls(
            method=info["method"],
            maps={m.name: tensors[f"map.{m.name}"] for m in specs},
            modalities=specs,
            target=tensors.get("target"),
            baselines=info.get("baselines", {}),
            params=info.get("params", {}),
            signed=info.get("signed", True),
            output=tensors.get("output"),
            reference_output=tensors.get("reference_output"),
            output_delta=tensors.get("output_delta"),
            flags=info.get("flags", []),
            completeness_error=tensors.get("completeness_error"),
            meta=info.get("meta", {}),
        )
