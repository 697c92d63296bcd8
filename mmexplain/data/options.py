"""Options of a user's manifest, validated in one place: :class:`ManifestOptions`.

The CLI (``--columns --missing --image-size --max-tokens --labels --allow-outside-paths``),
notebooks and grid YAML all build their options with :func:`manifest_options` and store
:meth:`ManifestOptions.to_params` (a canonical, JSON-safe dict) in run configs.

Sidecar
-------
A manifest may carry its options in a sidecar file next to it: the manifest's name with its
extension replaced by ``.mmexplain.json`` (``data.csv`` -> ``data.mmexplain.json``,
``scans.parquet`` -> ``scans.mmexplain.json``). The sidecar is one JSON object with any of
the option keys below except ``allow_outside_paths`` (a file that travels with the data must
not be able to lift the confinement of its own paths), e.g.::

    {"columns": {"image": "path", "text": "question", "tabular": ["age", "bmi"],
                 "target": "label", "ignore": ["patient_id"]},
     "labels": ["no", "yes"], "image_size": 64}

Options given by the caller override the sidecar key by key (``columns`` is replaced as a
whole, not merged field by field).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from ..exceptions import ConfigError

__all__ = [
    "MAX_IMAGE_PIXELS",
    "MISSING_POLICIES",
    "OPTION_NAMES",
    "SIDECAR_SUFFIX",
    "ManifestColumns",
    "ManifestOptions",
    "manifest_options",
    "read_sidecar",
    "sidecar_path",
]

MISSING_POLICIES = ("error", "impute-mean", "drop")
#: Largest image (height x width) a manifest may declare or contain: the decompression-bomb guard.
MAX_IMAGE_PIXELS = 4096 * 4096
SIDECAR_SUFFIX = ".mmexplain.json"
#: The keys :func:`manifest_options` accepts, in documentation order.
OPTION_NAMES = ("columns", "missing", "image_size", "max_tokens", "labels", "allow_outside_paths", "task")
_NOT_IN_SIDECAR = ("allow_outside_paths",)


def label_key(label: str) -> str:
    """Labels that differ only in case or surrounding / repeated whitespace share this key."""
    return " ".join(unicodedata.normalize("NFKC", label).split()).casefold()


def _names(value: Any, field: str) -> list[str]:
    """A list of column names from a list or one name; every name a non-empty string."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{field} must be a list of column names; got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"{field} names a column twice: {list(value)}")
    return list(value)


