"""Users' own data from a CSV or Parquet manifest: one row per sample.

Column mapping (:class:`ManifestColumns`, all optional but the target):

==========  ==============================================================
``image``   path of an image file, relative to the manifest's folder
``text``    free text, tokenized like easy-VQA questions
``tabular`` list of numeric columns, one feature each
``target``  label (classification) or number (regression); default "label"
``split``   "train" / "val" / "test" per row; default "split", used when present;
            without it, a seeded split
==========  ==============================================================

Rows are counted from 1, header excluded, in every error message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, ValidationError

from ..exceptions import ConfigError, DataError
from ..modality import ModalitySpec
from .base import MultimodalDataset, Splits
from .text import MiniLMTokenizer, WordTokenizer

MISSING_POLICIES = ("error", "impute-mean", "drop")


class ManifestColumns(BaseModel):
    """Which manifest column feeds which modality."""

    model_config = ConfigDict(extra="forbid")
    image: str | None = "image"
    text: str | None = "text"
    tabular: list[str] = []
    target: str = "label"
    split: str | None = "split"


def _read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"manifest {path}: file not found.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, keep_default_na=True)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as e:
        raise DataError(f"manifest {path}: cannot be read as {suffix[1:]}: {e}") from e
    raise DataError(f"manifest {path}: unsupported extension {suffix!r}; use .csv or .parquet.")


def load_manifest(
    path: str | os.PathLike,
    *,
    columns: ManifestColumns | dict[str, Any] | None = None,
    task: str = "classification",
    label_names: list[str] | None = None,
    image_size: tuple[int, int] = (64, 64),
    missing: str = "error",
    text_encoder: str = "word",
    tokenizer: WordTokenizer | MiniLMTokenizer | None = None,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
) -> tuple[Splits, WordTokenizer | MiniLMTokenizer | None]:
    """Read a manifest into train / val / test splits.

    Parameters
    ----------
    path : path-like
        A ``.csv`` or ``.parquet`` file.
    columns : ManifestColumns or dict, optional
        Column mapping; columns mapped to ``None`` / ``[]`` are not used. A mapped image or
        text column that the file lacks is an error; unmapped defaults are skipped.
    task : {"classification", "regression"}
    label_names : list of str, optional
        Allowed labels in index order; any other label is an error. Default: sorted
        distinct labels of the file.
    image_size : (height, width), default=(64, 64)
        Every image must have this size (no silent resizing).
    missing : {"error", "impute-mean", "drop"}, default="error"
        What to do with NaN tabular values, empty texts and empty image paths.
        ``impute-mean`` fills tabular NaN with the column mean, an empty text with no
        tokens and an empty image path with the mean image; ``drop`` removes those rows.
        What was imputed or dropped is counted in ``dataset.meta["missing"]``.
        Non-numeric tabular values, unreadable or missing image files and unknown labels
        are always errors.

    Returns
    -------
    splits : Splits
    tokenizer : the text tokenizer, or None without a text column

    Raises
    ------
    DataError
        Naming the file, the row (from 1) and the column.
    """
    path = Path(path)
    if missing not in MISSING_POLICIES:
        raise ConfigError(f"missing={missing!r}; choose one of {list(MISSING_POLICIES)}.")
    if task not in ("classification", "regression"):
        raise ConfigError(f"task={task!r}; choose 'classification' or 'regression'.")
    try:
        cols = columns if isinstance(columns, ManifestColumns) else ManifestColumns(**(columns or {}))
    except ValidationError as e:
        raise ConfigError(f"manifest column mapping is invalid: {e}") from None
    df = _read_table(path)
    where = f"manifest {path}"
    explicit = set((columns or {}) if isinstance(columns, dict) else cols.model_fields_set)
    for field in ("image", "text", "split"):
        name = getattr(cols, field)
        if name is not None and name not in df.columns:
            if field in explicit:
                raise DataError(f"{where}: column {name!r} (mapped to {field}) not found; columns: {list(df.columns)}.")
            setattr(cols, field, None)
    for name in [*cols.tabular, cols.target, *([cols.split] if cols.split else [])]:
        if name not in df.columns:
            raise DataError(f"{where}: column {name!r} not found; columns: {list(df.columns)}.")
    if cols.image is None and cols.text is None and not cols.tabular:
        raise DataError(f"{where}: no modality columns mapped; map at least one of image, text, tabular.")

    n = len(df)
    if n == 0:
        raise DataError(f"{where}: no rows.")
    drop = np.zeros(n, dtype=bool)
    record: dict[str, Any] = {"policy": missing, "imputed": {}, "dropped_rows": []}

    def is_missing(value: Any) -> bool:
        return value is None or (isinstance(value, float) and np.isnan(value)) or (
            isinstance(value, str) and not value.strip()
        )

    def handle_missing(row: int, col: str, what: str) -> None:
        if missing == "error":
            raise DataError(
                f"{where}, row {row + 1}, column {col!r}: {what}; pass missing='impute-mean' or 'drop' to allow it."
            )
        if missing == "drop":
            drop[row] = True
        else:
            record["imputed"][col] = record["imputed"].get(col, 0) + 1

    # tabular: numeric or error, NaN per policy
    tab = None
    if cols.tabular:
        tab = np.zeros((n, len(cols.tabular)), dtype=np.float32)
        for j, col in enumerate(cols.tabular):
            for i, v in enumerate(df[col].tolist()):
                if is_missing(v):
                    handle_missing(i, col, "missing value (NaN)")
                    tab[i, j] = np.nan
                    continue
                try:
                    tab[i, j] = float(v)
                except (TypeError, ValueError):
                    raise DataError(f"{where}, row {i + 1}, column {col!r}: value {v!r} is not numeric.") from None
                if not np.isfinite(tab[i, j]):
                    raise DataError(f"{where}, row {i + 1}, column {col!r}: value {v!r} is not finite.")

    texts = None
    if cols.text is not None:
        texts = []
        for i, v in enumerate(df[cols.text].tolist()):
            if is_missing(v):
                handle_missing(i, cols.text, "empty text")
                v = ""
            texts.append(str(v))

    images = None
    if cols.image is not None:
        h, w = image_size
        images = np.zeros((n, 3, h, w), dtype=np.uint8)
        absent = np.zeros(n, dtype=bool)
        for i, v in enumerate(df[cols.image].tolist()):
            if is_missing(v):
                handle_missing(i, cols.image, "empty image path")
                absent[i] = True
                continue
            file = (path.parent / str(v)).resolve()
            if not file.exists():
                raise DataError(f"{where}, row {i + 1}, column {cols.image!r}: image file {str(v)!r} not found ({file}).")
            try:
                with Image.open(file) as im:
                    arr = np.asarray(im.convert("RGB"))
            except (UnidentifiedImageError, OSError) as e:
                raise DataError(f"{where}, row {i + 1}, column {cols.image!r}: cannot read image {str(v)!r}: {e}") from None
            if arr.shape[:2] != (h, w):
                raise DataError(
                    f"{where}, row {i + 1}, column {cols.image!r}: image {str(v)!r} is "
                    f"{arr.shape[0]}x{arr.shape[1]} (HxW), expected {h}x{w}; resize it or pass image_size."
                )
            images[i] = arr.transpose(2, 0, 1)
        if absent.any() and missing == "impute-mean":
            images[absent] = images[~absent & ~drop].mean(0).round().astype(np.uint8)

    raw_target = df[cols.target].tolist()
    if task == "classification":
        for i, v in enumerate(raw_target):
            if is_missing(v):
                raise DataError(f"{where}, row {i + 1}, column {cols.target!r}: missing label.")
        labels = [str(v) for v in raw_target]
        names = list(label_names) if label_names is not None else sorted(set(labels))
        index = {name: k for k, name in enumerate(names)}
        for i, lab in enumerate(labels):
            if lab not in index:
                raise DataError(f"{where}, row {i + 1}, column {cols.target!r}: unknown label {lab!r}; known labels: {names}.")
        y = torch.tensor([index[lab] for lab in labels], dtype=torch.long)
    else:
        names = None
        try:
            y = torch.tensor([float(v) for v in raw_target], dtype=torch.float32)
        except (TypeError, ValueError):
            bad = next(i for i, v in enumerate(raw_target) if not _is_float(v))
            raise DataError(f"{where}, row {bad + 1}, column {cols.target!r}: value {raw_target[bad]!r} is not numeric.") from None
        if torch.isnan(y).any():
            bad = int(torch.nonzero(torch.isnan(y))[0])
            raise DataError(f"{where}, row {bad + 1}, column {cols.target!r}: missing target (NaN).")

    keep = np.nonzero(~drop)[0]
    record["dropped_rows"] = [int(i) + 1 for i in np.nonzero(drop)[0]]
    if len(keep) == 0:
        raise DataError(f"{where}: every row was dropped by missing='drop'.")
    if tab is not None and missing == "impute-mean":
        means = np.nanmean(tab[keep], axis=0)
        nan_r, nan_c = np.nonzero(np.isnan(tab))
        tab[nan_r, nan_c] = means[nan_c]

    specs, stores, evidence, meta = [], {}, {}, {"missing": record, "source": str(path)}
    if images is not None:
        specs.append(ModalitySpec("image", "image"))
        stores["image"] = torch.from_numpy(images[keep])
    if texts is not None:
        kept_texts = [texts[i] for i in keep]
        if tokenizer is None:
            tokenizer = WordTokenizer.fit([t for t in kept_texts if t]) if text_encoder == "word" else MiniLMTokenizer()
        enc = tokenizer.encode(kept_texts)
        specs.append(ModalitySpec("text", "tokens", pad_id=tokenizer.pad_id))
        stores["text"] = enc.ids
        meta["texts"] = {"text": kept_texts}
        meta["valid_tokens"] = {"text": enc.valid}
        meta["token_words"] = {"text": enc.words}
    if tab is not None:
        specs.append(ModalitySpec("tabular", "tabular"))
        stores["tabular"] = torch.from_numpy(tab[keep])
        meta["feature_names"] = {"tabular": list(cols.tabular)}
    k = len(keep)
    data = MultimodalDataset(
        name=f"manifest:{path.name}",
        modalities=specs,
        stores=stores,
        rows={m: torch.arange(k) for m in stores},
        targets=y[torch.from_numpy(keep)],
        task=task,
        label_names=names,
        evidence=evidence,
        meta=meta,
    )
    return _split(data, df[cols.split].tolist() if cols.split else None, keep, where, cols.split, seed,
                  val_fraction, test_fraction), tokenizer


def _is_float(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def _split(
    data: MultimodalDataset,
    split_values: list[Any] | None,
    keep: np.ndarray,
    where: str,
    split_col: str | None,
    seed: int,
    val_fraction: float,
    test_fraction: float,
) -> Splits:
    if split_values is not None:
        values = [str(split_values[i]) for i in keep]
        for i, v in zip(keep, values):
            if v not in ("train", "val", "test"):
                raise DataError(f"{where}, row {i + 1}, column {split_col!r}: split {v!r}; use train, val or test.")
        idx = {s: [j for j, v in enumerate(values) if v == s] for s in ("train", "val", "test")}
    else:
        perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed)).tolist()
        n_test = max(1, int(len(data) * test_fraction)) if len(data) >= 3 else 0
        n_val = max(1, int(len(data) * val_fraction)) if len(data) >= 3 else 0
        idx = {"test": perm[:n_test], "val": perm[n_test : n_test + n_val], "train": perm[n_test + n_val :]}
    for s, ids in idx.items():
        if not ids:
            raise DataError(f"{where}: the {s} split is empty; add rows or a split column.")
    return Splits(*(data.subset(sorted(idx[s]), name=f"{data.name}/{s}") for s in ("train", "val", "test")))
