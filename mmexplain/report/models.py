"""Train the models a batch of report runs opens, once each, before any notebook runs.

A report notebook that declares ``model_cache`` opens its model with
:func:`mmexplain.notebook.setup`, training it when the cache lacks it. When notebooks run
in parallel, their kernels share the cores (one thread each with two jobs on two cores),
so the notebook that trains would train on a fraction of the machine while the others wait
for its model. The runner therefore trains each missing model first, one after another,
with every core, in a child process (its memory is returned before the kernels start);
the notebooks then find their models in the cache. The arguments are the ones
``setup`` computes (:func:`mmexplain.notebook.training_arguments`), so both name the same
cached run.

A model that fails to train here is left to its notebooks, which fail with the error in
their own reports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

from .execute import Prepared

__all__ = ["model_parameters", "train_models"]

#: The parameter whose presence marks a notebook that opens a model with ``setup``.
MODEL_CACHE = "model_cache"


def model_parameters(prepared: Sequence[Prepared]) -> list[dict[str, Any]]:
    """Each run's parameter values, for the runs whose notebook opens a model.

    A run counts when its notebook declares ``model_cache``; its values are the
    parameters cell's literal defaults overridden by the run's parameters. A run whose
    notebook has a non-literal default that the run does not override is left out (its
    value is only known in the kernel).
    """
    out = []
    for prep in prepared:
        if MODEL_CACHE not in prep.declared:
            continue
        if any(not p.literal and name not in prep.parameters for name, p in prep.declared.items()):
            continue
        out.append({**{n: p.default for n, p in prep.declared.items()}, **prep.parameters})
    return out


def train_models(
    values: Sequence[dict[str, Any]], *, cwd: str | None = None, say: Callable[[str], None] | None = None,
) -> bool:
    """Train, in a child process with every core, the models ``values`` need and lack.

    Parameters
    ----------
    values : sequence of dict
        Parameter values of runs (:func:`model_parameters`).
    cwd : str, optional
        The kernels' working directory, which relative paths resolve from.
    say : callable, optional
        Receives a line when each model starts and ends training.

    Returns
    -------
    bool
        False when the child failed (its last line is said); the notebooks then train or
        fail on their own.
    """
    if not values:
        return True
    start = cwd or os.getcwd()
    payload = json.dumps({"values": list(values), "start": start}, default=str)
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen([sys.executable, "-m", "mmexplain.report.models"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=errors, text=True, cwd=start)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(payload)
        proc.stdin.close()
        for line in proc.stdout:  # as each model starts and ends
            if say is not None and line.strip():
                say(line.rstrip())
        rc = proc.wait()
        errors.seek(0)
        last = (errors.read().strip().splitlines() or ["no message"])[-1]
    if rc != 0 and say is not None:
        say(f"training before the notebooks failed ({last}); each notebook trains or fails on its own")
    return rc == 0


def _main() -> int:
    """Child: read ``{"values": [...], "start": dir}`` on stdin, train what is missing."""
    from ..exceptions import MMExplainError
    from ..notebook import training_arguments
    from ..training import ensure_trained, is_trained
    from ..training.run import METRICS

    request = json.loads(sys.stdin.read())
    todo: dict[str, tuple[Any, dict[str, Any]]] = {}
    for values in request["values"]:
        try:
            cache, params = training_arguments(values, start=request["start"])
            key = json.dumps([str(cache), params], sort_keys=True, default=str)
            if key not in todo and not is_trained(cache, **params):
                todo[key] = (cache, params)
        except MMExplainError:
            continue  # a bad parameter: its notebook says so in its report
    for i, (cache, params) in enumerate(todo.values(), 1):
        label = f"{params.get('fusion', '?')} on {params.get('dataset', '?')}"
        print(f"training {label} ({i}/{len(todo)}), before the notebooks", flush=True)
        t0 = time.perf_counter()
        folder = ensure_trained(cache, progress=False, **params)
        test = json.loads((folder / METRICS).read_text()).get("test", {})
        score = f", test accuracy {test['accuracy']:.3f}" if isinstance(test.get("accuracy"), float) else ""
        print(f"trained  {label} ({time.perf_counter() - t0:.0f} s{score})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
