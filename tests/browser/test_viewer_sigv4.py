"""The journey viewer against `AUTH=sigv4 make run`: the local server verifies real SigV4 signatures
(botocore's signer) with fixed test keys, so the page's own signing (aws4fetch over WebCrypto) is
tested end to end: signed look-ups and actions succeed, a wrong secret is a 401 shown in words, the
Supervisor key's role is enforced. The server side is checked over plain HTTP too."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from local.signatures import TEST_CREDENTIALS
from tests.support import running

ADMIN, SUPERVISOR = "AKIDLOCALADMIN000001", "AKIDLOCALSUPERVISOR1"


def signed(url: str, method: str, key: str, body: bytes = b"", headers: dict | None = None, secret: str | None = None):
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    SigV4Auth(Credentials(key, secret or TEST_CREDENTIALS[key].secret_key), "execute-api", "us-east-1").add_auth(request)
    prepared = urllib.request.Request(url, data=body or None, method=method, headers=dict(request.headers))
    try:
        with urllib.request.urlopen(prepared, timeout=60) as reply:
            text = reply.read()
            return reply.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


class SignedClient:
    """The API over HTTP, signed with a test key (to write the journeys the page then reads)."""

    def __init__(self, url: str, headers: dict[str, str], key: str = ADMIN):
        self.url, self.headers, self.key = url + "/genesys/1/cs", headers, key

    def call(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        return signed(self.url + path, method, self.key, data, {**self.headers, "Content-Type": "application/json"})

    def ok(self, method: str, path: str, body=None):
        status, data = self.call(method, path, body)
        assert status < 300, (method, path, status, data)
        return data


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    grants = tmp_path_factory.mktemp("grants") / "grants.json"
    grants.write_text(json.dumps({"grants": [
        {"principal": TEST_CREDENTIALS[ADMIN].principal, "role": "Administrator", "tenants": ["acme/*"]},
        {"principal": TEST_CREDENTIALS[SUPERVISOR].principal, "role": "Supervisor", "tenants": ["acme/*"]}]}))
    with running({"TABLE_NAME": "viewer-sigv4", "AUTH": "sigv4", "GRANTS_FILE": str(grants)}) as started:
        yield started


def test_the_server_verifies_signatures_and_rejects_what_is_not_signed_right(server):
    base = server["url"] + "/genesys/1/cs"
    headers = {"ContactCenterId": "acme", "GroupId": "sales", "Content-Type": "application/json"}
    status, created = signed(f"{base}/services/start", "POST", ADMIN, json.dumps({"customer_id": "sig ü#1"}).encode(), headers)
    assert status == 201, created
    assert signed(f"{base}/customers/sig%20%C3%BC%231/services?limit=5&extensions=%2A", "GET", ADMIN,
                  headers=headers)[0] == 200
    # unsigned, wrong secret, unknown key, tampered body: 401 in the contract's shape
    request = urllib.request.Request(f"{base}/services/{created['service_id']}", headers=headers)
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(request, timeout=30)
    assert unsigned.value.code == 401 and json.loads(unsigned.value.read())["exception"] == "UnauthorizedException"
    status, body = signed(f"{base}/services/{created['service_id']}", "GET", ADMIN, headers=headers, secret="wrong")
    assert status == 401 and "signature" in body["message"]
    status, body = signed(f"{base}/services/{created['service_id']}", "GET", "AKIDUNKNOWN000000000", headers=headers,
                          secret="x")
    assert status == 401 and "unknown access key" in body["message"]
    # a principal header does not stand in for a signature in this mode
    request = urllib.request.Request(f"{base}/services/{created['service_id']}", headers={**headers, "X-CS-Principal": "x"})
    with pytest.raises(urllib.error.HTTPError) as named:
        urllib.request.urlopen(request, timeout=30)
    assert named.value.code == 401
    # the role is the grant's: the Supervisor key may read, not write
    assert signed(f"{base}/services/{created['service_id']}", "GET", SUPERVISOR, headers=headers)[0] == 200
    assert signed(f"{base}/services/{created['service_id']}/end", "POST", SUPERVISOR, b"{}", headers)[0] == 403
    # the viewer's files need no signature
    with urllib.request.urlopen(server["url"] + "/viewer/", timeout=30) as page:
        assert page.status == 200


@pytest.fixture(scope="module")
def world(server, chrome):
    from tests.browser.conftest import Viewer

    viewer = Viewer(chrome, server["url"], "sigv4")
    yield {"viewer": viewer, "server": server}
    assert viewer.hosts() == {server["url"].removeprefix("http://")}


def sign_in(viewer, key: str, secret: str | None = None) -> None:
    viewer.open()
    for selector, text in (("#access-key-id", key), ("#secret-access-key", secret or TEST_CREDENTIALS[key].secret_key)):
        field = viewer.one(selector)
        field.clear()
        field.send_keys(text)
    viewer.one("#keys-form button").click()
    viewer.wait(lambda: key in viewer.text("#access-summary"))


def test_the_page_signs_its_calls_and_an_administrator_acts(world, server):
    viewer = world["viewer"]
    base = server["url"] + "/genesys/1/cs"
    headers = {"ContactCenterId": "acme", "GroupId": "sales", "Content-Type": "application/json"}
    status, created = signed(f"{base}/services/start", "POST", ADMIN,
                             json.dumps({"customer_id": "c #ü 1", "service_type": "sig", "note": "n"}).encode(), headers)
    sid = created["service_id"]
    assert signed(f"{base}/services/{sid}/states/start", "POST", ADMIN, json.dumps({"state_type": "s"}).encode(),
                  headers)[0] == 201
    sign_in(viewer, ADMIN)
    viewer.choose_role("Administrator")
    viewer.lookup("customer", "c #ü 1", cc="acme", group="sales")
    viewer.one("#services-table tbody tr")
    assert [r.get_attribute("data-service-id") for r in viewer.css("#services-table tbody tr")] == [sid]
    viewer.shot("services")
    viewer.one(f"a[data-service-id='{sid}']").click()
    viewer.one("#timeline-tree[data-drawn='true']")
    viewer.one("#state-1 > .row").click()
    assert "--aws-sigv4 'aws:amz:us-east-1:execute-api'" in viewer.one("#curl-command").text
    assert TEST_CREDENTIALS[ADMIN].secret_key not in viewer.text("#curl-command")
    viewer.one("#element-dialog[open] #end-state").click()
    viewer.one("#confirm-ok").click()
    viewer.wait(lambda: "completed" in signed(f"{base}/services/{sid}/states/1", "GET", ADMIN, headers=headers)[1])
    viewer.one("#timeline-tree[data-drawn='true']")
    viewer.one("#delete-service").click()
    viewer.one("#confirm-ok").click()
    viewer.wait(lambda: signed(f"{base}/services/{sid}", "GET", ADMIN, headers=headers)[0] == 404)
    assert viewer.axe_violations() == []


def test_a_wrong_secret_is_a_401_in_words_and_a_supervisor_key_is_refused_writes(world, server):
    viewer = world["viewer"]
    sign_in(viewer, ADMIN, secret="not-the-secret")
    viewer.open("?cc=acme&group=sales&customer=anyone")
    error = viewer.one("#services-error").text
    assert "did not accept your credentials" in error and "signature" in error
    viewer.shot("unauthorised")
    base = server["url"] + "/genesys/1/cs"
    headers = {"ContactCenterId": "acme", "Content-Type": "application/json"}
    sid = signed(f"{base}/services/start", "POST", ADMIN, json.dumps({"customer_id": "sup"}).encode(), headers)[1]["service_id"]
    sign_in(viewer, SUPERVISOR)
    viewer.choose_role("Administrator")  # controls of the wrong role: the API still refuses
    viewer.open(f"?cc=acme&service={sid}")
    viewer.one("#timeline-tree, #timeline-empty")
    viewer.one("#end-service").click()
    viewer.one("#confirm-ok").click()
    assert "403 Forbidden" in viewer.one("#confirm-error:not([hidden])").text
    viewer.one("#confirm-cancel").click()
    viewer.choose_role("Supervisor")
    viewer.wait(lambda: not viewer.css("#end-service"))


def test_signed_views_filters_table_keyboard_and_a_big_timeline(world, server):
    """Points 3, 4, 7 and 8 of issue 19 with every call signed (a Supervisor key: reads only): the
    status filter in the URL, the table view, an element opened and closed with keys, axe on the
    table, and the 1,000-state timeline read in the pages needed, timed as in the open mode."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    from lib.store.keys import tenant_key
    from tests.browser.seed import Store, big_service, small_journey
    from tests.browser.test_viewer_open import measured_look_up

    viewer = world["viewer"]
    api = SignedClient(server["url"], {"ContactCenterId": "acme"})
    ended = small_journey(api, "signed-views", "billing", ended=True)
    active = small_journey(api, "signed-views", "care")
    big = big_service(api, Store(server["dynamodb"], "viewer-sigv4"), tenant_key("acme", None), "signed-big", 1000, 2)
    sign_in(viewer, SUPERVISOR)
    viewer.choose_role("Supervisor")

    viewer.open("?cc=acme&customer=signed-views&status=active")
    viewer.wait(lambda: [r.get_attribute("data-service-id") for r in viewer.css("#services-table tbody tr")] == [active])
    viewer.open("?cc=acme&customer=signed-views")
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

    timeline = measured_look_up(viewer, server["pid"], "service", big,
                                "#timeline-tree[data-drawn='true'] [role='treeitem']", 3000, tenant="acme")
    names = sorted(c["url"].split("?")[0].rsplit("/", 1)[-1] for c in timeline["calls"])
    assert names == sorted(["states", "tasks", "tasks", big]), timeline["calls"]  # the pages needed, signed
    assert len(viewer.css("#timeline-tree [data-kind='state']")) == 1000
    print(f"\nsigned 1,000-state timeline: drawn in {timeline['drawn']:.0f} ms, CPU time API "
          f"{timeline['api cpu']:.0f} ms, page {timeline['page cpu']:.0f} ms, load {os.getloadavg()[0]:.1f}")
    assert timeline["page cpu"] <= 500  # signing four calls adds nothing that matters to the page's work
