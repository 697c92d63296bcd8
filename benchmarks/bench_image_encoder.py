"""Benchmark: the image encoder's memory layout -- channels-last against plain NCHW.

:class:`mmexplain.models.encoders.ImageCNN` runs its convolutions channels-last (the input
is converted on the way in, its gradient converted back on the way out) and pools before
its ReLUs. This script times, side by side in one run, the shipped encoder against the
same weights run the old way (NCHW, ReLU before pooling):

- a training step (forward + backward) on the ~13 distinct images a 128-question easy-VQA
  batch holds (training encodes each distinct image once per batch);
- a no-grad forward on 128 images (evaluation, EMAP, Shapley coalitions);
- a forward + input-gradient on 128 images (an IG or saliency batch).

It also prints how far outputs and input gradients differ between the two. Outputs move
by float rounding only; an input gradient can move more at a few pixels, where rounding
flips which of two nearly equal values a max-pool window picks (as float32 against float64
does in either layout). Best of ``--repeats``, contenders interleaved.

Usage::

    python benchmarks/bench_image_encoder.py --threads 1
"""

from __future__ import annotations

import argparse

import torch
from _timing import timed_interleaved
from torch import nn

from mmexplain.models.encoders import ImageCNN


def old_way(encoder: ImageCNN) -> nn.Module:
    """The same weights, run NCHW with each ReLU before its pooling (the layout before)."""

    class Old(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers = list(encoder.features)
            for i in range(0, len(layers), 4):  # conv, bn, pool, relu -> conv, bn, relu, pool
                layers[i + 2], layers[i + 3] = layers[i + 3], layers[i + 2]
            self.features = nn.Sequential(*layers)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return encoder.regions(self.features(x - 0.5).flatten(2).transpose(1, 2))

    return Old()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    new = ImageCNN(3, (64, 64), out_dim=64)
    assert isinstance(new.features[2], nn.MaxPool2d), "the shipped encoder pools before its ReLU"
    old = old_way(new)
    models = {"channels-last (shipped)": lambda x: new(x, sequence=True), "NCHW (before)": old}
    gen = torch.Generator().manual_seed(1)
    small, big = torch.rand(13, 3, 64, 64, generator=gen), torch.rand(128, 3, 64, 64, generator=gen)

    def train_step(f):
        new.train()
        return lambda: f(small).sum().backward()

    def forward(f):
        def run():
            new.eval()
            with torch.no_grad():
                return f(big)
        return run

    def input_grad(f):
        def run():
            new.eval()
            x = big.clone().requires_grad_(True)
            return torch.autograd.grad(f(x).sum(), x)[0]
        return run

    print(f"threads={args.threads}, best of {args.repeats}")
    print(f"{'case':<34}{'channels-last ms':>18}{'NCHW ms':>10}{'speed-up':>10}")
    for case, make in [("train step, 13 images", train_step), ("no-grad forward, 128 images", forward),
                       ("forward + input gradient, 128", input_grad)]:
        best, out = timed_interleaved({k: make(f) for k, f in models.items()}, args.repeats, torch.device("cpu"))
        a, b = best["channels-last (shipped)"], best["NCHW (before)"]
        diff = ""
        if isinstance(out["NCHW (before)"], torch.Tensor):
            a_out, b_out = out["channels-last (shipped)"], out["NCHW (before)"]
            d = (a_out - b_out).abs()
            moved = float((d > 1e-3 * b_out.abs().max()).float().mean())
            diff = f"   max |diff| {float(d.max()):.1e}, {moved:.2%} of values moved > 0.1 % of the largest"
        print(f"{case:<34}{a * 1e3:>18.1f}{b * 1e3:>10.1f}{b / a:>9.2f}x{diff}")


if __name__ == "__main__":
    main()
