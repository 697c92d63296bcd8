"""Benchmark: how many steps Integrated Gradients needs through MiniLM, and how complete it is.

On N easy-VQA test samples, IG explains each model's predicted answer relative to the
model's reference (mean image; pad ids, so the attention mask the model derives from ids
marks the text absent), through the image pixels and MiniLM's word-embedding layer. For each
model, two settings of ``mmexplain.attribute(..., method="ig")``:

* ``fixed``: 50 Gauss-Legendre steps, no refinement (what a Captum user gets by default);
* ``adaptive``: the default -- samples whose completeness error exceeds 1 % of
  |f(x) - f(reference)| are re-run with doubled steps, up to 400.

Columns: median and max of the steps used, samples that hit the cap unconverged, median
and max of the relative completeness error |Σ attributions - (f(x) - f(ref))| / |f(x) - f(ref)|.

Models: ``built`` is the default report's architecture with the weights as built (the
issue's "before": an untrained CNN + MiniLM model), and ``trained`` the default report's
trained model (``--run DIR``, or trained into ``--cache`` with the default parameters).

Usage::

    python benchmarks/bench_ig_minilm.py --n 16 --cache reports/models
"""

from __future__ import annotations

import argparse
import os

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mmexplain.attribution import attribute  # noqa: E402
from mmexplain.models import ModelConfig, build_model  # noqa: E402
from mmexplain.training import DEFAULT_RUN, load_or_train, load_run  # noqa: E402
from mmexplain.training.trainer import predict  # noqa: E402


def _row(name: str, setting: str, res) -> str:
    steps = torch.tensor(res.meta.get("n_steps_used", [res.params["n_steps"]] * len(res.output)), dtype=torch.float)
    rel = (res.completeness_error / res.output_delta.abs().clamp_min(1e-9)).double()
    capped = sum(res.meta.get("hit_step_cap", []))
    return (f"{name:<8} {setting:<9} {steps.median().item():>9.0f} {steps.max().item():>9.0f} {capped:>7} "
            f"{rel.median().item():>10.2e} {rel.max().item():>10.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=16, help="test samples explained")
    parser.add_argument("--run", default=None, help="a trained run's folder (default: the default run)")
    parser.add_argument("--cache", default="reports/models", help="model cache for the default run")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    trained = load_run(args.run) if args.run else load_or_train(args.cache, dataset="easy-vqa", progress=False,
                                                              **DEFAULT_RUN)
    test = trained.splits.test
    idx = torch.arange(args.n)
    x = test.inputs(idx)
    torch.manual_seed(0)
    cfg = ModelConfig.from_name(trained.params["fusion"], text_encoder=trained.params["text_encoder"])
    built = build_model(cfg, trained.splits.train, trained.tokenizer).eval()
    print(f"easy-VQA N={args.n} fusion={trained.params['fusion']} text_encoder={trained.params['text_encoder']} "
          f"trained test accuracy={trained.metrics['test']['accuracy']:.4f} threads={torch.get_num_threads()}")
    print(f"{'model':<8} {'setting':<9} {'steps_med':>9} {'steps_max':>9} {'capped':>7} {'err_med':>10} {'err_max':>10}")
    for name, model in (("built", built), ("trained", trained.model)):
        target = predict(model, test.subset(idx)).argmax(1)
        for setting, opts in (("fixed", {"tolerance": 0}), ("adaptive", {})):
            res = attribute(model, x, method="ig", target=target, n_steps=50, **opts)
            print(_row(name, setting, res), flush=True)


if __name__ == "__main__":
    main()
