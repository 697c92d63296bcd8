"""Data: easy-VQA ground truth, planted data, manifests and their error messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from mmexplain.data import MultimodalDataset, load_dataset, load_manifest, make_synthetic
from mmexplain.data.easy_vqa import question_evidence
from mmexplain.exceptions import ConfigError, DataError


# -- easy-VQA -------------------------------------------------------------------------------
def test_easy_vqa_sizes_and_ground_truth(easy_vqa_small):
    splits, tok = easy_vqa_small
    assert len(splits.train) == 2000 and len(splits.test) == 2000
    x = splits.train.inputs([0, 1, 2])
    assert x["image"].shape == (3, 3, 64, 64) and x["image"].dtype == torch.float32
    assert 0.0 <= float(x["image"].min()) and float(x["image"].max()) <= 1.0
    assert splits.train.label_names and len(splits.train.label_names) == 13
    # the shape mask is exactly the non-background pixels
    mask = splits.train.evidence_for("image", [0])[0]
    img = (x["image"][0] * 255).round()
    background = img[:, 0, 0].reshape(3, 1, 1)
    assert torch.equal(mask, (img != background).any(0))
    assert 0.01 < float(mask.float().mean()) < 0.8


def test_easy_vqa_question_evidence_marks_colour_and_shape_words(easy_vqa_small):
    splits, tok = easy_vqa_small
    texts = splits.train.meta["texts"]["question"]
    ev = splits.train.evidence["question"]
    words = splits.train.meta["token_words"]["question"]
    for r, q in enumerate(texts):
        marked = {words[r][t] for t in torch.nonzero(ev[r]).flatten().tolist()}
        assert marked, q
        for w in marked:
            assert w in q


def test_question_evidence_by_hand():
    ev = question_evidence([["is", "there", "a", "red", "circle", "?"], ["what", "shape", "is", "it", None, None]])
    assert ev.tolist() == [[False, False, False, True, True, False], [False, True, False, False, False, False]]


def test_easy_vqa_val_split_shares_no_image():
    splits, _ = load_dataset("easy-vqa", seed=3, limit=None)
    tr = set(splits.train.rows["image"].tolist())
    va = set(splits.val.rows["image"].tolist())
    assert tr and va and not (tr & va)


# -- planted data ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["image_only", "text_only", "additive", "interaction", "redundant"])
def test_synthetic_modes_plant_signal_where_evidence_says(mode):
    d = make_synthetic(mode, n=200, modalities=("image", "text", "tabular", "audio"), seed=1)
    assert len(d) == 200 and d.modality_names == ["image", "text", "tabular", "audio"]
    x = d.inputs()
    # image: the evidence patch is exactly +-1, the label follows the rules of the mode
    patch = x["image"][:, 0][d.evidence["image"]].reshape(200, -1)
    s_img = patch[:, 0].sign()
    assert torch.all(patch == patch[:, :1])
    text_signal = x["text"][d.evidence["text"]]
    s_txt = torch.where(text_signal == 2, 1.0, -1.0)
    y = d.targets.float()
    if mode == "image_only":
        assert torch.equal(y, (s_img > 0).float())
    if mode == "text_only":
        assert torch.equal(y, (s_txt > 0).float())
    if mode == "interaction":
        assert torch.equal(y, (s_img != s_txt).float())
        # no single modality predicts the label
        assert abs(float((y == (s_img > 0).float()).float().mean()) - 0.5) < 0.1
    if mode == "redundant":
        assert torch.equal(s_img, s_txt)
    assert d.meta["planted"]["mode"] == mode
    assert abs(sum(d.meta["planted"]["shares"].values()) - 1.0) < 1e-6


def test_synthetic_additive_regression_is_weighted_sum():
    d = make_synthetic("additive", n=100, modalities=("image", "tabular"), weights=(3, 1), task="regression")
    assert d.task == "regression"
    assert d.meta["planted"]["weights"] == [0.75, 0.25]
    assert set(torch.round(d.targets * 100).tolist()) <= {100.0, 50.0, -50.0, -100.0}


def test_synthetic_is_deterministic_by_seed():
    a, b, c = (make_synthetic("additive", n=50, seed=s) for s in (7, 7, 8))
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "nope"}, "synthetic mode='nope'"),
        ({"modalities": ("image",)}, "must be 2 to 4 distinct names"),
        ({"modalities": ("image", "smell")}, "unknown synthetic modality 'smell'"),
        ({"mode": "text_only", "modalities": ("image", "tabular")}, "needs the 'text' modality"),
        ({"mode": "additive", "weights": (1, -1, 0)}, "non-negative"),
    ],
)
def test_synthetic_bad_parameters(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        make_synthetic(**{"mode": "additive", **kwargs})


def test_load_dataset_rejects_unknown_spec():
    with pytest.raises(ConfigError, match="dataset='mnist' is not 'easy-vqa'"):
        load_dataset("mnist")
    with pytest.raises(ConfigError, match="synthetic:<mode>"):
        load_dataset("synthetic:xor")


# -- in-memory data -------------------------------------------------------------------------
def test_from_tensors_checks_lengths_and_kinds():
    with pytest.raises(DataError, match=r"mismatched lengths: \{'a': 3, 'b': 4, 'targets': 3\}"):
        MultimodalDataset.from_tensors({"a": np.zeros((3, 2)), "b": np.zeros((4, 2))}, [0, 1, 0],
                                       kinds={"a": "tabular", "b": "tabular"})
    with pytest.raises(DataError, match="unknown modality kind 'smell'"):
        MultimodalDataset.from_tensors({"a": np.zeros((3, 2))}, [0, 1, 0], kinds={"a": "smell"})
    with pytest.raises(DataError, match="kinds names modality 'b'"):
        MultimodalDataset.from_tensors({"a": np.zeros((3, 2))}, [0, 1, 0], kinds={"a": "tabular", "b": "image"})
    d = MultimodalDataset.from_tensors({"a": np.ones((3, 2))}, [0, 1, 0], kinds={"a": "tabular"})
    assert d.inputs()["a"].shape == (3, 2) and d.n_outputs == 2


# -- manifests ------------------------------------------------------------------------------
def _write_manifest(tmp_path, rows, *, image_size=(8, 8), fmt="csv"):
    for i in range(len(rows)):
        Image.fromarray(np.full((*image_size, 3), 40 * i % 255, dtype=np.uint8)).save(tmp_path / f"img{i}.png")
    df = pd.DataFrame(rows)
    path = tmp_path / f"manifest.{fmt}"
    df.to_csv(path, index=False) if fmt == "csv" else df.to_parquet(path)
    return path


def _rows(n=10):
    return [{"image": f"img{i}.png", "text": f"word{i % 3} is here", "age": float(i), "score": 2.0 * i,
             "label": "cat" if i % 2 else "dog"} for i in range(n)]


MAP = {"image": "image", "text": "text", "tabular": ["age", "score"], "target": "label"}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_manifest_loads_all_modalities(tmp_path, fmt):
    path = _write_manifest(tmp_path, _rows(), fmt=fmt)
    splits, tok = load_manifest(path, columns=MAP, image_size=(8, 8))
    total = len(splits.train) + len(splits.val) + len(splits.test)
    assert total == 10
    x = splits.train.inputs([0])
    assert x["image"].shape == (1, 3, 8, 8) and x["text"].dtype == torch.long and x["tabular"].shape == (1, 2)
    assert splits.train.label_names == ["cat", "dog"]


def test_manifest_split_column_is_used_when_present(tmp_path):
    rows = _rows()
    for i, r in enumerate(rows):
        r["split"] = "test" if i >= 6 else ("val" if i == 5 else "train")
    splits, _ = load_manifest(_write_manifest(tmp_path, rows), columns=MAP, image_size=(8, 8))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (5, 1, 4)
    rows[2]["split"] = "holdout"
    with pytest.raises(DataError, match=r"row 3, column 'split': split 'holdout'"):
        load_manifest(_write_manifest(tmp_path, rows), columns=MAP, image_size=(8, 8))


def _expect(tmp_path, rows, message, **kw):
    path = _write_manifest(tmp_path, rows)
    with pytest.raises(DataError, match=message):
        load_manifest(path, **{"columns": MAP, "image_size": (8, 8), **kw})


def test_manifest_missing_image_file(tmp_path):
    rows = _rows()
    rows[3]["image"] = "missing.png"
    _expect(tmp_path, rows, r"row 4, column 'image': image file 'missing.png' not found")


def test_manifest_unreadable_image(tmp_path):
    path = _write_manifest(tmp_path, _rows())
    (tmp_path / "img2.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"manifest .*manifest.csv, row 3, column 'image': image 'img2.png' is not a readable image"):
        load_manifest(path, columns=MAP, image_size=(8, 8))


def test_manifest_wrongly_sized_image(tmp_path):
    path = _write_manifest(tmp_path, _rows())
    Image.fromarray(np.zeros((5, 7, 3), dtype=np.uint8)).save(tmp_path / "img5.png")
    with pytest.raises(DataError, match=r"row 6, column 'image': image 'img5.png' is 5x7 \(HxW\), expected 8x8"):
        load_manifest(path, columns=MAP, image_size=(8, 8))


def test_manifest_empty_text(tmp_path):
    rows = _rows()
    rows[1]["text"] = ""
    _expect(tmp_path, rows, r"row 2, column 'text': empty text; pass missing='impute-mean' or 'drop'")


def test_manifest_nan_tabular(tmp_path):
    rows = _rows()
    rows[6]["age"] = float("nan")
    _expect(tmp_path, rows, r"row 7, column 'age': missing value \(NaN\)")


def test_manifest_non_numeric_tabular(tmp_path):
    rows = _rows()
    rows[8]["score"] = "abc"
    _expect(tmp_path, rows, r"row 9, column 'score': value 'abc' is not numeric")


def test_manifest_unknown_label(tmp_path):
    rows = _rows()
    rows[0]["label"] = "bird"
    _expect(tmp_path, rows, r"row 1, column 'label': label 'bird' is not one of the declared labels \['cat', 'dog'\]",
            labels=["cat", "dog"])


def test_manifest_unknown_column(tmp_path):
    _expect(tmp_path, _rows(), r"column 'height' \(mapped to tabular\) not found", columns={**MAP, "tabular": ["height"]})


def test_manifest_unknown_mapping_key(tmp_path):
    path = _write_manifest(tmp_path, _rows())
    with pytest.raises(ConfigError, match="audio"):
        load_manifest(path, columns={**MAP, "audio": "sound"})


def test_manifest_missing_policies_are_recorded(tmp_path):
    rows = _rows()
    rows[6]["age"] = float("nan")
    rows[2]["text"] = ""
    path = _write_manifest(tmp_path, rows)
    splits, _ = load_manifest(path, columns=MAP, image_size=(8, 8), missing="impute-mean")
    rec = splits.train.meta["missing"]
    assert rec["imputed"] == {"age": [7], "text": [3]} and rec["dropped_rows"] == []
    all_age = torch.cat([splits[s].inputs()["tabular"][:, 0] for s in ("train", "val", "test")])
    assert not torch.isnan(all_age).any()
    # the imputed value is the mean of the others
    others = [float(i) for i in range(10) if i != 6]
    assert np.isclose(sorted(all_age.tolist()), sorted(others + [np.mean(others)])).all()
    splits, _ = load_manifest(path, columns=MAP, image_size=(8, 8), missing="drop")
    assert splits.train.meta["missing"]["dropped_rows"] == [3, 7]
    assert sum(len(splits[s]) for s in ("train", "val", "test")) == 8


def test_manifest_bad_policy_and_file(tmp_path):
    with pytest.raises(ConfigError, match="missing='ignore'"):
        load_manifest(tmp_path / "x.csv", missing="ignore")
    with pytest.raises(DataError, match="file not found"):
        load_manifest(tmp_path / "x.csv")
    (tmp_path / "x.txt").write_text("a")
    with pytest.raises(DataError, match="unsupported extension '.txt'"):
        load_manifest(tmp_path / "x.txt")
