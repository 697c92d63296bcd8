"""Benchmark: how fast the explorer updates, per method, on a run.

Times what a click costs in :class:`mmexplain.explore.Explorer` (the controller the widget
calls; drawing is left to the browser): **select** a decision not seen before (its view:
prediction, the method's maps, modality Shapley values and interactions, the prediction
without each modality, the trust panel) and a **what-if** edit of it (the text modality's
question edited where the run has a tokenizer, else its first modality dropped to the
reference). As in the widget, a view comes first without its trust panel, and the panel
(deletion curves, agreement, flags) is built next, timed apart as "+ trust panel". Each
method alone is the view's method; the cache is bypassed (every timed call is a decision or
edit the explorer has not computed). Prints median and p90 in ms.

Usage::

    # the default run (attention fusion, frozen MiniLM; trained into reports/models if missing)
    nice -n 19 python benchmarks/bench_explorer_latency.py --threads 2
    # a saved run, some methods, fewer repeats
    nice -n 19 python benchmarks/bench_explorer_latency.py --run reports/models/concat-xxxx \\
        --methods saliency input_x_gradient ig --repeats 5 --threads 1
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="", help="a saved run's folder (default: the default run)")
    parser.add_argument("--model-cache", default="reports/models", help="where the default run is (or is trained)")
    parser.add_argument("--methods", nargs="+", default=["saliency", "input_x_gradient", "ig"])
    parser.add_argument("--repeats", type=int, default=8, help="decisions timed per method (default: 8)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)

    from mmexplain.explore import Explorer
    from mmexplain.paths import resolve_path
    from mmexplain.training import DEFAULT_RUN, load_or_train, load_run

    t0 = time.perf_counter()
    run = load_run(args.run) if args.run else load_or_train(resolve_path(args.model_cache), dataset="easy-vqa",
                                                            progress=False, **DEFAULT_RUN)
    print(f"run: {run.params.get('fusion')} fusion, text encoder {run.model.config.text_encoder}, "
          f"{len(run.splits.test)} test decisions; loaded in {time.perf_counter() - t0:.1f} s; "
          f"torch threads {torch.get_num_threads()}")
    specs = run.model.modality_specs
    text = next((s.name for s in specs if s.kind_info.edit == "text"), None) if run.tokenizer is not None else None
    n = len(run.splits.test)
    print(f"{'method':<18} {'action':<22} {'median ms':>10} {'p90 ms':>8}")
    for k, method in enumerate(args.methods):
        ex = Explorer(run, ids=[0], methods=[method], defer_trust=True)
        picks = [(1 + k * args.repeats + r) % n for r in range(args.repeats)]
        sel, edit, check = [], [], []
        for r, i in enumerate(picks):
            t = time.perf_counter()
            ex.select(i)
            sel.append(time.perf_counter() - t)
            t = time.perf_counter()
            ex.check()
            check.append(time.perf_counter() - t)
            t = time.perf_counter()
            if text is not None:
                ex.edit(text, f"what color is shape number {r}?")  # a new text each time: never cached
                action = f"edit {text}"
            else:
                ex.drop(specs[0].name)
                action = f"drop {specs[0].name}"
            edit.append(time.perf_counter() - t)
            t = time.perf_counter()
            ex.check()
            check.append(time.perf_counter() - t)
        for name, times in (("select", sel), (action, edit), ("+ trust panel", check)):
            ms = 1000 * np.asarray(times)
            print(f"{method:<18} {name:<22} {np.median(ms):>10.0f} {np.percentile(ms, 90):>8.0f}")


if __name__ == "__main__":
    main()
