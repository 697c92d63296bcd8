"""A catalogue of bad inputs to the data layer: every one is named in one line, nothing is written.

Each fault case builds a tiny manifest (8x8 images) in ``tmp_path`` and loads it through the
public entry point, ``load_dataset``; the message must name the culprit (file, row, column or
argument) and the folder must be left exactly as it was. Conversions that must succeed
(16-bit, palette, alpha, imputation, truncation, sidecar) are checked by their values.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from fixtures.user_dataset import truth, write_user_dataset
from PIL import Image

from mmexplain.data import load_dataset, manifest_options, sidecar_path
from mmexplain.exceptions import ConfigError, DataError, ManifestError

COLS = {"image": "path", "text": "question", "tabular": ["age"], "target": "label"}
LABELS = ("red", "blue")


# -- builders -------------------------------------------------------------------------------------
def _png(path: Path, value: int | np.ndarray = 0) -> None:
    arr = np.full((8, 8, 3), value, dtype=np.uint8) if isinstance(value, int) else value
    Image.fromarray(arr).save(path)


def _rows(folder: Path, n: int = 8) -> list[dict[str, Any]]:
    """n good rows with images img0..img{n-1}.png; rows 1..6 train, 7 val, 8 test (from 1)."""
    rows = []
    for i in range(n):
        _png(folder / f"img{i}.png", 30 * i % 256)
        rows.append({"path": f"img{i}.png", "question": f"is it {LABELS[i % 2]} here", "age": 20 + i,
                     "label": LABELS[i % 2], "split": "train" if i < n - 2 else ("val" if i == n - 2 else "test")})
    return rows


def _write(folder: Path, rows: list[dict[str, Any]], name: str = "data.csv") -> Path:
    path = folder / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _good(folder: Path, **change: Any) -> Path:
    """The good manifest with ``change = {row (from 1): {column: value}}`` applied."""
    rows = _rows(folder)
    for key, cells in change.items():
        rows[int(key[1:]) - 1].update(cells)
    return _write(folder, rows)


def _bomb_png(path: Path, width: int, height: int) -> None:
    """A few-byte PNG whose header declares width x height pixels (never decoded)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))


def _listing(folder: Path) -> list[tuple[str, int, int]]:
    out = []
    for root, _, files in os.walk(folder):
        for f in files:
            p = Path(root) / f
            st = p.lstat()
            out.append((str(p.relative_to(folder)), st.st_size, st.st_mtime_ns))
    return sorted(out)


def _load(path: Path, **options: Any):
    return load_dataset(str(path), **{"columns": COLS, "image_size": 8, **options})


# -- the catalogue of faults ----------------------------------------------------------------------
@dataclass
class Fault:
    id: str
    build: Callable[[Path], tuple[Path, dict[str, Any]]]
    error: type[Exception]
    expect: list[str] = field(default_factory=list)


def _question_dropped(d: Path):
    rows = [{"image": r["path"], "question": r["question"], "label": r["label"]} for r in _rows(d)]
    return _write(d, rows), {"columns": None, "image_size": 8}


def _five_bad_rows(d: Path):
    rows = _rows(d)
    rows[1]["age"] = "abc"            # row 2
    rows[3]["path"] = "nope.png"      # row 4
    rows[4]["question"] = ""          # row 5
    rows[5]["split"] = "holdout"      # row 6
    rows[6]["age"] = "inf"            # row 7
    return _write(d, rows), {}


def _many_bad_rows(d: Path):
    rows = _rows(d, 30)
    for r in rows:
        r["age"] = "x"
    return _write(d, rows), {}


def _relabel(i: int, label: str, column: str = "label", **opts: Any):
    def build(d: Path):
        return _good(d, **{f"r{i}": {column: label}}), opts
    return build


def _duplicate_column(d: Path):
    path = _good(d)
    text = path.read_text().splitlines()
    text[0] = text[0].replace("split", "age")
    path.write_text("\n".join(text) + "\n")
    return path, {}


def _one_class(d: Path):
    rows = _rows(d)
    for r in rows:
        r["label"] = "red"
    return _write(d, rows), {}


