"""Benchmark: mmexplain's IG against raw Captum ``LayerIntegratedGradients`` on the same model.

The model is the built-in easy-VQA fusion model (CNN image encoder + the pretrained MiniLM
text encoder, fine-tunable so gradients flow through all six transformer layers), weights as
built. On the same N test samples, same baselines (the model's stored reference: the
channel-mean image fitted from training data, pad tokens), same ``n_steps`` and
Gauss-Legendre rule, the script times

* ``raw_s``: what a Captum user writes by hand: ``LayerIntegratedGradients`` over
  ``[image identity layer, word-embedding layer]`` with ``return_convergence_delta=True``;
* ``ours_s``: ``mmexplain.attribution.attribute(model, inputs, method="ig", tolerance=0)``,
  which also reduces maps per modality and records the completeness error (the same work
  as raw Captum); ``adaptive_s``: the default, which re-runs samples whose completeness
  error exceeds 1 % with doubled steps (``steps_used`` shows how many it took);
* ``floor_s``: one forward + backward pass over the prebuilt N·n_steps interpolated batch,
  the least any IG implementation must spend.

Times are the best of ``--repeats`` runs after a warm-up, the three taking turns in every
repeat. ``max|diff|`` compares ours with raw Captum's attributions (summed per token); ours
also credits the padding-mask step a gradient path cannot take (``meta["mask_term"]``) to
the real tokens, so the two differ by that term where the reference's masks differ.

Usage::

    python benchmarks/bench_integrated_gradients.py --device cpu --n 8 --steps 50
"""

from __future__ import annotations

import argparse
import os
import warnings

import torch
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _timing import timed_interleaved  # noqa: E402

from mmexplain.attribution import attribute  # noqa: E402
from mmexplain.data import load_dataset  # noqa: E402
from mmexplain.models import ModelConfig, build_model  # noqa: E402


class _Raw(nn.Module):
    """The model as a positional function with an identity layer on the image input, so
    that LayerIntegratedGradients can interpolate the image and the embeddings together."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.image_in = nn.Identity()

    def forward(self, image: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        return self.model(image=self.image_in(image), question=question)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--n", type=int, default=8, help="samples explained")
    parser.add_argument("--steps", type=int, default=50, help="IG n_steps")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    from captum.attr import LayerIntegratedGradients

    splits, tok = load_dataset("easy-vqa", limit=max(args.n, 64), text_encoder="minilm")
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_name("concat", text_encoder="minilm", text_frozen=False), splits.train, tok)
    model = model.to(device).eval()
    inputs = {k: v.to(device) for k, v in splits.test.inputs(range(args.n)).items()}
    target = model(**inputs).argmax(1).detach()
    emb = model.get_submodule(next(s for s in model.modality_specs if s.kind_info.integer_ids).embedding_layer)

    raw_model = _Raw(model)
    with warnings.catch_warnings():  # "multiple layers": they are independent here
        warnings.simplefilter("ignore", UserWarning)
        lig = LayerIntegratedGradients(raw_model, [raw_model.image_in, emb])
    ref = model.reference.inputs_like(inputs)  # what "absent" means for this model, as ours uses it
    base = (ref["image"], ref["question"])

    def run_raw() -> torch.Tensor:
        attrs, delta = lig.attribute((inputs["image"], inputs["question"]), baselines=base, target=target,
                                     n_steps=args.steps, method="gausslegendre", return_convergence_delta=True)
        return attrs[1].sum(-1)

    def run_ours() -> torch.Tensor:
        return attribute(model, inputs, method="ig", target=target, n_steps=args.steps, tolerance=0).maps["question"]

    adaptive_steps: list[int] = []

    def run_adaptive() -> torch.Tensor:
        res = attribute(model, inputs, method="ig", target=target, n_steps=args.steps)
        adaptive_steps[:] = res.meta["n_steps_used"]
        return res.maps["question"]

    # the floor: one forward + backward over the N·n_steps interpolated batch
    alphas = torch.linspace(0, 1, args.steps, device=device)
    with torch.no_grad():
        e_x, e_b = emb(inputs["question"]), emb(base[1])
    image_batch = (base[0] + alphas.view(-1, 1, 1, 1, 1) * (inputs["image"] - base[0])).flatten(0, 1)
    emb_batch = (e_b + alphas.view(-1, 1, 1, 1) * (e_x - e_b)).flatten(0, 1)
    ids_batch = inputs["question"].repeat(args.steps, 1)
    tgt_batch = target.repeat(args.steps)

    def run_floor() -> torch.Tensor:
        img = image_batch.clone().requires_grad_(True)
        e = emb_batch.clone().requires_grad_(True)
        h = emb.register_forward_hook(lambda mod, i, o: e)
        try:
            out = model(image=img, question=ids_batch).gather(1, tgt_batch[:, None]).sum()
        finally:
            h.remove()
        return torch.autograd.grad(out, (img, e))[1]

    best, res = timed_interleaved(
        {"raw": run_raw, "ours": run_ours, "adaptive": run_adaptive, "floor": run_floor}, args.repeats, device
    )
    diff = (res["raw"].detach().cpu().double() - res["ours"].double()).abs().max().item()
    scale = res["raw"].detach().abs().max().item()
    print(f"device={args.device} N={args.n} n_steps={args.steps} threads={torch.get_num_threads()} "
          f"torch={torch.__version__} model=CNN+MiniLM (fine-tunable) concat")
    print(f"{'raw_s':>8} {'ours_s':>8} {'floor_s':>8} {'ours/raw':>9} {'ours/floor':>10} {'raw/floor':>9} "
          f"{'max|diff|':>10} {'max|attr|':>10} {'adaptive_s':>10}  steps_used")
    print(f"{best['raw']:>8.3f} {best['ours']:>8.3f} {best['floor']:>8.3f} {best['ours'] / best['raw']:>9.3f} "
          f"{best['ours'] / best['floor']:>10.3f} {best['raw'] / best['floor']:>9.3f} {diff:>10.2e} {scale:>10.2e} "
          f"{best['adaptive']:>10.3f}  {adaptive_steps}")


if __name__ == "__main__":
    main()
