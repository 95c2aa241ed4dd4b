"""Swagger UI at /swagger, looked at in a real headless browser (Debian's chromium, driven through
chromium-driver by selenium; scripts/install-browser.sh installs them, `make test` runs it): the
OpenAPI 3.1 document renders, every operation is there, and "Try it out" reaches the local server."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time

import pytest

from local.template import ROOT
from tests.support import running

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000"]

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="no headless browser: scripts/install-browser.sh installs Debian's chromium and chromium-driver "
           "(needs root and apt-get)")

OPERATIONS = [(method, path, op["operationId"])
              for path, ops in json.loads((ROOT / "docs" / "openapi.json").read_text())["paths"].items()
              for method, op in ops.items() if method in ("get", "put", "post", "delete", "patch")]


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must not try to download a driver
    profile = tempfile.mkdtemp(prefix="swagger-ui-test-")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def swagger(browser):
    with running({"LOCAL_WARM": "0"}) as server:  # workers started on first use: only the services function's
        browser.get(server["url"] + "/swagger")
        _wait(lambda: browser.find_elements("css selector", ".opblock") or _render_error(browser), 60)
        yield browser, server


def _wait(condition, timeout: float = 30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting in the browser")


def _render_error(driver) -> str:
    """What Swagger UI shows instead of the operations ("" while it renders: an element found may be
    replaced before its text is read, which is no error of the page)."""
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        return "\n".join(e.text for e in driver.find_elements("css selector", ".errors-wrapper, .loading-container .info"))
    except StaleElementReferenceException:
        return ""


def _operation(driver, operation_id: str):
    """Expand an operation, press "Try it out": its element."""
    block = driver.find_element("css selector", f"[id$='-{operation_id}']")
    if "is-open" not in block.get_attribute("class"):
        block.find_element("css selector", ".opblock-summary").click()
    button = _wait(lambda: block.find_elements("css selector", ".try-out__btn"))[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()
    return block


def _execute(driver, block) -> tuple[str, str]:
    """Press Execute: (status code shown, response body shown)."""
    execute = _wait(lambda: block.find_elements("css selector", "button.execute"))[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", execute)
    execute.click()
    status = _wait(lambda: [e.text.strip() for e in block.find_elements(
        "css selector", ".live-responses-table tbody .response-col_status") if e.text.strip()])[0]
    body = block.find_element("css selector", ".live-responses-table .response-col_description pre").text
    return status, body


def _fill(element, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)
    element.send_keys(text)


def test_the_openapi_31_document_renders_with_every_operation(swagger):
    driver, _ = swagger
    page = driver.find_element("tag name", "body").text
    assert "Unable to render this definition" not in page, _render_error(driver)
    assert not driver.find_elements("css selector", ".errors-wrapper"), _render_error(driver)
    assert "OAS 3.1" in driver.find_element("css selector", ".info .version-stamp, .info").text
    blocks = driver.find_elements("css selector", ".opblock")
    assert len(blocks) == len(OPERATIONS)
    shown = {block.get_attribute("id").rsplit("-", 1)[-1] for block in blocks}
    assert shown == {operation_id for _, _, operation_id in OPERATIONS}
    for method, path, operation_id in OPERATIONS:
        block = driver.find_element("css selector", f"[id$='-{operation_id}']")
        summary = block.find_element("css selector", ".opblock-summary").text
        assert method.upper() in summary and path in summary.replace("\u200b", ""), (operation_id, summary)


def test_try_it_out_starts_a_service_and_lists_it_from_the_local_server(swagger):
    driver, server = swagger
    customer = f"swagger-{int(time.time() * 1000)}"
    start = _operation(driver, "start_service")
    body = _wait(lambda: start.find_elements("css selector", "textarea.body-param__text"))[0]
    _fill(body, json.dumps({"customer_id": customer, "channel": "browser"}))
    status, reply = _execute(driver, start)
    assert status == "201", reply
    service_id = json.loads(reply)["service_id"]
    assert any("POST /genesys/1/cs/services/start 201" in line for line in server["lines"]), "reached the server"

    listing = _operation(driver, "list_customer_services_all")
    field = _wait(lambda: listing.find_elements("css selector", "tr[data-param-name='customer_id'] input"))[0]
    _fill(field, customer)
    status, reply = _execute(driver, listing)
    assert status == "200", reply
    assert [s["service_id"] for s in json.loads(reply)] == [service_id]
    assert any(f"GET /genesys/1/cs/customers/{customer}/services" in line for line in server["lines"])
