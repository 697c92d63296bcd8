"""A tiny notebook that reads an input file, for report tests (its kernel imports nothing heavy)."""

from __future__ import annotations

from pathlib import Path

import nbformat

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
