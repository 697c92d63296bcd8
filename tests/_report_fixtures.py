"""A tiny notebook that reads an input file, for report tests (its kernel imports nothing heavy)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat

from mmexplain.locks import run_lock, temp_prefix

PARAMETERS = 'data = "in.txt"  # input file\nfail = False\nresults_path = ""'
BODY = """import json
text = open(data).read()
if fail or text.startswith("boom"):
    raise ValueError(f"boom from {data}")
if results_path:
    json.dump({"text": text}, open(results_path, "w"))
print(text)
"""


def reader_notebook(path: Path, body: str = BODY) -> Path:
    """Write the reader notebook to ``path``: it records the text of the file ``data``."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(PARAMETERS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@contextmanager
def live_run(out: Path, run_id: str, temp_name: str) -> Iterator[int]:
    """A run of ``run_id`` in another process: it holds the run's lock and a temporary folder
    (``temp_prefix(run_id, "tmp") + temp_name``) and hangs; killed (SIGKILL) on exit, leaving
    both behind as a killed run would. Yields its pid."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            with run_lock(out, run_id):
                (out / f"{temp_prefix(run_id, 'tmp')}{temp_name}").mkdir()
                os.write(write, b"1")
                time.sleep(120)
        finally:
            os._exit(0)
    try:
        assert os.read(read, 1) == b"1"
        yield pid
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
