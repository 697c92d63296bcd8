"""Exact modality-level Shapley values and pairwise Shapley interactions.

The players of the cooperative game are the modalities of a multimodal model. A
coalition ``S`` is evaluated by running the model with the modalities in ``S`` set to
the sample's own values and every other modality *absent*. "Absent" means one of:

* **baseline** (default): the modality takes a fixed reference value (zeros unless
  ``baselines=`` says otherwise);
* **background** (``background=``): the coalition value is the mean model output over
  K reference samples that fill the absent modalities (interventional Shapley values,
  as in SHAP's ``ExactExplainer`` with an independent masker and in InterSHAP).

All ``2^M`` coalitions of all ``N`` samples go through the model in one batched
no-grad forward pass (chunked only when the batch would be too large), and Shapley
values and interactions are read off the coalition values with precomputed weight
matrices.

References
----------
.. [1] L. S. Shapley, "A value for n-person games", 1953.
.. [2] M. Grabisch and M. Roubens, "An axiomatic approach to the concept of interaction
   among players in cooperative games", Int. J. Game Theory 28, 1999.
.. [3] S. M. Lundberg et al., "From local explanations to global understanding with
   explainable AI for trees", Nature Machine Intelligence 2, 2020 (SHAP interaction
   values: the symmetric split of the interaction index used here).
.. [4] L. Wenderoth, K. Hemker, N. Simidjievski and M. Jamnik, "Measuring Cross-Modal
   Interactions in Multimodal Models" (InterSHAP), AAAI 2025; reference code
   https://github.com/LauraWenderoth/InterSHAP (``synergy_evaluation/interaction_values.py``).
.. [5] L. Parcalabescu and A. Frank, "MM-SHAP: A Performance-agnostic Metric for
   Measuring Multimodal Contributions in Vision and Language Models & Tasks", ACL 2023.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from ..exceptions import AttributionError, ConfigError
from ..factorised import use_factorised
from ..reference import resolve_baselines
from ..validation import batch_size, check_choice, check_inputs, check_positive_int, check_target

__all__ = [
    "MAX_MODALITIES",
    "DEFAULT_ELEMENT_BUDGET",
    "ModalityShapley",
    "modality_shapley",
    "share_by_group",
]

#: Most modalities :func:`modality_shapley` accepts (``2^6 = 64`` coalitions per sample).
MAX_MODALITIES = 6

#: Input elements (summed over modalities) per forward chunk when ``max_batch_size`` is
#: None: 2**25 elements is 128 MiB of float32 inputs. Batches under it run in one pass.
DEFAULT_ELEMENT_BUDGET = 2**25

COALITION_ORDER = "bit m of the column index set = modality m present (modality m = modalities[m])"

ModelFn = Callable[..., Any]


# --------------------------------------------------------------------------------------
# Weight matrices
# --------------------------------------------------------------------------------------


@cache
def _weight_matrices(m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Shapley and interaction weights over the ``2^m`` coalitions.

    Returns
    -------
    shapley : Tensor of shape (2^m, m), float64
        ``phi = V @ shapley`` for coalition values ``V`` of shape (N, 2^m).
    interaction : Tensor of shape (2^m, m, m), float64
        ``Phi = einsum("nc,cij->nij", V, interaction)``: InterSHAP's matrix, see
        :class:`ModalityShapley`.
    """
    n_coal = 1 << m
    shapley = np.zeros((n_coal, m))
    inter = np.zeros((n_coal, m, m))
    fact = math.factorial
    for s_mask in range(n_coal):
        size = bin(s_mask).count("1")
        for i in range(m):
            if s_mask >> i & 1:
                continue
            # phi_i = sum_S |S|!(m-|S|-1)!/m! * (v(S+i) - v(S))
            w = fact(size) * fact(m - size - 1) / fact(m)
            shapley[s_mask | 1 << i, i] += w
            shapley[s_mask, i] -= w
            for j in range(i + 1, m):
                if s_mask >> j & 1:
                    continue
                # Half the Grabisch-Roubens index, so that Phi_ij + Phi_ji is the index itself.
                w2 = fact(size) * fact(m - size - 2) / (2 * fact(m - 1))
                for c, sign in (
                    (s_mask | 1 << i | 1 << j, 1.0),
                    (s_mask | 1 << i, -1.0),
                    (s_mask | 1 << j, -1.0),
                    (s_mask, 1.0),
                ):
                    inter[c, i, j] += sign * w2
                    inter[c, j, i] += sign * w2
    # Main effects on the diagonal: each row of Phi then sums to phi_i.
    for i in range(m):
        inter[:, i, i] = shapley[:, i] - inter[:, i, :].sum(axis=1)
    return torch.from_numpy(shapley), torch.from_numpy(inter)


