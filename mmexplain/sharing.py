"""Explanations shared by the notebooks of one report batch.

Notebooks 02 and 05 explain the same samples of the same model with the same methods
(``select_samples(run, n_samples, seed)``); in one report they would compute every map
twice. The report runner gives its kernels a folder for the batch
(:func:`shared_results`, named in the environment variable :data:`ENV`), and
:func:`mmexplain.analysis.explain` keeps each result there under a key of everything it
depends on: the checkpoint's hash, the data fingerprint, the split, the samples, the
targets, the method and its options. A second notebook asking for the same result waits
for the first (a file lock) and reads it back. Every notebook, the first included, uses
the stored copy, so two pages show the same numbers by construction.

The folder lives as long as the batch: results never outlive the code that made them.
Outside a batch (a notebook opened in JupyterLab, plain Python) nothing is shared or stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .attribution import AttributionResult
from .locks import run_lock

__all__ = ["ENV", "shared_attribution", "shared_results"]

#: Environment variable naming the batch's shared folder (set by the report runner).
ENV = "MMEXPLAIN_SHARED_RESULTS"


@contextlib.contextmanager
def shared_results() -> Iterator[Path]:
    """A fresh shared folder named in :data:`ENV` for the duration of the block (kernels
    started meanwhile inherit it); removed afterwards, and the variable restored."""
    folder = Path(tempfile.mkdtemp(prefix="mmexplain-shared-"))
    before = os.environ.get(ENV)
    os.environ[ENV] = str(folder)
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before
        shutil.rmtree(folder, ignore_errors=True)


def shared_attribution(key: Mapping[str, Any] | None, compute: Callable[[], AttributionResult]
                       ) -> AttributionResult:
    """``compute()``, or the batch's stored copy of the result with this ``key``.

    Parameters
    ----------
    key : mapping or None
        JSON-able description of everything the result depends on; None (e.g. a model
        without a saved checkpoint) computes without sharing.
    compute : callable
        Computes the result.

    Returns
    -------
    AttributionResult
        Within a batch, the stored copy (also for the notebook that computed it).
    """
    folder = os.environ.get(ENV)
    if key is None or not folder or not Path(folder).is_dir():
        return compute()
    name = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:32]
    path = Path(folder) / name
    with run_lock(folder, name, wait=True):  # a second notebook waits for the first
        if not path.with_suffix(".json").is_file():  # moved in last: the result is complete
            part = Path(folder) / f"{name}.part"
            compute().save(part)
            for suffix in (".safetensors", ".json"):
                os.replace(part.with_suffix(suffix), path.with_suffix(suffix))
    return AttributionResult.load(path)
