"""A grid of report runs from YAML: notebooks x the cartesian product of parameter values.

Example file::

    notebooks:                                      # or a single path
      - notebooks/01_train_evaluate.ipynb
      - path: notebooks/03_fusion_levels.ipynb      # a notebook with its own parameters
        parameters: {fusions: [late, concat]}
    parameters: {epochs: 2}                         # shared by every run
    grid:                                           # every combination
      dataset: [easy-vqa, "synthetic:interaction"]
      fusion: [late, concat]
      seed: [0, 1]

Relative notebook paths are looked up from the current directory, then from the YAML
file's folder. Run ids are ``<notebook stem>__<name>-<value>__...__<hash>``: the grid names
spelled out, then a hash of every parameter (shared ones included), so grids that differ
only in their shared ``parameters`` never share a run folder.

The data options of a manifest travel as the ``dataset_options`` parameter, e.g.
``parameters: {dataset: my.csv, dataset_options: {missing: impute-mean, image_size: 64}}``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from ..exceptions import ConfigError
from .records import RunSpec

__all__ = ["GridConfig", "NotebookEntry", "expand_grid", "load_grid"]


class NotebookEntry(BaseModel):
    """A notebook of the grid with parameters of its own (over the shared ones)."""

    model_config = ConfigDict(extra="forbid")
    path: str
    parameters: dict[str, Any] = Field(default_factory=dict)


class GridConfig(BaseModel):
    """The YAML grid file (unknown keys are errors).

    Attributes
    ----------
    notebooks : list of str or NotebookEntry
        One or more notebook paths (a single string is accepted), or ``{path, parameters}``
        entries whose parameters apply to that notebook only (e.g. ones only it declares).
    parameters : dict
        Parameters shared by every run.
    grid : dict of str -> list
        Each name's values; the runs are every combination (a scalar means one value).
    """

    model_config = ConfigDict(extra="forbid")

    notebooks: list[str | NotebookEntry] = Field(min_length=1)
    parameters: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    _source: Path | None = PrivateAttr(default=None)

    @field_validator("notebooks", mode="before")
    @classmethod
    def _one_notebook(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, os.PathLike)) else value

    @field_validator("grid", mode="before")
    @classmethod
    def _scalar_values(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: (v if isinstance(v, list) else [v]) for k, v in value.items()}
        return value

    @field_validator("grid")
    @classmethod
    def _non_empty(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in value.items():
            if not values:
                raise ValueError(f"grid.{key} has no values; give at least one.")
        return value


def _format_validation_error(source: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            allowed = ", ".join(GridConfig.model_fields)
            lines.append(f"unknown key {loc!r} (allowed: {allowed})")
        else:
            lines.append(f"{loc or '(top level)'}: {e['msg']}")
    return f"{source}: " + "; ".join(lines)


def load_grid(path: str | os.PathLike[str]) -> GridConfig:
    """Read and check a grid YAML file.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    GridConfig

    Raises
    ------
    ConfigError
        Missing file, bad YAML, unknown keys, wrong shapes, or a name both in
        ``parameters`` and ``grid``; the message names the file and the key.
    """
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"grid file {p} cannot be read: {err.strerror or err}") from None
    try:
        from papermill.iorw import NoDatesSafeLoader

        data = yaml.load(text, Loader=NoDatesSafeLoader)
    except yaml.YAMLError as err:
        raise ConfigError(f"grid file {p} is not valid YAML: {err}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"grid file {p} must be a mapping with keys notebooks, parameters, grid.")
    try:
        config = GridConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(str(p), err)) from None
    both = sorted(set(config.parameters) & set(config.grid))
    if both:
        raise ConfigError(f"{p}: {both} appear in both 'parameters' and 'grid'; keep each in one.")
    config._source = p
    return config


def _resolve_notebook(name: str, base: Path | None) -> Path:
    path = Path(name)
    if path.is_absolute() or path.exists() or base is None:
        return path
    candidate = base / path
    return candidate if candidate.exists() else path


def expand_grid(
    config: GridConfig,
    *,
    overrides: Mapping[str, Any] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    kernel_name: str | None = None,
    timeout: float | None = None,
) -> list[RunSpec]:
    """Expand a grid to one :class:`RunSpec` per notebook and combination.

    Parameters
    ----------
    config : GridConfig
    overrides : mapping, optional
        Parameters that replace shared ones and grid axes (e.g. from ``-p`` on the
        command line); an overridden axis is no longer varied.
    base_dir : str or PathLike, optional
        Second place to look for relative notebooks (default: the YAML file's folder).
    kernel_name, timeout
        Passed to every run.

    Returns
    -------
    list of RunSpec
        Without ``run_id``: it is made when the run is prepared, from the final parameters
        (the grid axes spelled out, every parameter hashed).
    """
    overrides = dict(overrides or {})
    if base_dir is not None:
        base: Path | None = Path(base_dir)
    else:
        base = config._source.parent if config._source is not None else None
    axes = {k: v for k, v in config.grid.items() if k not in overrides}
    specs = []
    for entry in config.notebooks:
        entry = entry if isinstance(entry, NotebookEntry) else NotebookEntry(path=entry)
        notebook = _resolve_notebook(entry.path, base)
        for combo in itertools.product(*axes.values()) if axes else [()]:
            varying = dict(zip(axes, combo))
            # precedence: shared < this notebook's own < grid axis < command line
            params = {**config.parameters, **entry.parameters, **varying, **overrides}
            specs.append(
                RunSpec(notebook, params, None, kernel_name, timeout, shown=tuple(varying))
            )
    return specs
