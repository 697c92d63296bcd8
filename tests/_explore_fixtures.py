"""One tiny easy-VQA run shared by the explorer's test files (trained once per session)."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def tiny_vqa_run():
    """easy-VQA, 200 samples, concat fusion, word tokenizer (GRU), one epoch."""
    import torch

    from mmexplain.training import train_run

    torch.manual_seed(0)
    return train_run("easy-vqa", "concat", epochs=1, limit=200, progress=False)
