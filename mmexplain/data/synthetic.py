"""Planted-ground-truth data: we know which modality, and which part of it, decides the label.

Each modality carries a latent sign ``s_m`` in {-1, +1}, planted at a random location:

- ``image``: a 4x4 patch of value ``+1`` or ``-1`` on a 1x16x16 noise image,
- ``text``: one signal token (id 2 for +1, id 3 for -1) among random distractor ids,
- ``tabular``: feature 0 equals ``1.5 * s`` plus noise; the other features are noise,
- ``audio``: a 32-sample sine burst, low frequency for +1 and high for -1, in noise.

Each modality's baseline (black image, pad tokens, feature mean, silence) removes the
signal, so "absent" means "no evidence". The ``mode`` fixes how the target depends on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..exceptions import ConfigError
from ..modality import ModalitySpec
from .base import MultimodalDataset, Splits, split_train_val

MODES = ("image_only", "text_only", "additive", "interaction", "redundant")
ALL_MODALITIES = ("image", "text", "tabular", "audio")
KIND = {"image": "image", "text": "tokens", "tabular": "tabular", "audio": "audio"}
IMAGE_SIZE, PATCH, SEQ_LEN, VOCAB, N_FEATURES, AUDIO_LEN, BURST = 16, 4, 10, 20, 6, 128, 32
SIGNAL_TOKENS = {1: 2, -1: 3}  # ids 0 (pad) and 1 are reserved; distractors are 4..VOCAB-1


def _plant(modality: str, s: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (data, evidence mask) of one modality carrying signs ``s`` (N,)."""
    n = len(s)
    if modality == "image":
        x = 0.3 * torch.randn(n, 1, IMAGE_SIZE, IMAGE_SIZE, generator=g)
        ev = torch.zeros(n, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.bool)
        pos = torch.randint(0, IMAGE_SIZE - PATCH + 1, (n, 2), generator=g)
        for i in range(n):
            r, c = pos[i].tolist()
            x[i, 0, r : r + PATCH, c : c + PATCH] = float(s[i])
            ev[i, r : r + PATCH, c : c + PATCH] = True
        return x, ev
    if modality == "text":
        x = torch.randint(4, VOCAB, (n, SEQ_LEN), generator=g)
        pos = torch.randint(0, SEQ_LEN, (n,), generator=g)
        x[torch.arange(n), pos] = torch.where(s > 0, SIGNAL_TOKENS[1], SIGNAL_TOKENS[-1])
        ev = torch.zeros(n, SEQ_LEN, dtype=torch.bool)
        ev[torch.arange(n), pos] = True
        return x, ev
    if modality == "tabular":
        x = torch.randn(n, N_FEATURES, generator=g)
        x[:, 0] = 1.5 * s + 0.3 * torch.randn(n, generator=g)
        ev = torch.zeros(n, N_FEATURES, dtype=torch.bool)
        ev[:, 0] = True
        return x, ev
    if modality == "audio":
        x = 0.3 * torch.randn(n, 1, AUDIO_LEN, generator=g)
        ev = torch.zeros(n, AUDIO_LEN, dtype=torch.bool)
        start = torch.randint(0, AUDIO_LEN - BURST + 1, (n,), generator=g)
        t = torch.arange(BURST, dtype=torch.float32)
        for i in range(n):
            freq = 1 / 16 if s[i] > 0 else 1 / 4
            a = int(start[i])
            x[i, 0, a : a + BURST] += torch.sin(2 * math.pi * freq * t)
            ev[i, a : a + BURST] = True
        return x, ev
    raise ConfigError(f"unknown synthetic modality {modality!r}; choose from {list(ALL_MODALITIES)}.")


