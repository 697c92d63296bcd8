"""SHAP attribution methods: Partition SHAP with the modalities as unions, and expected gradients.

``shap_partition`` explains a multimodal sample as one cooperative game over its units
(image patches, tokens, tabular features, audio windows) in which the modalities are a
priori unions: it returns Owen values whose top level is symmetric in the modalities, so a
modality's total is its exact modality Shapley value whatever the order of the modalities,
while the credit inside a modality follows SHAP's Partition recursion over that
modality's own hierarchy.

SHAP's own ``Composite`` masker cannot join the partition trees of a ``Text`` and an
``Image`` masker, and a Partition hierarchy is a binary tree: one tree over all modalities
(:class:`JointMasker` with ``modality=None``, :func:`joint_clustering`) joins the modality
roots by binary merges, which makes the totals depend on the modality order. So
``shap_partition`` runs ``shap.PartitionExplainer`` once per modality and coalition of the
other modalities, on a :class:`JointMasker` whose players are that modality's units.

Importing this module registers ``shap_partition`` and ``shap_gradient`` in
:data:`mmexplain.attribution.methods.METHODS`.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..exceptions import ConfigError
from ..modality import ModalitySpec
from ..validation import check_positive_int
from .methods import _register

# JointMasker too, imported on first access (module __getattr__ below)
__all__ = ["joint_clustering"]


def _shap() -> Any:
    """The ``shap`` package, imported on first use: it costs seconds (numba, matplotlib) in
    every process, and most never run a SHAP method."""
    with warnings.catch_warnings():
        # shap's plotting colours call matplotlib APIs slated for deprecation: not our users' concern
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        import shap
    return shap


def __getattr__(name: str) -> Any:
    if name == "JointMasker":  # subclasses shap's Masker, so it lives beside a shap import
        from ._shap_masker import JointMasker

        return JointMasker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")



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

    def subtree(self, start: int, stop: int, grid: tuple[int, int] | None) -> int:
        """One modality's tree over units ``start … stop − 1``: a spatial bisection of its
        patch grid (row-major ids) for an image, neighbours first otherwise (tokens, audio
        windows, tabular features)."""
        if grid is not None:
            return self.grid(np.arange(start, stop).reshape(grid))
        return self.bisect(list(range(start, stop)))

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

    The modality roots are joined by balanced binary merges in ``specs`` order, so Owen
    values over this tree depend on that order (for f = a·b·c with baselines 0 the third
    modality gets half of f(x), the others a quarter each). ``shap_partition`` does not
    use it: it runs one Partition explanation per modality over that modality's subtree.

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
    roots = [link.subtree(start, stop, image_grids.get(m)) for m, (start, stop) in enumerate(unit_ranges)]
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


def _exact_evals(z: np.ndarray) -> int:
    """Model evaluations SHAP's Partition recursion makes on tree ``z`` when its budget is
    not binding, besides the two end points: two per visit of an internal node, and a node
    at depth d is visited in 2^d contexts (both states of each ancestor's other child)."""
    n = len(z) + 1
    depth = {2 * n - 2: 0}  # the root is the last (highest) row
    total = 0
    for k in range(len(z) - 1, -1, -1):  # parents come after their children
        d = depth[n + k]
        total += 2 << d
        for child in z[k, :2]:
            depth[int(child)] = d + 1
    return total


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


def _shapley_weights(m: int) -> list[float]:
    """Shapley weight |S|!(M − |S| − 1)!/M! of a coalition S of the other players, by |S|."""
    return [math.factorial(k) * math.factorial(m - k - 1) / math.factorial(m) for k in range(m)]


def _members(coalition: int, m: int) -> list[bool]:
    # bit k of the coalition set = modality k present
    return [bool(coalition >> k & 1) for k in range(m)]


def _split_budget(total: int, needs: np.ndarray, priority: np.ndarray) -> np.ndarray:
    """Even evaluation counts per run, summing to at most ``total``: shares in proportion to
    ``priority``, none above its run's ``need``, and what a capped run does not use shared
    among the others in the same proportions (water-filling)."""
    needs = needs.astype(np.int64)
    if total >= needs.sum():
        return needs
    alloc = np.zeros(len(needs))
    open_ = (needs > 0) & (priority > 0)
    left = float(total)
    while open_.any():
        idx = np.flatnonzero(open_)
        share = left * priority[idx] / priority[idx].sum()
        full = share >= needs[idx]
        if not full.any():
            alloc[idx] = share
            break
        alloc[idx[full]] = needs[idx[full]]
        left -= float(needs[idx[full]].sum())
        open_[idx[full]] = False
    # SHAP evaluates masks in pairs: an even budget is spent exactly
    return (2 * np.floor(alloc / 2)).astype(np.int64)


# -- shap_partition -------------------------------------------------------------------------------
@_register(
    "shap_partition",
    "Partition SHAP: Owen values over patches, tokens, features and audio windows, modalities as "
    "unions (totals = exact modality Shapley values)",
    {"max_evals": 500, "patch_size": 8, "audio_window": 16, "seed": 0},
    complete=True, stochastic=True,
)
def _shap_partition(f: Callable[..., torch.Tensor], xs: tuple[torch.Tensor, ...],
                    bs: tuple[torch.Tensor, ...], target: torch.Tensor | None,
                    ids: tuple[torch.Tensor, ...] | None, *, internal_batch_size: int | None,
                    max_evals: int, patch_size: int, audio_window: int, seed: int | None,
                    specs: Sequence[ModalitySpec] | None = None,
                    ) -> tuple[tuple[torch.Tensor, ...], None, dict[str, Any]]:
    """Owen values of every unit, the modalities being a priori unions with a symmetric top level.

    The game: for sample x with baseline b, coalition T of units is worth the target output
    of the input whose units in T take x's values and all others b's (token ids stay the
    sample's; their embeddings are masked). The units are grouped by modality, and inside a
    modality by its tree (:class:`JointMasker`). For unit u of modality m, with M
    modalities,

        φ_u = Σ_{S ⊆ modalities ∖ {m}} |S|!(M − |S| − 1)!/M! · ψ_u(S),

    where ψ_u(S) is SHAP's Partition value of u (``shap.PartitionExplainer``, Owen values
    over modality m's binary tree) in the game over m's units with the modalities in S at
    x and the others at b. This is the Owen value of u under the coalition structure
    {modalities} (Shapley weights across modalities, Partition within one), so:

    * each modality's total is Σ_S w_S (v(S ∪ m) − v(S)), its exact modality Shapley value
      (what :func:`mmexplain.attribution.modality_shapley` gives with the same baselines),
      for any budget and independent of the modality order;
    * Σ_u φ_u = f(x) − f(b) exactly;
    * for an additive model each unit gets its own effect; a modality with one unit gets
      its weighted marginals (its modality Shapley value).

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
        Model evaluations per sample, over all runs. A modality m with n_m > 1 units has
        2^(M−1) Partition runs (M·2^(M−1) runs in all when every modality has several
        units), each costing 2 for its end points v(S), v(S ∪ m), plus up to the E_m
        evaluations its exact values need (of order n_m²: 10 for 4 units, 26 for 6, 170 for
        16, 2,730 for 64); the one-unit modalities share the 2^M coalition values. Those
        fixed costs are the least ``max_evals`` allowed. The rest is shared among the runs
        in proportion to E_m times the run's Shapley weight, no run above its E_m, a capped
        run's surplus going to the others (water-filling); so every run is exact once
        ``max_evals`` covers them all (meta ``owen_exact``). A run with fewer evaluations
        spreads the credit of the groups it leaves unsplit over their units in proportion
        to size; modality totals and completeness stay exact.
    patch_size, audio_window : int
        Unit sizes, as for ``occlusion``.
    seed : int or None
        Seeds SHAP's tie-breaking (numpy's global RNG, restored afterwards).
    specs : sequence of ModalitySpec, optional
        Default ``f.specs``.

    Returns
    -------
    attributions : tuple of Tensor shaped like ``xs``
        Each unit's value spread evenly over its elements.
    delta : None
        Completeness is exact by construction; ``attribute()`` reports it.
    meta : dict
        ``n_evals``: model evaluations made per sample (list of N int); ``owen_exact``:
        whether every run had the evaluations its exact values need.

    Raises
    ------
    ConfigError
        If ``max_evals`` is below the fixed costs above.
    """
    specs = _specs_of(f, specs)
    check_positive_int("max_evals", max_evals)
    n_mod = len(specs)
    shapes = [x.shape[1:] for x in xs]
    from ._shap_masker import JointMasker

    shap = _shap()
    maskers = [JointMasker(specs, shapes, patch_size=patch_size, audio_window=audio_window, modality=m)
               for m in range(n_mod)]
    layout = maskers[0]
    weights = _shapley_weights(n_mod)
    # one Partition run per modality with several units and coalition of the other modalities
    runs = [(m, c) for m in range(n_mod) if maskers[m].n_players > 1
            for c in range(1 << n_mod) if not c >> m & 1]
    singles = [m for m in range(n_mod) if maskers[m].n_players == 1]
    fixed = 2 * len(runs) + ((1 << n_mod) if singles else 0)
    if max_evals < fixed:
        raise ConfigError(
            f"max_evals={max_evals} is below the {fixed} model evaluations per sample that these "
            f"{n_mod} modalities need at least ({len(runs)} Partition runs, 2 each"
            + (f", plus {1 << n_mod} coalition values for the one-unit modalities" if singles else "")
            + f"); pass max_evals >= {fixed}."
        )
    needs = np.array([_exact_evals(maskers[m].clustering) for m, _ in runs], dtype=np.int64)
    priority = np.array([weights[c.bit_count()] for _, c in runs]) * needs
    budgets = _split_budget(max_evals - fixed, needs, priority)

    chunk = internal_batch_size or 64
    current = {"i": 0, "evals": 0}

    def model_fn(flat: np.ndarray) -> np.ndarray:
        outs = []
        for start in range(0, len(flat), chunk):
            part = layout.split(flat[start:start + chunk], xs)
            k = len(part[0])
            with torch.no_grad():
                out = f(*part, *_sample_ids(ids, current["i"], k))
            outs.append(out.reshape(k, -1).double().cpu().numpy())
        current["evals"] += len(flat)
        return np.concatenate(outs)

    explainers = {m: shap.PartitionExplainer(model_fn, maskers[m]) for m, _ in runs}
    n = len(xs[0])
    values = np.zeros((n, layout.n_units))
    n_evals = []
    with _numpy_seed(seed):
        for i in range(n):
            current["i"], current["evals"] = i, 0
            col = _column(target, i)
            xi, bi = tuple(x[i:i + 1] for x in xs), tuple(b[i:i + 1] for b in bs)
            if singles:
                # every coalition's value once: a one-unit modality's value is its Shapley value
                table = np.concatenate([layout.rows(xi, bi, _members(c, n_mod))[:, :layout.n_elements]
                                        for c in range(1 << n_mod)])
                v = model_fn(table)[:, col]
                for m in singles:
                    values[i, maskers[m].players[0]] = sum(
                        weights[c.bit_count()] * (v[c | 1 << m] - v[c])
                        for c in range(1 << n_mod) if not c >> m & 1
                    )
            for (m, c), budget in zip(runs, budgets):
                # modality m's units are the players; S = c at the sample's values, the rest at b
                row = layout.rows(xi, bi, _members(c | 1 << m, n_mod))
                # explain only the target column: SHAP's budgeted recursion follows its changes
                exp = explainers[m](row, max_evals=2 + int(budget), outputs=np.array([col]),
                                    batch_size=chunk, silent=True)
                start, stop = maskers[m].players
                values[i, start:stop] += weights[c.bit_count()] * np.asarray(exp.values).reshape(stop - start, -1)[:, 0]
            n_evals.append(current["evals"])
    maps = [layout.spread(v) for v in values]
    attr = tuple(torch.from_numpy(np.stack([m[k] for m in maps])).to(x.device, x.dtype)
                 for k, x in enumerate(xs))
    return attr, None, {"n_evals": n_evals, "owen_exact": bool(np.all(budgets >= needs))}


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
    if background is not None:
        raise ConfigError(
            f"background={background!r} is not allowed; pass None (the reference) or a dict of modality name -> "
            "tensor (K, ...) of K reference samples (token ids for token modalities)."
        )
    return tuple(b[i:i + 1].detach() for b in bs)


@_register(
    "shap_gradient",
    "SHAP GradientExplainer (expected gradients) against the reference, or K background samples",
    {"n_samples": 200, "background": None, "seed": 0},
    gradient_path=True, stochastic=True,
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
    background : None or dict of str -> Tensor (K, ...)
        None: the reference (one row, the default meaning of "absent" everywhere); or K
        reference samples per modality (token ids for token modalities, embedded here), as
        ``background=`` means for :func:`~mmexplain.attribution.modality_shapley`.
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
            explainer = _shap().GradientExplainer(g, data, batch_size=internal_batch_size or 50)
            phis = explainer.shap_values([x[i:i + 1].detach() for x in xs], nsamples=n_samples,
                                         rseed=int(np.random.randint(0, 2**31 - 1)))
            for k, (phi, x) in enumerate(zip(phis, xs)):
                attrs[k].append(torch.as_tensor(np.asarray(phi)).reshape(x.shape[1:]).to(x.device, x.dtype))
    return tuple(torch.stack(a) for a in attrs), None
