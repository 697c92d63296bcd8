"""A catalogue of bad command lines: each gets one line naming the culprit, exit code 2,
no traceback, and nothing written or replaced. ``--debug`` brings the traceback back."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mmexplain.cli import main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SIMPLE = Path(__file__).parent / "fixtures" / "notebooks" / "simple.ipynb"
TINY = ["--dataset", "synthetic:additive", "--limit", "60", "--epochs", "1", "--quiet"]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny run written by ``mmexplain train``."""
    out = tmp_path_factory.mktemp("runs") / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str], *named: str, code: int = 2) -> str:
    try:
        rc = main(argv)
    except SystemExit as exit_:  # argparse usage errors
        rc = exit_.code
    err = capsys.readouterr().err.strip()
    assert rc == code, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for text in named:
        assert text in err, err
    return err


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--epochs", "0"], ["argument --epochs", "integer >= 1", "got 0"]),
        (["--epochs", "-1"], ["argument --epochs", "got -1"]),
        (["--epochs", "two"], ["argument --epochs", "'two'"]),
        (["--limit", "-5"], ["argument --limit", "got -5"]),
        (["--lr", "0"], ["argument --lr", "> 0"]),
        (["--lr", "nan"], ["argument --lr", "got nan"]),
        (["--batch-size", "0"], ["argument --batch-size"]),
        (["--seed", "-1"], ["argument --seed"]),
        (["--device", "gpu"], ["argument --device", "'gpu'"]),
        (["--columns", "{image: path"], ["argument --columns", "not valid JSON"]),
        (["--text-encoder", "bert"], ["argument --text-encoder", "'bert'"]),
        (["--fusion", "nope"], ["unknown fusion 'nope'", "known: early"]),
        (["--dataset", "nowhere.csv"], ["nowhere.csv", "not found"]),
        (["--dataset", "synthetic:nope"], ["dataset='synthetic:nope'"]),
    ],
)
def test_bad_train_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], named: list[str]
) -> None:
    out = tmp_path / "run"
    argv = ["train", "--dataset", "synthetic:additive", "--limit", "40", "--quiet", "--out", str(out)]
    _fails(capsys, [*argv, *flags], *named)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a lock


