"""Datasets: easy-VQA, planted synthetic data and users' manifests, behind one loader."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError
from .base import MultimodalDataset, Splits, split_train_val
from .easy_vqa import load_easy_vqa
from .manifest import MANIFEST_SUFFIXES, load_manifest, manifest_files
from .options import (
    OPTION_NAMES,
    SIDECAR_SUFFIX,
    ManifestColumns,
    ManifestOptions,
    manifest_options,
    read_sidecar,
    sidecar_path,
)
from .synthetic import MODES as SYNTHETIC_MODES
from .synthetic import load_synthetic, make_synthetic
from .text import MiniLMTokenizer, WordTokenizer, tokenizer_from_config

__all__ = [
    "check_dataset_options",
    "ManifestColumns",
    "ManifestOptions",
    "MiniLMTokenizer",
    "MultimodalDataset",
    "SIDECAR_SUFFIX",
    "SYNTHETIC_MODES",
    "Splits",
    "WordTokenizer",
    "load_dataset",
    "load_easy_vqa",
    "load_manifest",
    "manifest_files",
    "load_synthetic",
    "make_synthetic",
    "manifest_options",
    "read_sidecar",
    "sidecar_path",
    "split_train_val",
    "tokenizer_from_config",
]


def load_dataset(
    spec: str,
    *,
    seed: int = 0,
    limit: int | None = None,
    text_encoder: str = "word",
    tokenizer: Any = None,
    **options: Any,
) -> tuple[Splits, Any]:
    """Load train / val / test splits from a dataset spec string.

    Parameters
    ----------
    spec : str
        ``"easy-vqa"``; ``"synthetic:<mode>"`` or ``"synthetic:<mode>:regression"`` with a
        mode from :data:`SYNTHETIC_MODES`; or the path of a ``.csv`` / ``.parquet`` manifest.
    seed : int, default=0
        Seeds the split (and the synthetic generator).
    limit : int, optional
        easy-VQA and manifests: at most this many train and test samples; synthetic: the
        number of generated samples.
    text_encoder : {"word", "minilm"}
        Tokenizer for text modalities, matching the model's text encoder.
    tokenizer : optional
        Reuse a saved tokenizer (checkpoints do).
    **options
        Manifests: exactly ``columns``, ``missing``, ``image_size``, ``max_tokens``,
        ``labels``, ``allow_outside_paths``, ``task`` (see :func:`manifest_options`; a
        ``None`` value means not given). easy-VQA: ``val_fraction``. Synthetic:
        ``modalities``, ``weights``, ``n``, ``val_fraction``, ``test_fraction``.

    Returns
    -------
    splits : Splits
    tokenizer : the text tokenizer, or None

    Raises
    ------
    ConfigError
        An unknown spec, or an option the dataset does not take (named, with the allowed ones).
    """
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"dataset={spec!r}; expected 'easy-vqa', 'synthetic:<mode>' or a manifest path.")
    if spec == "easy-vqa":
        options = _builtin_options(spec, load_easy_vqa, options)
        return load_easy_vqa(text_encoder=text_encoder, tokenizer=tokenizer, seed=seed, limit=limit, **options)
    if spec.startswith("synthetic:"):
        parts = spec.split(":")
        mode = parts[1] if len(parts) > 1 else ""
        task = parts[2] if len(parts) > 2 else "classification"
        if mode not in SYNTHETIC_MODES or len(parts) > 3 or task not in ("classification", "regression"):
            raise ConfigError(
                f"dataset={spec!r}; use synthetic:<mode>[:regression] with mode one of {list(SYNTHETIC_MODES)}."
            )
        options = _builtin_options(spec, load_synthetic, options)
        if limit is not None:
            options.setdefault("n", limit)
        return load_synthetic(mode, task=task, seed=seed, **options), None
    path = Path(spec)
    if path.suffix.lower() in MANIFEST_SUFFIXES or path.exists():
        given = manifest_options(**options).given()  # exactly the manifest options, checked before any I/O
        splits, tok = load_manifest(path, text_encoder=text_encoder, tokenizer=tokenizer, seed=seed, **given)
        if limit is not None:
            splits = Splits(splits.train.subset(range(min(limit, len(splits.train)))), splits.val,
                            splits.test.subset(range(min(limit, len(splits.test)))))
        return splits, tok
    raise ConfigError(
        f"dataset={spec!r} is not 'easy-vqa', 'synthetic:<mode>' ({', '.join(SYNTHETIC_MODES)}) "
        "or an existing .csv / .parquet manifest."
    )


def check_dataset_options(spec: str, options: dict[str, Any]) -> None:
    """Check ``options`` for dataset ``spec`` without reading any data (a report checks every
    run before starting one): manifest options for a manifest path, the loader's own keys for
    a built-in dataset. Raises :class:`~mmexplain.exceptions.ConfigError` naming the option."""
    if not isinstance(options, dict):
        raise ConfigError(f"dataset_options must be a mapping of option names to values; got {options!r}.")
    if spec == "easy-vqa":
        _builtin_options(spec, load_easy_vqa, dict(options))
    elif isinstance(spec, str) and spec.startswith("synthetic:"):
        _builtin_options(spec, load_synthetic, dict(options))
    else:
        manifest_options(**options)


def _builtin_options(spec: str, loader: Callable[..., Any], options: dict[str, Any]) -> dict[str, Any]:
    """``options`` if ``loader`` takes them all; manifest options are refused by name."""
    options = {k: v for k, v in options.items() if not (k in OPTION_NAMES and v is None)}
    taken = [p for p in inspect.signature(loader).parameters
             if p not in ("mode", "task", "seed", "limit", "text_encoder", "tokenizer")]
    for key in options:
        if key in OPTION_NAMES:
            raise ConfigError(f"{key}= applies to manifests only; dataset={spec!r} takes {taken or 'no options'}.")
        if key not in taken:
            raise ConfigError(f"unknown option {key!r} for dataset={spec!r}; allowed: {taken}.")
    return options
