"""The batch index: one table over every run in a reports folder (``index.html`` + ``index.json``).

The HTML is static (no script at all) and every value is escaped: parameters and errors are
data, and may contain markup.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..exceptions import ReportError
from .records import FAILED_DIR, RunRecord
from .results import SCHEMA_VERSION, atomic_write_text

__all__ = ["collect_records", "index_entries", "key_numbers", "write_index"]

_MAX_KEYS = 8
_MAX_STR = 40
_SKIP_KEYS = {"data_fingerprint", "checkpoint_hash"}


def key_numbers(results: dict[str, Any], *, limit: int = _MAX_KEYS) -> dict[str, Any]:
    """Top-level scalar results worth a column: numbers, bools and short strings.

    ``accuracy``-like keys come first, then the rest in recorded order.

    Parameters
    ----------
    results : dict
        What the notebook recorded.
    limit : int
        At most this many.

    Returns
    -------
    dict
    """
    picked = {}
    for key, value in results.items():
        if key in _SKIP_KEYS:
            continue
        if isinstance(value, (bool, int, float)) or (
            isinstance(value, str) and len(value) <= _MAX_STR
        ):
            picked[key] = value
    ordered = sorted(picked, key=lambda k: 0 if "acc" in k.lower() else 1)
    return {k: picked[k] for k in ordered[:limit]}


def collect_records(
    out_dir: str | os.PathLike[str], records: Iterable[RunRecord] = ()
) -> list[RunRecord]:
    """Every run in ``out_dir`` (from ``<run_id>/<run_id>.json``), overridden by ``records``.

    A run whose last attempt failed beside an ok report (``<run_id>/failed/``) is listed
    as that failed attempt, with the kept report in its ``kept`` files.

    Parameters
    ----------
    out_dir : str or PathLike
    records : iterable of RunRecord
        Records of the current batch; they win over what is on disk (a run whose report
        could not be written has no JSON but still belongs in the index).

    Returns
    -------
    list of RunRecord
        Sorted by run id.
    """
    found: dict[str, RunRecord] = {}
    root = Path(out_dir)
    if root.is_dir():
        for run_dir in sorted(
            p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
        ):
            path = run_dir / f"{run_dir.name}.json"
            attempt = run_dir / FAILED_DIR / path.name
            path = attempt if attempt.is_file() else path
            if path.is_file():
                try:
                    found[run_dir.name] = RunRecord.from_json(path)
                except ReportError:
                    continue
    for rec in records:
        found[rec.run_id] = rec
    return [found[k] for k in sorted(found)]


def _link(out_dir: Path, path: Path | None) -> str | None:
    if path is None or not path.exists():
        return None
    try:
        return path.absolute().relative_to(out_dir).as_posix()
    except ValueError:
        return path.as_posix()


def index_entries(
    out_dir: str | os.PathLike[str], records: Iterable[RunRecord]
) -> list[dict[str, Any]]:
    """JSON-ready rows of the index (what ``index.json`` holds under ``"runs"``)."""
    root = Path(out_dir).absolute()
    rows = []
    for rec in records:
        error = rec.error or None
        rows.append(
            {
                "run_id": rec.run_id,
                "notebook": rec.notebook,
                "status": rec.status,
                "parameters": rec.parameters,
                "params_hash": rec.params_hash,
                "key_results": key_numbers(rec.results),
                "error": None
                if error is None
                else {
                    "cell_index": error.get("cell_index"),
                    "ename": error.get("ename"),
                    "evalue": error.get("evalue"),
                },
                "seconds": (rec.provenance or {}).get("seconds"),
                "finished": (rec.provenance or {}).get("finished"),
                "files": {k: _link(root, rec.files.get(k)) for k in ("html", "ipynb", "json", "explorer")},
                "kept": _link(root, rec.kept.get("html")),
            }
        )
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #1f2328; }
h1 { font-size: 20px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
tr.failed { background: #fff5f5; }
.ok { color: #1a7f37; font-weight: bold; }
.failed .status { color: #cf222e; font-weight: bold; }
code { font-size: 12px; white-space: pre-wrap; word-break: break-word; }
.error { color: #cf222e; }
.summary { margin-bottom: 12px; }
"""


def _render_html(rows: list[dict[str, Any]]) -> str:
    esc = html.escape
    n_ok = sum(r["status"] == "ok" for r in rows)
    n_failed = len(rows) - n_ok

    def a(href: str | None, label: str) -> str:
        if not href:
            return ""
        return f'<a href="{esc(quote(href))}">{esc(label)}</a>'

    body = []
    for r in rows:
        status = r["status"]
        params = "<br>".join(
            f"<code>{esc(str(k))}={esc(_fmt(v))}</code>" for k, v in sorted(r["parameters"].items())
        )
        numbers = "<br>".join(
            f"{esc(str(k))}: <strong>{esc(_fmt(v))}</strong>" for k, v in r["key_results"].items()
        )
        files = r["files"]
        links = " ".join(
            x
            for x in (
                a(files["html"], "html"),
                a(files["ipynb"], "ipynb"),
                a(files["json"], "json"),
                a(files.get("explorer"), "explorer"),
            )
            if x
        )
        err = r["error"]
        if err:
            where = f" (cell {err['cell_index']})" if err.get("cell_index") is not None else ""
            message = f"{err.get('ename')}: {err.get('evalue')}"
            detail = f'<div class="error"><code>{esc(message)}</code>{esc(where)}'
            if files["ipynb"]:
                detail += f" &mdash; {a(files['ipynb'], 'partial notebook')}"
            if r.get("kept"):
                detail += f" &mdash; {a(r['kept'], 'earlier ok report (kept)')}"
            detail += "</div>"
        else:
            detail = ""
        run = a(files["html"], r["run_id"]) or esc(r["run_id"])
        body.append(
            f'<tr class="{esc(status)}"><td>{run}</td><td><code>{esc(r["notebook"])}</code></td>'
            f'<td class="status {esc(status)}">{esc(status)}{detail}</td><td>{numbers}</td>'
            f"<td>{params}</td><td>{links}</td></tr>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>mmexplain reports</title><style>{_CSS}</style></head><body>"
        "<h1>mmexplain reports</h1>"
        f'<p class="summary">{len(rows)} runs: {n_ok} ok, {n_failed} failed.</p>'
        "<table><thead><tr><th>Run</th><th>Notebook</th><th>Status</th><th>Key results</th>"
        "<th>Parameters</th><th>Files</th></tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table></body></html>\n"
    )


def write_index(out_dir: str | os.PathLike[str], records: Iterable[RunRecord] = ()) -> Path:
    """Write ``out_dir/index.html`` and ``out_dir/index.json`` (atomically).

    Parameters
    ----------
    out_dir : str or PathLike
        The reports folder; every run found there is listed.
    records : iterable of RunRecord
        The current batch's records (they override what is on disk).

    Returns
    -------
    Path
        The ``index.html`` path.
    """
    root = Path(out_dir).absolute()
    root.mkdir(parents=True, exist_ok=True)
    rows = index_entries(root, collect_records(root, records))
    atomic_write_text(
        root / "index.json",
        json.dumps(
            {"schema_version": SCHEMA_VERSION, "runs": rows}, indent=2, sort_keys=True, default=str
        )
        + "\n",
    )
    return atomic_write_text(root / "index.html", _render_html(rows))
