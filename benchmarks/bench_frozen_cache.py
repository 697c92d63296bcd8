"""Benchmark: what caching a frozen MiniLM saves in training on easy-VQA.

Training with a frozen text transformer looks its token states up in a cache computed once
per distinct question (easy-VQA's 34,696 training questions are 107 distinct ones); without
the cache every batch would run the transformer over its distinct questions. This times the
text features of one training epoch (``--batches`` batches of 64, in the trainer's order)
both ways, checks that they are equal bit for bit, and extrapolates to a full epoch.

Usage::

    nice -n 19 python benchmarks/bench_frozen_cache.py --threads 1 [--batches 100]
"""

from __future__ import annotations

import argparse
import math
import os
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=100, help="batches of 64 to time (default: 100)")
    parser.add_argument("--fusion", default="attention")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)

    from mmexplain.data import load_easy_vqa
    from mmexplain.models import ModelConfig, build_model
    from mmexplain.training.trainer import _epoch_order, _FeatureCache

    splits, tok = load_easy_vqa(text_encoder="minilm")
    train = splits.train
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_name(args.fusion, text_encoder="minilm"), train, tok).train()
    enc, seq, cpu = model.encoders["question"], model.fusion.needs_sequences, torch.device("cpu")
    order = _epoch_order(train, torch.Generator().manual_seed(0))
    batches = [order[b : b + 64] for b in range(0, 64 * args.batches, 64)]
    per_epoch = math.ceil(len(train) / 64)

    def text_features(cache: _FeatureCache) -> list[torch.Tensor]:
        # the text half of _FeatureCache.features, without the image encoder
        out = []
        for idx in batches:
            rows = train.rows["question"][idx]
            if "question" in cache.hidden:
                out.append(enc.head(cache.hidden["question"][cache.slot["question"][rows]], train.stores["question"][rows],
                                    sequence=seq))
            else:
                distinct, inverse = torch.unique(rows, return_inverse=True)
                out.append(enc(train.stores["question"][distinct], sequence=seq)[inverse])
        return out

    with torch.no_grad():
        start = time.perf_counter()
        cached_cache = _FeatureCache(model, train, cpu)
        built = time.perf_counter() - start
        start = time.perf_counter()
        cached = text_features(cached_cache)
        lookups = time.perf_counter() - start
        start = time.perf_counter()
        plain = text_features(_FeatureCache(model, train, cpu, frozen=False))
        uncached = time.perf_counter() - start
    equal = all(torch.equal(a, b) for a, b in zip(cached, plain))
    distinct = len(torch.unique(train.rows["question"]))
    print(f"easy-VQA train: {len(train)} questions, {distinct} distinct; fusion={args.fusion} "
          f"threads={torch.get_num_threads()}; {args.batches} of {per_epoch} batches timed")
    print(f"cache build (once per training)     {built:8.2f} s")
    print(f"cached: text features, timed batches {lookups:8.2f} s  -> epoch {lookups * per_epoch / args.batches:8.1f} s")
    print(f"uncached: MiniLM per batch          {uncached:8.2f} s  -> epoch {uncached * per_epoch / args.batches:8.1f} s")
    print(f"bit-identical features: {equal}")


if __name__ == "__main__":
    main()
