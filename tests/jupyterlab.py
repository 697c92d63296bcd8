"""A real JupyterLab server, driven by headless Chromium through its own menus.

:class:`JupyterLab` starts ``jupyter lab`` as a subprocess on a free port with a token, over a
folder of your choice, with throw-away config, data, runtime, settings and workspace folders
(the user's own JupyterLab settings never leak in) and one kernel spec, ``python3``, that runs
this interpreter with the project on ``PYTHONPATH`` and ``HF_HUB_OFFLINE=1``. Leaving the
``with`` block shuts the server and its kernels down.

:func:`lab_page` opens a headless Chromium (Debian's ``/usr/bin/chromium``, launched by
playwright's sync API, so playwright never downloads a browser) on one page that records
console errors. :func:`open_notebook`, :func:`run_all_cells` and :func:`wait_until_idle` act
as a reader would: open ``/lab/tree/<path>``, wait for the kernel, choose Run → Run All
Cells, wait until no cell is ``[*]``; :func:`notebook_state` says what the page then shows.

Playwright's sync API refuses to run inside a running asyncio loop; pytest runs none (no
pytest-asyncio here), so the helpers are plain functions the tests call directly.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]

#: JupyterLab settings for the test server: no news or update checks (they would need the
#: internet and open a notification), every cell in the DOM (no virtual scrolling), no autosave.
_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}

# What the page shows, read in one go: per code cell its prompt, its error outputs, its text.
_READ_CELLS = """
() => Array.from(document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-CodeCell')).map(cell => ({
  prompt: (cell.querySelector('.jp-InputArea-prompt') || {}).textContent || '',
  errors: Array.from(cell.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')).map(e => e.innerText),
  text: Array.from(cell.querySelectorAll('.jp-OutputArea-output')).map(e => e.innerText).join('\\n'),
}))
"""
_STATUS = """
() => { const el = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
        return el ? el.getAttribute('data-status') : null; }