def _one_class_after_drop(d: Path):
    rows = _rows(d)
    for r in rows:
        if r["label"] == "blue":
            r["age"] = ""
    return _write(d, rows), {"missing": "drop"}


def _image(i: int, write: Callable[[Path], None], value: str | None = None, **opts: Any):
    def build(d: Path):
        path = _good(d, **({f"r{i}": {"path": value}} if value else {}))
        write(d / (value or f"img{i - 1}.png"))
        return path, opts
    return build


def _outside(value: Callable[[Path], str], exists: bool):
    def build(d: Path):
        data, out = d / "data", d / "outside"
        data.mkdir()
        out.mkdir()
        if exists:
            _png(out / "secret.png", 7)
        rows = _rows(data)
        rows[2]["path"] = value(d)
        return _write(data, rows), {}
    return build


def _symlink_out(d: Path):
    path, _ = _outside(lambda d: "link.png", True)(d)
    (d / "data" / "link.png").symlink_to(d / "outside" / "secret.png")
    return path, {}


def _non_image(d: Path):
    path = _good(d)
    (d / "img3.png").write_text("password=hunter2\n")
    return path, {}


def _sidecar(content: str, **opts: Any):
    def build(d: Path):
        path = _write(d, _rows(d))
        sidecar_path(path).write_text(content)
        return path, {"columns": None, **opts}
    return build


def _options(**opts: Any):
    def build(d: Path):
        return _good(d), opts
    return build


def _empty_tabular_all(d: Path):
    rows = _rows(d)
    for r in rows:
        r["age"] = ""
    return _write(d, rows), {"missing": "impute-mean"}


