"""Captum attribution methods behind one call shape and one result type.

Token ids are not differentiable, so token modalities are attributed at their embedding
layer. Rather than special-casing every Captum class (``LayerIntegratedGradients`` for
tokens, ``IntegratedGradients`` for pixels …), the model is presented to Captum as a
function of float tensors only: continuous modalities as they are, token modalities as
their embeddings, substituted by a forward hook on the embedding layer. Integrated
Gradients on that function *is* ``LayerIntegratedGradients`` at the embedding layer, and
every other Captum method (DeepLift, NoiseTunnel, Occlusion …) works on tokens unchanged.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..exceptions import AttributionError, ConfigError
from ..modality import ModalitySpec
from ..registry import Registry
from ..validation import batch_size, check_inputs, check_target
from .baselines import make_baselines
from .result import AttributionResult


def resolve_specs(model: nn.Module, modalities: Sequence[ModalitySpec] | None) -> list[ModalitySpec]:
    """The model's modality specs: given explicitly, or supplied by a built-in model."""
    if modalities is not None:
        specs = list(modalities)
    elif hasattr(model, "modality_specs"):
        specs = list(model.modality_specs)
    else:
        raise ConfigError(
            "modalities is required for a model that does not declare modality_specs; pass "
            "modalities=[ModalitySpec(name, kind, embedding_layer=...), ...]."
        )
    for s in specs:
        if not isinstance(s, ModalitySpec):
            raise TypeError(f"modalities must hold ModalitySpec objects; got {type(s).__name__}.")
    return specs


def _submodule(model: nn.Module, path: str, modality: str) -> nn.Module:
    try:
        return model.get_submodule(path)
    except AttributeError:
        raise ConfigError(
            f"modality {modality!r}: embedding_layer={path!r} is not a submodule of the model."
        ) from None


