"""easy-VQA: 64x64 images of one coloured shape, questions about them, 13 answers.

The data ship in the pip package ``easy-vqa`` (4,000 train / 1,000 test images,
38,575 / 9,673 questions). Ground truth comes for free: the shape's pixels are exactly the
non-background pixels (the background is one flat colour, read off the corner), and the
evidence words of a question are its colour and shape words.
"""

from __future__ import annotations

import re

import numpy as np
import torch
from PIL import Image

from ..modality import ModalitySpec
from .base import MultimodalDataset, Splits
from .text import MiniLMTokenizer, WordTokenizer

COLORS = ("red", "green", "blue", "black", "gray", "teal", "brown", "yellow")
SHAPES = ("circle", "rectangle", "triangle")
#: Words that decide an easy-VQA answer: colour and shape names, and "color" / "shape"
#: in the questions that ask for one ("what color is the shape?").
EVIDENCE_WORDS = frozenset(COLORS + SHAPES + ("color",))


def _read_images(paths: dict[int, str]) -> tuple[torch.Tensor, torch.Tensor, dict[int, int]]:
    ids = sorted(paths)
    images = np.stack([np.asarray(Image.open(paths[i]).convert("RGB")) for i in ids])  # (R,H,W,3)
    background = images[:, :1, :1, :]  # every easy-VQA background is one flat colour
    mask = (images != background).any(-1)
    store = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()  # uint8 (R,3,H,W)
    return store, torch.from_numpy(mask), {img: r for r, img in enumerate(ids)}


def question_evidence(words: list[list[str | None]]) -> torch.Tensor:
    """Evidence mask (N, T): tokens whose word is a colour or shape word.

    A question with no colour or shape name ("what shape is in the image?") marks the
    word "shape" instead, since that is what it asks about.
    """
    out = torch.zeros(len(words), len(words[0]) if words else 0, dtype=torch.bool)
    for i, row in enumerate(words):
        hits = [t for t, w in enumerate(row) if w is not None and re.sub(r"\W", "", w) in EVIDENCE_WORDS]
        if not hits:
            hits = [t for t, w in enumerate(row) if w == "shape"]
        out[i, hits] = True
    return out


def load_easy_vqa(
    *,
    text_encoder: str = "word",
    tokenizer: WordTokenizer | MiniLMTokenizer | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    limit: int | None = None,
) -> tuple[Splits, WordTokenizer | MiniLMTokenizer]:
    """Load easy-VQA as image + question -> answer splits.

    Parameters
    ----------
    text_encoder : {"word", "minilm"}, default="word"
        Which tokenizer produces the ``question`` token ids: a word-level vocabulary fit on
        the training questions (for the GRU/LSTM encoder) or MiniLM's WordPiece.
    tokenizer : optional
        Reuse a tokenizer (e.g. the one saved with a checkpoint) instead of fitting one.
    val_fraction : float, default=0.1
        Share of training *images* (with all their questions) held out for validation, so
        no image is in both.
    seed : int, default=0
        Seed of the validation split and of ``limit``'s subsample.
    limit : int, optional
        Keep at most ``limit`` training and ``limit`` test questions (seeded), for quick runs.

    Returns
    -------
    splits : Splits
        Modalities ``image`` (N, 3, 64, 64) floats in [0, 1] and ``question`` (N, T) token ids;
        targets are indices into the 13 ``label_names``; evidence masks for both modalities.
    tokenizer : WordTokenizer or MiniLMTokenizer
    """
    import easy_vqa

    answers = list(easy_vqa.get_answers())
    tq, ta, tid = easy_vqa.get_train_questions()
    sq, sa, sid = easy_vqa.get_test_questions()
    if tokenizer is None:
        tokenizer = WordTokenizer.fit(tq) if text_encoder == "word" else MiniLMTokenizer()

    def build(split: str, qs: list[str], ans: list[str], img_ids: list[int]) -> MultimodalDataset:
        paths = easy_vqa.get_train_image_paths() if split == "train" else easy_vqa.get_test_image_paths()
        images, masks, row_of = _read_images(paths)
        distinct = sorted(set(qs))
        enc = tokenizer.encode(distinct)
        q_row = {q: r for r, q in enumerate(distinct)}
        label_of = {a: i for i, a in enumerate(answers)}
        return MultimodalDataset(
            name=f"easy-vqa/{split}",
            modalities=[
                ModalitySpec("image", "image"),
                ModalitySpec("question", "tokens", pad_id=tokenizer.pad_id),
            ],
            stores={"image": images, "question": enc.ids},
            rows={
                "image": torch.tensor([row_of[i] for i in img_ids]),
                "question": torch.tensor([q_row[q] for q in qs]),
            },
            targets=torch.tensor([label_of[a] for a in ans]),
            label_names=answers,
            evidence={"image": masks, "question": question_evidence(enc.words)},
            meta={
                "texts": {"question": distinct},
                "valid_tokens": {"question": enc.valid},
                "token_words": {"question": enc.words},
                "image_ids": img_ids,
            },
        )

    train_all = build("train", tq, ta, tid)
    test = build("test", sq, sa, sid)
    g = torch.Generator().manual_seed(seed)
    image_ids = torch.tensor(tid)
    distinct_images = torch.unique(image_ids)
    held = distinct_images[torch.randperm(len(distinct_images), generator=g)[: int(len(distinct_images) * val_fraction)]]
    is_val = torch.isin(image_ids, held)
    train, val = train_all.subset(torch.nonzero(~is_val).flatten(), name="easy-vqa/train"), train_all.subset(
        torch.nonzero(is_val).flatten(), name="easy-vqa/val"
    )
    if limit is not None:
        train = train.subset(torch.randperm(len(train), generator=g)[:limit].sort().values)
        val = val.subset(torch.randperm(len(val), generator=g)[: max(1, limit // 4)].sort().values)
        test = test.subset(torch.randperm(len(test), generator=g)[:limit].sort().values)
    return Splits(train, val, test), tokenizer
