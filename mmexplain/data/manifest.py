"""Users' own data from a CSV or Parquet manifest: one row per sample.

Column mapping (:class:`~mmexplain.data.options.ManifestColumns`):

==========  ==============================================================
``image``   path of an image file, relative to the manifest's folder
``text``    free text, tokenized like easy-VQA questions
``tabular`` list of numeric columns, one feature each
``target``  label (classification) or number (regression); default "label"
``split``   "train" / "val" / "test" per row; default "split", used when present;
            without it, a seeded split
``ignore``  columns deliberately left out
==========  ==============================================================

Every column of the file must be mapped or ignored: a column nobody mentions is an error
with a suggested mapping (guessed from the content), never a silently dropped modality.
Options come from the caller and from an optional sidecar file (see
:mod:`mmexplain.data.options`).

A CSV is read as text: only an empty cell is missing, except in tabular columns, where
``NA``, ``NaN``, ``N/A``, ``null`` and ``None`` (any case) are missing too; labels are kept
exactly as written (``NA``, ``01``, ``blue `` stay themselves).

The whole file is checked in one pass; every bad cell is reported in one
:class:`~mmexplain.exceptions.ManifestError` (the first 20, and the total). Rows are data
rows counted from 1, the header excluded, in every message and in ``dataset.meta``.

Image paths are confined to the manifest's folder unless ``allow_outside_paths=True``: an
absolute path, a ``..`` that leaves the folder or a link that resolves outside it are all
refused with one message, decided before the file system is asked whether the file exists.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import json
import os
import warnings
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..exceptions import DataError, ManifestError
from ..modality import ModalitySpec
from .base import MultimodalDataset, Splits
from .images import MAX_IMAGE_BYTES, decode_image
from .options import (
    MISSING_POLICIES,
    ManifestColumns,
    ManifestOptions,
    label_key,
    manifest_options,
    merge_options,
    read_sidecar,
    sidecar_path,
)
from .text import MiniLMTokenizer, WordTokenizer, clip_words

__all__ = ["MISSING_POLICIES", "ManifestColumns", "load_manifest"]

#: At most this many problems are spelled out in one error; the total is always given.
SHOWN_ISSUES = 20
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_ROWS = "rows count from 1, header excluded"
_TARGET_NAMES = ("label", "target", "class", "y", "answer", "diagnosis", "category")
_SPLITS = ("train", "val", "test")
_NA = ("", "na", "nan", "n/a", "null", "none")  # how a tabular cell may say "missing"


def _show(value: Any, width: int = 120) -> str:
    """A cell value for a message: repr'd (so one line), cut to ``width`` characters."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or (
        isinstance(value, str) and not value.strip()
    )


def _number(value: Any) -> float | None:
    """The cell as a float, None if missing; ValueError if it is neither."""
    if _is_missing(value) or (isinstance(value, str) and value.strip().lower() in _NA):
        return None
    if isinstance(value, bool):
        raise ValueError(value)
    return float(value)


# -- reading -------------------------------------------------------------------------------------
#: File extensions read as manifests (lower case).
MANIFEST_SUFFIXES = (".csv", ".parquet", ".pq")


def _read_table(path: Path) -> pd.DataFrame:
    where = f"manifest {path}"
    if not path.is_file():
        raise DataError(f"{where}: file not found.")
    suffix = path.suffix.lower()
    if suffix not in MANIFEST_SUFFIXES:
        raise DataError(f"{where}: unsupported extension {suffix!r}; use .csv or .parquet.")
    try:
        if suffix == ".csv":
            # pandas renames a repeated header "a" to "a.1": read the header itself first
            with open(path, newline="", encoding="utf-8-sig") as f:
                header = next(csv.reader(f), [])
            _check_header(header, where)
            # every cell as text, only empty cells missing: labels keep "NA", "01", "blue "
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        df = pd.read_parquet(path)
        _check_header([str(c) for c in df.columns], where)
        return df
    except DataError:
        raise
    except UnicodeDecodeError:
        raise DataError(f"{where}: not UTF-8 text; save the CSV as UTF-8.") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as e:
        reason = " ".join(str(e).split())
        raise DataError(f"{where}: cannot be read as {suffix[1:]}: {reason}") from None


