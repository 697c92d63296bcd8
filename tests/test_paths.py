"""Relative notebook paths resolve against the project root from any working directory."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from mmexplain.exceptions import ConfigError
from mmexplain.paths import PROJECT_MARKER, project_root, resolve_dataset, resolve_path
from mmexplain.report.inspection import inspect_parameters

ROOT = Path(__file__).resolve().parents[1]


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / PROJECT_MARKER).parent.mkdir(parents=True)
    (root / PROJECT_MARKER).write_text("notebooks: []\n")
    (root / "data").mkdir()
    (root / "data" / "table.txt").write_text("x")
    return root


def test_relative_paths_mean_the_same_from_the_root_and_from_notebooks(tmp_path: Path) -> None:
    root = _project(tmp_path)
    for cwd in (root, root / "notebooks", root / "data"):
        assert project_root(cwd) == root
        assert resolve_path("reports/models", start=cwd) == root / "reports" / "models"
        assert resolve_dataset("data/my.csv", start=cwd) == str(root / "data" / "my.csv")
        assert resolve_dataset("data/table.txt", start=cwd) == str(root / "data" / "table.txt")


def test_absolute_paths_and_builtin_datasets_are_kept(tmp_path: Path) -> None:
    root = _project(tmp_path)
    elsewhere = tmp_path / "runner" / "models"
    assert resolve_path(elsewhere, start=root / "notebooks") == elsewhere
    assert resolve_path(str(elsewhere), start=root) == elsewhere
    for spec in ("easy-vqa", "synthetic:additive", "synthetic:xor:regression", str(elsewhere) + ".csv"):
        assert resolve_dataset(spec, start=root / "notebooks") == spec
    # not a manifest and no such file: left alone, so the loader's error names it as given
    assert resolve_dataset("no-such-dataset", start=root / "notebooks") == "no-such-dataset"


def test_without_a_project_the_working_directory_is_used(tmp_path: Path) -> None:
    work = tmp_path / "mine"
    work.mkdir()
    assert project_root(work) is None
    assert resolve_path("models", start=work) == work / "models"
    assert resolve_dataset("d.csv", start=work) == str(work / "d.csv")
    with pytest.raises(ConfigError, match="path must be a non-empty string"):
        resolve_path("", start=work)
    with pytest.raises(ConfigError, match="path must be a non-empty string"):
        resolve_path(None, start=work)  # type: ignore[arg-type]


def test_jupyterlab_reuses_the_model_cache_of_the_default_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A notebook opened in JupyterLab (working directory notebooks/) resolves its default
    model_cache to the folder ``mmexplain report --default`` (run at the root) gives it."""
    from mmexplain.report.cli import _build_specs, add_report_arguments

    monkeypatch.chdir(ROOT)
    args = add_report_arguments(argparse.ArgumentParser()).parse_args(["--default"])
    specs = _build_specs(args)
    for spec in specs:
        default = inspect_parameters(spec.notebook)["model_cache"].default
        from_lab = resolve_path(default, start=ROOT / "notebooks")
        assert from_lab == Path(spec.parameters["model_cache"]), spec.notebook
        assert from_lab == resolve_path(default, start=ROOT)
