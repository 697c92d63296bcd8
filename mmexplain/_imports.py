"""Imports that would otherwise cost seconds for nothing."""

from __future__ import annotations

import sys


def import_jsonschema_without_iri_parser() -> None:
    """Import jsonschema, skipping its optional IRI format checker, unless already imported.

    jsonschema's format module imports ``rfc3987_syntax`` when it is installed (jupyter-events,
    which JupyterLab needs, pulls it in), and that package builds an Earley parser of RFC 3987
    at import: about 3 s in every process that imports nbformat, which includes every kernel
    (plotly's renderers import nbformat to check its version) and the report runner
    (papermill). Nothing here validates IRIs, and jsonschema checks formats only when asked
    to, so this process imports jsonschema as if ``rfc3987_syntax`` were not installed: the
    "iri" and "iri-reference" formats then go unchecked in this process only. Called by the
    notebooks' setup (:func:`mmexplain.viz.setup_notebook`) and ``mmexplain report``.
    """
    if "jsonschema" in sys.modules or "rfc3987_syntax" in sys.modules:
        return
    sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        import jsonschema  # noqa: F401
    except ImportError:  # not installed: nothing to speed up
        pass
    finally:
        del sys.modules["rfc3987_syntax"]