# --------------------------------------------------------------------------------------
# Batched evaluation (shared with emap.py)
# --------------------------------------------------------------------------------------


def _rows_per_chunk(sources: Mapping[str, torch.Tensor], max_batch_size: int | None) -> int:
    if max_batch_size is not None:
        return check_positive_int("max_batch_size", max_batch_size)
    per_row = sum(max(1, math.prod(t.shape[1:])) for t in sources.values())
    return max(1, DEFAULT_ELEMENT_BUDGET // per_row)


def _as_2d_output(out: Any, rows: int) -> torch.Tensor:
    """Model output as a (rows, C) tensor; (rows,) and (rows, 1) give C = 1."""
    if not isinstance(out, torch.Tensor):
        raise AttributionError(
            f"The model must return a tensor of logits (N, C) or a scalar output (N,); "
            f"got {type(out).__name__}. Wrap the model so that model(**inputs) returns a tensor."
        )
    if out.dim() == 1:
        out = out.unsqueeze(1)
    if out.dim() != 2 or out.shape[0] != rows:
        raise AttributionError(
            f"The model returned shape {tuple(out.shape)} for a batch of {rows}; "
            f"expected ({rows}, C) logits or ({rows},) / ({rows}, 1) scalar outputs."
        )
    return out


def _forward_gather(
    model: ModelFn,
    sources: Mapping[str, torch.Tensor],
    index: Mapping[str, torch.Tensor],
    *,
    max_batch_size: int | None,
) -> torch.Tensor:
    """Run ``model`` on rows gathered from ``sources``; return outputs (R, C) as float64 CPU.

    Row ``r`` of the batch is ``{name: sources[name][index[name][r]]}``. Rows are built
    chunk by chunk with ``index_select`` so a chunked run never holds the whole batch.
    """
    total = next(iter(index.values())).shape[0]
    chunk = _rows_per_chunk(sources, max_batch_size)
    outs: list[torch.Tensor] = []
    with torch.no_grad():
        for start in range(0, total, chunk):
            stop = min(start + chunk, total)
            batch = {
                name: src.index_select(0, index[name][start:stop]) for name, src in sources.items()
            }
            out = _as_2d_output(model(**batch), stop - start)
            outs.append(out.detach().to(device="cpu", dtype=torch.float64))
    return outs[0] if len(outs) == 1 else torch.cat(outs, dim=0)


def _forward_gather_factorised(
    model: Any,
    sources: Mapping[str, torch.Tensor],
    index: Mapping[str, torch.Tensor],
    *,
    max_batch_size: int | None,
) -> torch.Tensor:
    """Like :func:`_forward_gather`, with ``model.encode`` run once over the distinct rows of
    ``sources`` and only ``model.fuse`` over the gathered coalition rows."""
    use_factorised(model, True)
    rows = next(iter(sources.values())).shape[0]
    chunk = _rows_per_chunk(sources, max_batch_size)
    parts: list[dict[str, torch.Tensor]] = []
    with torch.no_grad():
        for start in range(0, rows, chunk):
            part = model.encode({k: v[start : start + chunk] for k, v in sources.items()})
            if not isinstance(part, Mapping) or set(part) != set(sources):
                raise AttributionError(
                    f"model.encode must return a dict with one tensor per modality {sorted(sources)}; "
                    f"got {sorted(part) if isinstance(part, Mapping) else type(part).__name__}."
                )
            parts.append(part)
    features = {k: torch.cat([p[k] for p in parts]) if len(parts) > 1 else parts[0][k] for k in sources}

    def fuse(**feats: torch.Tensor) -> torch.Tensor:
        return model.fuse(feats)

    return _forward_gather(fuse, features, index, max_batch_size=max_batch_size)


def _gather_outputs(
    model: Any,
    sources: Mapping[str, torch.Tensor],
    index: Mapping[str, torch.Tensor],
    *,
    max_batch_size: int | None,
    factorised: bool | None,
) -> torch.Tensor:
    """The model on rows mixed from ``sources`` (:func:`_forward_gather`); with
    ``factorised`` (default: ``model.modality_factorised``) its encoders run once per
    source row and only its fusion over the mixed rows (:func:`_forward_gather_factorised`).
    Every explainer that mixes modalities across samples (coalitions, EMAP's cross pairs)
    goes through here."""
    gather = _forward_gather_factorised if use_factorised(model, factorised) else _forward_gather
    return gather(model, sources, index, max_batch_size=max_batch_size)


def _select_target(values: torch.Tensor, target: torch.Tensor | None, name: str = "target") -> torch.Tensor:
    """Pick the target output from ``values`` of shape (N, ..., C); returns (N, ...)."""
    n_out = values.shape[-1]
    if target is None:
        if n_out != 1:
            raise ConfigError(
                f"{name}=None is only allowed for a scalar-output model, but the model returns "
                f"{n_out} outputs per sample; pass {name} as an int or a tensor of N class indices."
            )
        return values[..., 0]
    bad = (target < 0) | (target >= n_out)
    if bool(bad.any()):
        raise ConfigError(
            f"{name} holds class index {int(target[bad][0])}, but the model returns {n_out} "
            f"outputs per sample; allowed indices are 0..{n_out - 1}."
        )
    idx = target.to(values.device).view(-1, *([1] * (values.dim() - 1)))
    idx = idx.expand(*values.shape[:-1], 1)
    return values.gather(-1, idx).squeeze(-1)


# --------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------


@dataclass
class ModalityShapley:
    """Exact modality Shapley values and InterSHAP interaction matrices for N samples.

    All tensors are float64 on the CPU (float64 keeps the efficiency identity
    ``values.sum(1) + base_value == full_value`` exact to ~1e-12 whatever the model's dtype).

    Attributes
    ----------
    values : Tensor of shape (N, M)
        Shapley value of each modality (column order = ``modalities``).
    interactions : Tensor of shape (N, M, M)
        InterSHAP's interaction matrix ``Phi`` [4]_, the modality-level analogue of SHAP
        interaction values [3]_. Off-diagonal ``Phi[i, j] = Phi[j, i]`` is *half* the
        Grabisch-Roubens Shapley interaction index [2]_::

            Phi_ij = sum_{S ⊆ M \\ {i,j}} |S|! (M-|S|-2)! / (2 (M-1)!)
                     * (v(S+i+j) - v(S+i) - v(S+j) + v(S))

        and the diagonal holds the main effects ``Phi_ii = phi_i - sum_{j != i} Phi_ij``.
        Hence each row sums to ``values[:, i]`` and the whole matrix sums to
        ``full_value - base_value``. For M = 1 the matrix is ``[[phi]]``. The pairwise
        index does not see higher-order structure separately: for ``f = x_a x_b x_c``
        (zero baselines) each off-diagonal entry is ``f/4`` and each diagonal ``-f/6``.
    modalities : list of str
        Modality names in column order.
    base_value : Tensor of shape (N,)
        ``v(∅)``: the output with every modality absent.
    full_value : Tensor of shape (N,)
        ``v(M)``: the output on the sample itself.
    coalition_values : Tensor of shape (N, 2^M)
        ``v(S)`` for every coalition; column ``c`` is the coalition whose bit ``m`` is set
        when modality ``m`` is present (column 0 = all absent, column ``2^M - 1`` = all
        present; for modalities ``[a, b]`` the columns are ``∅, {a}, {b}, {a, b}``).
    target : Tensor of shape (N,) or None
        The explained output index per sample (None for scalar-output models).
    background_size : int or None
        K when the values are interventional (``background=``), else None.
    game : {"logit", "probability"}
        What a coalition is worth (see :func:`modality_shapley`).
    reference : dict of str -> str
        What "absent" meant for each modality, in words.
    """

    values: torch.Tensor
    interactions: torch.Tensor
    modalities: list[str]
    base_value: torch.Tensor
    full_value: torch.Tensor
    coalition_values: torch.Tensor
    target: torch.Tensor | None = None
    background_size: int | None = None
    game: str = "logit"
    reference: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, m = self.values.shape
        expected = {
            "interactions": (n, m, m),
            "base_value": (n,),
            "full_value": (n,),
            "coalition_values": (n, 1 << m),
        }
        for name, shape in expected.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f"ModalityShapley.{name} has shape {got}; expected {shape}.")
        if len(self.modalities) != m:
            raise ValueError(
                f"ModalityShapley.modalities has {len(self.modalities)} names for {m} value columns."
            )

    @property
    def n_samples(self) -> int:
        """Number of explained samples N."""
        return self.values.shape[0]

    # -- shares --------------------------------------------------------------------

    def shares(self) -> torch.Tensor:
        """MM-SHAP shares [5]_: ``|phi_m| / sum_k |phi_k|`` per sample.

        Returns
        -------
        Tensor of shape (N, M)
            Rows sum to 1; a row whose Shapley values are all zero is undefined and set to NaN.
        """
        mag = self.values.abs()
        total = mag.sum(dim=1, keepdim=True)
        return torch.where(total > 0, mag / total, torch.full_like(mag, float("nan")))

    def mean_shares(self) -> pd.Series:
        """Mean MM-SHAP share of each modality over the samples (NaN rows skipped).

        Returns
        -------
        pandas.Series
            Indexed by modality name, named ``"share"``.
        """
        mean = torch.nanmean(self.shares(), dim=0)
        return pd.Series(mean.numpy(), index=pd.Index(self.modalities, name="modality"), name="share")

    def interaction_share(
        self, per_sample: bool = False, *, aggregate: Literal["pooled", "mean"] = "pooled"
    ) -> torch.Tensor | float:
        """InterSHAP [4]_: the fraction of the model's behaviour due to cross-modal interactions.

        Per sample, ``sum_{i != j} |Phi_ij| / sum_{i, j} |Phi_ij|`` (both off-diagonal
        entries counted, as in the InterSHAP reference code; a sample whose matrix is all
        zero is undefined and gives NaN). Multiply by 100 for the paper's percentages.

        Parameters
        ----------
        per_sample : bool, default=False
            Return the (N,) per-sample scores instead of one global score.
        aggregate : {"pooled", "mean"}, default="pooled"
            Global score only. ``"pooled"``: average ``Phi`` over the samples first, then
            take the ratio of absolute values (``interaction_index_dataset.py`` in the
            reference code). On HD-XOR this reproduces the paper's Table 2 (FCNN:
            uniqueness 0.2 %, synergy 98.0 %, redundancy 38.6 %; see
            ``benchmarks/intershap_hdxor.py``), so it is the default. ``"mean"``: the mean
            of the per-sample scores (NaN skipped), as logged by the reference
            ``MultiModalExplainer.interaction_metric`` and returned by
            ``intershap.Explainer.intershap`` -- the latter counts each pair once, not
            twice. The two aggregates can differ a lot: on HD-XOR with the FCNN,
            ``"mean"`` gives ~2 % (uniqueness) and ~80 % (synergy) where ``"pooled"``
            gives 0.3 % and 98 %, since per-sample noise does not average out.

        Returns
        -------
        float, or Tensor of shape (N,) when ``per_sample``
        """
        check_choice("aggregate", aggregate, ("pooled", "mean"))
        off_mask = ~torch.eye(len(self.modalities), dtype=torch.bool)

        def ratio(phi: torch.Tensor) -> torch.Tensor:
            mag = phi.abs()
            off = (mag * off_mask).sum(dim=(-2, -1))
            total = mag.sum(dim=(-2, -1))
            return torch.where(total > 0, off / total, torch.full_like(total, float("nan")))

        if per_sample:
            return ratio(self.interactions)
        if aggregate == "pooled":
            return float(ratio(self.interactions.mean(dim=0)))
        return float(torch.nanmean(ratio(self.interactions)))

    # -- export --------------------------------------------------------------------

    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per (sample, modality).

        Returns
        -------
        pandas.DataFrame
            Columns ``sample`` (int), ``modality`` (str), ``value`` (Shapley value),
            ``share`` (MM-SHAP share).
        """
        n, m = self.values.shape
        return pd.DataFrame(
            {
                "sample": np.repeat(np.arange(n), m),
                "modality": np.tile(np.array(self.modalities, dtype=object), n),
                "value": self.values.reshape(-1).numpy(),
                "share": self.shares().reshape(-1).numpy(),
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (nested lists of floats); inverse of :meth:`from_dict`."""
        return {
            "modalities": list(self.modalities),
            "values": self.values.tolist(),
            "interactions": self.interactions.tolist(),
            "base_value": self.base_value.tolist(),
            "full_value": self.full_value.tolist(),
            "coalition_values": self.coalition_values.tolist(),
            "coalition_order": COALITION_ORDER,
            "target": None if self.target is None else self.target.tolist(),
            "background_size": self.background_size,
            "game": self.game,
            "reference": dict(self.reference),
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``<path>.json`` (everything, as :meth:`to_dict`); returns its path."""
        path = Path(path).with_suffix(".json")
        path.write_text(json.dumps({"schema_version": 2, "kind": "modality_shapley", **self.to_dict()}))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> ModalityShapley:
        """Read a result written by :meth:`save`."""
        path = Path(path).with_suffix(".json")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as e:
            raise AttributionError(f"cannot load modality Shapley result {path}: {e}") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModalityShapley:
        """Rebuild a result from :meth:`to_dict` output (e.g. after a JSON round trip)."""
        required = ("modalities", "values", "interactions", "base_value", "full_value", "coalition_values")
        missing = [k for k in required if k not in data]
        if missing:
            raise ValueError(f"ModalityShapley.from_dict: missing keys {missing}; required {list(required)}.")

        def f64(key: str) -> torch.Tensor:
            return torch.as_tensor(data[key], dtype=torch.float64)

        values = f64("values")
        m = len(data["modalities"])
        target = data.get("target")
        return cls(
            values=values.reshape(-1, m),
            interactions=f64("interactions").reshape(-1, m, m),
            modalities=[str(x) for x in data["modalities"]],
            base_value=f64("base_value").reshape(-1),
            full_value=f64("full_value").reshape(-1),
            coalition_values=f64("coalition_values").reshape(-1, 1 << m),
            target=None if target is None else torch.as_tensor(target, dtype=torch.long),
            background_size=data.get("background_size"),
            game=data.get("game", "logit"),
            reference=dict(data.get("reference") or {}),
        )


def share_by_group(
    shares: ModalityShapley | torch.Tensor | np.ndarray,
    groups: Sequence[Any] | np.ndarray | torch.Tensor | pd.Series,
    *,
    modalities: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Mean modality shares per group label (e.g. per class, or correct vs incorrect).

    Parameters
    ----------
    shares : ModalityShapley or array of shape (N, M)
        Per-sample shares; a :class:`ModalityShapley` contributes ``.shares()`` and its names.
    groups : sequence of N labels
        The group of each sample.
    modalities : sequence of M str, optional
        Column names for an array ``shares``; default ``modality_0 ...``.

    Returns
    -------
    pandas.DataFrame
        Index ``group`` (sorted labels); one column of mean shares per modality (NaN
        rows skipped) and ``n``, the number of samples in the group.
    """
    if isinstance(shares, ModalityShapley):
        names = list(shares.modalities) if modalities is None else list(modalities)
        arr = shares.shares().numpy()
    elif isinstance(shares, (torch.Tensor, np.ndarray)):
        arr = shares.detach().cpu().numpy() if isinstance(shares, torch.Tensor) else np.asarray(shares)
        if arr.ndim != 2:
            raise ValueError(f"shares must have shape (N, M); got {arr.shape}.")
        names = [f"modality_{i}" for i in range(arr.shape[1])] if modalities is None else list(modalities)
    else:
        raise TypeError(
            f"shares must be a ModalityShapley, a tensor or an ndarray of shape (N, M); "
            f"got {type(shares).__name__}."
        )
    if len(names) != arr.shape[1]:
        raise ValueError(f"modalities has {len(names)} names but shares has {arr.shape[1]} columns.")
    labels = groups.detach().cpu().numpy() if isinstance(groups, torch.Tensor) else np.asarray(groups)
    labels = labels.reshape(-1)
    if labels.shape[0] != arr.shape[0]:
        raise ValueError(f"groups has {labels.shape[0]} labels but shares has {arr.shape[0]} rows.")
    frame = pd.DataFrame(arr, columns=names)
    frame["group"] = labels
    grouped = frame.groupby("group", sort=True)
    out = grouped[names].mean()
    out["n"] = grouped.size()
    return out


# --------------------------------------------------------------------------------------
# Input preparation
# --------------------------------------------------------------------------------------


def _check_modality_count(m: int) -> None:
    if m > MAX_MODALITIES:
        raise ConfigError(
            f"inputs has {m} modalities; modality_shapley supports 1 to {MAX_MODALITIES} "
            f"(exact Shapley values need 2^M model evaluations per sample). Group modalities "
            f"into at most {MAX_MODALITIES} players."
        )


def _prepare_baseline(name: str, x: torch.Tensor, b: Any) -> tuple[torch.Tensor, bool]:
    """Return (fill, per_sample): fill is (1, ...) shared or (N, ...) per sample."""
    if b is None:
        return torch.zeros((1, *x.shape[1:]), dtype=x.dtype, device=x.device), False
    if not isinstance(b, (torch.Tensor, int, float)) or isinstance(b, bool):
        raise TypeError(f"baselines[{name!r}] must be a tensor or a number; got {type(b).__name__}.")
    b = torch.as_tensor(b, device=x.device)
    if b.is_floating_point() and not x.is_floating_point():
        raise TypeError(
            f"baselines[{name!r}] is floating point ({b.dtype}) but inputs[{name!r}] holds "
            f"{x.dtype} (e.g. token ids); pass an integer baseline such as the pad id."
        )
    b = b.to(x.dtype)
    try:
        shape = torch.broadcast_shapes(b.shape, x.shape)
    except RuntimeError:
        shape = None
    if shape != x.shape or b.dim() > x.dim():
        raise ValueError(
            f"baselines[{name!r}] has shape {tuple(b.shape)}, which does not broadcast to "
            f"inputs[{name!r}] of shape {tuple(x.shape)}; use (1, ...), (N, ...) or one sample's shape."
        )
    n = x.shape[0]
    if b.dim() == x.dim() and b.shape[0] == n and n > 1:
        return b.expand(x.shape).contiguous(), True
    return b.expand(x.shape)[:1].contiguous(), False


def _prepare_fill(
    inputs: dict[str, torch.Tensor],
    baselines: Mapping[str, Any] | None,
    background: Mapping[str, torch.Tensor] | None,
) -> tuple[dict[str, torch.Tensor], bool, int | None]:
    """Fill tensors per modality, whether they are per-sample, and K (background only)."""
    names = list(inputs)
    if background is not None:
        if baselines is not None:
            raise ConfigError(
                "Pass either baselines= or background=, not both: with background= the absent "
                "modalities are filled from the K background samples."
            )
        bg = check_inputs(background, name="background", modalities=names)
        fill = {}
        for name in names:
            x, b = inputs[name], bg[name]
            if b.shape[1:] != x.shape[1:]:
                raise ValueError(
                    f"background[{name!r}] has sample shape {tuple(b.shape[1:])} but inputs[{name!r}] "
                    f"has {tuple(x.shape[1:])}; they must match."
                )
            if b.is_floating_point() != x.is_floating_point():
                raise TypeError(
                    f"background[{name!r}] has dtype {b.dtype} but inputs[{name!r}] has {x.dtype}."
                )
            fill[name] = b.to(device=x.device, dtype=x.dtype)
        return fill, False, batch_size(bg)
    if baselines is None:
        baselines = {}
    if not isinstance(baselines, Mapping):
        raise TypeError(
            f"baselines must be None or a dict of modality name -> tensor; got {type(baselines).__name__}."
        )
    unknown = sorted(set(baselines) - set(names))
    if unknown:
        raise ValueError(f"baselines has unknown modality {unknown}; the inputs' modalities are {names}.")
    prepared = {name: _prepare_baseline(name, inputs[name], baselines.get(name)) for name in names}
    per_sample = any(p for _, p in prepared.values())
    fill = {}
    for name, (b, p) in prepared.items():
        # Mixed shared / per-sample baselines: widen the shared ones so one index works for all.
        fill[name] = b.expand(inputs[name].shape).contiguous() if per_sample and not p else b
    return fill, per_sample, None


def _coalition_index(
    names: list[str], n: int, k: int, per_sample: bool, device: torch.device
) -> tuple[dict[str, torch.Tensor], int]:
    """Row indices into ``cat([x, fill])`` for every coalition evaluation.

    Row layout (coalition-major): first the all-absent rows (K of them with a shared
    fill, N with per-sample baselines), then for each coalition ``c = 1 .. 2^M - 2`` its
    N*K rows (sample-major, fill-minor), then N rows of the full coalition. Returns the
    per-modality index and the number of all-absent rows.
    """
    m = len(names)
    n_coal = 1 << m
    ar_n = torch.arange(n, device=device)
    n_mid = n_coal - 2
    coal = torch.arange(1, n_coal - 1, device=device).repeat_interleave(n * k)
    sample = ar_n.repeat_interleave(k).repeat(n_mid)
    fill_row = ar_n.repeat_interleave(k).repeat(n_mid) if per_sample else torch.arange(k, device=device).repeat(n * n_mid)
    empty_fill = ar_n if per_sample else torch.arange(k, device=device)
    index = {}
    for bit, name in enumerate(names):
        present = (coal >> bit & 1).bool()
        mid = torch.where(present, sample, n + fill_row)
        index[name] = torch.cat([n + empty_fill, mid, ar_n])
    return index, empty_fill.shape[0]


# --------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------


def modality_shapley(
    model: ModelFn,
    inputs: Mapping[str, torch.Tensor],
    *,
    target: int | Sequence[int] | torch.Tensor | None = None,
    baselines: Any = None,
    background: Mapping[str, torch.Tensor] | None = None,
    game: Literal["logit", "probability"] = "logit",
    modalities: Sequence[Any] | None = None,
    max_batch_size: int | None = None,
    factorised: bool | None = None,
) -> ModalityShapley:
    """Exact Shapley values of each modality, plus InterSHAP interactions.

    The modalities are the players; coalition ``S`` is worth the model's output on the
    sample with the modalities outside ``S`` absent (``game``): the logit of ``target`` (or
    the scalar output), as :func:`~mmexplain.attribution.attribute` explains it, or the
    softmax probability of ``target``. All ``2^M`` coalitions are evaluated exactly.

    Parameters
    ----------
    model : callable or torch.nn.Module
        Called as ``model(**inputs)``; returns logits (B, C) or a scalar output (B,) or
        (B, 1). Run under ``torch.no_grad()``; its train/eval mode is left alone, so call
        ``model.eval()`` first (dropout or batch-norm in train mode make the game noisy and
        batch-dependent).
    inputs : dict of str -> Tensor of shape (N, ...)
        One tensor per modality, batch first. Dict order fixes the column order.
        1 to 6 modalities.
    target : int, sequence of N ints, Tensor of shape (N,), or None
        The output explained: an output index for all samples, one per sample, or None
        for a scalar-output model (with ``game="probability"``: None means the class the
        model predicts for each sample).
    baselines : None, Reference, or dict of str -> str / Tensor
        Value of each modality when absent; default the model's reference
        (``model.reference``, see :func:`mmexplain.reference.resolve_baselines`), the same
        that every other explainer uses. Tensors: shape (1, ...), (N, ...), one sample's
        shape (...), or anything that broadcasts to the input; integer inputs need integer
        baselines. A bare callable without ``modality_specs`` (and no ``modalities=``) gets
        zeros of each input's dtype.
    background : dict of str -> Tensor of shape (K, ...), optional
        Interventional mode: K reference samples per modality (same K for all, the keys
        must be exactly the input's modalities). ``v_i(S)`` is the mean output over
        ``k`` of the sample with modalities in ``S`` from sample ``i`` and the rest from
        background sample ``k``; ``base_value`` is the mean output over the background.
        Excludes ``baselines``.
    game : {"logit", "probability"}, default="logit"
        The coalition's worth: the target's logit (the scalar output for a one-output
        model), or its softmax probability over the model's outputs (InterSHAP's game;
        classification only).
    modalities : list of ModalitySpec, optional
        The model's modalities, for its reference; default ``model.modality_specs``.
    max_batch_size : int, optional
        Most rows per forward pass. By default everything runs in one pass unless the
        coalition batch holds more than :data:`DEFAULT_ELEMENT_BUDGET` input elements
        (2**25, summed over modalities), in which case it is split into chunks under
        that budget. Lower it when the model's activations do not fit in memory. On a
        single-threaded CPU, cache-sized chunks can be faster than one huge pass (64-row
        chunks measured ~3x faster per row than one 1024-row pass for a small CNN; with
        two threads on a busy machine, one pass was ~3x faster), so time both if it matters.
    factorised : bool, optional
        Evaluate a late-joining model in two stages: its per-modality encoders once per
        distinct input row (N + K rows per modality instead of N·2^M), then only the fusion
        over the coalitions. Exact, and much faster when encoders dominate the cost. Needs
        ``model.encode(inputs) -> dict`` of per-modality features (each row's features of a
        modality depending on that row of that modality only) and ``model.fuse(features)``.
        Default: when the model declares ``modality_factorised = True`` (built-in models do).

    Returns
    -------
    ModalityShapley
        Values (N, M), interactions (N, M, M), coalition values (N, 2^M), ...; all float64
        on the CPU. ``values.sum(1) + base_value == full_value`` up to float rounding.

    Notes
    -----
    Rows evaluated: with a shared baseline, ``1 + N (2^M - 1)`` (the all-absent input is
    the same for every sample and runs once); with per-sample baselines ``N 2^M``; with
    K background samples ``K + N + N K (2^M - 2)``.

    Examples
    --------
    >>> res = modality_shapley(model.eval(), {"image": img, "text": ids}, target=labels)  # doctest: +SKIP
    >>> res.values.shape, res.interaction_share()
    """
    if not callable(model):
        raise TypeError(f"model must be callable (model(**inputs)); got {type(model).__name__}.")
    check_choice("game", game, ("logit", "probability"))
    inputs = check_inputs(inputs)
    names = list(inputs)
    m = len(names)
    _check_modality_count(m)
    n = batch_size(inputs)
    target_t = check_target(target, n)

    specs = list(modalities) if modalities is not None else getattr(model, "modality_specs", None)
    described: dict[str, str] = {}
    if background is None:
        baselines, described = resolve_baselines(model, specs, inputs, baselines, expand=False)
    else:
        described = {name: f"mean over {batch_size(background)} background samples" for name in names}
    fill, per_sample, k_bg = _prepare_fill(inputs, baselines, background)
    k = 1 if k_bg is None or per_sample else k_bg
    device = next(iter(inputs.values())).device
    sources = {name: torch.cat([inputs[name], fill[name]], dim=0).detach() for name in names}
    index, n_empty = _coalition_index(names, n, k, per_sample, device)

    out = _gather_outputs(model, sources, index, max_batch_size=max_batch_size, factorised=factorised)
    n_out = out.shape[1]
    n_coal = 1 << m

    # Coalition values of every output, (N, 2^M, C): fill-samples averaged for each sample.
    empty = out[:n_empty]
    empty = empty.mean(dim=0, keepdim=True).expand(n, n_out) if not per_sample else empty
    mid = out[n_empty : n_empty + (n_coal - 2) * n * k].reshape(n_coal - 2, n, k, n_out).mean(dim=2)
    full = out[n_empty + (n_coal - 2) * n * k :]
    all_out = torch.cat([empty.unsqueeze(0), mid, full.unsqueeze(0)], dim=0).permute(1, 0, 2)
    if game == "probability":
        if n_out < 2:
            raise ConfigError("game='probability' needs a classifier (C >= 2 outputs); this model has one output.")
        if target_t is None:
            target_t = full.argmax(1)  # the class the model predicts, as InterSHAP explains it
        all_out = all_out.softmax(-1)
    coalition_values = _select_target(all_out, target_t).contiguous()

    w_phi, w_int = _weight_matrices(m)
    values = coalition_values @ w_phi
    interactions = torch.einsum("nc,cij->nij", coalition_values, w_int)
    # Summation order differs between (i, j) and (j, i); make the symmetry exact.
    interactions = 0.5 * (interactions + interactions.transpose(1, 2))
    return ModalityShapley(
        values=values,
        interactions=interactions,
        modalities=names,
        base_value=coalition_values[:, 0].clone(),
        full_value=coalition_values[:, -1].clone(),
        coalition_values=coalition_values,
        target=None if target_t is None else target_t.cpu(),
        background_size=k_bg,
        game=game,
        reference=described,
    )