FAULTS = [
    Fault("question-column-silently-dropped", _question_dropped, DataError,
          [r"data\.csv", r"\['question'\] neither mapped nor ignored", r'suggested: columns=\{"image": "image", '
           r'"text": "question", "target": "label"\}']),
    Fault("five-bad-rows-in-one-error", _five_bad_rows, ManifestError,
          [r"data\.csv: 5 problems in 5 rows \(rows count from 1, header excluded\)",
           r"row 2, column 'age': value 'abc' is not numeric", r"row 4, column 'path': image file 'nope.png' not found",
           r"row 5, column 'question': empty text", r"row 6, column 'split': split 'holdout'",
           r"row 7, column 'age': value 'inf' is not finite"]),
    Fault("over-20-problems-shows-20-and-total", _many_bad_rows, ManifestError,
          [r"30 problems in 30 rows", r"row 20, column 'age'", r"\.\.\. and 10 more\.$"]),
    Fault("label-outside-declared", _relabel(3, "purple", labels=["red", "blue"]), ManifestError,
          [r"row 3, column 'label': label 'purple' is not one of the declared labels \['red', 'blue'\]"]),
    Fault("label-trailing-space", _relabel(3, "red "), ManifestError,
          [r"row 3, column 'label': label 'red ' and 'red' differ only in case or whitespace"]),
    Fault("label-case", _relabel(4, "Blue"), ManifestError,
          [r"row 4, column 'label': label 'Blue' and 'blue' differ only in case"]),
    Fault("label-near-declared", _relabel(4, "Blue", labels=["red", "blue"]), ManifestError,
          [r"row 4, column 'label': label 'Blue' is not one of the declared .* did you mean 'blue'\?"]),
    Fault("declared-labels-near-duplicates", _options(labels=["blue", "Blue"]), ConfigError,
          [r"labels=\['blue', 'Blue'\]: labels 'blue' and 'Blue' differ only in case"]),
    Fault("declared-one-label", _options(labels="red"), ConfigError, [r"labels='red': declare at least two"]),
    Fault("missing-label", _relabel(2, ""), ManifestError,
          [r"row 2, column 'label': missing label; labels are never imputed"]),
    Fault("duplicate-column", _duplicate_column, DataError,
          [r"data\.csv: column 'age' appears twice in the header \(columns 3 and 5"]),
    Fault("one-class", _one_class, DataError, [r"data\.csv, column 'label': every row has label 'red'"]),
    Fault("one-class-after-drop", _one_class_after_drop, DataError,
          [r"every row after dropping rows has label 'red'"]),
    Fault("float-image-refused", _image(2, lambda p: Image.fromarray(np.zeros((8, 8), np.float32)).save(p, "TIFF"),
                                        "img1.tif"), ManifestError,
          [r"row 2, column 'path': image 'img1.tif' has mode 'F', which is not supported"]),
    Fault("decompression-bomb-pillow", _image(3, lambda p: _bomb_png(p, 15000, 15000), "bomb.png"), ManifestError,
          [r"data\.csv, row 3, column 'path': image 'bomb.png' declares more than \d+ pixels"]),
    Fault("decompression-bomb-own-limit", _image(3, lambda p: _bomb_png(p, 5000, 5000), "big.png"), ManifestError,
          [r"row 3, column 'path': image 'big.png' declares 5000x5000 \(HxW\) pixels, over the limit"]),
    Fault("wrong-size", _image(5, lambda p: _png(p, np.zeros((5, 7, 3), np.uint8))), ManifestError,
          [r"row 5, column 'path': image 'img4.png' is 5x7 \(HxW\), expected 8x8"]),
    Fault("absolute-path-outside", _outside(lambda d: str(d / "outside" / "secret.png"), True), ManifestError,
          [r"data\.csv, row 3, column 'path': image path '/.*secret.png' leaves the manifest's folder",
           "allow_outside_paths=True"]),
    Fault("dotdot-path-outside", _outside(lambda d: "../outside/secret.png", True), ManifestError,
          [r"row 3, column 'path': image path '../outside/secret.png' leaves the manifest's folder"]),
    Fault("symlink-escaping", _symlink_out, ManifestError,
          [r"row 3, column 'path': image path 'link.png' leaves the manifest's folder"]),
    Fault("non-image-file", _non_image, ManifestError,
          [r"data\.csv, row 4, column 'path': image 'img3.png' is not a readable image \(rows count"]),
    Fault("columns-bad-json", _options(columns='{"image": "path",'), ConfigError,
          [r"^columns='\{\"image\": \"path\",': not valid JSON"]),
    Fault("columns-unknown-role", _options(columns={**COLS, "audio": "x"}), ConfigError,
          [r"columns=.*unknown key 'audio'; allowed: \['image', 'text', 'tabular', 'target', 'split', 'ignore'\]"]),
    Fault("column-mapped-twice", _options(columns={**COLS, "tabular": ["age", "label"]}), ConfigError,
          [r"column 'label' is mapped twice \(tabular and target\)"]),
    Fault("mapped-column-missing", _options(columns={**COLS, "tabular": ["agee"]}), DataError,
          [r"column 'agee' \(mapped to tabular\) not found \(did you mean 'age'\?\)"]),
    Fault("unknown-option", _options(colums=COLS), ConfigError,
          [r"unknown manifest option 'colums'; allowed: \['columns', 'missing', 'image_size'"]),
    Fault("bad-missing-policy", _options(missing="ignore"), ConfigError, [r"^missing='ignore': Input should be"]),
    Fault("bad-max-tokens", _options(max_tokens=0), ConfigError, [r"^max_tokens=0: must be an integer >= 1"]),
    Fault("bad-image-size", _options(image_size="big"), ConfigError, [r"^image_size='big': must be an int"]),
    Fault("huge-image-size", _options(image_size=100_000), ConfigError, [r"image_size=100000: .*over the limit"]),
    Fault("sidecar-bad-json", _sidecar('{"columns": '), ConfigError,
          [r"^sidecar .*data\.mmexplain\.json: not valid JSON"]),
    Fault("sidecar-unknown-key", _sidecar('{"colour": 1}'), ConfigError,
          [r"^sidecar .*data\.mmexplain\.json: unknown manifest option 'colour'"]),
    Fault("sidecar-cannot-lift-confinement", _sidecar('{"allow_outside_paths": true}'), ConfigError,
          [r"data\.mmexplain\.json: 'allow_outside_paths' can only be given by the caller"]),
    Fault("regression-target-not-numeric", _relabel(5, "tall", "age", task="regression",
                                                    columns={**COLS, "target": "age", "tabular": [],
                                                             "ignore": ["label"]}), ManifestError,
          [r"row 5, column 'age': value 'tall' is not numeric"]),
    Fault("impute-with-no-values", _empty_tabular_all, DataError, [r"column\(s\) \['age'\] have no values to impute"]),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.id for f in FAULTS])
