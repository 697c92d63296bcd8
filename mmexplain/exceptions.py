"""One error hierarchy for mmexplain: catch :class:`MMExplainError` to catch them all."""

from __future__ import annotations


class MMExplainError(Exception):
    """Root of every error mmexplain raises on purpose."""


class DataError(MMExplainError, ValueError):
    """Bad input data: the message names the file, row, column or modality at fault."""


class ManifestError(DataError):
    """Bad cells of a manifest, all found in one pass.

    Attributes
    ----------
    path : str
        The manifest.
    issues : list of (row, column, reason)
        Every problem, rows counted from 1 with the header excluded; the message shows the
        first 20 and the total.
    """

    def __init__(self, message: str, *, path: str = "", issues: list[tuple[int, str, str]] | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.issues = list(issues or [])


class ConfigError(MMExplainError, ValueError):
    """A bad parameter or configuration value: the message names the parameter."""


class CheckpointError(MMExplainError):
    """A checkpoint that is missing, corrupt, or does not match its config."""


class DataChangedError(CheckpointError):
    """A checkpoint whose training data no longer match the data loaded now."""


class RunLockedError(MMExplainError):
    """A run (a report, a training run) that another live process holds the lock of."""


class AttributionError(MMExplainError):
    """An attribution that cannot be computed as asked (e.g. an unsupported model layout)."""


class ReportError(MMExplainError):
    """A report run that failed; see :class:`NotebookExecutionError` for the notebook case."""


class NotebookExecutionError(ReportError):
    """A notebook cell raised while running under papermill.

    The partially executed notebook is still written to ``output_path``.
    """

    def __init__(
        self,
        message: str,
        *,
        output_path: str | None = None,
        cell_index: int | None = None,
        ename: str | None = None,
        evalue: str | None = None,
    ) -> None:
        super().__init__(message)
        self.output_path = output_path
        self.cell_index = cell_index
        self.ename = ename
        self.evalue = evalue
