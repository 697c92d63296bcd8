"""Modality encoders: each maps one modality's tensor to features.

Every encoder returns pooled features (N, D) by default, or a sequence (N, L, D) with
``sequence=True`` (image regions, token states, audio frames) for attention fusion.
Encoders with a frozen pretrained part split it out as ``backbone()`` so that training can
cache its outputs once instead of recomputing them every epoch.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..data.text import minilm_dir


class _ChannelsLast(torch.autograd.Function):
    """Identity into channels-last memory, whose gradient comes back in the caller's usual
    layout: CPU convolutions, pooling and batch norm run 1.5-2x faster channels-last
    (``benchmarks/bench_image_encoder.py``), while input gradients (what Captum returns
    as pixel attributions) stay plain contiguous tensors."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous()


class ImageCNN(nn.Module):
    """Small CNN: 3x3 convolutions, each with batch norm, 2x2 max-pooling and a ReLU, down to at
    most 4x4 regions.

    Parameters
    ----------
    in_channels : int
    image_size : (int, int)
        Height and width of the input images.
    out_dim : int, default=64
    width : int, default=16
        Channels of the first layer, doubled per layer up to 64.
    max_layers : int, optional
        Cap on the number of conv layers (early fusion uses 1 for a shallow stem).
    """

    def __init__(
        self,
        in_channels: int,
        image_size: tuple[int, int],
        out_dim: int = 64,
        width: int = 16,
        max_layers: int | None = None,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c, (h, w) = in_channels, image_size
        out_c, n = width, 0
        while (h > 4 or w > 4) and (max_layers is None or n < max_layers):
            # pooling before the ReLU gives the same outputs and gradients (max and ReLU
            # commute) while the ReLU touches a quarter of the values; DeepLift, whose rules
            # treat each nonlinearity on its own, gives other maps (as complete)
            layers += [nn.Conv2d(c, out_c, 3, padding=1), nn.BatchNorm2d(out_c), nn.MaxPool2d(2, ceil_mode=True), nn.ReLU()]
            c, h, w, n = out_c, (h + 1) // 2, (w + 1) // 2, n + 1
            out_c = min(out_c * 2, 64)
        self.features = nn.Sequential(*layers)
        self.grid = (h, w)
        self.pool = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, out_dim), nn.ReLU())
        self.regions = nn.Linear(c, out_dim)

    def forward(self, x: torch.Tensor, *, sequence: bool = False) -> torch.Tensor:
        f = self.features(_ChannelsLast.apply(x - 0.5))  # centre [0, 1] pixels: trains several times faster
        if sequence:  # (N, C, h, w) -> (N, h*w, D): one token per image region
            return self.regions(f.flatten(2).transpose(1, 2))
        return self.pool(f)


class RNNTextEncoder(nn.Module):
    """Token embedding + bidirectional GRU or LSTM, mean-pooled over real tokens.

    Parameters
    ----------
    vocab_size : int
    out_dim : int, default=64
    embed_dim : int, default=32
    hidden : int, default=64
    rnn : {"gru", "lstm"}, default="gru"
    pad_id : int, default=0
    """

    def __init__(
        self, vocab_size: int, out_dim: int = 64, embed_dim: int = 32, hidden: int = 64,
        rnn: str = "gru", pad_id: int = 0,
    ) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        cls = nn.GRU if rnn == "gru" else nn.LSTM
        self.rnn = cls(embed_dim, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Sequential(nn.Linear(2 * hidden, out_dim), nn.ReLU())

    def forward(self, ids: torch.Tensor, *, sequence: bool = False) -> torch.Tensor:
        states, _ = self.rnn(self.embedding(ids))
        states = self.out(states)
        if sequence:
            return states
        mask = (ids != self.pad_id).unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class MiniLMTextEncoder(nn.Module):
    """The pretrained all-MiniLM-L6-v2 transformer (loaded offline), plus a trainable projection.

    Parameters
    ----------
    out_dim : int, default=64
    frozen : bool, default=True
        Freeze the transformer; only the projection trains (and its outputs can be cached).
    """

    hidden_size = 384

    def __init__(self, out_dim: int = 64, frozen: bool = True) -> None:
        super().__init__()
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        hf_logging.disable_progress_bar()
        self.transformer = AutoModel.from_pretrained(minilm_dir())
        self.pad_id = int(self.transformer.config.pad_token_id or 0)
        self.frozen = frozen
        if frozen:
            self.transformer.requires_grad_(False)
        self.proj = nn.Sequential(nn.Linear(self.hidden_size, out_dim), nn.ReLU())

    @property
    def frozen_backbone(self) -> bool:
        return self.frozen

    def train(self, mode: bool = True) -> MiniLMTextEncoder:
        super().train(mode)
        if self.frozen:  # a frozen transformer never runs dropout, so cached outputs stay exact
            self.transformer.eval()
        return self

    def backbone(self, ids: torch.Tensor) -> torch.Tensor:
        """Last hidden states (N, T, 384) of the transformer."""
        mask = (ids != self.pad_id).long()
        return self.transformer(input_ids=ids, attention_mask=mask).last_hidden_state

    def head(self, hidden: torch.Tensor, ids: torch.Tensor, *, sequence: bool = False) -> torch.Tensor:
        states = self.proj(hidden)
        if sequence:
            return states
        # sentence-transformers' mean pooling over real tokens
        mask = (ids != self.pad_id).unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def forward(self, ids: torch.Tensor, *, sequence: bool = False) -> torch.Tensor:
        return self.head(self.backbone(ids), ids, sequence=sequence)


class TabularMLP(nn.Module):
    """Two-layer MLP over numeric features; as a sequence, one token."""

    def __init__(self, in_features: int, out_dim: int = 64, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out_dim), nn.ReLU())

    def forward(self, x: torch.Tensor, *, sequence: bool = False) -> torch.Tensor:
        h = self.net(x)
        return h.unsqueeze(1) if sequence else h


class AudioCNN(nn.Module):
    """1-D CNN over waveforms (N, 1, L) or (N, L): stride-2 convolutions, then pooling."""

    def __init__(self, in_channels: int = 1, out_dim: int = 64, width: int = 16, n_layers: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for i in range(n_layers):
            out_c = min(width * 2**i, 64)
            layers += [nn.Conv1d(c, out_c, 7, stride=2, padding=3), nn.ReLU()]
            c = out_c
        self.features = nn.Sequential(*layers)
        self.out = nn.Sequential(nn.Linear(2 * c, out_dim), nn.ReLU())
        self.frames = nn.Linear(c, out_dim)

    def forward(self, x: torch.Tensor, *, sequence: bool = False) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        f = self.features(x)
        if sequence:
            return self.frames(f.transpose(1, 2))
        # mean and max over time: a burst anywhere in the clip is found
        return self.out(torch.cat([f.mean(-1), f.amax(-1)], dim=1))