def test_fault_is_named_in_one_line_and_nothing_is_written(fault, tmp_path):
    path, options = fault.build(tmp_path)
    before = _listing(tmp_path)
    with pytest.raises(fault.error) as info:
        _load(path, **options)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    for pattern in fault.expect:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
    assert _listing(tmp_path) == before


def test_regression_manifest_has_float_targets(tmp_path):
    path = _good(tmp_path)
    cols = {**COLS, "target": "age", "tabular": [], "ignore": ["label"]}
    splits, _ = _load(path, columns=cols, task="regression")
    assert splits.train.task == "regression" and splits.train.targets.tolist() == [20.0, 21, 22, 23, 24, 25]


def test_five_bad_rows_are_structured_too(tmp_path):
    path, _ = _five_bad_rows(tmp_path)
    with pytest.raises(ManifestError) as info:
        _load(path)
    assert [(r, c) for r, c, _ in info.value.issues] == [(2, "age"), (4, "path"), (5, "question"), (6, "split"),
                                                          (7, "age")]


def test_outside_path_message_does_not_tell_whether_the_file_exists(tmp_path):
    def message(value: Callable[[Path], str], exists: bool, world: str) -> str:
        d = tmp_path / world
        d.mkdir()
        path, _ = _outside(value, exists)(d)
        with pytest.raises(ManifestError) as info:
            _load(path)
        return str(info.value).replace(str(d), "<D>")

    for value in (lambda d: "../outside/secret.png", lambda d: str(d / "outside" / "secret.png"),
                  lambda d: "../../../../../../../../etc/../outside/secret.png"):
        there, absent = message(value, True, "a"), message(value, False, "b")
        assert there == absent and "not found" not in there
        for d in ("a", "b"):
            shutil.rmtree(tmp_path / d)


def test_allow_outside_paths_reads_outside_files(tmp_path):
    path, _ = _outside(lambda d: "../outside/secret.png", True)(tmp_path)
    splits, _ = _load(path, allow_outside_paths=True)
    assert float(splits.train.inputs([2])["image"].mul(255).round().max()) == 7.0
    rows = pd.read_csv(path)
    rows.loc[2, "path"] = str(tmp_path / "outside" / "secret.png")
    rows.to_csv(path, index=False)
    splits, _ = _load(path, allow_outside_paths="true")  # a CLI string works too
    assert float(splits.train.inputs([2])["image"].mul(255).round().max()) == 7.0


def test_links_and_dotdot_inside_the_folder_are_fine(tmp_path):
    path = _good(tmp_path, r2={"path": "sub/../img1.png"}, r3={"path": "alias.png"})
    (tmp_path / "sub").mkdir()
    (tmp_path / "alias.png").symlink_to(tmp_path / "img2.png")
    splits, _ = _load(path)
    assert len(splits.train) == 6


# -- conversions that must succeed, checked by value ----------------------------------------------
def _image_row(tmp_path: Path, write: Callable[[Path], None]) -> torch.Tensor:
    """Write row 2's image with ``write`` and return it as loaded, in 0..255."""
    path = _good(tmp_path)
    write(tmp_path / "img1.png")
    splits, _ = _load(path)
    return splits.train.inputs([1])["image"][0].mul(255).round()


def test_16_bit_png_is_scaled_to_8_bits(tmp_path):
    values = np.array([0, 257, 32896, 65535, 1000, 40000, 65280, 128], dtype=np.uint16)
    a = np.tile(values, (8, 1))
    img = _image_row(tmp_path, lambda p: Image.fromarray(a).save(p))
    assert Image.open(tmp_path / "img1.png").mode.startswith("I")
    expected = torch.tensor(np.round(values / 257.0))  # 0, 1, 128, 255, 4, 156, 254, 0
    assert torch.equal(img[0, 0], expected) and torch.equal(img[2, 5], expected)


