"""Audits on Ray: the same file, bit for bit, as the local engine; resuming; the CLI."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from mmexplain.auditing import AUDIT_ENGINES, audit_run, make_engine
from mmexplain.cli import main
from mmexplain.exceptions import ConfigError
from mmexplain.training import train_run

# one torch thread, as in every Ray worker: rows are then bit-identical
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]
KW = {"limit": 18, "batch_size": 5, "methods": ["ig", "saliency"], "steps": 4}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("audit_ray") / "run"
    train_run("synthetic:additive", "concat", epochs=1, limit=120, progress=False, out=out)
    return out


@pytest.fixture(scope="module")
def local_file(run_dir, tmp_path_factory):
    return audit_run(run_dir, tmp_path_factory.mktemp("local") / "local.parquet", **KW).path


def test_ray_audit_is_the_local_audit_bit_for_bit(ray_cluster, run_dir, local_file, tmp_path) -> None:
    result = audit_run(run_dir, tmp_path / "ray.parquet", engine="ray", engine_options={"workers": 2}, **KW)
    assert (result.n_rows, result.chunks_computed, result.chunks_reused) == (18, 4, 0)
    # the same rows (NaN equal to NaN: Arrow's Table.equals would say not), then the same bytes
    pd.testing.assert_frame_equal(pq.read_table(result.path).to_pandas(), pq.read_table(local_file).to_pandas())
    assert result.path.read_bytes() == local_file.read_bytes()


def test_ray_audit_resumes_a_local_one(ray_cluster, run_dir, local_file, tmp_path) -> None:
    out = tmp_path / "mixed.parquet"

    class Stop(Exception):
        pass

    def stop_after_two(chunk):
        if chunk.number == 1:
            raise Stop

    with pytest.raises(Stop):
        audit_run(run_dir, out, on_chunk=stop_after_two, **KW)
    result = audit_run(run_dir, out, engine="ray", engine_options={"workers": 1}, **KW)
    assert (result.chunks_computed, result.chunks_reused) == (2, 2)
    assert out.read_bytes() == local_file.read_bytes()


def test_cli_audit_on_ray(ray_cluster, run_dir, local_file, tmp_path, capsys) -> None:
    out = tmp_path / "cli.parquet"
    args = ["audit", "--run", str(run_dir), "--out", str(out), "--limit", "18", "--batch-size", "5",
            "--methods", "ig,saliency", "--quiet"]
    # --steps is not a flag: the CLI audits with the default deletion steps
    assert main([*args, "--engine", "ray", "--workers", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["chunks_computed"] == 4
    local = tmp_path / "cli_local.parquet"
    assert main([*args[:4], str(local), *args[5:]]) == 0
    capsys.readouterr()
    assert out.read_bytes() == local.read_bytes()


def test_engine_options_are_checked(tmp_path, capsys) -> None:
    assert AUDIT_ENGINES.names() == ["local", "ray"]
    with pytest.raises(ConfigError, match=r"engine_options \['address'\]: the local engine takes no options"):
        make_engine("local", {"address": "auto"})
    with pytest.raises(ConfigError, match=r"engine_options \['jobs'\]: the ray engine takes only workers, address"):
        make_engine("ray", {"jobs": 2})
    with pytest.raises(ConfigError, match="workers must be an integer >= 1; got 0"):
        make_engine("ray", {"workers": 0})
    with pytest.raises(ConfigError, match="address must be a Ray cluster address"):
        make_engine("ray", {"address": ""})
    assert main(["audit", "--run", str(tmp_path), "--out", str(tmp_path / "x.parquet"), "--address", "auto"]) == 2
    err = capsys.readouterr().err
    assert "--address auto" in err and "local engine takes no options" in err and len(err.strip().splitlines()) == 1


def test_missing_ray_names_the_extra(monkeypatch) -> None:
    import builtins

    real = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ConfigError, match=r'pip install "mmexplain\[ray\]"'):
        make_engine("ray")
