"""The journey viewer's deployed sign-in, end to end in the browser, against `AUTH=cognito make run`:
the local stand-in of the template's user pool and identity pool (local/cognito.py), where an
operator adds people as README says (here with boto3, as `aws cognito-idp` does), a person signs in
with a user name and password (a new one at the first sign-in), the page exchanges the ID token for
the group's role's temporary credentials and signs every API call with them, and the local server
verifies those signatures and the role's grant. What real Cognito, STS and API Gateway do beyond
this is listed in README ("Sign-in locally")."""

from __future__ import annotations

import json

import boto3
import pytest

from local.signatures import TEST_CREDENTIALS
from tests.browser.seed import small_journey
from tests.browser.test_viewer_sigv4 import ADMIN, SignedClient
from tests.support import running

pytestmark = pytest.mark.usefixtures("chrome")
ROLES = {"Administrator": "arn:aws:iam::000000000000:role/ViewerAdministratorRole",
         "Supervisor": "arn:aws:iam::000000000000:role/ViewerSupervisorRole"}
TEMPORARY, NEW = "Temporary-Pass-1", "A-Much-Better-Pass-9"


@pytest.fixture(scope="module")
def world(chrome, tmp_path_factory):
    from tests.browser.conftest import Viewer

    grants = tmp_path_factory.mktemp("grants") / "grants.json"
    grants.write_text(json.dumps({"grants": [
        {"principal": ROLES["Administrator"], "role": "Administrator", "tenants": ["acme/*"]},
        {"principal": ROLES["Supervisor"], "role": "Supervisor", "tenants": ["acme/*"]},
        {"principal": TEST_CREDENTIALS[ADMIN].principal, "role": "Administrator", "tenants": ["acme/*"]}]}))
    with running({"TABLE_NAME": "viewer-cognito", "AUTH": "cognito", "GRANTS_FILE": str(grants)}) as server:
        with __import__("urllib.request").request.urlopen(server["url"] + "/viewer/config.json", timeout=30) as reply:
            config = json.loads(reply.read())
        assert config["sign_in"] == "cognito"
        pool = config["cognito"]["user_pool_id"]
        # The operator adds people (README, "Adding a person"; locally with --endpoint-url).
        idp = boto3.client("cognito-idp", endpoint_url=server["url"] + "/local/cognito-idp/", region_name="us-east-1",
                           aws_access_key_id="operator", aws_secret_access_key="operator")
        for name, group in (("alice", "Supervisor"), ("bob", "Administrator"), ("carol", None)):
            idp.admin_create_user(UserPoolId=pool, Username=name, TemporaryPassword=TEMPORARY, MessageAction="SUPPRESS")
            if group:
                idp.admin_add_user_to_group(UserPoolId=pool, Username=name, GroupName=group)
        api = SignedClient(server["url"], {"ContactCenterId": "acme"})
        sid = small_journey(api, "cognito-customer", "care")
        viewer = Viewer(chrome, server["url"], "cognito")
        viewer.open()
        viewer.driver.execute_script("sessionStorage.clear()")
        yield {"server": server, "viewer": viewer, "api": api, "sid": sid}
        hosts = viewer.hosts()
        assert hosts == {server["url"].removeprefix("http://")}, f"requests to other hosts: {hosts}"


def sign_in(viewer, name: str, password: str) -> None:
    viewer.open()
    if viewer.css("#sign-out"):
        viewer.one("#sign-out").click()
    viewer.one("#sign-in-user").send_keys(name)
    viewer.one("#sign-in-password").send_keys(password)
    viewer.one("#sign-in-form button[type='submit']").click()


def credentials_issued(world, name: str) -> list[str]:
    return [line for line in world["server"]["lines"] if line.startswith("cognito: credentials") and f" for {name} " in line]