def test_palette_png_is_looked_up(tmp_path):
    def write(p: Path) -> None:
        im = Image.new("P", (8, 8))
        im.putpalette([0, 0, 0, 250, 10, 20] + [0] * 762)
        im.putpixel((3, 0), 1)  # (x, y): row 0, column 3
        im.save(p)
    img = _image_row(tmp_path, write)
    assert img[:, 0, 3].tolist() == [250.0, 10.0, 20.0] and img[:, 0, 0].tolist() == [0.0, 0.0, 0.0]


def test_rgba_is_composited_over_black(tmp_path):
    a = np.zeros((8, 8, 4), np.uint8)
    a[..., :3] = (200, 100, 50)
    a[0, 0, 3], a[0, 1, 3], a[0, 2, 3] = 255, 0, 51
    img = _image_row(tmp_path, lambda p: Image.fromarray(a).save(p))
    assert img[:, 0, 0].tolist() == [200, 100, 50]
    assert img[:, 0, 1].tolist() == [0, 0, 0]
    assert img[:, 0, 2].tolist() == [40, 20, 10]  # 51/255 = 0.2


@pytest.mark.parametrize("mode, make, pixel", [
    ("1", lambda: Image.fromarray(np.eye(8, dtype=bool)), [255, 255, 255]),
    ("LA", lambda: Image.merge("LA", [Image.new("L", (8, 8), 100), Image.new("L", (8, 8), 255)]), [100, 100, 100]),
    ("CMYK", lambda: Image.new("CMYK", (8, 8), (0, 255, 255, 0)), [255, 0, 0]),
])
def test_other_modes_convert(tmp_path, mode, make, pixel):
    img = _image_row(tmp_path, lambda p: make().save(p, "TIFF" if mode == "CMYK" else "PNG"))
    assert img[:, 0, 0].tolist() == pixel


# -- provenance ---------------------------------------------------------------------------------------
def test_imputed_rows_are_listed_by_number(tmp_path):
    path = _good(tmp_path, r3={"age": ""}, r5={"question": ""}, r6={"path": ""})
    splits, _ = _load(path, missing="impute-mean")
    rec = splits.test.describe()["missing"]
    assert rec == {"policy": "impute-mean", "imputed": {"age": [3], "question": [5], "path": [6]}, "dropped_rows": []}
    ages = splits.train.inputs()["tabular"][:, 0]
    assert float(ages[2]) == pytest.approx(np.mean([20, 21, 23, 24, 25, 26, 27]))


def test_dropped_rows_are_listed_by_number(tmp_path):
    path = _good(tmp_path, r2={"age": "NA"}, r4={"path": ""})
    splits, _ = _load(path, missing="drop")
    assert splits.train.meta["missing"]["dropped_rows"] == [2, 4]
    assert len(splits.train) == 4 and splits.train.describe()["missing"]["dropped_rows"] == [2, 4]


def test_megabyte_text_is_truncated_and_counted(tmp_path):
    long = "red " + "word " * 210_000  # ~1 MB in one cell
    path = _good(tmp_path, r3={"question": long})
    splits, _ = _load(path, max_tokens=16)
    meta = splits.train.meta
    assert meta["truncated"] == {"column": "question", "max_tokens": 16, "rows": [3]}
    assert len(meta["texts"]["text"][2].split()) == 16
    assert splits.train.inputs()["text"].shape[1] <= 16


def test_fingerprint_follows_manifest_and_image_bytes(tmp_path):
    path = _good(tmp_path)
    fp = lambda: "-".join(s.fingerprint() for s in _load(path)[0].__dict__.values())  # noqa: E731
    first = fp()
    assert fp() == first
    _png(tmp_path / "img0.png", np.pad(np.zeros((7, 8, 3), np.uint8), ((0, 1), (0, 0), (0, 0)), constant_values=1))
    second = fp()
    assert second != first
    path.write_text(path.read_text().replace("red", "crimson"))  # same tensors, different labels
    assert fp() != second