def make_synthetic(
    mode: str = "interaction",
    *,
    n: int = 3000,
    modalities: Sequence[str] = ("image", "text", "tabular"),
    weights: Sequence[float] | None = None,
    task: str = "classification",
    seed: int = 0,
) -> MultimodalDataset:
    """Generate one planted dataset.

    Parameters
    ----------
    mode : {"image_only", "text_only", "additive", "interaction", "redundant"}
        ``image_only`` / ``text_only``: the label is that modality's sign.
        ``additive``: score ``sum_m w_m s_m``; classification labels its sign (ties go to
        a fair coin), regression returns the score itself.
        ``interaction``: XOR of the first two modalities' signs — no single modality
        predicts the label. ``redundant``: every modality carries the same sign.
    n : int, default=3000
    modalities : sequence of str, default=("image", "text", "tabular")
        2 to 4 of ``image``, ``text``, ``tabular``, ``audio``.
    weights : sequence of float, optional
        ``additive`` only, one per modality; default ``(0.5, 0.3, 0.2, ...)`` normalised.
    task : {"classification", "regression"}, default="classification"
    seed : int, default=0

    Returns
    -------
    MultimodalDataset
        With ``evidence`` (where each modality's signal lies) and ``meta["planted"]``:
        the true reliance per modality (``shares``), whether the label needs an
        interaction, and the mode.
    """
    if mode not in MODES:
        raise ConfigError(f"synthetic mode={mode!r}; choose one of {list(MODES)}.")
    modalities = list(modalities)
    if not 2 <= len(modalities) <= 4 or len(set(modalities)) != len(modalities):
        raise ConfigError(f"modalities={modalities} must be 2 to 4 distinct names from {list(ALL_MODALITIES)}.")
    for m in modalities:
        if m not in ALL_MODALITIES:
            raise ConfigError(f"unknown synthetic modality {m!r}; choose from {list(ALL_MODALITIES)}.")
    if task not in ("classification", "regression"):
        raise ConfigError(f"task={task!r}; choose 'classification' or 'regression'.")
    needs = {"image_only": "image", "text_only": "text"}
    if mode in needs and needs[mode] not in modalities:
        raise ConfigError(f"mode={mode!r} needs the {needs[mode]!r} modality; got {modalities}.")

    g = torch.Generator().manual_seed(seed)
    M = len(modalities)
    if mode == "redundant":
        shared = torch.randint(0, 2, (n,), generator=g) * 2 - 1
        signs = {m: shared for m in modalities}
    else:
        signs = {m: torch.randint(0, 2, (n,), generator=g) * 2 - 1 for m in modalities}

    w = None
    if mode == "additive":
        w = torch.tensor(list(weights) if weights is not None else [0.5, 0.3, 0.2, 0.1][:M], dtype=torch.float32)
        if len(w) != M or (w < 0).any() or w.sum() <= 0:
            raise ConfigError(f"weights={list(map(float, w))} must be {M} non-negative numbers, not all zero.")
        w = w / w.sum()
        score = sum(w[i] * signs[m].float() for i, m in enumerate(modalities))
        if task == "regression":
            y = score
        else:
            coin = torch.randint(0, 2, (n,), generator=g).float() * 2 - 1
            y = (torch.where(score == 0, coin, score) > 0).long()
        shares = {m: float(w[i]) for i, m in enumerate(modalities)}
    elif mode == "interaction":
        a, b = modalities[0], modalities[1]
        y = (signs[a] != signs[b]).long()
        shares = {m: (0.5 if m in (a, b) else 0.0) for m in modalities}
        if task == "regression":
            y = (signs[a] * signs[b]).float()
    else:
        key = {"image_only": "image", "text_only": "text"}.get(mode, modalities[0])
        y = (signs[key] > 0).long()
        shares = (
            {m: 1.0 / M for m in modalities} if mode == "redundant" else {m: float(m == key) for m in modalities}
        )
        if task == "regression":
            y = signs[key].float()

    stores, evidence = {}, {}
    for m in modalities:
        stores[m], evidence[m] = _plant(m, signs[m], g)
    specs = [ModalitySpec(m, KIND[m], pad_id=0) for m in modalities]
    return MultimodalDataset(
        name=f"synthetic:{mode}",
        modalities=specs,
        stores=stores,
        rows={m: torch.arange(n) for m in modalities},
        targets=y if task == "regression" else y.long(),
        task=task,
        label_names=["negative", "positive"] if task == "classification" else None,
        evidence=evidence,
        meta={
            "planted": {
                "mode": mode,
                "shares": shares,
                "interaction": mode == "interaction",
                "weights": None if w is None else [float(v) for v in w],
            },
            "valid_tokens": {"text": stores["text"] != 0} if "text" in modalities else {},
        },
    )


def load_synthetic(
    mode: str,
    *,
    n: int = 3000,
    modalities: Sequence[str] = ("image", "text", "tabular"),
    task: str = "classification",
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    weights: Sequence[float] | None = None,
) -> Splits:
    """Train / val / test splits of :func:`make_synthetic` (the test set is drawn independently)."""
    n_test = max(1, int(n * test_fraction))
    train_all = make_synthetic(mode, n=n, modalities=modalities, weights=weights, task=task, seed=seed)
    test = make_synthetic(mode, n=n_test, modalities=modalities, weights=weights, task=task, seed=seed + 10_000)
    train, val = split_train_val(train_all, val_fraction=val_fraction, seed=seed)
    return Splits(train, val, test)
