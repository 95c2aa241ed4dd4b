"""Swagger UI's pre-filled examples, executed as a person would: every operation of
docs/openapi.json, in the order a person would try them (creations, reads, changes, ends,
maintenance, the delete last), "Try it out" then "Execute" with nothing typed, in a real headless
browser against a local server. Each answer must be the operation's documented success; lists must
not be empty. The examples come from the code (lib/models.py, lib/api/params.py, local/openapi.py)
and the ids from the demo tenant the local server seeds (local/demo.py)."""

from __future__ import annotations

import json
import tempfile

import pytest

from local.template import ROOT
from tests.browser.test_swagger_ui import CHROMEDRIVER, CHROMIUM, _operation, _wait, browser  # noqa: F401 - fixture
from tests.support import running

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="no headless browser: scripts/install-browser.sh installs Debian's chromium and chromium-driver "
           "(needs root and apt-get)")

DOCUMENT = json.loads((ROOT / "docs" / "openapi.json").read_text())
OPERATIONS = {op["operationId"]: (method, path, op) for path, ops in DOCUMENT["paths"].items()
              for method, op in ops.items()}
ORDER = [
    "start_service", "start_composite", "associate_service",
    "get_service", "list_customer_services_all", "list_customer_services_active", "list_customer_services_completed",
    "list_anonymous_services_all", "list_anonymous_services_active", "list_anonymous_services_completed",
    "start_state", "transition_state", "get_state", "list_states_all", "list_states_active", "list_states_completed",
    "start_task", "get_task", "list_tasks_all", "list_tasks_active", "list_tasks_completed",
    "put_service", "put_service_extension", "merge_service_extension", "put_state_extension",
    "merge_state_extension", "put_task_extension", "merge_task_extension",
    "end_task", "end_state", "end_service",
    "export_stream", "export_files", "get_job", "purge",
    "delete_service",
]
LISTS = {name for name in ORDER if name.startswith("list_")} | {"export_stream"}


def test_the_order_names_every_operation_once():
    assert sorted(ORDER) == sorted(OPERATIONS), "a new operation needs its place in ORDER"


@pytest.fixture(scope="module")
def page(browser):  # noqa: F811 - the fixture imported above
    with tempfile.TemporaryDirectory(prefix="swagger-exports-") as exports, running({"EXPORT_DIR": exports}) as server:
        browser.get(server["url"] + "/swagger")
        _wait(lambda: browser.find_elements("css selector", ".opblock"), 120)  # the demo is seeded first
        yield browser, server


def _successes(operation: dict) -> set[str]:
    return {status for status in operation["responses"] if status.startswith("2")}


def _answer(driver, block) -> tuple[str, str]:
    """Press Execute; (status shown, body shown: '' when there is none)."""
    execute = _wait(lambda: block.find_elements("css selector", "button.execute"))[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", execute)
    execute.click()
    status = _wait(lambda: [e.text.strip() for e in block.find_elements(
        "css selector", ".live-responses-table tbody .response-col_status") if e.text.strip()], 60)[0]
    shown = block.find_elements("css selector", ".live-responses-table .response-col_description pre")
    return status, (shown[0].text if shown else "")


def _collapse(driver, block) -> None:
    """Close the operation again: 36 open operations with their answers make every render slow."""
    summary = block.find_element("css selector", ".opblock-summary")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", summary)
    summary.click()
    _wait(lambda: "is-open" not in block.get_attribute("class"))


def test_every_pre_filled_example_succeeds(page):
    driver, server = page
    failures = []
    for operation_id in ORDER:
        method, path, operation = OPERATIONS[operation_id]
        block = _operation(driver, operation_id)
        # What Swagger UI would send: every required parameter is filled in, no body is a placeholder.
        for parameter in operation.get("parameters", []):
            if parameter.get("required"):
                field = block.find_element("css selector", f"tr[data-param-name='{parameter['name']}'] input")
                assert field.get_attribute("value"), f"{operation_id}: {parameter['name']} is not pre-filled"
        bodies = block.find_elements("css selector", "textarea.body-param__text")
        if bodies:
            assert '"string"' not in bodies[0].get_attribute("value"), f"{operation_id}: a generated body"
        status, body = _answer(driver, block)
        _collapse(driver, block)
        if status not in _successes(operation):
            failures.append(f"{method.upper()} {path} ({operation_id}): {status} {body[:300]}")
        elif operation_id in LISTS and not json.loads(body):
            failures.append(f"{method.upper()} {path} ({operation_id}): {status} with an empty list")
    assert not failures, "\n".join(failures)
    requests = [line for line in server["lines"] if " /genesys/1/cs/" in line]
    assert len(requests) >= len(ORDER), "each Execute reached the local server"


def test_operations_are_grouped_by_resource_group(page):
    driver, _ = page
    sections = driver.find_elements("css selector", ".opblock-tag-section")
    names = [s.find_element("css selector", ".opblock-tag").get_attribute("data-tag") for s in sections]
    assert names == ["services", "states", "tasks", "maintenance"]
    for section, name in zip(sections, names):
        shown = {block.get_attribute("id").rsplit("-", 1)[-1] for block in section.find_elements("css selector", ".opblock")}
        expected = {op_id for op_id, (_, _, op) in OPERATIONS.items() if op["tags"] == [name]}
        assert shown == expected, name


def test_descriptions_render_as_written(page):
    driver, _ = page
    block = _operation(driver, "get_service")
    text = block.find_element("css selector", "tr[data-param-name='extensions'] .parameter__description, "
                                              "tr[data-param-name='extensions'] td.parameters-col_description").text
    for shown in ("State.*", "Task.*", "State.<key>", "*"):
        assert shown in text, text