# -- options: one validated object --------------------------------------------------------------------
def test_options_from_cli_strings_are_canonical_and_json_safe():
    opts = manifest_options(columns=json.dumps(COLS), missing="drop", image_size="8x8", max_tokens="16",
                            labels="red, blue", allow_outside_paths="false")
    params = opts.to_params()
    assert params == {"columns": COLS, "missing": "drop", "image_size": [8, 8], "max_tokens": 16,
                      "labels": ["red", "blue"], "allow_outside_paths": False}
    assert json.loads(json.dumps(params)) == params
    assert manifest_options(**params).to_params() == params
    assert manifest_options(columns=None, labels=None).to_params() == {}
    for size in (8, "8", " 8 ", "8x8", "8,8", [8, 8], (8, 8)):
        assert manifest_options(image_size=size).to_params() == {"image_size": [8, 8]}
    assert manifest_options(image_size="6x8").image_size == (6, 8)


@pytest.mark.parametrize("spec", ["easy-vqa", "synthetic:additive"])
@pytest.mark.parametrize("key, value", [("columns", COLS), ("max_tokens", 8), ("allow_outside_paths", True)])
def test_manifest_options_are_refused_by_builtin_datasets(spec, key, value):
    with pytest.raises(ConfigError, match=rf"^{key}= applies to manifests only; dataset='{spec}' takes"):
        load_dataset(spec, **{key: value})


def test_unknown_option_for_builtin_dataset_lists_allowed():
    with pytest.raises(ConfigError, match=r"unknown option 'colour' for dataset='synthetic:additive'; allowed: \["):
        load_dataset("synthetic:additive", colour=1)


# -- sidecar ---------------------------------------------------------------------------------------
def test_sidecar_mapping_is_used(tmp_path):
    path, _ = _sidecar(json.dumps({"columns": COLS, "image_size": 8}))(tmp_path)
    splits, _ = load_dataset(str(path))
    assert splits.train.modality_names == ["image", "text", "tabular"]
    assert splits.train.meta["sidecar"] == str(tmp_path / "data.mmexplain.json")


def test_explicit_columns_override_sidecar(tmp_path):
    path, _ = _sidecar(json.dumps({"columns": COLS, "image_size": 8, "missing": "drop"}))(tmp_path)
    only_tab = {"image": None, "text": None, "tabular": ["age"], "target": "label", "ignore": ["path", "question"]}
    splits, _ = load_dataset(str(path), columns=only_tab)
    assert splits.train.modality_names == ["tabular"]
    assert splits.train.meta["options"]["missing"] == "drop"  # keys not given still come from the sidecar


# -- the shared user-data fixture -------------------------------------------------------------------
def test_user_dataset_fixture_loads_all_three_modalities(tmp_path):
    path = write_user_dataset(tmp_path, n=48, seed=0)
    cols = {"image": "path", "text": "question", "tabular": ["age", "bmi"], "target": "label"}
    splits, tok = load_dataset(str(path), columns=cols)
    assert splits.train.modality_names == ["image", "text", "tabular"]
    assert sum(len(s) for s in splits.__dict__.values()) == 48
    assert splits.train.label_names == ["no", "yes"]
    df = pd.read_csv(path)
    assert df["question"].str.contains("<script>").any() and df["question"].str.len().max() > 100_000
    assert splits.train.meta["truncated"]["rows"] == [6]
    # the label is the majority of one bit per modality, and each bit decides some rows
    x = splits.train.inputs()
    red = (x["image"][:, 0].mean((1, 2)) > x["image"][:, 2].mean((1, 2))).tolist()
    texts = splits.train.meta["texts"]["text"]  # indexed by store row, like every store
    urgent = [texts[r].startswith("urgent") for r in splits.train.rows["text"].tolist()]
    old = (x["tabular"][:, 0] > 50).tolist()
    labels = [truth(r, u, o) for r, u, o in zip(red, urgent, old)]
    assert labels == [splits.train.label_names[int(t)] for t in splits.train.targets]
    bits = list(zip(red, urgent, old))
    for k in range(3):  # modality k decides the rows where the other two disagree
        assert len({b[k] for b in bits}) == 2
        assert any(b[(k + 1) % 3] != b[(k + 2) % 3] for b in bits)