class ManifestColumns(BaseModel):
    """Which manifest column feeds which modality.

    Every column of the file must be used (``image``, ``text``, ``tabular``, ``target``,
    ``split``) or listed in ``ignore``; anything else is an error with a suggested mapping,
    so no modality is dropped silently. ``image`` / ``text`` / ``split`` default to columns of
    those names when the file has them; a name given explicitly must exist. ``None`` (or
    ``""``) means the modality is not used; its column, if any, then belongs in ``ignore``.

    Attributes
    ----------
    image : str or None, default="image"
        Image file paths, relative to the manifest's folder.
    text : str or None, default="text"
        Free text.
    tabular : list of str, default=[]
        Numeric columns, one feature each.
    target : str, default="label"
        Class label (classification) or number (regression).
    split : str or None, default="split"
        ``train`` / ``val`` / ``test`` per row; without it the split is drawn by seed.
    ignore : list of str, default=[]
        Columns of the file deliberately left out.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    image: str | None = "image"
    text: str | None = "text"
    tabular: list[str] = []
    target: str = "label"
    split: str | None = "split"
    ignore: list[str] = []

    @model_validator(mode="before")
    @classmethod
    def _from_json(cls, raw: Any) -> Any:
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as e:
                raise ValueError(f"not valid JSON ({e}); expected an object like "
                                 '{"image": "path", "text": "question", "tabular": ["age"], "target": "label"}') from None
        if not isinstance(raw, Mapping):
            raise ValueError(f"must be a mapping of role -> column name; got {type(raw).__name__}")
        unknown = [k for k in raw if k not in cls.model_fields]
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r}; allowed: {list(cls.model_fields)}")
        return dict(raw)

    @field_validator("image", "text", "split", mode="before")
    @classmethod
    def _optional_name(cls, v: Any, info: Any) -> str | None:
        if v is None or v == "":
            return None  # explicitly not used
        if not isinstance(v, str):
            raise ValueError(f"{info.field_name} must be a column name or null; got {v!r}")
        return v

    @field_validator("target", mode="before")
    @classmethod
    def _target_name(cls, v: Any) -> str:
        if not isinstance(v, str) or not v:
            raise ValueError(f"target must be a column name; got {v!r}")
        return v

    @field_validator("tabular", "ignore", mode="before")
    @classmethod
    def _name_list(cls, v: Any, info: Any) -> list[str]:
        return _names(v, info.field_name)

    @model_validator(mode="after")
    def _each_column_once(self) -> ManifestColumns:
        seen: dict[str, str] = {}
        for role, name in self.roles():
            if name in seen:
                raise ValueError(f"column {name!r} is mapped twice ({seen[name]} and {role})")
            seen[name] = role
        return self

    def roles(self) -> list[tuple[str, str]]:
        """(role, column) for every column this mapping names, ``ignore`` included."""
        out = [(r, getattr(self, r)) for r in ("image", "text") if getattr(self, r)]
        out += [("tabular", c) for c in self.tabular] + [("target", self.target)]
        out += [("split", self.split)] if self.split else []
        return out + [("ignore", c) for c in self.ignore]

    def to_params(self) -> dict[str, Any]:
        """The fields given explicitly, as a plain dict (defaults stay implicit: see the class doc)."""
        return {k: getattr(self, k) for k in sorted(self.model_fields_set)}


class ManifestOptions(BaseModel):
    """Everything that says how to read a manifest; build it with :func:`manifest_options`.

    Attributes
    ----------
    columns : ManifestColumns
        Column -> modality mapping; also accepted as a dict or a JSON string.
    missing : {"error", "impute-mean", "drop"}, default="error"
        What to do with NaN / empty tabular values, empty texts and empty image paths:
        ``impute-mean`` fills a tabular value with its column's mean, a text with no tokens
        and an image with the mean image; ``drop`` removes the row. Imputed and dropped rows
        are listed by number in ``dataset.meta["missing"]``. Labels are never imputed.
    image_size : int or (height, width), default=(64, 64)
        Every image must have this size (no silent resizing); at most
        :data:`MAX_IMAGE_PIXELS` pixels. Also accepted as ``"64"``, ``"48x64"``, ``"48,64"``.
    max_tokens : int > 0, default=64
        Texts are cut to this many word tokens before tokenizing (the MiniLM tokenizer then
        applies its own ``max_length``); cut rows are listed in ``dataset.meta["truncated"]``.
    labels : list of str, optional
        The allowed class labels, in index order; any other label is an error naming its
        rows. Also accepted as a JSON list or a comma-separated string (items stripped).
        Default: the file's distinct labels, sorted.
    allow_outside_paths : bool, default=False
        Let image paths be absolute or leave the manifest's folder (``..``, links).
    task : {"classification", "regression"}, default="classification"
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    columns: ManifestColumns = ManifestColumns()
    missing: Literal["error", "impute-mean", "drop"] = "error"
    image_size: tuple[int, int] = (64, 64)
    max_tokens: int = 64
    labels: list[str] | None = None
    allow_outside_paths: bool = False
    task: Literal["classification", "regression"] = "classification"

    @field_validator("image_size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> tuple[int, int]:
        if isinstance(v, str) and re.fullmatch(r"\s*\d+\s*([x,]\s*\d+\s*)?", v):
            parts = [int(p) for p in re.split(r"[x,]", v)]
            v = parts * 2 if len(parts) == 1 else parts
        if isinstance(v, int) and not isinstance(v, bool):
            v = (v, v)
        if (not isinstance(v, (list, tuple)) or len(v) != 2
                or not all(isinstance(p, int) and not isinstance(p, bool) and p >= 1 for p in v)):
            raise ValueError("must be an int >= 1 or (height, width) of ints >= 1")
        if v[0] * v[1] > MAX_IMAGE_PIXELS:
            raise ValueError(f"{v[0]}x{v[1]} is over the limit of {MAX_IMAGE_PIXELS} pixels")
        return int(v[0]), int(v[1])

    @field_validator("max_tokens", mode="before")
    @classmethod
    def _tokens(cls, v: Any) -> int:
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError("must be an integer >= 1")
        return v

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, v: Any) -> list[str]:
        if isinstance(v, str):
            v = json.loads(v) if v.lstrip().startswith("[") else [p.strip() for p in v.split(",")]
        if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) and x for x in v):
            raise ValueError("must be a list of non-empty strings")
        if len(v) < 2:
            raise ValueError("declare at least two labels; a classifier cannot learn one class")
        for x in v:
            if x != x.strip():
                raise ValueError(f"label {x!r} has leading or trailing whitespace")
        keys: dict[str, str] = {}
        for x in v:
            if label_key(x) in keys:
                raise ValueError(f"labels {keys[label_key(x)]!r} and {x!r} differ only in case or whitespace")
            keys[label_key(x)] = x
        return list(v)

    @field_validator("allow_outside_paths", mode="before")
    @classmethod
    def _flag(cls, v: Any) -> bool:
        if isinstance(v, str) and v.lower() in ("true", "false", "1", "0", "yes", "no"):
            return v.lower() in ("true", "1", "yes")
        if not isinstance(v, bool):
            raise ValueError("must be true or false")
        return v

    def given(self) -> dict[str, Any]:
        """The options set explicitly (not left at their defaults), as validated values."""
        return {k: getattr(self, k) for k in OPTION_NAMES if k in self.model_fields_set}

    def to_params(self) -> dict[str, Any]:
        """A canonical JSON-safe dict of the explicit options: stored in run configs, hashed
        for run ids, and accepted back by :func:`manifest_options` / ``load_dataset``.

        Only options given explicitly appear (a given default too: it overrides a sidecar),
        in canonical form (``image_size`` as ``[h, w]``, ``columns`` as its explicit fields).
        """
        out: dict[str, Any] = {}
        for key, value in self.given().items():
            if key == "columns":
                value = value.to_params()
            out[key] = list(value) if isinstance(value, tuple) else value
        return out


