"""Per-modality baselines: what "absent" means for each input.

======== ============================================= =========
kind     choices                                       default
======== ============================================= =========
image    ``black`` (zeros), ``blur`` (Gaussian, σ=4 px), ``black``
         ``mean`` (mean over the batch or a reference)
tokens   ``pad`` (every token → the pad id)            ``pad``
tabular  ``mean`` (feature means), ``zero``            ``mean``
audio    ``silence`` (zeros), ``mean``                 ``silence``
generic  ``zero``, ``mean``                            ``zero``
======== ============================================= =========

A tensor may be given instead of a name; it must broadcast to the input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ..exceptions import ConfigError
from ..modality import ModalitySpec

CHOICES = {
    "image": ("black", "blur", "mean"),
    "tokens": ("pad",),
    "tabular": ("mean", "zero"),
    "audio": ("silence", "mean"),
    "generic": ("zero", "mean"),
}
DEFAULTS = {"image": "black", "tokens": "pad", "tabular": "mean", "audio": "silence", "generic": "zero"}


def _blur(x: torch.Tensor, sigma: float = 4.0) -> torch.Tensor:
    radius = int(3 * sigma)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def make_baselines(
    inputs: Mapping[str, torch.Tensor],
    specs: Sequence[ModalitySpec],
    choice: Mapping[str, Any] | None = None,
    *,
    reference: Mapping[str, torch.Tensor] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Baseline tensors shaped like ``inputs``, plus a description of each for the record.

    Parameters
    ----------
    inputs : dict of str -> Tensor of shape (N, ...)
    specs : sequence of ModalitySpec
    choice : dict of str -> str or Tensor, optional
        Per modality: a name from the table above, or a tensor broadcastable to the input.
    reference : dict of str -> Tensor, optional
        Samples to take means from (e.g. training data); default: ``inputs`` themselves.

    Returns
    -------
    baselines : dict of str -> Tensor of shape (N, ...)
    description : dict of str -> str
    """
    choice = dict(choice or {})
    unknown = sorted(set(choice) - {s.name for s in specs})
    if unknown:
        raise ConfigError(f"baselines has unknown modality {unknown}; modalities are {[s.name for s in specs]}.")
    out, desc = {}, {}
    for spec in specs:
        x = inputs[spec.name]
        c = choice.get(spec.name, DEFAULTS[spec.kind])
        if isinstance(c, torch.Tensor):
            try:
                out[spec.name] = torch.broadcast_to(c.to(x.device, x.dtype), x.shape).clone()
            except RuntimeError:
                raise ConfigError(
                    f"baselines[{spec.name!r}] has shape {tuple(c.shape)}, which does not broadcast to the "
                    f"input's {tuple(x.shape)}."
                ) from None
            desc[spec.name] = "tensor"
            continue
        if c not in CHOICES[spec.kind]:
            raise ConfigError(
                f"baselines[{spec.name!r}]={c!r} is not a {spec.kind} baseline; choose one of "
                f"{list(CHOICES[spec.kind])} or pass a tensor."
            )
        ref = (reference or {}).get(spec.name, x)
        if c in ("black", "zero", "silence"):
            b = torch.zeros_like(x)
        elif c == "pad":
            b = torch.full_like(x, spec.pad_id)
        elif c == "mean":
            b = ref.float().mean(0, keepdim=True).to(x.dtype).expand_as(x).clone()
        else:  # blur
            b = _blur(x.float()).to(x.dtype)
        out[spec.name], desc[spec.name] = b, c
    return out, desc