def test_a_first_sign_in_sets_a_password_and_a_supervisor_reads_with_signed_calls(world):
    viewer = world["viewer"]
    viewer.open("?cc=acme&customer=cognito-customer")
    assert "Sign in first" in viewer.text("main h2") and "Not signed in" in viewer.text("#access-summary")
    assert not viewer.css("#role-choice")  # the role is the person's group, not a choice
    assert viewer.axe_violations() == []
    viewer.shot("sign-in")
    sign_in(viewer, "alice", TEMPORARY)
    viewer.wait(lambda: "Choose a new password" in viewer.text("label[for='sign-in-password']"))
    viewer.one("#sign-in-password").send_keys(NEW)
    viewer.one("#sign-in-form button[type='submit']").click()
    viewer.wait(lambda: "Signed in as alice (Supervisor)" in viewer.text("#access-summary"))
    stored = json.loads(viewer.driver.execute_script("return sessionStorage.getItem('journey-viewer.access')"))
    assert stored["credentials"]["accessKeyId"].startswith("ASIA") and stored["credentials"]["sessionToken"]
    assert len(credentials_issued(world, "alice")) == 1
    assert "ViewerSupervisorRole" in credentials_issued(world, "alice")[0]
    # Signed look-ups: the list and the timeline, read with the role's temporary credentials.
    viewer.lookup("customer", "cognito-customer", cc="acme")
    viewer.one("#services-table tbody tr")
    assert [r.get_attribute("data-service-id") for r in viewer.css("#services-table tbody tr")] == [world["sid"]]
    viewer.one(f"a[data-service-id='{world['sid']}']").click()
    viewer.one("#timeline-tree[data-drawn='true']")
    assert not viewer.css("#end-service, #change-expiration, #delete-service")
    viewer.one("#state-2 > .row").click()
    curl = viewer.one("#curl-command").text
    assert "--aws-sigv4" in curl and "X-Amz-Security-Token: $AWS_SESSION_TOKEN" in curl
    assert stored["credentials"]["secretAccessKey"] not in curl and stored["credentials"]["sessionToken"] not in curl
    viewer.shot("supervisor")
    assert viewer.axe_violations() == []
    viewer.one("#element-close").click()
    # Another tenant: the role's grant does not cover it, and the page says so with the API's words.
    viewer.lookup("customer", "cognito-customer", cc="beta")
    error = viewer.one("#services-error").text
    assert "403" in error and "beta" in error


def test_an_administrator_signs_in_and_acts(world):
    viewer, api = world["viewer"], world["api"]
    sign_in(viewer, "bob", TEMPORARY)
    viewer.wait(lambda: "Choose a new password" in viewer.text("label[for='sign-in-password']"))
    viewer.one("#sign-in-password").send_keys(NEW)
    viewer.one("#sign-in-form button[type='submit']").click()
    viewer.wait(lambda: "Signed in as bob (Administrator)" in viewer.text("#access-summary"))
    assert "ViewerAdministratorRole" in credentials_issued(world, "bob")[-1]
    viewer.open(f"?cc=acme&service={world['sid']}")
    viewer.one("#timeline-tree[data-drawn='true']")
    viewer.one("#state-2 > .row").click()
    viewer.one("#element-dialog[open] #end-state").click()
    viewer.one("#end-disposition").send_keys("signed in")
    viewer.one("#confirm-ok").click()
    viewer.wait(lambda: api.ok("GET", f"/services/{world['sid']}/states/2").get("disposition") == "signed in")
    viewer.shot("administrator")


def test_credentials_about_to_expire_are_renewed_before_a_call(world):
    viewer = world["viewer"]
    sign_in(viewer, "bob", NEW)  # his second sign-in: no new password asked
    viewer.wait(lambda: "Signed in as bob (Administrator)" in viewer.text("#access-summary"))
    before = json.loads(viewer.driver.execute_script("return sessionStorage.getItem('journey-viewer.access')"))
    issued = len(credentials_issued(world, "bob"))
    # The page renews a minute before the end: make its credentials end in 30 s, then call.
    viewer.driver.execute_script(
        "const s = JSON.parse(sessionStorage.getItem('journey-viewer.access')); s.expires = Date.now() + 30000;"
        "sessionStorage.setItem('journey-viewer.access', JSON.stringify(s));")
    viewer.open(f"?cc=acme&service={world['sid']}")
    viewer.one("#timeline-tree[data-drawn='true']")
    after = json.loads(viewer.driver.execute_script("return sessionStorage.getItem('journey-viewer.access')"))
    assert after["credentials"]["accessKeyId"] != before["credentials"]["accessKeyId"]
    assert after["expires"] > before["expires"] - 1 and len(credentials_issued(world, "bob")) == issued + 1
    assert "Signed in as bob (Administrator)" in viewer.text("#access-summary")


def test_a_wrong_password_and_a_person_in_no_group_get_no_credentials(world):
    viewer = world["viewer"]
    sign_in(viewer, "alice", "Not-Her-Password-1")
    assert "Incorrect username or password" in viewer.one("#sign-in-error:not([hidden])").text
    sign_in(viewer, "carol", TEMPORARY)
    viewer.wait(lambda: "Choose a new password" in viewer.text("label[for='sign-in-password']"))
    viewer.one("#sign-in-password").send_keys(NEW)
    viewer.one("#sign-in-form button[type='submit']").click()
    assert "No role for this user" in viewer.one("#sign-in-error:not([hidden])").text
    assert not credentials_issued(world, "carol")
    assert "Not signed in" in viewer.text("#access-summary")
    viewer.shot("sign-in-refused")
