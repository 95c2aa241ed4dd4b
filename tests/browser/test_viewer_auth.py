"""The journey viewer against `AUTH=on make run`: the person names the principal (X-CS-Principal) and
the role whose controls are shown; the API enforces the principal's grant. A Supervisor sees no
controls; a 403 that comes anyway (controls of the wrong role, a tenant not granted) is explained
with the API's message; an Administrator acts."""

from __future__ import annotations

import json
import os

import pytest

from tests.browser.seed import Client, small_journey
from tests.support import running

pytestmark = pytest.mark.usefixtures("chrome")
ACCOUNT = "000000000000"


@pytest.fixture(scope="module")
def world(chrome, tmp_path_factory):
    from tests.browser.conftest import Viewer

    grants = tmp_path_factory.mktemp("grants") / "grants.json"
    grants.write_text(json.dumps({"grants": [
        {"principal": f"arn:aws:iam::{ACCOUNT}:user/ada", "role": "Administrator", "tenants": ["acme/"]},
        {"principal": f"arn:aws:iam::{ACCOUNT}:user/sam", "role": "Supervisor", "tenants": ["acme/"]}]}))
    with running({"TABLE_NAME": "viewer-auth", "AUTH": "on", "GRANTS_FILE": str(grants)}) as server:
        admin = Client(server["url"], {"ContactCenterId": "acme", "X-CS-Principal": "ada"})
        sid = small_journey(admin, "auth-customer", "care")
        viewer = Viewer(chrome, server["url"], "auth")
        yield {"server": server, "admin": admin, "sid": sid, "viewer": viewer}
        assert viewer.hosts() == {server["url"].removeprefix("http://")}


def use(viewer, principal: str, role: str) -> None:
    viewer.open()
    field = viewer.one("#principal-name")
    field.clear()
    field.send_keys(principal)
    viewer.one("#principal-form button").click()
    viewer.wait(lambda: principal in viewer.text("#access-summary"))
    viewer.choose_role(role)


def test_the_page_asks_for_a_principal_first(world):
    viewer = world["viewer"]
    viewer.driver.delete_all_cookies()
    viewer.open()
    viewer.driver.execute_script("sessionStorage.clear()")
    viewer.open("?customer=auth-customer&cc=acme")
    assert "Sign in first" in viewer.text("main h2")
    assert "Name a principal" in viewer.text("#access-summary")
    assert viewer.axe_violations() == []
    viewer.shot("sign-in")


def test_a_supervisor_reads_and_sees_no_controls(world):
    viewer = world["viewer"]
    use(viewer, "sam", "Supervisor")
    viewer.open("?cc=acme&customer=auth-customer")
    viewer.one("#services-table tbody tr")
    assert [r.get_attribute("data-service-id") for r in viewer.css("#services-table tbody tr")] == [world["sid"]]
    viewer.one(f"a[data-service-id='{world['sid']}']").click()
    viewer.one("#timeline-tree[data-drawn='true']")
    assert not viewer.css("#end-service, #change-expiration, #delete-service")
    viewer.one("#state-2 > .row").click()
    viewer.one("#element-dialog[open]")
    assert not viewer.css("#element-dialog button[id^='end-']")
    assert "X-CS-Principal: sam" in viewer.text("#curl-command")
    viewer.shot("supervisor")
    assert viewer.axe_violations() == []
    viewer.one("#element-close").click()


def test_a_403_that_comes_anyway_is_explained_with_the_apis_message(world):
    viewer = world["viewer"]
    # A tenant the Supervisor has no grant for.
    use(viewer, "sam", "Supervisor")
    viewer.open("?cc=beta&customer=auth-customer")
    error = viewer.one("#services-error").text
    assert "403" in error and "beta" in error
    # The Administrator's controls, shown to a Supervisor principal: the API refuses, the page says why.
    viewer.choose_role("Administrator")
    viewer.open(f"?cc=acme&service={world['sid']}")
    viewer.one("#timeline-tree[data-drawn='true']")
    viewer.one("#end-service").click()
    viewer.one("#confirm-ok").click()
    message = viewer.one("#confirm-error:not([hidden])").text
    status, detail = Client(world["server"]["url"], {"ContactCenterId": "acme", "X-CS-Principal": "sam"}).call(
        "POST", f"/services/{world['sid']}/end", {})
    assert status == 403 and detail["message"] in message
    assert "403 Forbidden" in message
    viewer.shot("forbidden")
    viewer.one("#confirm-cancel").click()
    assert "completed" not in world["admin"].ok("GET", f"/services/{world['sid']}")