def _check_header(header: list[str], where: str) -> None:
    if not header:
        raise DataError(f"{where}: no header row.")
    seen: dict[str, int] = {}
    for k, name in enumerate(header, start=1):
        if name in seen:
            raise DataError(f"{where}: column {name!r} appears twice in the header (columns {seen[name]} "
                            f"and {k}, counting from 1); rename one.")
        seen[name] = k


# -- the column mapping ------------------------------------------------------------------------
def _guess(df: pd.DataFrame, name: str) -> str:
    """What a column looks like: image, split, tabular, text or category."""
    values = [v for v in df[name].tolist() if not _is_missing(v)]
    if not values:
        return "category"
    strs = [str(v) for v in values]
    if all(s.lower().endswith(IMAGE_SUFFIXES) for s in strs):
        return "image"
    if set(strs) <= set(_SPLITS):
        return "split"
    try:
        [_number(v) for v in values]
        return "tabular"
    except (TypeError, ValueError):
        pass
    if any(len(s.split()) > 1 for s in strs) or len(set(strs)) > max(20, len(strs) // 2):
        return "text"
    return "category"


def _suggest(df: pd.DataFrame, cols: ManifestColumns, present: dict[str, Any]) -> dict[str, Any]:
    """A complete mapping guessed from the content, keeping what the user mapped that exists."""
    out: dict[str, Any] = {k: v for k, v in present.items() if v not in (None, [])}
    used = {c for v in out.values() for c in ([v] if isinstance(v, str) else v)}
    free = [c for c in df.columns if c not in used]
    kinds = {c: _guess(df, c) for c in free}
    if "target" not in out:
        named = [c for c in free if c.lower() in _TARGET_NAMES]
        pick = named or [c for c in free if kinds[c] == "category"] or free[-1:]
        if pick:
            out["target"] = pick[0]
            free.remove(pick[0])
    for role in ("image", "text", "split"):
        if role not in out:
            pick = [c for c in free if kinds[c] == role]
            if pick:
                out[role] = pick[0]
                free.remove(pick[0])
    numeric = [c for c in free if kinds[c] == "tabular" and c.lower() not in ("id", "index")
               and not c.startswith("Unnamed:")]
    if numeric:
        out["tabular"] = [*out.get("tabular", []), *numeric]
    rest = [c for c in free if c not in numeric]
    if rest:
        out["ignore"] = [*out.get("ignore", []), *rest]
    order = ("image", "text", "tabular", "target", "split", "ignore")
    return {k: out[k] for k in order if k in out}


def _resolve_columns(df: pd.DataFrame, cols: ManifestColumns, where: str) -> ManifestColumns:
    """The mapping with defaults the file lacks switched off; every mapping problem in one error."""
    explicit = cols.model_fields_set
    columns = [str(c) for c in df.columns]
    resolved = cols.model_dump()
    problems = []
    for role, name in cols.roles():
        if name in columns:
            continue
        if role in ("image", "text", "split") and role not in explicit:
            resolved[role] = None  # a default name the file does not use
            continue
        close = difflib.get_close_matches(name, columns, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"column {name!r} (mapped to {role}) not found{hint}")
        if role in ("tabular", "ignore"):
            resolved[role] = [c for c in resolved[role] if c != name]
        else:
            resolved[role] = None
    mapped = {c for v in resolved.values() if v for c in ([v] if isinstance(v, str) else v)}
    unmapped = [c for c in columns if c not in mapped]
    if unmapped:
        problems.append(f"column(s) {unmapped} neither mapped nor ignored, so their data would be dropped "
                        "silently")
    if not problems and not (resolved["image"] or resolved["text"] or resolved["tabular"]):
        problems.append("no modality columns mapped; map at least one of image, text, tabular")
    if problems:
        suggestion = _suggest(df, cols, {k: v for k, v in resolved.items() if v})
        raise DataError(f"{where}: {'; '.join(problems)}; columns: {columns}; suggested: columns="
                        f"{json.dumps(suggestion)} (list columns you do not want under \"ignore\").")
    return ManifestColumns(**{k: v for k, v in resolved.items() if k in explicit or v != getattr(cols, k)})


# -- confinement -------------------------------------------------------------------------------
def _confined(root: Path, value: str) -> Path | None:
    """The file ``value`` names inside ``root`` (already resolved), or None if it leaves it.

    Decided lexically first (absolute paths, drive letters, ``..``), then through links,
    so the answer never depends on whether an outside file exists.
    """
    if os.path.isabs(value) or PureWindowsPath(value).anchor:
        return None
    lexical = os.path.normpath(os.path.join(root, value))
    if lexical != str(root) and not lexical.startswith(str(root) + os.sep):
        return None
    try:
        real = Path(lexical).resolve()
    except (OSError, RuntimeError):  # a link loop: not a file we can read
        return Path(lexical)
    return real if real.is_relative_to(root) else None


def manifest_files(path: str | os.PathLike) -> list[Path]:
    """The files a manifest's data comes from, without decoding any: the manifest, its sidecar
    (if present) and every cell naming a file inside the manifest's folder (its images).

    Cheap enough to call before deciding whether a report made from this data is still
    current (:func:`mmexplain.report.provenance.inputs_fingerprint`).

    Raises
    ------
    DataError
        If the manifest cannot be read.
    """
    path = Path(path)
    df = _read_table(path)
    root = path.parent.resolve()
    files = [path]
    if sidecar_path(path).is_file():
        files.append(sidecar_path(path))
    seen: set[Path] = set()
    for column in df.columns:
        for value in df[column]:
            if not isinstance(value, str) or not value or len(value) > 4096 or "\0" in value:
                continue
            target = _confined(root, value)
            if target is not None and target not in seen and target.is_file():
                seen.add(target)
                files.append(target)
    return files


# -- the loader --------------------------------------------------------------------------------
def load_manifest(
    path: str | os.PathLike,
    *,
    seed: int = 0,
    text_encoder: str = "word",
    tokenizer: WordTokenizer | MiniLMTokenizer | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    **options: Any,
) -> tuple[Splits, WordTokenizer | MiniLMTokenizer | None]:
    """Read a manifest into train / val / test splits, checking every cell first.

    Parameters
    ----------
    path : path-like
        A ``.csv`` (UTF-8) or ``.parquet`` file.
    seed : int, default=0
        Seeds the split when the file has no split column.
    text_encoder : {"word", "minilm"}, default="word"
        Tokenizer built for the text column when ``tokenizer`` is None.
    tokenizer : WordTokenizer or MiniLMTokenizer, optional
        Reuse a saved tokenizer (checkpoints do).
    val_fraction, test_fraction : float
        Sizes of the seeded split.
    **options
        ``columns``, ``missing``, ``image_size``, ``max_tokens``, ``labels``,
        ``allow_outside_paths``, ``task``: see :class:`~mmexplain.data.options.ManifestOptions`.
        They override the manifest's sidecar (``data.csv`` -> ``data.mmexplain.json``) key by key.

    Returns
    -------
    splits : Splits
        ``meta`` of each split holds ``source``, ``sidecar``, ``options`` (the effective
        options, JSON-safe), ``missing`` (``policy``, ``imputed``: column -> rows,
        ``dropped_rows``) and ``truncated`` (``column``, ``max_tokens``, ``rows``); rows
        count from 1, header excluded. The fingerprint covers the manifest, sidecar and
        image files' bytes.
    tokenizer : the text tokenizer, or None without a text column

    Raises
    ------
    ConfigError
        A bad option (named), from the caller or the sidecar (the file named).
    DataError
        A file that cannot be read, a duplicate header, a mapping that leaves columns
        unused (with a suggested mapping), a single class.
    ManifestError
        Bad cells: one error naming every bad row and column (the first 20, and the total).
    """
    path = Path(path)
    explicit = manifest_options(**options)
    df = _read_table(path)
    sidecar = read_sidecar(path)
    opts = merge_options(sidecar, explicit)
    where = f"manifest {path}"
    if len(df) == 0:
        raise DataError(f"{where}: no rows.")
    cols = _resolve_columns(df, opts.columns, where)
    digest = hashlib.sha256()
    digest.update(path.read_bytes())
    if sidecar is not None:
        digest.update(sidecar_path(path).read_bytes())
    check = _Checker(df, cols, opts, path, digest)
    check.run()
    return _build(check, opts, cols, path, sidecar is not None, digest.hexdigest(), text_encoder, tokenizer,
                  seed, val_fraction, test_fraction)


class _Checker:
    """One pass over every cell: values converted, problems collected, never raised one by one."""

    def __init__(self, df: pd.DataFrame, cols: ManifestColumns, opts: ManifestOptions, path: Path,
                 digest: Any) -> None:
        self.df, self.cols, self.opts, self.path, self.digest = df, cols, opts, path, digest
        self.n = len(df)
        self.issues: list[tuple[int, str, str]] = []
        self.drop = np.zeros(self.n, dtype=bool)
        self.imputed: dict[str, list[int]] = {}
        self.tab: np.ndarray | None = None
        self.texts: list[str] | None = None
        self.truncated: list[int] = []
        self.images: np.ndarray | None = None
        self.y: torch.Tensor | None = None
        self.label_names: list[str] | None = None

    def bad(self, i: int, col: str, reason: str) -> None:
        self.issues.append((i + 1, col, reason))

    def missing(self, i: int, col: str, what: str) -> None:
        policy = self.opts.missing
        if policy == "error":
            self.bad(i, col, f"{what}; pass missing='impute-mean' or 'drop' to allow it")
        elif policy == "drop":
            self.drop[i] = True
        else:
            self.imputed.setdefault(col, []).append(i + 1)

    def run(self) -> None:
        c = self.cols
        if c.tabular:
            self._tabular()
        if c.text:
            self._text()
        if c.image:
            self._images()
        self._target()
        if c.split:
            for i, v in enumerate(self.df[c.split].tolist()):
                if str(v) not in _SPLITS:
                    self.bad(i, c.split, f"split {_show(v)}; use train, val or test")
        if self.issues:
            raise self._error()

    def _error(self) -> ManifestError:
        order = {name: k for k, name in enumerate(self.df.columns)}
        issues = sorted(self.issues, key=lambda t: (t[0], order.get(t[1], 0)))
        where = f"manifest {self.path}"
        if len(issues) == 1:
            r, col, reason = issues[0]
            return ManifestError(f"{where}, row {r}, column {col!r}: {reason} ({_ROWS}).", path=str(self.path),
                                 issues=issues)
        rows = len({r for r, _, _ in issues})
        shown = "; ".join(f"row {r}, column {col!r}: {reason}" for r, col, reason in issues[:SHOWN_ISSUES])
        more = f"; ... and {len(issues) - SHOWN_ISSUES} more" if len(issues) > SHOWN_ISSUES else ""
        return ManifestError(f"{where}: {len(issues)} problems in {rows} rows ({_ROWS}): {shown}{more}.",
                             path=str(self.path), issues=issues)

    def _tabular(self) -> None:
        tab = np.zeros((self.n, len(self.cols.tabular)), dtype=np.float32)
        for j, col in enumerate(self.cols.tabular):
            for i, v in enumerate(self.df[col].tolist()):
                try:
                    x = _number(v)
                except (TypeError, ValueError):
                    self.bad(i, col, f"value {_show(v)} is not numeric")
                    continue
                if x is None:
                    self.missing(i, col, "missing value (NaN)")
                    tab[i, j] = np.nan
                elif not np.isfinite(x) or abs(x) > np.finfo(np.float32).max:
                    self.bad(i, col, f"value {_show(v)} is not finite")
                else:
                    tab[i, j] = x
        self.tab = tab

    def _text(self) -> None:
        col, texts = self.cols.text, []
        for i, v in enumerate(self.df[col].tolist()):
            if _is_missing(v):
                self.missing(i, col, "empty text")
                v = ""
            text, cut = clip_words(str(v), self.opts.max_tokens)
            if cut:
                self.truncated.append(i + 1)
            texts.append(text)
        self.texts = texts

    def _images(self) -> None:
        col = self.cols.image
        h, w = self.opts.image_size
        root = self.path.parent.resolve()
        images = np.zeros((self.n, 3, h, w), dtype=np.uint8)
        absent = np.zeros(self.n, dtype=bool)
        for i, v in enumerate(self.df[col].tolist()):
            if _is_missing(v):
                self.missing(i, col, "empty image path")
                absent[i] = True
                continue
            value = str(v)
            if self.opts.allow_outside_paths:
                file: Path | None = Path(value) if os.path.isabs(value) else root / value
            else:
                file = _confined(root, value)
            if file is None:
                # the same words whether or not the file exists, and nothing about where it points
                self.bad(i, col, f"image path {_show(value)} leaves the manifest's folder (absolute, '..' or "
                                 "a link); pass allow_outside_paths=True to allow it")
                continue
            if not file.exists():
                self.bad(i, col, f"image file {_show(value)} not found")
                continue
            try:
                if not file.is_file() or file.stat().st_size > MAX_IMAGE_BYTES:
                    raise DataError("is not a readable image")
                data = file.read_bytes()
                self.digest.update(value.encode() + b"\0" + data)
                images[i] = decode_image(data, (h, w))
            except DataError as e:
                self.bad(i, col, f"image {_show(value)} {e}")
            except OSError:
                self.bad(i, col, f"image {_show(value)} is not a readable image")
        if absent.any() and self.opts.missing == "impute-mean":
            present = ~absent & ~self.drop
            if present.any():
                images[absent] = images[present].mean(0).round().astype(np.uint8)
        self.images = images

    def _target(self) -> None:
        col = self.cols.target
        raw = self.df[col].tolist()
        if self.opts.task == "regression":
            y = np.zeros(self.n, dtype=np.float32)
            for i, v in enumerate(raw):
                try:
                    x = _number(v)
                except (TypeError, ValueError):
                    self.bad(i, col, f"value {_show(v)} is not numeric")
                    continue
                if x is None or not np.isfinite(x):
                    self.bad(i, col, "missing target (NaN); targets are never imputed")
                else:
                    y[i] = x
            self.y = torch.from_numpy(y)
            return
        labels = ["" if _is_missing(v) else str(v) for v in raw]
        declared = self.opts.labels
        if declared is not None:
            by_key = {label_key(x): x for x in declared}
            for i, lab in enumerate(labels):
                if lab in declared:
                    continue
                if not lab:
                    self.bad(i, col, "missing label; labels are never imputed")
                    continue
                near = by_key.get(label_key(lab))
                hint = f"; did you mean {near!r}? they differ only in case or whitespace" if near else ""
                self.bad(i, col, f"label {_show(lab)} is not one of the declared labels {declared}{hint}")
            names = list(declared)
        else:
            counts: dict[str, int] = {}
            for lab in labels:
                if lab:
                    counts[lab] = counts.get(lab, 0) + 1
            groups: dict[str, list[str]] = {}
            for lab in counts:
                groups.setdefault(label_key(lab), []).append(lab)
            # in a group of near-duplicates the most frequent spelling is taken for the intended one
            canon = {lab: max(g, key=lambda s: (counts[s], s == s.strip(), s)) for g in groups.values() for lab in g}
            for i, lab in enumerate(labels):
                if not lab:
                    self.bad(i, col, "missing label; labels are never imputed")
                elif canon[lab] != lab:
                    self.bad(i, col, f"label {_show(lab)} and {canon[lab]!r} differ only in case or whitespace; "
                                     f"make them identical or declare labels=[...]")
            names = sorted(counts)
        index = {name: k for k, name in enumerate(names)}
        self.label_names = names
        self.y = torch.tensor([index.get(lab, 0) for lab in labels], dtype=torch.long)


def _build(check: _Checker, opts: ManifestOptions, cols: ManifestColumns, path: Path, has_sidecar: bool,
           source_sha256: str, text_encoder: str, tokenizer: Any, seed: int, val_fraction: float,
           test_fraction: float) -> tuple[Splits, Any]:
    where = f"manifest {path}"
    keep = np.nonzero(~check.drop)[0]
    if len(keep) == 0:
        raise DataError(f"{where}: every row was dropped by missing='drop'.")
    y = torch.as_tensor(check.y)[torch.from_numpy(keep)]
    if opts.task == "classification":
        present = sorted({check.label_names[int(k)] for k in y.unique()})
        if len(present) < 2:
            dropped = " after dropping rows" if check.drop.any() else ""
            raise DataError(f"{where}, column {cols.target!r}: every row{dropped} has label {present[0]!r}; a "
                            "classifier needs at least two classes.")
    tab = check.tab
    if tab is not None and opts.missing == "impute-mean":
        with warnings.catch_warnings():  # an all-missing column is reported just below
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nanmean(np.where(check.drop[:, None], np.nan, tab), axis=0)
        nan_r, nan_c = np.nonzero(np.isnan(tab))
        tab[nan_r, nan_c] = means[nan_c]
        if np.isnan(tab[keep]).any():
            bad = [c for j, c in enumerate(cols.tabular) if np.isnan(means[j])]
            raise DataError(f"{where}: column(s) {bad} have no values to impute a mean from.")
    meta: dict[str, Any] = {
        "source": str(path),
        "sidecar": str(sidecar_path(path)) if has_sidecar else None,
        "options": {**opts.model_dump(mode="json"), "columns": cols.model_dump()},  # effective, JSON-safe
        "source_sha256": source_sha256,
        "missing": {"policy": opts.missing, "imputed": check.imputed,
                    "dropped_rows": [int(i) + 1 for i in np.nonzero(check.drop)[0]]},
    }
    specs, stores = [], {}
    if check.images is not None:
        specs.append(ModalitySpec("image", "image"))
        stores["image"] = torch.from_numpy(check.images[keep])
    if check.texts is not None:
        kept = [check.texts[i] for i in keep]
        if tokenizer is None:
            tokenizer = WordTokenizer.fit([t for t in kept if t] or [""]) if text_encoder == "word" else MiniLMTokenizer()
        enc = tokenizer.encode(kept)
        specs.append(ModalitySpec("text", "tokens", pad_id=tokenizer.pad_id))
        stores["text"] = enc.ids
        meta["texts"] = {"text": kept}
        meta["valid_tokens"] = {"text": enc.valid}
        meta["token_words"] = {"text": enc.words}
        meta["truncated"] = {"column": cols.text, "max_tokens": opts.max_tokens, "rows": check.truncated}
    if tab is not None:
        specs.append(ModalitySpec("tabular", "tabular"))
        stores["tabular"] = torch.from_numpy(tab[keep])
        meta["feature_names"] = {"tabular": list(cols.tabular)}
    k = len(keep)
    data = MultimodalDataset(
        name=f"manifest:{path.name}",
        modalities=specs,
        stores=stores,
        rows={m: torch.arange(k) for m in stores},
        targets=y,
        task=opts.task,
        label_names=check.label_names,
        meta=meta,
    )
    split_values = check.df[cols.split].tolist() if cols.split else None
    return _split(data, split_values, keep, where, seed, val_fraction, test_fraction), tokenizer


def _split(
    data: MultimodalDataset,
    split_values: list[Any] | None,
    keep: np.ndarray,
    where: str,
    seed: int,
    val_fraction: float,
    test_fraction: float,
) -> Splits:
    if split_values is not None:
        values = [str(split_values[i]) for i in keep]
        idx = {s: [j for j, v in enumerate(values) if v == s] for s in _SPLITS}
    else:
        perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed)).tolist()
        n_test = max(1, int(len(data) * test_fraction)) if len(data) >= 3 else 0
        n_val = max(1, int(len(data) * val_fraction)) if len(data) >= 3 else 0
        idx = {"test": perm[:n_test], "val": perm[n_test : n_test + n_val], "train": perm[n_test + n_val :]}
    for s, ids in idx.items():
        if not ids:
            raise DataError(f"{where}: the {s} split is empty; add rows or a split column.")
    return Splits(*(data.subset(sorted(idx[s]), name=f"{data.name}/{s}") for s in _SPLITS))

