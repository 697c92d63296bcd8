"""Benchmark: HTML size per report page, plotly.js embedded in each page vs shared once.

Renders the same executed notebooks both ways with :func:`mmexplain.report.html.notebook_to_html`
(``--self-contained`` pages, and the default pages that load one ``plotly-<version>.min.js``
from the report folder) and prints the sizes side by side, then the report folder's total.

Usage::

    python benchmarks/bench_report_size.py [REPORT_DIR]

``REPORT_DIR``: a report folder whose runs are executed (``<run-id>/<run-id>.ipynb``), e.g.
``reports/`` after ``mmexplain report --default``. Without it, notebooks 01-05 run first on
small synthetic data into a temporary folder (a few minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"dataset": "synthetic:additive", "epochs": 1, "limit": 200}
EXTRA = {
    "02_modality_attribution": {"n_samples": 2, "n_shapley": 16, "show": 1, "methods": ["ig", "saliency"]},
    "03_fusion_levels": {"fusions": ["late", "concat"], "n_samples": 4},
    "04_decision_audit": {"n_errors": 1, "n_random": 1, "methods": ["ig", "saliency"], "sanity_samples": 2},
    "05_explanation_quality": {"n_samples": 4, "n_robust": 32, "methods": ["ig", "saliency"],
                               "sanity_methods": ["saliency"]},
}


def _execute_small(out: Path) -> None:
    from mmexplain.report import RunSpec, run_batch

    specs = [
        RunSpec(str(nb), {**SMALL, "model_cache": str(out / "models"), **EXTRA.get(nb.stem, {})})
        for nb in sorted((ROOT / "notebooks").glob("0*.ipynb"))
    ]
    run_batch(specs, out, cwd=ROOT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report_dir", nargs="?", help="a report folder of executed runs")
    args = parser.parse_args()

    import nbformat

    from mmexplain.report.html import notebook_to_html, provenance_table_html
    from mmexplain.report.plotlyjs import plotlyjs_name

    if args.report_dir:
        out = Path(args.report_dir)
        if not out.is_dir():
            parser.error(f"REPORT_DIR {out} is not a folder")
    else:
        out = Path(tempfile.mkdtemp(prefix="mmexplain-size-"))
        print(f"executing notebooks 01-05 on {SMALL} into {out} ...", flush=True)
        _execute_small(out)
    runs = sorted(p for p in out.glob("*/*.ipynb") if p.stem == p.parent.name)
    if not runs:
        parser.error(f"no executed runs (<run-id>/<run-id>.ipynb) in {out}")

    from plotly.offline import get_plotlyjs

    shared_file = len(get_plotlyjs().encode())
    print(f"\n{'page':<40} {'self-contained':>15} {'shared':>10}")
    totals = [0, 0]
    for ipynb in runs:
        nb = nbformat.read(ipynb, as_version=4)
        header = provenance_table_html(nb.metadata.get("mmexplain") or {})
        sizes = [
            len(notebook_to_html(nb, title=ipynb.stem, header_html=header, plotlyjs_src=src).encode())
            for src in (None, f"../{plotlyjs_name()}")
        ]
        totals = [t + s for t, s in zip(totals, sizes)]
        print(f"{ipynb.stem[:40]:<40} {sizes[0] / 1e6:>12.2f} MB {sizes[1] / 1e6:>7.2f} MB")
    print(f"{'shared ' + plotlyjs_name() + ' (once)':<40} {'':>15} {shared_file / 1e6:>7.2f} MB")
    print(f"{'report folder, all pages':<40} {totals[0] / 1e6:>12.2f} MB "
          f"{(totals[1] + shared_file) / 1e6:>7.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