def test_an_administrator_acts(world):
    viewer, admin = world["viewer"], world["admin"]
    use(viewer, "ada", "Administrator")
    viewer.open(f"?cc=acme&service={world['sid']}")
    viewer.one("#timeline-tree[data-drawn='true']")
    viewer.one("#state-2 > .row").click()
    viewer.one("#element-dialog[open] #end-state").click()
    viewer.one("#confirm-ok").click()
    viewer.wait(lambda: "completed" in admin.ok("GET", f"/services/{world['sid']}/states/2"))
    viewer.one("#timeline-tree[data-drawn='true']")
    viewer.one("#end-service").click()
    viewer.one("#confirm-ok").click()
    viewer.wait(lambda: "completed" in admin.ok("GET", f"/services/{world['sid']}"))
    viewer.shot("administrator")


def test_views_filters_table_keyboard_and_a_big_timeline_as_a_named_principal(world):
    """Points 3, 4, 7 and 8 of issue 19 with the principal named (a Supervisor: reads only): the
    status filter in the URL, the table view, an element opened and closed with keys, axe on the
    table, and the 1,000-state timeline read in the pages needed, timed as in the open mode."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    from lib.store.keys import tenant_key
    from tests.browser.seed import Store, big_service
    from tests.browser.test_viewer_open import measured_look_up

    viewer, admin = world["viewer"], world["admin"]
    ended = small_journey(admin, "named-views", "billing", ended=True)
    active = small_journey(admin, "named-views", "care")
    big = big_service(admin, Store(world["server"]["dynamodb"], "viewer-auth"), tenant_key("acme", None),
                      "named-big", 1000, 2)
    use(viewer, "sam", "Supervisor")

    viewer.open("?cc=acme&customer=named-views&status=active")
    viewer.wait(lambda: [r.get_attribute("data-service-id") for r in viewer.css("#services-table tbody tr")] == [active])
    viewer.open("?cc=acme&customer=named-views")
    viewer.wait(lambda: [r.get_attribute("data-service-id") for r in viewer.css("#services-table tbody tr")]
                == [active, ended])

    viewer.open(f"?cc=acme&service={ended}&tab=table")
    rows = viewer.one("#elements-table").find_elements("css selector", "tbody tr")
    assert [r.find_element("css selector", "th").text for r in rows] == ["State 1", "Task 1", "State 2", "Task 2", "Task 3"]
    assert viewer.axe_violations() == []
    viewer.shot("table")
    viewer.one("#tab-timeline").click()
    viewer.one("#timeline-tree[data-drawn='true']")
    viewer.one("#state-1").send_keys(Keys.ENTER)
    viewer.one("#element-dialog[open]")
    assert viewer.driver.switch_to.active_element.get_attribute("id") == "element-close"
    ActionChains(viewer.driver).send_keys(Keys.ESCAPE).perform()
    viewer.wait(lambda: not viewer.css("#element-dialog[open]"))
    assert viewer.driver.switch_to.active_element.get_attribute("id") == "state-1"

    timeline = measured_look_up(viewer, world["server"]["pid"], "service", big,
                                "#timeline-tree[data-drawn='true'] [role='treeitem']", 3000, tenant="acme")
    names = sorted(c["url"].split("?")[0].rsplit("/", 1)[-1] for c in timeline["calls"])
    assert names == sorted(["states", "tasks", "tasks", big]), timeline["calls"]  # the pages needed
    assert len(viewer.css("#timeline-tree [data-kind='state']")) == 1000
    print(f"\nAUTH=on 1,000-state timeline: drawn in {timeline['drawn']:.0f} ms, CPU time API "
          f"{timeline['api cpu']:.0f} ms, page {timeline['page cpu']:.0f} ms, load {os.getloadavg()[0]:.1f}")
    assert timeline["page cpu"] <= 500
