"""The SHAP masker of ``shap_partition`` (:mod:`mmexplain.attribution.shap_methods`).

Apart from that module because it subclasses ``shap.maskers.Masker``, so importing it
imports SHAP; the rest of mmexplain imports SHAP only when a SHAP method runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..exceptions import ConfigError
from ..modality import ModalitySpec
from ..validation import check_positive_int
from .methods import feature_groups
from .shap_methods import _Linkage, _shap, joint_clustering

shap = _shap()


# -- the masker -----------------------------------------------------------------------------------
class JointMasker(shap.maskers.Masker):
    """A SHAP masker over one sample of every modality; its players are all units or one modality's.

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
    modality : int, str or None, default=None
        Whose units are SHAP's players. None: every unit of every modality, under
        :func:`joint_clustering` (whose binary top merges make Owen values depend on the
        modality order). A modality, by position in ``specs`` or by name: that modality's
        units only, under its own tree; the other modalities' elements are taken from the
        row's sample half as they are, so the row fixes them (:meth:`rows`, ``present``).

    Attributes
    ----------
    shape : tuple of (1, P)
        SHAP's masker shape: one masked sample per mask, P binary players.
    modality : int or None
        Position of the players' modality in ``specs``; None when every unit plays.
    players : tuple of (start, stop)
        Unit ids of the players (all units when ``modality`` is None).
    n_players : int
        ``stop − start``.
    clustering : ndarray of shape (P − 1, 4)
        The players' hierarchy, player ids local (0 … P − 1): :func:`joint_clustering`
        for all units, the modality's own subtree for one modality.
    modality_roots : list of int
        Node id in ``clustering`` of each modality's subtree root (of the one modality's
        root when ``modality`` is given).
    unit_ranges : list of (start, stop)
        Unit ids of each modality.
    n_units : int
        Units over all modalities.
    unit_of : ndarray of shape (D,)
        The unit each element of the flat input belongs to (:func:`feature_groups` ids).
    unit_sizes : ndarray of shape (n_units,)
        Elements per unit.

    Notes
    -----
    Units are those of :func:`mmexplain.attribution.methods.feature_groups`: image patches
    (all channels together), one token (its whole embedding), one tabular / generic
    element, one audio window.
    """

    immutable_outputs = True  # every call returns a fresh array: SHAP need not copy it

    def __init__(self, specs: Sequence[ModalitySpec], shapes: Sequence[Sequence[int]], *,
                 patch_size: int = 8, audio_window: int = 16, modality: int | str | None = None) -> None:
        self.specs = list(specs)
        self.shapes = [tuple(int(d) for d in s) for s in shapes]
        if len(self.specs) != len(self.shapes) or not self.specs:
            raise ConfigError(
                f"shapes must give one shape per modality ({len(self.specs)}); got {len(self.shapes)}."
            )
        self.patch_size = check_positive_int("patch_size", patch_size)
        self.audio_window = check_positive_int("audio_window", audio_window)
        for s, shape in zip(self.specs, self.shapes):
            if s.kind_info.integer_ids:
                if len(shape) != 2:
                    raise ConfigError(f"shapes[{s.name!r}]={shape}: a token sample enters as embeddings (T, E).")
                continue
            try:
                s.kind_info.check_sample_shape(shape, f"shapes[{s.name!r}]")
            except ValueError as e:
                raise ConfigError(str(e)) from None
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
            grid = s.kind_info.unit_grid(shape, patch_size=patch_size)
            if grid is not None:
                grids[m] = grid
        self.modality = self._modality_index(modality)
        if self.modality is None:
            self.players = (0, self.n_units)
            # every element belongs to a player
            self._player_of = self.unit_of
        else:
            self.players = self.unit_ranges[self.modality]
            start, stop = self.players
            inside = (self.unit_of >= start) & (self.unit_of < stop)
            # elements outside the modality map to an extra, always-kept slot
            self._player_of = np.where(inside, self.unit_of - start, stop - start)
        self.n_players = self.players[1] - self.players[0]
        self.shape = (1, self.n_players)
        if self.n_players == 1:
            self.clustering, self.modality_roots = np.zeros((0, 4)), [0]
        elif self.modality is None:
            self.clustering, self.modality_roots = joint_clustering(self.specs, self.unit_ranges, grids)
        else:
            link = _Linkage(self.n_players)
            link.subtree(0, self.n_players, grids.get(self.modality))
            self.clustering = link.matrix()
            self.modality_roots = [2 * self.n_players - 2]

    def _modality_index(self, modality: int | str | None) -> int | None:
        names = [s.name for s in self.specs]
        if modality is None:
            return None
        if isinstance(modality, str) and modality in names:
            return names.index(modality)
        if isinstance(modality, int) and not isinstance(modality, bool) and 0 <= modality < len(names):
            return modality
        raise ConfigError(
            f"modality={modality!r} is neither a modality name {names} nor a position 0 … {len(names) - 1}; "
            "pass one of them, or None for every unit."
        )

    # -- SHAP's masker protocol -------------------------------------------------------------------
    def __call__(self, mask: Any, row: np.ndarray) -> np.ndarray:
        """Masked version of one sample.

        Parameters
        ----------
        mask : bool ndarray of shape (P,), or bool
            True keeps a player's input values; False replaces them by the baseline's.
        row : ndarray of shape (2 D,) or (1, 2 D)
            The sample followed by its baseline (:meth:`rows`).

        Returns
        -------
        ndarray of shape (1, D)
            Elements outside the players come from the row's sample half.
        """
        mask = np.asarray(self._standardize_mask(mask, row), dtype=bool)
        if mask.shape != (self.n_players,):
            raise ConfigError(f"mask must have shape ({self.n_players},); got {mask.shape}.")
        row = np.asarray(row).reshape(-1)
        if len(row) != 2 * self.n_elements:
            raise ConfigError(
                f"row must hold the sample and its baseline ({2 * self.n_elements} values); got {len(row)}."
            )
        x, b = row[: self.n_elements], row[self.n_elements:]
        return np.where(np.append(mask, True)[self._player_of], x, b)[None]

    def mask_shapes(self, *args: Any) -> list[tuple[int]]:
        """One mask of P players per sample, whatever the row."""
        return [(self.n_players,)]

    def feature_names(self, *args: Any) -> list[list[str]]:
        """A readable name per player: ``image[patch 1,2]``, ``text[3]``, ``audio[window 0]``."""
        names = []
        for s, shape, (start, stop) in zip(self.specs, self.shapes, self.unit_ranges):
            for u in range(stop - start):
                names.append(s.kind_info.unit_name(s.name, u, shape, patch_size=self.patch_size))
        return [names[self.players[0]:self.players[1]]]

    # -- layout helpers ---------------------------------------------------------------------------
    def rows(self, xs: Sequence[torch.Tensor], bs: Sequence[torch.Tensor],
             present: Sequence[bool] | None = None) -> np.ndarray:
        """SHAP rows (N, 2 D) float64: each sample's flat inputs, then its flat baseline.

        Parameters
        ----------
        xs, bs : sequence of Tensor of shape (N, ...)
            Inputs and baselines, one per modality.
        present : sequence of bool, optional
            One per modality: False puts that modality's baseline in the sample half too,
            so it is absent whatever the mask. Default: every modality present.
        """
        present = [True] * len(xs) if present is None else list(present)
        sample = [x if keep else b for x, b, keep in zip(xs, bs, present)]
        flat = [t.detach().reshape(len(t), -1).double().cpu() for t in (*sample, *bs)]
        return torch.cat(flat, dim=1).numpy()

    def split(self, flat: np.ndarray, like: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Flat masked samples (K, D) back to one tensor (K, ...) per modality, typed like ``like``."""
        t = torch.from_numpy(np.ascontiguousarray(flat))
        parts = torch.split(t, self.sizes, dim=1)
        return tuple(p.reshape(len(t), *shape).to(ref.device, ref.dtype)
                     for p, shape, ref in zip(parts, self.shapes, like))

    def spread(self, values: np.ndarray) -> list[np.ndarray]:
        """Per-unit values (n_units,) to per-element maps, one (shape) array per modality.

        Each unit's value is divided evenly over its elements, so a modality's sum is its
        units' total.
        """
        per_element = values[self.unit_of] / self.unit_sizes[self.unit_of]
        bounds = np.cumsum([0, *self.sizes])
        return [per_element[a:b].reshape(shape) for a, b, shape in zip(bounds[:-1], bounds[1:], self.shapes)]