class EmbeddingInputModel(nn.Module):
    """``model`` as a function of float tensors: token modalities enter as embeddings.

    ``forward(*xs, *ids)`` takes one tensor per modality in ``specs`` order (token modalities
    as embeddings (N, T, E)), followed by the token ids of the token modalities, and returns
    the model's output. Captum expands the trailing ids along with the inputs.
    """

    def __init__(self, model: nn.Module, specs: Sequence[ModalitySpec]) -> None:
        super().__init__()
        self.model = model
        self.specs = list(specs)
        self.token_names = [s.name for s in self.specs if s.kind == "tokens"]
        self.embeddings: dict[str, nn.Module] = {}
        for s in self.specs:
            if s.kind == "tokens":
                if not s.embedding_layer:
                    raise ConfigError(
                        f"modality {s.name!r} holds token ids: set ModalitySpec(embedding_layer=...) to the "
                        "embedding module to attribute at."
                    )
                self.embeddings[s.name] = _submodule(model, s.embedding_layer, s.name)

    def embed(self, inputs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """The float tensors Captum sees for ``inputs`` (ids → embeddings)."""
        return tuple(
            self.embeddings[s.name](inputs[s.name]).detach() if s.kind == "tokens" else inputs[s.name]
            for s in self.specs
        )

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        n = len(self.specs)
        xs, ids = args[:n], dict(zip(self.token_names, args[n:]))
        feed, handles = {}, []
        try:
            for s, x in zip(self.specs, xs):
                if s.kind == "tokens":
                    # replace the embedding layer's output by the (interpolated / noised) input
                    handles.append(self.embeddings[s.name].register_forward_hook(lambda mod, inp, out, x=x: x))
                    feed[s.name] = ids[s.name]
                else:
                    feed[s.name] = x
            out = self.model(**feed)
        finally:
            for h in handles:
                h.remove()
        return out if out.dim() > 1 else out.unsqueeze(1)


@dataclass(frozen=True)
class Method:
    """A registered attribution method: how to run it and what it promises."""

    name: str
    run: Callable[..., tuple[tuple[torch.Tensor, ...], torch.Tensor | None]]
    options: dict[str, Any]
    baseline_relative: bool = True
    complete: bool = False
    description: str = ""


METHODS: Registry[Method] = Registry("attribution method")


def _register(name: str, description: str, options: dict[str, Any], *, complete: bool = False,
              baseline_relative: bool = True) -> Callable:
    def deco(fn: Callable) -> Callable:
        METHODS.register(name, description)(
            Method(name, fn, options, baseline_relative, complete, description)
        )
        return fn

    return deco


def _stdevs(xs: tuple[torch.Tensor, ...], rel: float) -> tuple[float, ...]:
    # noise relative to each input's own spread: pixels and embeddings live on other scales
    return tuple(float(rel * x.float().std().clamp_min(1e-6)) for x in xs)


@_register("ig", "Integrated Gradients (tokens at their embedding layer = LayerIntegratedGradients)",
           {"n_steps": 50, "method": "gausslegendre", "tolerance": 0.01, "max_steps": 400}, complete=True)
def _ig(f, xs, bs, target, ids, *, internal_batch_size, n_steps, method, tolerance, max_steps):
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(f)

    def run(rows: torch.Tensor | None, steps: int):
        def pick(t):
            return t if rows is None or t is None or t.shape[0] == 1 else t[rows]

        return ig.attribute(
            tuple(pick(x) for x in xs), baselines=tuple(pick(b) for b in bs),
            target=pick(target) if isinstance(target, torch.Tensor) else target,
            additional_forward_args=None if ids is None else tuple(pick(i) for i in ids),
            n_steps=steps, method=method, internal_batch_size=internal_batch_size, return_convergence_delta=True,
        )

    attr, delta = run(None, n_steps)
    attr = [a.clone() for a in attr]
    steps_used = torch.full((delta.shape[0],), n_steps)
    if tolerance:
        # Refine the samples whose path integral has not converged: the completeness gap
        # sum(attr) - (f(x) - f(b)) is the one error IG can measure, so use it (Captum
        # leaves the choice of n_steps to the caller).
        with torch.no_grad():
            extra = ids or ()
            scale = (_target_output(f(*xs, *extra), target) - _target_output(f(*bs, *extra), target)).abs()
        steps = n_steps
        while steps < max_steps:
            bad = (delta.abs() > tolerance * scale.clamp_min(1e-6)).nonzero().flatten()
            if len(bad) == 0:
                break
            steps = min(2 * steps, max_steps)
            sub_attr, sub_delta = run(bad, steps)
            for a, sa in zip(attr, sub_attr):
                a[bad] = sa
            delta = delta.clone()
            delta[bad] = sub_delta
            steps_used[bad] = steps
    return tuple(attr), delta, {"n_steps_used": steps_used.tolist()}


@_register("saliency", "Saliency: absolute gradient of the target output", {}, baseline_relative=False)
def _saliency(f, xs, bs, target, ids, *, internal_batch_size):
    from captum.attr import Saliency

    return Saliency(f).attribute(xs, target=target, additional_forward_args=ids, abs=True), None


@_register("input_x_gradient", "Input × Gradient", {}, baseline_relative=False)
def _ixg(f, xs, bs, target, ids, *, internal_batch_size):
    from captum.attr import InputXGradient

    return InputXGradient(f).attribute(xs, target=target, additional_forward_args=ids), None


@_register("deeplift", "DeepLift (Rescale rule; layers without a rule fall back to gradients)", {}, complete=True)
def _deeplift(f, xs, bs, target, ids, *, internal_batch_size):
    from captum.attr import DeepLift

    attr, delta = DeepLift(f).attribute(
        xs, baselines=bs, target=target, additional_forward_args=ids, return_convergence_delta=True
    )
    return attr, delta


@_register("gradient_shap", "GradientShap: expected gradients between the baseline and noisy inputs",
           {"n_samples": 20, "stdevs": 0.1})
def _gshap(f, xs, bs, target, ids, *, internal_batch_size, n_samples, stdevs):
    from captum.attr import GradientShap

    # a baseline distribution of the chosen baselines plus the input itself: the path spans both
    dist = tuple(torch.cat([b[:1], x.mean(0, keepdim=True).detach()]) for x, b in zip(xs, bs))
    attr = GradientShap(f).attribute(
        xs, baselines=dist, target=target, additional_forward_args=ids, n_samples=n_samples,
        stdevs=_stdevs(xs, stdevs),
    )
    return attr, None


@_register("smoothgrad", "SmoothGrad: NoiseTunnel over Saliency", {"nt_samples": 10, "stdevs": 0.15},
           baseline_relative=False)
def _smoothgrad(f, xs, bs, target, ids, *, internal_batch_size, nt_samples, stdevs):
    from captum.attr import NoiseTunnel, Saliency

    attr = NoiseTunnel(Saliency(f)).attribute(
        xs, nt_type="smoothgrad", nt_samples=nt_samples, nt_samples_batch_size=internal_batch_size,
        stdevs=_stdevs(xs, stdevs), target=target, additional_forward_args=ids, abs=True,
    )
    return attr, None


def _windows(specs: Sequence[ModalitySpec], xs: tuple[torch.Tensor, ...], patch_size: int,
             audio_window: int) -> tuple[tuple[int, ...], ...]:
    out = []
    for s, x in zip(specs, xs):
        shape = tuple(x.shape[1:])
        if s.kind == "image":
            out.append((shape[0], min(patch_size, shape[1]), min(patch_size, shape[2])))
        elif s.kind == "tokens":
            out.append((1, shape[1]))  # one token, whole embedding
        elif s.kind == "audio":
            out.append((*shape[:-1], min(audio_window, shape[-1])))
        else:
            out.append(tuple(1 for _ in shape))
    return tuple(out)


@_register("occlusion", "Occlusion: slide a patch (image) / token / feature window, replace by the baseline",
           {"patch_size": 8, "audio_window": 16})
def _occlusion(f, xs, bs, target, ids, *, internal_batch_size, patch_size, audio_window, specs):
    from captum.attr import Occlusion

    windows = _windows(specs, xs, patch_size, audio_window)
    attr = Occlusion(f).attribute(
        xs, sliding_window_shapes=windows, strides=windows, baselines=bs, target=target,
        additional_forward_args=ids, perturbations_per_eval=max(1, (internal_batch_size or 64) // len(xs[0])),
    )
    # Captum gives every element of a window the window's whole effect; spread it instead,
    # so that a unit's (patch's, token's) attributions sum to its occlusion effect
    sizes = [float(torch.tensor(w).prod()) for w in windows]
    return tuple(a / size for a, size in zip(attr, sizes)), None


def feature_groups(specs: Sequence[ModalitySpec], xs: tuple[torch.Tensor, ...], *, patch_size: int = 8,
                   audio_window: int = 16) -> tuple[torch.Tensor, ...]:
    """Captum ``feature_mask`` tensors (1, ...) giving each unit its own feature id, ids
    running on across modalities: image patches, tokens, tabular features, audio windows."""
    masks, offset = [], 0
    for s, x in zip(specs, xs):
        shape = x.shape[1:]
        if s.kind == "image":
            c, h, w = shape
            gh, gw = -(-h // patch_size), -(-w // patch_size)
            grid = torch.arange(gh * gw).view(gh, gw).repeat_interleave(patch_size, 0).repeat_interleave(patch_size, 1)
            m = grid[:h, :w].expand(c, h, w)
        elif s.kind == "tokens":
            m = torch.arange(shape[0]).unsqueeze(1).expand(*shape)
        elif s.kind == "audio":
            steps = torch.arange(shape[-1]) // audio_window
            m = steps.expand(*shape)
        else:
            m = torch.arange(int(torch.tensor(shape).prod())).view(*shape)
        m = m + offset
        offset = int(m.max()) + 1
        masks.append(m.unsqueeze(0).to(x.device))
    return tuple(masks)


@_register("feature_ablation", "FeatureAblation: ablate each patch / token / feature / window to its baseline",
           {"patch_size": 8, "audio_window": 16})
def _ablation(f, xs, bs, target, ids, *, internal_batch_size, patch_size, audio_window, specs):
    from captum.attr import FeatureAblation

    masks = feature_groups(specs, xs, patch_size=patch_size, audio_window=audio_window)
    attr = FeatureAblation(f).attribute(
        xs, baselines=bs, target=target, additional_forward_args=ids, feature_mask=masks,
        perturbations_per_eval=max(1, (internal_batch_size or 64) // len(xs[0])),
    )
    # as for occlusion: each group's effect is spread over its elements, not copied to each
    counts = torch.bincount(torch.cat([m.flatten() for m in masks]))
    return tuple(a / counts[m].to(a.dtype) for a, m in zip(attr, masks)), None


def _reduce(spec: ModalitySpec, a: torch.Tensor) -> torch.Tensor:
    # token attributions arrive per embedding dimension: one score per token
    return a.sum(-1) if spec.kind == "tokens" else a


def _target_output(out: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    if target is None:
        return out.reshape(len(out), -1)[:, 0]
    return out.gather(1, target.view(-1, 1)).squeeze(1)


def attribute(
    model: nn.Module,
    inputs: Mapping[str, torch.Tensor],
    *,
    method: str = "ig",
    target: int | Sequence[int] | torch.Tensor | None = None,
    baselines: Mapping[str, Any] | None = None,
    modalities: Sequence[ModalitySpec] | None = None,
    reference: Mapping[str, torch.Tensor] | None = None,
    internal_batch_size: int | None = None,
    **options: Any,
) -> AttributionResult:
    """Attribute a multimodal model's output to every unit of every modality.

    Parameters
    ----------
    model : nn.Module
        Called as ``model(**inputs)``; returns (N, C) logits or a scalar output (N,) / (N, 1).
        Call ``model.eval()`` first.
    inputs : dict of str -> Tensor of shape (N, ...)
        One tensor per modality, batch first; token modalities hold integer ids (N, T).
    method : str, default="ig"
        A name from :data:`METHODS` (``mmexplain.attribution.METHODS.names()``).
    target : int, sequence of int, tensor of shape (N,), or None
        The output to explain; None for scalar outputs.
    baselines : dict of str -> str or Tensor, optional
        Per modality (see :func:`make_baselines`); defaults: black image, pad tokens,
        feature means, silence.
    modalities : list of ModalitySpec, optional
        Required unless the model has ``modality_specs`` (built-in models do).
    reference : dict of str -> Tensor, optional
        Data that ``mean`` baselines average over; default the inputs.
    internal_batch_size : int, optional
        Chunk size of Captum's expanded batches (memory cap), for methods that expand.
    **options
        Method parameters, e.g. ``n_steps=50`` for ``ig``, ``patch_size=8`` for
        ``occlusion``; an unknown option is an error listing the allowed ones. ``ig``
        re-runs each sample whose completeness error exceeds ``tolerance`` (default 0.01)
        times |f(x) − f(baseline)| with doubled steps, up to ``max_steps`` (default 400);
        ``tolerance=0`` turns this off. Steps used per sample: ``meta["n_steps_used"]``.

    Returns
    -------
    AttributionResult
        ``maps`` keyed like ``inputs`` (tokens reduced to (N, T)); ``completeness_error``
        for ``ig`` and ``deeplift``.
    """
    entry = METHODS.get(method)
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        raise ConfigError(
            f"method {method!r} has no option {unknown}; its options are {sorted(entry.options) or 'none'}."
        )
    params = {**entry.options, **options}
    specs = resolve_specs(model, modalities)
    inputs = check_inputs(inputs, modalities=[s.name for s in specs])
    n = batch_size(inputs)
    tgt = check_target(target, n)
    device = next(iter(inputs.values())).device
    if tgt is not None:
        tgt = tgt.to(device)
    base, desc = make_baselines(inputs, specs, baselines, reference=reference)
    f = EmbeddingInputModel(model, specs)
    xs = f.embed(inputs)
    bs = f.embed(base)
    ids = tuple(inputs[s.name] for s in specs if s.kind == "tokens") or None
    kwargs = dict(params, internal_batch_size=internal_batch_size)
    if method in ("occlusion", "feature_ablation"):
        kwargs["specs"] = specs
    try:
        with warnings.catch_warnings():
            # Captum's notices about what it does on purpose here: inputs get
            # requires_grad set, DeepLift hooks the activations
            warnings.filterwarnings("ignore", message="Input Tensor .* did not already require gradients")
            warnings.filterwarnings("ignore", message="Setting forward, backward hooks")
            attr, delta, *more = entry.run(f, xs, bs, tgt, ids, **kwargs)
    except (RuntimeError, AssertionError) as e:
        raise AttributionError(f"method {method!r} failed on this model: {e}") from e
    maps = {s.name: _reduce(s, a).detach() for s, a in zip(specs, attr)}
    output_delta = completeness = None
    with torch.no_grad():
        extra = ids or ()
        fx = _target_output(f(*xs, *extra), tgt)
        fb = _target_output(f(*bs, *extra), tgt)
    output_delta = (fx - fb).detach().double().cpu()
    if entry.complete:
        total = sum(m.flatten(1).sum(1).double() for m in maps.values()).cpu()
        completeness = (total - output_delta).abs()
    params = {k: v for k, v in params.items()}
    return AttributionResult(
        method=method,
        maps={k: v.cpu() for k, v in maps.items()},
        modalities=specs,
        target=None if tgt is None else tgt.cpu(),
        baselines=desc,
        params=params,
        output_delta=output_delta,
        completeness_error=completeness,
        meta={"convergence_delta": None if delta is None else delta.detach().double().abs().cpu().tolist(),
              **(more[0] if more else {})},
    )