def _option_error(e: ValidationError, where: str) -> ConfigError:
    err = e.errors()[0]
    loc = [str(p) for p in err["loc"]]
    msg = err["msg"].removeprefix("Value error, ")
    name = loc[0] if loc else "options"
    if name == "columns" and len(loc) > 1:
        name = f"columns[{loc[1]!r}]"
    shown = repr(err.get("input"))
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return ConfigError(f"{where}{name}={shown}: {msg}.")


def manifest_options(*, _where: str = "", **raw: Any) -> ManifestOptions:
    """Validate manifest options from any source (Python, CLI strings, YAML, a sidecar).

    Parameters
    ----------
    **raw
        Any of ``columns``, ``missing``, ``image_size``, ``max_tokens``, ``labels``,
        ``allow_outside_paths``, ``task`` (see :class:`ManifestOptions`). A value of
        ``None`` means "not given". ``columns`` may be a dict, a :class:`ManifestColumns`
        or a JSON string.

    Returns
    -------
    ManifestOptions
        Its ``to_params()`` is the canonical JSON-safe form.

    Raises
    ------
    ConfigError
        One line naming the option, the value received and what is allowed.

    Examples
    --------
    >>> opts = manifest_options(columns='{"image": "path", "target": "label", "ignore": ["id"]}',
    ...                         image_size="32", missing="drop")
    >>> opts.to_params()
    {'columns': {'ignore': ['id'], 'image': 'path', 'target': 'label'}, 'missing': 'drop', 'image_size': [32, 32]}
    """
    for key in raw:
        if key not in OPTION_NAMES:
            raise ConfigError(f"{_where}unknown manifest option {key!r}; allowed: {list(OPTION_NAMES)}.")
    given = {k: v for k, v in raw.items() if v is not None}
    if isinstance(given.get("columns"), ManifestColumns):
        given["columns"] = given["columns"].to_params()
    try:
        return ManifestOptions(**given)
    except ValidationError as e:
        raise _option_error(e, _where) from None


def sidecar_path(manifest: str | Path) -> Path:
    """The sidecar of ``manifest``: ``data.csv`` -> ``data.mmexplain.json`` in the same folder."""
    manifest = Path(manifest)
    return manifest.with_name(manifest.stem + SIDECAR_SUFFIX)


def read_sidecar(manifest: str | Path) -> ManifestOptions | None:
    """The options in ``manifest``'s sidecar, or None if it has none.

    Raises
    ------
    ConfigError
        Bad JSON, not an object, an unknown key, a bad value or ``allow_outside_paths``;
        the message names the sidecar file.
    """
    path = sidecar_path(manifest)
    if not path.is_file():
        return None
    where = f"sidecar {path}: "
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{where}not valid JSON ({' '.join(str(e).split())}).") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}must hold one JSON object of options; got {type(raw).__name__}.")
    for key in _NOT_IN_SIDECAR:
        if key in raw:
            raise ConfigError(f"{where}{key!r} can only be given by the caller, not by a file next to the data.")
    return manifest_options(_where=where, **raw)


def merge_options(sidecar: ManifestOptions | None, explicit: ManifestOptions) -> ManifestOptions:
    """``explicit`` options over the ``sidecar``'s, key by key."""
    if sidecar is None:
        return explicit
    merged = {**sidecar.given(), **explicit.given()}
    return ManifestOptions(**merged)