"""


def chromium_available() -> bool:
    """True when the system Chromium and the playwright package are both installed."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return Path(CHROMIUM).exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """A ``jupyter lab`` server over ``root``; use it as a context manager.

    Parameters
    ----------
    root : str or Path
        The server's root folder (``--ServerApp.root_dir``); notebooks are opened by their
        path under it.
    timeout : float, default=120
        Seconds to wait for the server to answer.
    env : dict, optional
        Extra environment for the server and its kernels.
    python_path : sequence of str or Path, optional
        Folders the kernels import from first (their ``PYTHONPATH``). Default: this
        checkout, so its ``mmexplain`` is the one the notebooks use.

    Attributes
    ----------
    url : str
        ``http://127.0.0.1:<port>``.
    token : str
    startup_seconds : float
        How long the server took to answer.
    log : Path
        The server's stdout and stderr.
    """

    def __init__(self, root: str | Path, *, timeout: float = 120.0, env: dict[str, str] | None = None,
                 python_path: Sequence[str | Path] = (ROOT,)):
        self.root = Path(root).resolve()
        self.python_path = [str(p) for p in python_path]
        self.timeout = timeout
        self.extra_env = dict(env or {})
        self.token = uuid.uuid4().hex
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.startup_seconds = float("nan")
        self._home: Path | None = None
        self._proc: subprocess.Popen | None = None

    # -- the server ------------------------------------------------------------------------
    def _prepare_home(self) -> dict[str, str]:
        home = self._home = Path(tempfile.mkdtemp(prefix="mmx-lab-"))
        dirs = {name: home / name for name in ("config", "data", "runtime", "settings", "workspaces")}
        for d in dirs.values():
            d.mkdir()
        spec = dirs["data"] / "kernels" / "python3"
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (mmexplain test)",
            "language": "python",
            "env": {"PYTHONPATH": os.pathsep.join([*self.python_path, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                    "HF_HUB_OFFLINE": "1"},
        }))
        for rel, values in _SETTINGS.items():
            path = dirs["settings"] / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JPY_"))}
        env.update({
            "JUPYTER_CONFIG_DIR": str(dirs["config"]),
            "JUPYTER_DATA_DIR": str(dirs["data"]),
            "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
            "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
            "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
            # the kernel spec below wins over the venv's own (jupyter_core prefers a venv's
            # folders to the user's unless told not to): JUPYTER_PATH comes first in any case
            "JUPYTER_PATH": str(dirs["data"]),
            "JUPYTER_PREFER_ENV_PATH": "0",
            "JUPYTER_PLATFORM_DIRS": "1",
            "HF_HUB_OFFLINE": "1",
            **self.extra_env,
        })
        return env

    def start(self) -> JupyterLab:
        """Start the server and wait until it answers; raises RuntimeError with its log if not."""
        env = self._prepare_home()
        assert self._home is not None
        self.log = self._home / "server.log"
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={self.port}",
               "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.news_url=None", "--LabApp.extension_manager=readonly", "--allow-root"]
        t0 = time.monotonic()
        with open(self.log, "wb") as log:
            # its own session: the kernels it starts can be ended with it, by its group id
            self._proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        while time.monotonic() - t0 < self.timeout:
            if self._proc.poll() is not None:
                code, tail = self._proc.returncode, self.log_tail()
                self.stop()
                raise RuntimeError(f"jupyter lab exited with {code}:\n{tail}")
            with contextlib.suppress(OSError):
                if self.api("GET", "/api/status") is not None:
                    self.startup_seconds = time.monotonic() - t0
                    self._check_kernel_spec()
                    return self
            time.sleep(0.3)
        tail = self.log_tail()
        self.stop()
        raise RuntimeError(f"jupyter lab did not answer within {self.timeout:.0f} s:\n{tail}")

    def _check_kernel_spec(self) -> None:
        specs = self.api("GET", "/api/kernelspecs")
        spec = specs["kernelspecs"].get("python3", {}).get("spec", {})
        if spec.get("argv", [None])[0] != sys.executable or spec.get("env", {}).get("PYTHONPATH") is None:
            tail = self.log_tail()
            self.stop()
            raise RuntimeError(f"the server's python3 kernel spec is not the test's: {spec}\n{tail}")

    def api(self, method: str, path: str) -> object:
        """Call the server's REST API with the token; the decoded JSON, or None for no body."""
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Shut down every kernel the server runs (each holds a model and its data)."""
        for kernel in self.api("GET", "/api/kernels") or []:
            self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def log_tail(self, n: int = 4000) -> str:
        """The last ``n`` characters of the server's log."""
        try:
            return self.log.read_text(errors="replace")[-n:]
        except (AttributeError, OSError):
            return "(no server log)"

    def stop(self) -> None:
        """Shut the server down, kernels first; ends what is left of its process group."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError, urllib.error.URLError):
                self.shutdown_kernels()
            with contextlib.suppress(OSError, urllib.error.URLError):
                self.api("POST", "/api/shutdown")
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the server's group
            for pid in self._own_kernels():  # kernels run in their own sessions
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None

    def _own_kernels(self) -> list[int]:
        """Processes still running with a connection file in this server's runtime folder."""
        if self._home is None:
            return []
        marker = str(self._home / "runtime").encode()
        pids = []
        for entry in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                if marker in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
        return pids

    def __enter__(self) -> JupyterLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def tree_url(self, path: str) -> str:
        """The JupyterLab URL that opens ``path`` (relative to the root), with the token.

        ``reset`` starts from an empty workspace: without it JupyterLab reopens the tabs of
        the previous page, and starts their kernels too.
        """
        return f"{self.url}/lab/tree/{path}?reset&token={self.token}"


