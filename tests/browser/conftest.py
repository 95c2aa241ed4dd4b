"""The journey viewer in a real headless browser (Debian's chromium through chromium-driver and
selenium, set up as tests/test_swagger_ui.py does) against the local server (`make run`), one
server and one browser per access mode (a test module each). Screenshots of every view go to
build/viewer-screenshots/ (git-ignored) for a person to look at. axe-core (the PyPI package
axe-selenium-python bundles axe.min.js; a test dependency only) checks each view."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from local.template import ROOT
from tests.browser.test_swagger_ui import CHROMEDRIVER, CHROMIUM, FLAGS

SCREENSHOTS = ROOT / "build" / "viewer-screenshots"
BROWSER_ZONE = "Asia/Kolkata"  # the browser's own zone: +05:30, so "local" never looks like UTC

try:
    from axe_selenium_python import Axe
except ImportError:  # Python < 3.12: the package needs 3.12 (pyproject.toml installs it from there on)
    Axe = None

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="no headless browser (scripts/install-browser.sh)")


class Viewer:
    """A browser on the viewer page, with what the tests look at."""

    def __init__(self, driver, base: str, mode: str):
        self.driver, self.base, self.mode = driver, base, mode

    # -- navigation and waiting

    def open(self, query: str = "") -> None:
        self.driver.get(f"{self.base}/viewer/{query}")
        self.wait(lambda: self.driver.execute_script("return document.documentElement.dataset.ready === 'true'"))
        self.driver.execute_script("performance.setResourceTimingBufferSize(100000)")

    def wait(self, condition, timeout: float = 60):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                value = condition()
            except Exception as error:
                value, last = None, error
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting in the browser ({last}); page says: {self.text('main')[:600]}")

    def css(self, selector: str):
        return self.driver.find_elements("css selector", selector)

    def one(self, selector: str, timeout: float = 60):
        return self.wait(lambda: (self.css(selector) or [None])[0], timeout)

    def text(self, selector: str) -> str:
        found = self.css(selector)
        return found[0].text if found else ""

    def params(self) -> dict[str, str]:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(urlsplit(self.driver.current_url).query))

    # -- the page's controls

    def lookup(self, kind: str, value: str, cc: str = "", group: str = "") -> None:
        self.one(f"input[name='kind'][value='{kind}']").click()
        for selector, text in (("#lookup-value", value), ("#lookup-cc", cc), ("#lookup-group", group)):
            field = self.one(selector)
            field.clear()
            if text:
                field.send_keys(text)
        self.one("#lookup-submit").click()

    def choose_role(self, role: str) -> None:
        from selenium.webdriver.support.ui import Select

        Select(self.one("#role-choice")).select_by_visible_text(role)

    # -- measuring

    def api_calls(self) -> list[str]:
        """Every request the page made to the API since the last clear (the browser's own record)."""
        return self.driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('/genesys/1/cs/'))")

    def api_wait_ms(self) -> float:
        """From the first API request sent to the last answer received (the API's share of a wait)."""
        return self.driver.execute_script(
            "const e = performance.getEntriesByType('resource').filter(e => e.name.includes('/genesys/1/cs/')"
            " && e.responseEnd > 0);"
            "return e.length ? Math.max(...e.map(x => x.responseEnd)) - Math.min(...e.map(x => x.startTime)) : 0")

    def clear_calls(self) -> None:
        self.driver.execute_script("performance.clearResourceTimings()")

    def hosts(self) -> set[str]:
        """The hosts of every request the browser sent (chromium's network log), data: URLs aside."""
        found = set()
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                url = message["params"]["request"]["url"]
                if urlsplit(url).scheme in ("http", "https", "ws", "wss"):  # not data:, nor chromium's own chrome://
                    found.add(urlsplit(url).netloc)
        return found

    def axe_violations(self) -> list[str]:
        """Serious or critical axe-core violations of the page as it is now (open dialogs included)."""
        if Axe is None:
            pytest.skip("axe-selenium-python needs Python 3.12 or later")
        axe = Axe(self.driver)
        axe.inject()
        results = axe.run()
        return [f"{v['id']} ({v['impact']}): {v['help']} - {[n['target'] for n in v['nodes']][:5]}"
                for v in results["violations"] if v["impact"] in ("serious", "critical")]

    def shot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.mode}-{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def browser_processes(self) -> set[int]:
        """chromium's processes (browser, renderers, network, GPU), all started by chromedriver."""
        from tests.support import descendants as _descendants

        return _descendants(self.driver.service.process.pid)

    def console_errors(self) -> list[str]:
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]


def cpu_seconds(pids: set[int]) -> float:
    """The CPU time (user and system) the processes have used so far (from /proc; 0 for one gone)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


@pytest.fixture(scope="module")
def chrome():
    """One headless chromium for the module, in BROWSER_ZONE, with its network and console logs."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")
    profile = tempfile.mkdtemp(prefix="viewer-test-")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    service = Service(CHROMEDRIVER, env={**os.environ, "TZ": BROWSER_ZONE})
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
