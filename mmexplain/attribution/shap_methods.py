"""SHAP attribution methods: Partition SHAP over all modalities at once, and expected gradients.

SHAP's own ``Composite`` masker cannot explain a multimodal sample as *one* game: it
cannot join the partition trees of a ``Text`` and an ``Image`` masker, so a multimodal
model would be explained one modality at a time. :class:`JointMasker` is one masker over
every unit of a sample (image patches, tokens, tabular features, audio windows) whose
hierarchy joins each modality's own tree under a top-level merge of the modality roots, so
``shap.PartitionExplainer`` computes Owen values over the whole sample in one run.

Importing this module registers ``shap_partition`` and ``shap_gradient`` in
:data:`mmexplain.attribution.methods.METHODS`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

with warnings.catch_warnings():
    # shap's plotting colours call matplotlib APIs slated for deprecation: not our users' concern
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    import shap

from ..exceptions import ConfigError
from ..modality import ModalitySpec
from ..validation import check_positive_int
from .methods import _register, feature_groups

__all__ = ["JointMasker", "joint_clustering"]

BACKGROUNDS = ("baseline+mean", "baseline", "mean")


# -- the hierarchy --------------------------------------------------------------------------------
class _Linkage:
    """Builds a scipy linkage matrix bottom-up, in any order; :meth:`matrix` sorts it."""

    def __init__(self, n_leaves: int) -> None:
        self.n = n_leaves
        self.rows: list[list[float]] = []

    def size(self, node: int) -> int:
        return 1 if node < self.n else int(self.rows[node - self.n][3])

    def height(self, node: int) -> float:
        return 0.0 if node < self.n else self.rows[node - self.n][2]

    def merge(self, a: int, b: int, height: float) -> int:
        self.rows.append([a, b, height, self.size(a) + self.size(b)])
        return self.n + len(self.rows) - 1

    def bisect(self, leaves: Sequence[int]) -> int:
        """Balanced tree over ``leaves`` in their order (adjacent units merge first)."""
        if len(leaves) == 1:
            return leaves[0]
        mid = (len(leaves) + 1) // 2
        a, b = self.bisect(leaves[:mid]), self.bisect(leaves[mid:])
        return self.merge(a, b, float(len(leaves)))

    def grid(self, ids: np.ndarray) -> int:
        """Spatial bisection of a 2-D grid of unit ids: halve the longer side, recursively."""
        rows, cols = ids.shape
        if rows * cols == 1:
            return int(ids[0, 0])
        if rows >= cols:
            mid = (rows + 1) // 2
            a, b = self.grid(ids[:mid]), self.grid(ids[mid:])
        else:
            mid = (cols + 1) // 2
            a, b = self.grid(ids[:, :mid]), self.grid(ids[:, mid:])
        return self.merge(a, b, float(rows * cols))

    def matrix(self) -> np.ndarray:
        """(n−1, 4) float64 linkage, rows sorted by non-decreasing height, ids renumbered."""
        z = np.asarray(self.rows, dtype=np.float64).reshape(-1, 4)
        # a parent is strictly higher than its children, so a stable sort keeps children first
        order = np.argsort(z[:, 2], kind="stable")
        new_id = np.empty(len(z), dtype=np.int64)
        new_id[order] = self.n + np.arange(len(z))
        z = z[order]
        for col in (0, 1):
            inner = z[:, col] >= self.n
            z[inner, col] = new_id[z[inner, col].astype(np.int64) - self.n]
        return z


def joint_clustering(
    specs: Sequence[ModalitySpec], unit_ranges: Sequence[tuple[int, int]],
    image_grids: Mapping[int, tuple[int, int]],
) -> tuple[np.ndarray, list[int]]:
    """Linkage matrix over all units: each modality's tree, then the modality roots merged.

    Parameters
    ----------
    specs : sequence of ModalitySpec
    unit_ranges : sequence of (start, stop)
        Unit ids of each modality (contiguous, in ``specs`` order).
    image_grids : dict of int -> (rows, cols)
        Patch grid of each image modality, keyed by its position in ``specs``; unit ids run
        row-major over the grid.

    Returns
    -------
    Z : ndarray of shape (M − 1, 4)
        scipy linkage (children, height, size), heights non-decreasing; the last row is
        the top merge of the modality subtrees. Heights inside a modality are the subtree's
        unit count; the merges of modality roots lie above every modality's own tree.
    roots : list of int
        The node id of each modality's root in the returned matrix.
    """
    n = unit_ranges[-1][1]
    link = _Linkage(n)
    roots = []
    for m, (start, stop) in enumerate(unit_ranges):
        if m in image_grids:
            gh, gw = image_grids[m]
            roots.append(link.grid(np.arange(start, stop).reshape(gh, gw)))
        else:
            # tokens, audio windows and tabular features: neighbours merge first
            roots.append(link.bisect(list(range(start, stop))))
    top = max([link.height(r) for r in roots] + [0.0])

    def join(nodes: list[int]) -> int:
        # balanced merge of the modality roots, every merge above all modality trees
        if len(nodes) == 1:
            return nodes[0]
        mid = (len(nodes) + 1) // 2
        a, b = join(nodes[:mid]), join(nodes[mid:])
        return link.merge(a, b, top + len(nodes))

    join(roots)
    z = link.matrix()
    # modality roots were renumbered by the sort: find them again by their unit sets
    return z, _find_roots(z, unit_ranges)


def _find_roots(z: np.ndarray, unit_ranges: Sequence[tuple[int, int]]) -> list[int]:
    n = len(z) + 1
    lo = np.concatenate([np.arange(n), np.zeros(len(z), dtype=np.int64)])
    hi = np.concatenate([np.arange(n), np.zeros(len(z), dtype=np.int64)])
    for i, (a, b, _, _) in enumerate(z):
        lo[n + i], hi[n + i] = min(lo[int(a)], lo[int(b)]), max(hi[int(a)], hi[int(b)])
    size = np.concatenate([np.ones(n), z[:, 3]])
    roots = []
    for start, stop in unit_ranges:
        hit = np.nonzero((lo == start) & (hi == stop - 1) & (size == stop - start))[0]
        roots.append(int(hit[0]))
    return roots


# -- the masker -----------------------------------------------------------------------------------
class JointMasker(shap.maskers.Masker):
    """One SHAP masker over every unit of every modality of one sample.

    A sample is presented to SHAP as one flat float row: each modality's input flattened
    and concatenated (D values), followed by the same layout for that sample's baseline,
    so per-sample baselines work. Masking a unit replaces its elements by the baseline's.

    Parameters
    ----------
    specs : sequence of ModalitySpec
    shapes : sequence of tuple of int
        Per modality, the shape of one sample without the batch dimension, as the model
        function sees it: image (C, H, W), tokens as embeddings (T, E), tabular (F,),
        audio (1, L) or (L,).
    patch_size : int, default=8
        Side of the square image patches (the last row / column of patches may be smaller).
    audio_window : int, default=16
        Audio samples per unit.

    Attributes
    ----------
    shape : tuple of (1, M)
        SHAP's masker shape: one masked sample per mask, M binary units.
    clustering : ndarray of shape (M − 1, 4)
        The joint hierarchy (see :func:`joint_clustering`).
    modality_roots : list of int
        Node id of each modality's subtree root in ``clustering``.
    unit_ranges : list of (start, stop)
        Unit ids of each modality.
    unit_of : ndarray of shape (D,)
        The unit each element of the flat input belongs to (:func:`feature_groups` ids).
    unit_sizes : ndarray of shape (M,)
        Elements per unit.

    Notes
    -----
    Units are those of :func:`mmexplain.attribution.methods.feature_groups`: image patches
    (all channels together), one token (its whole embedding), one tabular / generic
    element, one audio window.
    """

    immutable_outputs = True  # every call returns a fresh array: SHAP need not copy it

    def __init__(self, specs: Sequence[ModalitySpec], shapes: Sequence[Sequence[int]], *,
                 patch_size: int = 8, audio_window: int = 16) -> None:
        self.specs = list(specs)
        self.shapes = [tuple(int(d) for d in s) for s in shapes]
        if len(self.specs) != len(self.shapes) or not self.specs:
            raise ConfigError(
                f"shapes must give one shape per modality ({len(self.specs)}); got {len(self.shapes)}."
            )
        self.patch_size = check_positive_int("patch_size", patch_size)
        self.audio_window = check_positive_int("audio_window", audio_window)
        for s, shape in zip(self.specs, self.shapes):
            if s.kind == "image" and len(shape) != 3:
                raise ConfigError(f"shapes[{s.name!r}]={shape}: an image sample must be (C, H, W).")
            if s.kind == "tokens" and len(shape) != 2:
                raise ConfigError(
                    f"shapes[{s.name!r}]={shape}: a token sample enters as embeddings (T, E)."
                )
        groups = feature_groups(self.specs, tuple(torch.empty(1, *s) for s in self.shapes),
                                patch_size=patch_size, audio_window=audio_window)
        self.unit_of = torch.cat([g.flatten() for g in groups]).numpy().astype(np.int64)
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.n_elements = int(sum(self.sizes))
        self.unit_sizes = np.bincount(self.unit_of).astype(np.float64)
        self.n_units = len(self.unit_sizes)
        self.unit_ranges = [(int(g.min()), int(g.max()) + 1) for g in groups]
        grids = {}
        for m, (s, shape) in enumerate(zip(self.specs, self.shapes)):
            if s.kind == "image":
                grids[m] = (-(-shape[1] // patch_size), -(-shape[2] // patch_size))
        self.shape = (1, self.n_units)
        if self.n_units > 1:
            self.clustering, self.modality_roots = joint_clustering(self.specs, self.unit_ranges, grids)
        else:
            self.clustering, self.modality_roots = np.zeros((0, 4)), [0]

    # -- SHAP's masker protocol -------------------------------------------------------------------
    def __call__(self, mask: Any, row: np.ndarray) -> np.ndarray:
        """Masked version of one sample.

        Parameters
        ----------
        mask : bool ndarray of shape (M,), or bool
            True keeps a unit's input values; False replaces them by the baseline's.
        row : ndarray of shape (2 D,) or (1, 2 D)
            The sample followed by its baseline (:meth:`rows`).

        Returns
        -------
        ndarray of shape (1, D)
        """
        mask = np.asarray(self._standardize_mask(mask, row), dtype=bool)
        if mask.shape != (self.n_units,):
            raise ConfigError(f"mask must have shape ({self.n_units},); got {mask.shape}.")
        row = np.asarray(row).reshape(-1)
        if len(row) != 2 * self.n_elements:
            raise ConfigError(
                f"row must hold the sample and its baseline ({2 * self.n_elements} values); got {len(row)}."
            )
        x, b = row[: self.n_elements], row[self.n_elements:]
        return np.where(mask[self.unit_of], x, b)[None]

    def mask_shapes(self, *args: Any) -> list[tuple[int]]:
        """One mask of M units per sample, whatever the row."""
        return [(self.n_units,)]

    def feature_names(self, *args: Any) -> list[list[str]]:
        """A readable name per unit: ``image[patch 1,2]``, ``text[3]``, ``audio[window 0]``."""
        names = []
        for s, shape, (start, stop) in zip(self.specs, self.shapes, self.unit_ranges):
            for u in range(stop - start):
                if s.kind == "image":
                    gw = -(-shape[2] // self.patch_size)
                    names.append(f"{s.name}[patch {u // gw},{u % gw}]")
                elif s.kind == "audio":
                    names.append(f"{s.name}[window {u}]")
                else:
                    names.append(f"{s.name}[{u}]")
        return [names]

    # -- layout helpers ---------------------------------------------------------------------------
    def rows(self, xs: Sequence[torch.Tensor], bs: Sequence[torch.Tensor]) -> np.ndarray:
        """SHAP rows (N, 2 D) float64: each sample's flat inputs, then its flat baseline."""
        flat = [t.detach().reshape(len(t), -1).double().cpu() for t in (*xs, *bs)]
        return torch.cat(flat, dim=1).numpy()

    def split(self, flat: np.ndarray, like: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Flat masked samples (K, D) back to one tensor (K, ...) per modality, typed like ``like``."""
        t = torch.from_numpy(np.ascontiguousarray(flat))
        parts = torch.split(t, self.sizes, dim=1)
        return tuple(p.reshape(len(t), *shape).to(ref.device, ref.dtype)
                     for p, shape, ref in zip(parts, self.shapes, like))

    def spread(self, values: np.ndarray) -> list[np.ndarray]:
        """Per-unit values (M,) to per-element maps, one (shape) array per modality.

        Each unit's value is divided evenly over its elements, so a modality's sum is its
        units' total.
        """
        per_element = values[self.unit_of] / self.unit_sizes[self.unit_of]
        bounds = np.cumsum([0, *self.sizes])
        return [per_element[a:b].reshape(shape) for a, b, shape in zip(bounds[:-1], bounds[1:], self.shapes)]


# -- helpers --------------------------------------------------------------------------------------
@contextlib.contextmanager
def _numpy_seed(seed: int | None) -> Iterator[None]:
    # SHAP draws from numpy's global RNG (queue tie-breaks, background picks): seed it for
    # reproducible results, and give the caller's RNG state back afterwards
    state = np.random.get_state()
    if seed is not None:
        np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _specs_of(f: nn.Module, specs: Sequence[ModalitySpec] | None) -> list[ModalitySpec]:
    if specs is not None:
        return list(specs)
    if hasattr(f, "specs"):
        return list(f.specs)
    raise ConfigError("specs is required when f is not an EmbeddingInputModel (it has no .specs).")


def _sample_ids(ids: tuple[torch.Tensor, ...] | None, i: int, k: int) -> tuple[torch.Tensor, ...]:
    # sample i's token ids, repeated for k rows: the ids are fixed while embeddings vary
    return tuple(t[i:i + 1].expand(k, *t.shape[1:]) for t in ids or ())


def _column(target: torch.Tensor | None, i: int) -> int:
    return 0 if target is None else int(target[i])


# -- shap_partition -------------------------------------------------------------------------------
@_register(
    "shap_partition",
    "Partition SHAP (Owen values) over image patches, tokens, features and audio windows jointly",
    {"max_evals": 500, "patch_size": 8, "audio_window": 16, "seed": 0},
    complete=True,
)
def _shap_partition(f: Callable[..., torch.Tensor], xs: tuple[torch.Tensor, ...],
                    bs: tuple[torch.Tensor, ...], target: torch.Tensor | None,
                    ids: tuple[torch.Tensor, ...] | None, *, internal_batch_size: int | None,
                    max_evals: int, patch_size: int, audio_window: int, seed: int | None,
                    specs: Sequence[ModalitySpec] | None = None,
                    ) -> tuple[tuple[torch.Tensor, ...], None]:
    """Partition SHAP over a :class:`JointMasker`, one sample at a time.

    Parameters
    ----------
    f : EmbeddingInputModel
        ``f(*xs, *ids)`` -> (K, C).
    xs, bs : tuple of Tensor of shape (N, ...)
        Inputs and baselines, token modalities as embeddings (N, T, E).
    target : LongTensor of shape (N,) or None
        Output column per sample; None explains column 0.
    ids : tuple of LongTensor of shape (N, T), or None
        Token ids of the token modalities, passed through unmasked.
    internal_batch_size : int or None
        Masked samples per model call (default 64).
    max_evals : int
        Model evaluations per sample. Exact Owen values need of order M² for M units
        (162 for 13 units, 802 for 25, 1,450 for 40); with fewer, the credit of groups left
        unsplit is spread over their units in proportion to size (values still sum to
        f(x) − f(baseline)).
    patch_size, audio_window : int
        Unit sizes, as for ``occlusion``.
    seed : int or None
        Seeds SHAP's tie-breaking (numpy's global RNG, restored afterwards).
    specs : sequence of ModalitySpec, optional
        Default ``f.specs``.

    Returns
    -------
    attributions : tuple of Tensor shaped like ``xs``
        Each unit's SHAP value spread evenly over its elements.
    delta : None
        Completeness is exact by construction; ``attribute()`` reports it.
    """
    specs = _specs_of(f, specs)
    check_positive_int("max_evals", max_evals, minimum=3)
    masker = JointMasker(specs, [x.shape[1:] for x in xs], patch_size=patch_size, audio_window=audio_window)
    rows = masker.rows(xs, bs)
    chunk = internal_batch_size or 64
    current = {"i": 0}

    def model_fn(flat: np.ndarray) -> np.ndarray:
        outs = []
        for start in range(0, len(flat), chunk):
            part = masker.split(flat[start:start + chunk], xs)
            k = len(part[0])
            with torch.no_grad():
                out = f(*part, *_sample_ids(ids, current["i"], k))
            outs.append(out.reshape(k, -1).double().cpu().numpy())
        return np.concatenate(outs)

    n = len(xs[0])
    values = np.zeros((n, masker.n_units))
    if masker.n_units == 1:
        # a one-player game: the player gets the whole difference (SHAP needs two players)
        for i in range(n):
            current["i"] = i
            masked = np.stack([masker(np.ones(1, bool), rows[i])[0], masker(np.zeros(1, bool), rows[i])[0]])
            out = model_fn(masked)[:, _column(target, i)]
            values[i, 0] = out[0] - out[1]
    else:
        explainer = shap.PartitionExplainer(model_fn, masker)
        with _numpy_seed(seed):
            for i in range(n):
                current["i"] = i
                col = _column(target, i)
                # explain only the target column: SHAP's budgeted recursion follows its changes
                exp = explainer(rows[i:i + 1], max_evals=max_evals, outputs=np.array([col]),
                                batch_size=chunk, silent=True)
                values[i] = np.asarray(exp.values).reshape(masker.n_units, -1)[:, 0]
    maps = [masker.spread(v) for v in values]
    attr = tuple(torch.from_numpy(np.stack([m[k] for m in maps])).to(x.device, x.dtype)
                 for k, x in enumerate(xs))
    return attr, None


# -- shap_gradient --------------------------------------------------------------------------------
class _FixedIdsTarget(nn.Module):
    """``f`` with one sample's token ids fixed and one output column: SHAP's
    GradientExplainer interpolates (and differentiates) every input it is given, so the
    ids must not be among them."""

    def __init__(self, f: nn.Module, ids: tuple[torch.Tensor, ...], column: int) -> None:
        super().__init__()
        self.f = f
        self.ids = ids
        self.column = column

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        k = len(xs[0])
        out = self.f(*xs, *(t.expand(k, *t.shape[1:]) for t in self.ids))[:, self.column:self.column + 1]
        # SHAP differentiates w.r.t. every input: keep one the model ignores in the graph (zero gradient)
        return out + sum((x * 0).reshape(k, -1).sum(1, keepdim=True) for x in xs)


def _background(f: nn.Module, specs: Sequence[ModalitySpec], xs: tuple[torch.Tensor, ...],
                bs: tuple[torch.Tensor, ...], background: Any, i: int) -> tuple[torch.Tensor, ...]:
    # background rows (K, ...) per modality for sample i, token modalities as embeddings
    if isinstance(background, Mapping):
        names = [s.name for s in specs]
        if sorted(background) != sorted(names):
            raise ConfigError(f"background must hold one tensor per modality {names}; got {sorted(background)}.")
        sizes = {k: len(v) for k, v in background.items()}
        if len(set(sizes.values())) != 1:
            raise ConfigError(f"background tensors disagree on their number of rows: {sizes}.")
        dev = xs[0].device
        emb = f.embed({k: v.to(dev) for k, v in background.items()})
        return tuple(e.detach().to(x.dtype) for e, x in zip(emb, xs))
    if background not in BACKGROUNDS:
        raise ConfigError(
            f"background={background!r} is not allowed; choose one of {list(BACKGROUNDS)} or pass a "
            "dict of modality name -> tensor (K, ...) (token ids for token modalities)."
        )
    out = []
    for x, b in zip(xs, bs):
        rows = []
        if background in ("baseline+mean", "baseline"):
            rows.append(b[i:i + 1])
        if background in ("baseline+mean", "mean"):
            rows.append(x.mean(0, keepdim=True))
        out.append(torch.cat(rows).detach())
    return tuple(out)


@_register(
    "shap_gradient",
    "SHAP GradientExplainer (expected gradients) against the baseline and the batch mean",
    {"n_samples": 200, "background": "baseline+mean", "seed": 0},
)
def _shap_gradient(f: nn.Module, xs: tuple[torch.Tensor, ...], bs: tuple[torch.Tensor, ...],
                   target: torch.Tensor | None, ids: tuple[torch.Tensor, ...] | None, *,
                   internal_batch_size: int | None, n_samples: int, background: Any,
                   seed: int | None, specs: Sequence[ModalitySpec] | None = None,
                   ) -> tuple[tuple[torch.Tensor, ...], None]:
    """``shap.GradientExplainer`` on the float inputs (token modalities as embeddings).

    Parameters
    ----------
    f : EmbeddingInputModel
    xs, bs : tuple of Tensor of shape (N, ...)
        Inputs and baselines, token modalities as embeddings (N, T, E).
    target : LongTensor of shape (N,) or None
        Output column per sample; None explains column 0.
    ids : tuple of LongTensor of shape (N, T), or None
    internal_batch_size : int or None
        Gradient batch size (default 50).
    n_samples : int
        Interpolation samples per explained sample.
    background : {"baseline+mean", "baseline", "mean"} or dict of str -> Tensor (K, ...)
        Reference rows: the sample's baseline and / or the batch mean, or explicit rows
        per modality (token ids for token modalities, embedded here).
    seed : int or None
        Seeds SHAP's sampling (numpy's global RNG, restored afterwards).

    Returns
    -------
    attributions : tuple of Tensor shaped like ``xs``
        Σ ≈ f(x) − E_background[f]; exact for a linear model with a one-row background.
    delta : None
    """
    specs = _specs_of(f, specs)
    n_samples = check_positive_int("n_samples", n_samples)
    n = len(xs[0])
    attrs: list[list[torch.Tensor]] = [[] for _ in xs]
    # one explainer per sample: the ids must match the row explained (and the background
    # rows may be per-sample baselines)
    with _numpy_seed(seed):
        for i in range(n):
            g = _FixedIdsTarget(f, _sample_ids(ids, i, 1), _column(target, i))
            data = list(_background(f, specs, xs, bs, background, i))
            explainer = shap.GradientExplainer(g, data, batch_size=internal_batch_size or 50)
            phis = explainer.shap_values([x[i:i + 1].detach() for x in xs], nsamples=n_samples,
                                         rseed=int(np.random.randint(0, 2**31 - 1)))
            for k, (phi, x) in enumerate(zip(phis, xs)):
                attrs[k].append(torch.as_tensor(np.asarray(phi)).reshape(x.shape[1:]).to(x.device, x.dtype))
    return tuple(torch.stack(a) for a in attrs), None