# -- the page ----------------------------------------------------------------------------------
@dataclass
class NotebookState:
    """What a notebook's page shows after it ran.

    Attributes
    ----------
    prompts : list of str
        Each code cell's prompt (``[3]:``, ``[*]:``, ``[ ]:``), in order.
    errors : list of str
        Every ``application/vnd.jupyter.stderr`` output (stderr streams and tracebacks),
        prefixed with its cell's position.
    texts : list of str
        Each code cell's visible output text.
    console_errors : list of str
        The page's console errors and uncaught exceptions so far.
    kernel : str or None
        The execution indicator's status (``idle``, ``busy``...).
    """

    prompts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    kernel: str | None = None

    @property
    def execution_counts(self) -> list[int | None]:
        """Each code cell's execution count; None where it did not run (or still runs)."""
        counts: list[int | None] = []
        for p in self.prompts:
            inner = p.strip().removesuffix(":").strip("[] ")
            counts.append(int(inner) if inner.isdigit() else None)
        return counts

    def describe(self) -> str:
        """A summary for failure messages: kernel, prompts, errors and console errors."""
        lines = [f"kernel: {self.kernel}", f"prompts: {' '.join(p.strip() for p in self.prompts)}"]
        lines += [f"error output: {e[-1500:]}" for e in self.errors]
        lines += [f"console error: {e[:500]}" for e in self.console_errors]
        return "\n".join(lines)


class LabPage:
    """A playwright page on a :class:`JupyterLab` server that keeps the console's errors."""

    def __init__(self, lab: JupyterLab, page: object):
        self.lab, self.page = lab, page
        self.console_errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        page.on("pageerror", lambda e: self.console_errors.append(f"uncaught: {e}"))
        page.on("requestfailed", lambda r: self.console_errors.append(f"request failed: {r.url} ({r.failure})"))

    def state(self) -> NotebookState:
        cells = self.page.evaluate(_READ_CELLS)
        errors = [f"cell {i + 1}: {e}" for i, c in enumerate(cells) for e in c["errors"]]
        return NotebookState([c["prompt"] for c in cells], errors, [c["text"] for c in cells],
                             list(self.console_errors), self.page.evaluate(_STATUS))

    def _wait(self, what: str, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            self.page.wait_for_timeout(500)
        raise TimeoutError(f"{what}: not within {timeout:.0f} s.\n{self.state().describe()}\n"
                           f"server log:\n{self.lab.log_tail(2000)}")

    def open_notebook(self, path: str, *, timeout: float = 120.0) -> None:
        """Open ``path`` (relative to the server's root) and wait until its kernel is idle.

        Idle on both sides: the server has a session for ``path`` whose kernel is idle, and the
        page's execution indicator says so (it reads idle for a moment before a kernel exists).
        """
        self.page.goto(self.lab.tree_url(path))

        def ready() -> bool:
            kernels = [s["kernel"] for s in self.lab.api("GET", "/api/sessions") or [] if s.get("path") == path]
            return (bool(kernels) and all(k.get("execution_state") == "idle" for k in kernels)
                    and self.page.evaluate(_STATUS) == "idle"
                    and self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell").count() > 0)

        self._wait(f"opening {path} with an idle kernel", ready, timeout)

    def run_all_cells(self, *, timeout: float = 600.0) -> NotebookState:
        """Run → Run All Cells from the menu bar; wait until no cell runs and the kernel idles."""
        self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").first.click(position={"x": 5, "y": 5})
        self.page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        self.page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        self.wait_until_idle(timeout=timeout, started=True)
        return self.state()

    def wait_until_idle(self, *, timeout: float = 600.0, started: bool = False) -> None:
        """Wait until no code cell shows ``[*]`` and the kernel is idle (twice in a row).

        With ``started``, first wait (up to 30 s) for the kernel to leave idle or a cell to be
        queued, so a click that has not reached the kernel yet does not count as done.
        """
        if started:
            with contextlib.suppress(TimeoutError):
                self._wait("the run to start", lambda: self.page.evaluate(_STATUS) != "idle"
                           or any("*" in p for p in self.state().prompts), 30)
        quiet = [0]

        def done() -> bool:
            s = self.state()
            quiet[0] = quiet[0] + 1 if s.kernel == "idle" and not any("*" in p for p in s.prompts) else 0
            return quiet[0] >= 2

        self._wait("the cells to finish", done, timeout)


@contextlib.contextmanager
def lab_page(lab: JupyterLab, *, width: int = 1400, height: int = 1000) -> Iterator[LabPage]:
    """A fresh headless Chromium page on ``lab``; the browser closes afterwards."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"headless Chromium is not installed ({CHROMIUM}); apt-get install -y chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(30_000)
            yield LabPage(lab, page)
        finally:
            browser.close()