def test_train_out_holding_another_run_is_refused_unless_forced(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _tree(trained)
    _fails(capsys, ["train", *TINY, "--seed", "1", "--out", str(trained)],
           f"out={trained}", "other parameters (seed: 0 -> 1)", "force")
    _fails(capsys, ["train", *TINY, "--missing", "drop", "--out", str(trained)],
           "dataset_options: {} -> {'missing': 'drop'}")
    assert _tree(trained) == before  # untouched

    # the same run again is fine (seeded: the same model), and leaves nothing behind
    assert main(["train", *TINY, "--out", str(trained)]) == 0
    capsys.readouterr()
    after = _tree(trained)
    assert after["model.safetensors"] == before["model.safetensors"]
    assert sorted(p.name for p in trained.parent.iterdir()) == [trained.name]


def test_train_out_forced_replaces_and_out_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me")
    _fails(capsys, ["train", *TINY, "--out", str(other)], f"out={other}", "not a run")
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    _fails(capsys, ["train", *TINY, "--out", str(afile)], f"out={afile}", "not a folder")
    assert (other / "mine.txt").read_text() == "keep me" and afile.read_text() == "x"
    assert main(["train", *TINY, "--out", str(other), "--force"]) == 0
    capsys.readouterr()
    assert (other / "model.safetensors").is_file() and not (other / "mine.txt").exists()


def test_bad_evaluate_inputs(tmp_path: Path, trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fails(capsys, ["evaluate", "--run", str(tmp_path / "missing")], "--run", "no such folder")
    _fails(capsys, ["evaluate", "--run", str(trained), "--device", "tpu"], "argument --device")
    _fails(capsys, ["evaluate", "--run", str(trained), "--split", "dev"], "argument --split")

    as_list = tmp_path / "list"
    shutil.copytree(trained, as_list)
    (as_list / "config.json").write_text("[1, 2]")
    _fails(capsys, ["evaluate", "--run", str(as_list)], "config.json", "JSON object", "list")

    # a pickle under the safetensors name, even with a matching hash in config.json:
    # refused, never unpickled
    pickled = tmp_path / "pickled"
    shutil.copytree(trained, pickled)
    weights = pickled / "model.safetensors"
    weights.write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    config = json.loads((pickled / "config.json").read_text())
    config["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (pickled / "config.json").write_text(json.dumps(config))
    _fails(capsys, ["evaluate", "--run", str(pickled)], "model.safetensors", "not a safetensors file")

    # params without the dataset: named, not a KeyError
    no_dataset = tmp_path / "no_dataset"
    shutil.copytree(trained, no_dataset)
    config = json.loads((no_dataset / "config.json").read_text())
    del config["params"]["dataset"]
    (no_dataset / "config.json").write_text(json.dumps(config))
    _fails(capsys, ["evaluate", "--run", str(no_dataset)], "params lack ['dataset']")

    # the weights changed behind config.json's back
    swapped = tmp_path / "swapped"
    shutil.copytree(trained, swapped)
    (swapped / "model.safetensors").write_bytes(b"\0" * 64)
    _fails(capsys, ["evaluate", "--run", str(swapped)], "does not match config.json")


def test_bad_report_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    typo = tmp_path / "typo.yaml"
    typo.write_text(f"notebooks: [{SIMPLE}]\ngird: {{n: [1]}}\n")
    _fails(capsys, ["report", "--grid", str(typo), "--out", str(out)], "typo.yaml", "unknown key 'gird'")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(f"notebooks: [{SIMPLE}]\nparameters: [1, 2]\n")
    _fails(capsys, ["report", "--grid", str(wrong), "--out", str(out)], "wrong.yaml", "parameters")
    options = tmp_path / "options.yaml"
    options.write_text(f"notebooks: [{SIMPLE}]\nparameters: {{dataset_options: {{missing: drop}}}}\n")
    _fails(capsys, ["report", "--grid", str(options), "--out", str(out)], "unknown parameter 'dataset_options'")
    _fails(capsys, ["report", str(SIMPLE), "--jobs", "0", "--out", str(out)], "--jobs")
    _fails(capsys, ["report", str(SIMPLE), "--timeout", "nan", "--out", str(out)], "--timeout")
    _fails(capsys, ["report", str(SIMPLE), "--jobs", "many", "--out", str(out)], "argument --jobs")
    _fails(capsys, ["report", str(SIMPLE), "--out", str(typo)], "exists and is not a folder")
    _fails(capsys, ["report", str(SIMPLE), "--kernel", "nokernel", "--out", str(out)],
           "kernel_name='nokernel' is not installed", "python3")
    _fails(capsys, ["report", str(SIMPLE), "--device", "gpu", "--out", str(out)], "argument --device")
    _fails(capsys, ["report", str(SIMPLE), "-p", "n", "two", "--out", str(out)], "'n'='two'", "expects int")
    assert not out.exists()


def test_unexpected_error_is_one_line_and_debug_shows_the_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # /dev/null is a file, so a folder cannot be made under it: an OS error, not a bug
    # we chose a message for
    argv = ["train", *TINY, "--out", "/dev/null/run"]
    _fails(capsys, argv, "FileExistsError", "rerun with --debug", code=1)
    with pytest.raises(FileExistsError):
        main(["--debug", *argv])
    with pytest.raises(FileExistsError):
        main([*argv, "--debug"])


def test_subprocess_gets_a_message_not_a_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mmexplain", "train", "--epochs", "0", "--out", "x"],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "mmexplain train: error: argument --epochs: must be an integer >= 1; got 0 "
        "(see mmexplain train --help)"
    ]
    assert not (ROOT / "x").exists()


# ------------------------------------------------------------------ manifest options


def _tiny_manifest(folder: Path) -> Path:
    """12 rows: an 8x8 red or blue image, a question, two numbers, the colour as label."""
    from PIL import Image

    (folder / "img").mkdir(parents=True)
    rows = ["file,question,age,bmi,label"]
    for i in range(12):
        colour = "red" if i % 2 else "blue"
        Image.new("RGB", (8, 8), (200, 30, 30) if i % 2 else (30, 30, 200)).save(folder / "img" / f"{i}.png")
        age = "" if i == 4 else str(20 + i)  # one missing number: imputed
        rows.append(f"img/{i}.png,what colour is shape {i},{age},{18 + i / 2},{colour}")
    path = folder / "m.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


COLUMNS = '{"image": "file", "text": "question", "tabular": ["age", "bmi"], "target": "label"}'


def test_manifest_options_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _tiny_manifest(tmp_path / "data")
    out = tmp_path / "run"
    given = ["--columns", COLUMNS, "--missing", "impute-mean", "--image-size", "8",
             "--max-tokens", "6", "--labels", "blue,red"]
    assert main(["train", "--dataset", str(manifest), "--epochs", "1", "--quiet", "--out", str(out),
                 *given]) == 0
    capsys.readouterr()
    params = json.loads((out / "config.json").read_text())["params"]
    assert params["dataset_options"] == {"columns": COLUMNS, "missing": "impute-mean", "image_size": "8",
                                         "max_tokens": "6", "labels": "blue,red"}
    assert main(["evaluate", "--run", str(out)]) == 0  # the options come back with the run
    assert json.loads(capsys.readouterr().out)["label_names"] == ["blue", "red"]


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--missing", "sometimes"], ["missing", "sometimes"]),
        (["--image-size", "big"], ["image_size", "big"]),
        (["--columns", '["file"]'], ["columns"]),
        (["--columns", '{"image": "photo", "target": "label"}'], ["photo"]),
    ],
)
def test_bad_manifest_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], named: list[str]
) -> None:
    manifest = _tiny_manifest(tmp_path / "data")
    argv = ["train", "--dataset", str(manifest), "--epochs", "1", "--quiet", "--out", str(tmp_path / "run")]
    if "--columns" not in flags:
        flags = [*flags, "--columns", COLUMNS]
    _fails(capsys, [*argv, *flags], *named)
    assert not (tmp_path / "run").exists()


def test_manifest_option_for_a_builtin_dataset_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fails(capsys, ["train", *TINY, "--missing", "drop", "--out", str(tmp_path / "run")],
           "missing", "manifests only")
    assert list(tmp_path.iterdir()) == []


def test_bad_dataset_options_in_a_grid_stop_the_report_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text("notebooks: [notebooks/01_train_evaluate.ipynb]\n"
                    "parameters: {dataset: easy-vqa, dataset_options: {missing: drop}}\n")
    out = tmp_path / "reports"
    assert main(["report", "--grid", str(grid), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "missing= applies to manifests only" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())
