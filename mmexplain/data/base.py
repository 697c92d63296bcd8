"""One dataset abstraction for every source: modality tensors, a target, labels and evidence."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..exceptions import DataError
from ..kinds import KINDS
from ..modality import MODALITY_KINDS, ModalitySpec

TASKS = ("classification", "regression")


@dataclass
class MultimodalDataset:
    """N samples, each a dict of modality tensors plus a target.

    Storage is deduplicated: each modality keeps a ``store`` of distinct rows and a
    per-sample ``rows`` index into it (easy-VQA has 38,575 questions over 4,000 images and
    107 distinct questions), so memory grows with distinct inputs, not with samples.

    Parameters
    ----------
    name : str
        Human-readable dataset name, recorded in reports and checkpoints.
    modalities : list of ModalitySpec
        The inputs, in the order models see them.
    stores : dict of str -> Tensor of shape (R_m, ...)
        Distinct rows per modality. Images may be uint8 (scaled to [0, 1] floats on access).
    rows : dict of str -> LongTensor of shape (N,)
        For each sample, the row of each modality's store.
    targets : Tensor of shape (N,)
        Class indices (long) for classification, floats for regression.
    task : {"classification", "regression"}
    label_names : list of str, optional
        Class names, index-aligned with the targets (classification only).
    evidence : dict of str -> BoolTensor, optional
        Ground-truth evidence per modality, indexed like ``stores`` (one mask per store
        row): images (R, H, W), tokens (R, T), tabular (R, F), audio (R, L).
    meta : dict
        Free-form provenance: texts, image ids, missing-value handling, planted truth.
    """

    name: str
    modalities: list[ModalitySpec]
    stores: dict[str, torch.Tensor]
    rows: dict[str, torch.Tensor]
    targets: torch.Tensor
    task: str = "classification"
    label_names: list[str] | None = None
    evidence: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise DataError(f"dataset {self.name!r}: task={self.task!r}; choose one of {list(TASKS)}.")
        names = [m.name for m in self.modalities]
        for key in (*self.stores, *self.rows):
            if key not in names:
                raise DataError(f"dataset {self.name!r}: unknown modality {key!r}; declared: {names}.")
        n = len(self.targets)
        for m in names:
            if m not in self.stores or m not in self.rows:
                raise DataError(f"dataset {self.name!r}: modality {m!r} has no data.")
            if len(self.rows[m]) != n:
                raise DataError(
                    f"dataset {self.name!r}: modality {m!r} has {len(self.rows[m])} samples "
                    f"but there are {n} targets; lengths must match."
                )
        if self.task == "classification" and self.label_names is not None and n:
            top = int(self.targets.max())
            if top >= len(self.label_names) or int(self.targets.min()) < 0:
                raise DataError(
                    f"dataset {self.name!r}: target index {top} outside label_names ({len(self.label_names)})."
                )

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def from_tensors(
        cls,
        inputs: Mapping[str, Any],
        targets: Any,
        *,
        kinds: Mapping[str, str],
        name: str = "tensors",
        task: str = "classification",
        label_names: Sequence[str] | None = None,
        evidence: Mapping[str, Any] | None = None,
        pad_ids: Mapping[str, int] | None = None,
    ) -> MultimodalDataset:
        """Build a dataset from in-memory arrays, one row per sample.

        Parameters
        ----------
        inputs : dict of str -> array-like of shape (N, ...)
        targets : array-like of shape (N,)
        kinds : dict of str -> str
            The kind of each modality (see :data:`mmexplain.MODALITY_KINDS`).
        evidence : dict of str -> array-like of bool, optional
            Ground-truth masks, one per sample.

        Raises
        ------
        DataError
            Unknown modality kind, modality without a kind, or mismatched lengths.
        """
        pad_ids = dict(pad_ids or {})
        specs = []
        for m in inputs:
            if m not in kinds:
                raise DataError(f"modality {m!r} has no kind; pass kinds={{{m!r}: one of {list(MODALITY_KINDS)}}}.")
            if kinds[m] not in MODALITY_KINDS:
                raise DataError(f"unknown modality kind {kinds[m]!r} for {m!r}; choose one of {list(MODALITY_KINDS)}.")
            specs.append(ModalitySpec(m, kinds[m], pad_id=pad_ids.get(m, 0)))
        for m in kinds:
            if m not in inputs:
                raise DataError(f"kinds names modality {m!r} but inputs has no such key; inputs: {list(inputs)}.")
        targets_t = torch.as_tensor(np.asarray(targets))
        lengths = {m: len(v) for m, v in inputs.items()} | {"targets": len(targets_t)}
        if len(set(lengths.values())) > 1:
            raise DataError(f"mismatched lengths: {lengths}; every modality and the targets need N rows.")
        stores = {}
        for m, v in inputs.items():
            t = torch.as_tensor(np.asarray(v))
            stores[m] = t.long() if KINDS.get(kinds[m]).integer_ids else (t if t.dtype == torch.uint8 else t.float())
        n = len(targets_t)
        rows = {m: torch.arange(n) for m in inputs}
        targets_t = targets_t.long() if task == "classification" else targets_t.float()
        ev = {m: torch.as_tensor(np.asarray(v)).bool() for m, v in (evidence or {}).items()}
        return cls(name, specs, stores, rows, targets_t, task, list(label_names) if label_names else None, ev)

    # -- access -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.targets)

    @property
    def modality_names(self) -> list[str]:
        return [m.name for m in self.modalities]

    def spec(self, modality: str) -> ModalitySpec:
        for m in self.modalities:
            if m.name == modality:
                return m
        raise DataError(f"dataset {self.name!r} has no modality {modality!r}; it has {self.modality_names}.")

    @property
    def n_outputs(self) -> int:
        """Number of model outputs: classes for classification, 1 for regression."""
        return len(self.label_names) if self.task == "classification" and self.label_names else (
            int(self.targets.max()) + 1 if self.task == "classification" else 1
        )

    def _decode(self, modality: str, t: torch.Tensor) -> torch.Tensor:
        # uint8 images are stored compactly and scaled to [0, 1] floats on access
        return t.float() / 255.0 if t.dtype == torch.uint8 else t

    def inputs(self, indices: Any = None) -> dict[str, torch.Tensor]:
        """Model inputs for ``indices`` (all samples if None): dict of (n, ...) tensors."""
        idx = self._index(indices)
        return {m: self._decode(m, self.stores[m][self.rows[m][idx]]) for m in self.modality_names}

    def target(self, indices: Any = None) -> torch.Tensor:
        return self.targets[self._index(indices)]

    def evidence_for(self, modality: str, indices: Any = None) -> torch.Tensor | None:
        """Ground-truth evidence mask of ``modality`` for ``indices``, or None if unknown."""
        if modality not in self.evidence:
            return None
        return self.evidence[modality][self.rows[modality][self._index(indices)]]

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        x = self.inputs([i])
        return {m: v[0] for m, v in x.items()}, self.targets[i]

    def _index(self, indices: Any) -> torch.Tensor:
        if indices is None:
            return torch.arange(len(self))
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if len(idx) and (int(idx.max()) >= len(self) or int(idx.min()) < -len(self)):
            raise DataError(f"dataset {self.name!r}: index {int(idx.max())} out of range for {len(self)} samples.")
        return idx

    def subset(self, indices: Any, *, name: str | None = None) -> MultimodalDataset:
        """A view-like copy holding only ``indices`` (stores are shared, not copied)."""
        idx = self._index(indices)
        return MultimodalDataset(
            name or self.name,
            list(self.modalities),
            self.stores,
            {m: r[idx] for m, r in self.rows.items()},
            self.targets[idx],
            self.task,
            self.label_names,
            self.evidence,
            {**self.meta, "indices": idx.tolist() if len(idx) <= 50_000 else None},
        )

    def fingerprint(self) -> str:
        """SHA-256 (first 16 hex) over stores, rows and targets: identical data, identical id.

        A dataset read from files (a manifest) also hashes its sources' bytes
        (``meta["source_sha256"]``), so editing the manifest, its sidecar or any image changes
        the id even where the decoded tensors would not (a renamed label, an ignored column).
        """
        h = hashlib.sha256()
        if self.meta.get("source_sha256"):
            h.update(str(self.meta["source_sha256"]).encode())
        for m in self.modality_names:
            h.update(m.encode())
            h.update(self.stores[m].contiguous().numpy().tobytes())
            h.update(self.rows[m].contiguous().numpy().tobytes())
        h.update(self.targets.contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """A JSON-safe summary: sizes, shapes, label counts and, for manifests, the source,
        sidecar, effective options, imputed / dropped rows and truncated texts (rows from 1)."""
        x = self.inputs([0]) if len(self) else {}
        out: dict[str, Any] = {
            "name": self.name,
            "n_samples": len(self),
            "task": self.task,
            "modalities": [
                {**m.to_dict(), "shape": list(x[m.name].shape[1:]) if x else None} for m in self.modalities
            ],
            "label_names": self.label_names,
            "fingerprint": self.fingerprint(),
        }
        if self.task == "classification" and len(self):
            counts = torch.bincount(self.targets, minlength=self.n_outputs).tolist()
            out["label_counts"] = dict(zip(self.label_names or range(len(counts)), counts))
        for key in ("source", "sidecar", "options", "missing", "truncated"):  # provenance of users' data
            if key in self.meta:
                out[key] = self.meta[key]
        return out


@dataclass
class Splits:
    """Train / validation / test splits of one dataset."""

    train: MultimodalDataset
    val: MultimodalDataset
    test: MultimodalDataset

    def __getitem__(self, split: str) -> MultimodalDataset:
        if split not in ("train", "val", "test"):
            raise DataError(f"split={split!r}; choose one of ['train', 'val', 'test'].")
        return getattr(self, split)


def split_train_val(
    data: MultimodalDataset, *, val_fraction: float, seed: int
) -> tuple[MultimodalDataset, MultimodalDataset]:
    """Carve a validation split from ``data`` by a seeded permutation."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(data), generator=g)
    n_val = max(1, int(round(len(data) * val_fraction)))
    return data.subset(perm[n_val:].sort().values), data.subset(perm[:n_val].sort().values)
