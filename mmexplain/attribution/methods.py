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

import numpy as np
import torch
from torch import nn

from ..exceptions import AttributionError, ConfigError
from ..modality import ModalitySpec
from ..reference import resolve_baselines
from ..registry import Registry
from ..validation import batch_size, check_inputs, check_target
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
    """``model`` as a function of float tensors: modalities with integer ids enter as embeddings.

    ``forward(*xs, *ids)`` takes one tensor per modality in ``specs`` order (id modalities
    as embeddings (N, T, E)), followed by the ids of the id modalities, and returns the
    model's output. Captum expands the trailing ids along with the inputs.

    A position whose embedding equals, exactly, the embedding of a reference id (the pad id)
    is fed to the model *as* that id (``snap``, on by default), so the padding masks the model
    derives from its ids see it absent: a perturbation that puts a token at its reference is
    the model's own input for "this token is absent", and the embedded reference input gives
    exactly the model's output on the reference. Gradient paths turn snapping off (an
    interpolated embedding is never exactly the reference anyway, and the path's start must be
    the point Captum integrates from); :func:`attribute` credits the remaining step -- the
    masks changing from the reference's to the sample's -- separately (see ``mask_term``).
    """

    def __init__(self, model: nn.Module, specs: Sequence[ModalitySpec],
                 reference_ids: Mapping[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.model = model
        self.specs = list(specs)
        self.token_names = [s.name for s in self.specs if s.kind_info.integer_ids]
        self.embeddings: dict[str, nn.Module] = {}
        self.snap = True
        for s in self.specs:
            if s.kind_info.integer_ids:
                if not s.embedding_layer:
                    raise ConfigError(
                        f"modality {s.name!r} holds token ids: set ModalitySpec(embedding_layer=...) to the "
                        "embedding module to attribute at."
                    )
                self.embeddings[s.name] = _submodule(model, s.embedding_layer, s.name)
        # the distinct reference ids of each id modality, and their embeddings (snapping)
        self._snap_ids: dict[str, torch.Tensor] = {}
        for name, ids in (reference_ids or {}).items():
            self._snap_ids[name] = torch.unique(ids.flatten())

    def embed(self, inputs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """The float tensors Captum sees for ``inputs`` (ids → embeddings)."""
        with torch.no_grad():
            return tuple(
                self.embeddings[s.name](inputs[s.name]).detach() if s.kind_info.integer_ids else inputs[s.name]
                for s in self.specs
            )

    def _snapped(self, name: str, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        ref = self._snap_ids.get(name)
        if not self.snap or ref is None:
            return ids
        with torch.no_grad():
            vectors = self.embeddings[name](ref.to(ids.device)).to(x.dtype)  # (R, E)
            out = ids
            for r, v in zip(ref.tolist(), vectors):
                out = torch.where((x == v).all(-1), torch.full_like(ids, r), out)
        return out

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        n = len(self.specs)
        xs, ids = args[:n], dict(zip(self.token_names, args[n:]))
        feed, handles = {}, []
        try:
            for s, x in zip(self.specs, xs):
                if s.kind_info.integer_ids:
                    # snap first: it embeds the reference ids, which the hook below would replace
                    feed[s.name] = self._snapped(s.name, x, ids[s.name])
                    # replace the embedding layer's output by the (interpolated / noised) input
                    handles.append(self.embeddings[s.name].register_forward_hook(lambda mod, inp, out, x=x: x))
                else:
                    feed[s.name] = x
            out = self.model(**feed)
        finally:
            for h in handles:
                h.remove()
        return out if out.dim() > 1 else out.unsqueeze(1)


def _recurrent_or_attention(model: nn.Module) -> str | None:
    """Why DeepLift's rules do not hold for ``model`` (None when they do)."""
    found = sorted({type(m).__name__ for m in model.modules()
                    if isinstance(m, (nn.RNNBase, nn.MultiheadAttention)) or "SelfAttention" in type(m).__name__})
    if found:
        return (f"DeepLift's rescale rules do not hold for {', '.join(found)} (multiplicative gates and "
                "attention have no DeepLift rule; Captum falls back to gradients there)")
    return None


@dataclass(frozen=True)
class Method:
    """A registered attribution method: how to run it and what it promises.

    Attributes
    ----------
    name, description : str
    run : callable
        ``run(f, xs, bs, target, ids, *, internal_batch_size, specs, **options)`` returning
        ``(attributions, convergence_delta[, meta])``.
    options : dict
        Default options.
    baseline_relative : bool
        Attributions explain f(x) − f(reference).
    complete : bool
        Promises completeness: Σ attributions = f(x) − f(reference).
    signed : bool
        Maps are signed contributions whose sum means something; False for magnitude maps
        (Saliency, SmoothGrad), whose modality totals sum absolute values.
    gradient_path : bool
        Integrates gradients from the reference (IG, DeepLift, GradientShap): token masks
        cannot change along such a path, so their step is credited separately (``mask_term``).
    stochastic : bool
        Draws random numbers: run one sample at a time under its own seed, so a sample's
        explanation never depends on the batch around it.
    rules_fail : callable, optional
        ``rules_fail(model) -> str | None``: why the method's rules do not hold for a model.
    single_pass : bool
        One forward and one backward pass per sample, no path, noise or perturbation
        loop: cheap enough to recompute on every selection and edit in the explorer
        (:func:`mmexplain.explore`), which computes the other methods on demand.
    """

    name: str
    run: Callable[..., tuple]
    options: dict[str, Any]
    baseline_relative: bool = True
    complete: bool = False
    signed: bool = True
    gradient_path: bool = False
    stochastic: bool = False
    rules_fail: Callable[[nn.Module], str | None] | None = None
    single_pass: bool = False
    description: str = ""

    def why_not(self, model: nn.Module) -> str | None:
        """Why this method's rules do not hold for ``model``; None when they do."""
        return self.rules_fail(model) if self.rules_fail is not None else None


METHODS: Registry[Method] = Registry("attribution method")

#: Default cap on the rows (samples × path steps or perturbations) a method evaluates at
#: once. Captum's own default (None) expands the whole batch at once: 16 easy-VQA samples
#: at IG's 400-step cap through MiniLM held 5.3 GiB; in chunks of 128 rows, 1.4 GiB, and no
#: slower. Chunking changes only the order of float sums.
DEFAULT_INTERNAL_BATCH_SIZE = 128


def _register(name: str, description: str, options: dict[str, Any], **flags: Any) -> Callable:
    def deco(fn: Callable) -> Callable:
        METHODS.register(name, description)(Method(name, fn, options, description=description, **flags))
        return fn

    return deco


def _stdevs(xs: tuple[torch.Tensor, ...], rel: float) -> tuple[float, ...]:
    # noise relative to each input's own spread: pixels and embeddings live on other scales
    return tuple(float(rel * x.float().std().clamp_min(1e-6)) for x in xs)


@_register("ig", "Integrated Gradients (tokens at their embedding layer = LayerIntegratedGradients)",
           {"n_steps": 50, "method": "gausslegendre", "tolerance": 0.01, "max_steps": 400}, complete=True,
           gradient_path=True)
def _ig(f, xs, bs, target, ids, *, internal_batch_size, specs, n_steps, method, tolerance, max_steps):
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
    # Refine the samples whose path integral has not converged: the completeness gap
    # sum(attr) - (f(x) - f(b)) is the one error IG can measure, so use it (Captum
    # leaves the choice of n_steps to the caller).
    with torch.no_grad():
        extra = ids or ()
        scale = (_target_output(f(*xs, *extra), target) - _target_output(f(*bs, *extra), target)).abs()

    def unconverged() -> torch.Tensor:
        return delta.abs() > tolerance * scale.clamp_min(1e-6)

    steps = n_steps
    while tolerance and steps < max_steps:
        bad = unconverged().nonzero().flatten()
        if len(bad) == 0:
            break
        steps = min(2 * steps, max_steps)
        sub_attr, sub_delta = run(bad, steps)
        for a, sa in zip(attr, sub_attr):
            a[bad] = sa
        delta = delta.clone()
        delta[bad] = sub_delta
        steps_used[bad] = steps
    capped = unconverged() & (steps_used >= max_steps) if tolerance else torch.zeros_like(steps_used, dtype=torch.bool)
    return tuple(attr), delta, {"n_steps_used": steps_used.tolist(), "hit_step_cap": capped.tolist()}


@_register("saliency", "Saliency: absolute gradient of the target output", {}, baseline_relative=False,
           signed=False, single_pass=True)
def _saliency(f, xs, bs, target, ids, *, internal_batch_size, specs):
    from captum.attr import Saliency

    return Saliency(f).attribute(xs, target=target, additional_forward_args=ids, abs=True), None


@_register("input_x_gradient", "Input × Gradient", {}, baseline_relative=False, single_pass=True)
def _ixg(f, xs, bs, target, ids, *, internal_batch_size, specs):
    from captum.attr import InputXGradient

    return InputXGradient(f).attribute(xs, target=target, additional_forward_args=ids), None


@_register("deeplift", "DeepLift (Rescale rule; layers without a rule fall back to gradients)", {}, complete=True,
           gradient_path=True, rules_fail=_recurrent_or_attention, single_pass=True)
def _deeplift(f, xs, bs, target, ids, *, internal_batch_size, specs):
    from captum.attr import DeepLift

    attr, delta = DeepLift(f).attribute(
        xs, baselines=bs, target=target, additional_forward_args=ids, return_convergence_delta=True
    )
    return attr, delta


@_register("gradient_shap", "GradientShap: expected gradients between the reference and noisy inputs",
           {"n_samples": 20, "stdevs": 0.1, "seed": 0}, gradient_path=True, stochastic=True)
def _gshap(f, xs, bs, target, ids, *, internal_batch_size, specs, n_samples, stdevs, seed):
    from captum.attr import GradientShap

    # the reference is the baseline distribution (one sample at a time: see Method.stochastic)
    dist = tuple(b[:1] for b in bs)
    attr = GradientShap(f).attribute(
        xs, baselines=dist, target=target, additional_forward_args=ids, n_samples=n_samples,
        stdevs=_stdevs(xs, stdevs),
    )
    return attr, None


@_register("smoothgrad", "SmoothGrad: NoiseTunnel over Saliency", {"nt_samples": 10, "stdevs": 0.15, "seed": 0},
           baseline_relative=False, signed=False, stochastic=True)
def _smoothgrad(f, xs, bs, target, ids, *, internal_batch_size, specs, nt_samples, stdevs, seed):
    from captum.attr import NoiseTunnel, Saliency

    attr = NoiseTunnel(Saliency(f)).attribute(
        xs, nt_type="smoothgrad", nt_samples=nt_samples, nt_samples_batch_size=internal_batch_size,
        stdevs=_stdevs(xs, stdevs), target=target, additional_forward_args=ids, abs=True,
    )
    return attr, None


def _windows(specs: Sequence[ModalitySpec], xs: tuple[torch.Tensor, ...], patch_size: int,
             audio_window: int) -> tuple[tuple[int, ...], ...]:
    return tuple(s.kind_info.occlusion_window(tuple(x.shape[1:]), patch_size=patch_size, audio_window=audio_window)
                 for s, x in zip(specs, xs))


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
    running on across modalities (units as each kind declares them: image patches, tokens,
    tabular features, audio windows)."""
    masks, offset = [], 0
    for s, x in zip(specs, xs):
        m = s.kind_info.unit_ids(tuple(x.shape[1:]), patch_size=patch_size if s.kind_info.patched else None,
                                 audio_window=audio_window) + offset
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


def _target_output(out: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    out = out if out.dim() > 1 else out.unsqueeze(1)
    if target is None:
        return out.reshape(len(out), -1)[:, 0]
    return out.gather(1, target.view(-1, 1)).squeeze(1)


def model_output(model: nn.Module, inputs: Mapping[str, torch.Tensor], target: torch.Tensor | None) -> torch.Tensor:
    """The explained output of ``model(**inputs)`` per sample, (N,) float64 on the CPU."""
    with torch.no_grad():
        return _target_output(model(**inputs), target).detach().double().cpu()


def _run(entry: Method, f: EmbeddingInputModel, xs: tuple, bs: tuple, tgt: torch.Tensor | None,
         ids: tuple | None, kwargs: dict[str, Any]) -> tuple[tuple[torch.Tensor, ...], torch.Tensor | None, dict]:
    """Run a registered method; stochastic ones one sample at a time, each under its own seed."""
    if not entry.stochastic:
        attr, delta, *more = entry.run(f, xs, bs, tgt, ids, **kwargs)
        return tuple(attr), delta, (more[0] if more else {})
    parts, deltas, meta = [], [], {}
    devices = [x.device.index or 0 for x in xs if x.device.type == "cuda"][:1]
    for i in range(len(xs[0])):
        def one(t, i=i):
            return None if t is None else t[i:i + 1]

        # Captum draws from torch's and numpy's global generators: seed both, give them back after
        np_state = np.random.get_state()
        try:
            with torch.random.fork_rng(devices=devices):
                seed = int(kwargs.get("seed") or 0)
                torch.manual_seed(seed)
                np.random.seed(seed)
                attr, delta, *more = entry.run(
                    f, tuple(one(x) for x in xs), tuple(one(b) for b in bs), one(tgt),
                    None if ids is None else tuple(one(t) for t in ids), **kwargs,
                )
        finally:
            np.random.set_state(np_state)
        parts.append(attr)
        deltas.append(delta)
        for k, v in (more[0] if more else {}).items():
            meta.setdefault(k, []).extend(v if isinstance(v, list) else [v])
    attr = tuple(torch.cat([p[k] for p in parts]) for k in range(len(xs)))
    delta = None if any(d is None for d in deltas) else torch.cat([d.reshape(-1) for d in deltas])
    return attr, delta, meta


def _mask_terms(f: EmbeddingInputModel, bs: tuple, inputs: Mapping[str, torch.Tensor],
                base: Mapping[str, torch.Tensor], tgt: torch.Tensor | None,
                reference_output: torch.Tensor) -> dict[str, torch.Tensor]:
    """The step a gradient path cannot take: id modalities' masks going from the reference's
    to the sample's while their embeddings sit at the reference.

    The path starts at the reference's embeddings fed with the sample's ids; the model's
    reference is those embeddings with the reference's ids. The difference is walked one id
    modality at a time (in ``specs`` order): each gets the output change when its ids switch.
    """
    f.snap = False
    terms, prev = {}, reference_output
    try:
        for j, name in enumerate(f.token_names):
            ids = tuple(inputs[t] if k <= j else base[t] for k, t in enumerate(f.token_names))
            with torch.no_grad():
                value = _target_output(f(*bs, *ids), tgt).detach().double().cpu()
            terms[name], prev = value - prev, value
    finally:
        f.snap = True
    return terms


def attribute(
    model: nn.Module,
    inputs: Mapping[str, torch.Tensor],
    *,
    target: int | Sequence[int] | torch.Tensor | None = None,
    baselines: Any = None,
    method: str = "ig",
    modalities: Sequence[ModalitySpec] | None = None,
    internal_batch_size: int | None = DEFAULT_INTERNAL_BATCH_SIZE,
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
    target : int, sequence of int, tensor of shape (N,), or None
        The output to explain; None for scalar outputs.
    baselines : None, Reference, or dict of str -> str or Tensor
        What "absent" means (see :func:`mmexplain.reference.resolve_baselines`); default the
        model's stored reference (``model.reference``), fitted once from training data.
    method : str, default="ig"
        A name from :data:`METHODS` (``mmexplain.attribution.METHODS.names()``).
    modalities : list of ModalitySpec, optional
        Required unless the model has ``modality_specs`` (built-in models do).
    internal_batch_size : int or None, default=DEFAULT_INTERNAL_BATCH_SIZE (128)
        Rows (samples × path steps, or perturbed copies) evaluated at once, for methods
        that expand the batch: a memory cap that leaves the numbers unchanged up to float
        rounding. None: all rows at once (Captum's default).
    **options
        Method parameters, e.g. ``n_steps=50`` for ``ig``, ``patch_size=8`` for
        ``occlusion``; an unknown option is an error listing the allowed ones. ``ig``
        re-runs each sample whose completeness error exceeds ``tolerance`` (default 0.01)
        times |f(x) − f(baseline)| with doubled steps, up to ``max_steps`` (default 400);
        ``tolerance=0`` turns this off. Steps used per sample: ``meta["n_steps_used"]``;
        samples that hit the cap unconverged: ``meta["hit_step_cap"]`` and ``flags``.

    Returns
    -------
    AttributionResult
        ``maps`` keyed like ``inputs`` (tokens reduced to (N, T)); ``output``,
        ``reference_output`` and ``output_delta`` as the model computes them;
        ``completeness_error`` for methods that promise completeness.

    Notes
    -----
    Every sample is explained as if alone: the reference is fixed, and methods that draw
    random numbers run one sample at a time under their ``seed``. For gradient-path methods
    (IG, DeepLift, GradientShap) on token modalities, the path runs between the reference's
    and the sample's embeddings with the sample's padding masks; the output change from the
    masks themselves (reference ids → the sample's ids at reference embeddings) is recorded
    per sample in ``meta["mask_term"]`` and credited evenly to the tokens that differ from
    the reference, so the attributions sum to f(x) − f(reference) of the model itself.
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
    inputs = {s.name: inputs[s.name] for s in specs}
    n = batch_size(inputs)
    tgt = check_target(target, n)
    device = next(iter(inputs.values())).device
    if tgt is not None:
        tgt = tgt.to(device)
    base, desc = resolve_baselines(model, specs, inputs, baselines)
    f = EmbeddingInputModel(model, specs, reference_ids={t: base[t] for t in
                                                         [s.name for s in specs if s.kind_info.integer_ids]})
    xs, bs = f.embed(inputs), f.embed(base)
    ids = tuple(inputs[t] for t in f.token_names) or None
    kwargs = dict(params, internal_batch_size=internal_batch_size, specs=specs)
    f.snap = not entry.gradient_path
    try:
        with warnings.catch_warnings():
            # Captum's notices about what it does on purpose here: inputs get
            # requires_grad set, DeepLift hooks the activations
            warnings.filterwarnings("ignore", message="Input Tensor .* did not already require gradients")
            warnings.filterwarnings("ignore", message="Setting forward, backward hooks")
            attr, delta, meta = _run(entry, f, xs, bs, tgt, ids, kwargs)
    except (RuntimeError, AssertionError) as e:
        raise AttributionError(f"method {method!r} failed on this model: {e}") from e
    finally:
        f.snap = True
    maps = {s.name: s.kind_info.reduce_map(a).detach().double().cpu() for s, a in zip(specs, attr)}
    fx = model_output(model, inputs, tgt)
    fr = model_output(model, base, tgt)
    flags = []
    # the masks' step is taken from the reference; a method given K background samples
    # integrates from those instead, and its sum targets f(x) − E[f(background)]
    if entry.gradient_path and f.token_names and params.get("background") is None:
        terms = _mask_terms(f, bs, inputs, base, tgt, fr)
        for name, term in terms.items():
            changed = (inputs[name] != base[name]).double().cpu()
            maps[name] = maps[name] + term[:, None] * changed / changed.sum(1, keepdim=True).clamp_min(1.0)
        meta["mask_term"] = {name: t.tolist() for name, t in terms.items()}
        # where the gradient path starts: the reference's embeddings at the sample's masks
        meta["path_start_output"] = (fr + sum(terms.values())).tolist()
    completeness = None
    if entry.complete:
        total = sum(m.flatten(1).sum(1) for m in maps.values())
        completeness = (total - (fx - fr)).abs()
    why = entry.why_not(model)
    if why:
        flags.append(f"{method}: {why}")
    capped = [i for i, c in enumerate(meta.get("hit_step_cap", [])) if c]
    if capped:
        flags.append(f"{method}: {len(capped)} of {n} samples hit the {params.get('max_steps')}-step cap "
                     f"without converging (samples {capped[:10]})")
    meta["convergence_delta"] = None if delta is None else delta.detach().double().abs().cpu().tolist()
    return AttributionResult(
        method=method,
        maps={k: v.float() for k, v in maps.items()},
        signed=entry.signed,
        modalities=specs,
        target=None if tgt is None else tgt.cpu(),
        baselines=desc,
        params=params,
        output=fx,
        reference_output=fr,
        output_delta=fx - fr,
        completeness_error=completeness,
        flags=flags,
        meta=meta,
    )
