"""Open a report in headless Chromium and say what a reader would see.

Uses Debian's ``chromium`` + ``chromium-driver`` (``apt-get install -y chromium
chromium-driver``) through selenium with an explicit driver path, so selenium-manager never
downloads anything. Each call starts a fresh browser with a throw-away profile.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# Runs before any page script: records dialogs instead of opening them.
_HOOK_DIALOGS = """
window.__dialogs = [];
for (const name of ['alert', 'confirm', 'prompt']) {
  window[name] = function (msg) { window.__dialogs.push(name + ':' + String(msg)); return null; };
}
"""

_COUNT_FIGURES = """
const divs = Array.from(document.querySelectorAll('.plotly-graph-div'));
return [divs.length, divs.filter(d => d.querySelector('.main-svg') !== null).length];
"""


@dataclass
class PageReport:
    """What a headless browser saw on a page.

    Attributes
    ----------
    console_errors : list of str
        SEVERE browser-log entries (script errors, failed loads).
    figures : int
        ``.plotly-graph-div`` elements.
    rendered : int
        Of those, the ones plotly drew (they contain a ``.main-svg``).
    dialogs : list of str
        ``alert``/``confirm``/``prompt`` calls the page made.
    xss : bool
        Whether the sentinel global ``window.__xss`` got set.
    text : str
        The page's visible text.
    title : str
    """

    console_errors: list[str] = field(default_factory=list)
    figures: int = 0
    rendered: int = 0
    dialogs: list[str] = field(default_factory=list)
    xss: bool = False
    text: str = ""
    title: str = ""


def chromium_available() -> bool:
    """True when both the browser and its driver are installed."""
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def _require_chromium() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing:
        raise RuntimeError(
            f"headless Chromium is not installed (missing {', '.join(missing)}); "
            "install it with: apt-get install -y chromium chromium-driver"
        )


def open_report(html_path: str | Path, *, timeout: float = 30.0) -> PageReport:
    """Load ``html_path`` (file://) headless, wait for plotly, and report what happened.

    Parameters
    ----------
    html_path : str or Path
        A local HTML file.
    timeout : float
        Seconds to wait for the page and its figures.

    Returns
    -------
    PageReport

    Raises
    ------
    RuntimeError
        If Chromium or chromedriver is missing.
    """
    _require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    path = Path(html_path).resolve()
    if not path.is_file():
        raise FileNotFoundError(path)
    profile = tempfile.mkdtemp(prefix="mmx-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1024",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.set_capability("unhandledPromptBehavior", "accept")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(timeout)
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _HOOK_DIALOGS})
        driver.get(path.as_uri())
        deadline = time.monotonic() + timeout
        figures = rendered = 0
        while time.monotonic() < deadline:
            ready = driver.execute_script("return document.readyState") == "complete"
            figures, rendered = driver.execute_script(_COUNT_FIGURES)
            if ready and rendered >= figures:
                break
            time.sleep(0.2)
        time.sleep(0.3)  # let late errors reach the log
        report = PageReport(
            figures=int(figures),
            rendered=int(rendered),
            dialogs=list(driver.execute_script("return window.__dialogs || []")),
            xss=bool(driver.execute_script("return typeof window.__xss !== 'undefined'")),
            text=driver.execute_script("return document.body ? document.body.innerText : ''"),
            title=driver.title,
        )
        report.console_errors = [
            entry.get("message", "")
            for entry in driver.get_log("browser")
            if entry.get("level") == "SEVERE"
        ]
        return report
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
