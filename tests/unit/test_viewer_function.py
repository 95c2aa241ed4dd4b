"""The viewer function (handlers/viewer.py): the journey viewer's static files and sign-in settings,
nothing else. Called as API Gateway calls it (a REST proxy event), without moto or a server."""

from __future__ import annotations

import json
import re

import pytest

from handlers import viewer
from local import template


def call(path: str, proxy: str | None = None, method: str = "GET", headers: dict | None = None) -> dict:
    event = {"httpMethod": method, "path": path, "headers": headers or {},
             "pathParameters": {"proxy": proxy} if proxy is not None else None}
    return viewer.lambda_handler(event, None)


def test_the_page_and_its_modules_are_served_with_their_types_and_a_strict_csp():
    page = call("/viewer/")
    assert page["statusCode"] == 200 and page["headers"]["Content-Type"].startswith("text/html")
    assert '<script type="module" src="app.js">' in page["body"]
    csp = page["headers"]["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    module = call("/viewer/views/timeline.js", "views/timeline.js")
    assert module["statusCode"] == 200 and module["headers"]["Content-Type"].startswith("text/javascript")
    for name in re.findall(r"""from ['"]\./(?:\.\./)?([\w/.-]+\.js)['"]""", page["body"] + module["body"]):
        assert (viewer.FILES / name).is_file() or (viewer.FILES / "views" / name).is_file(), name


def test_viewer_without_slash_redirects_relatively_so_a_stage_prefix_is_kept():
    reply = call("/viewer")
    assert reply["statusCode"] == 301 and reply["headers"]["Location"] == "viewer/"


@pytest.mark.parametrize("name", ["../template.yaml", "../handlers/viewer.py", "%2e%2e/template.yaml", ".hidden.js",
                                  "vendor/../../README.md", "missing.js", "views"])
def test_nothing_outside_the_viewer_files_is_served(name):
    reply = call(f"/viewer/{name}", name)
    assert reply["statusCode"] == 404
    assert json.loads(reply["body"])["exception"] == "NotFoundException"


def test_only_get_and_head():
    reply = call("/viewer/", method="POST")
    assert reply["statusCode"] == 405 and json.loads(reply["body"])["exception"] == "MethodNotAllowedException"
    assert call("/viewer/", method="HEAD")["body"] == ""


def test_an_unchanged_file_is_a_304():
    first = call("/viewer/viewer.css", "viewer.css")
    again = call("/viewer/viewer.css", "viewer.css", headers={"If-None-Match": first["headers"]["ETag"]})
    assert again["statusCode"] == 304 and again["body"] == ""


def test_config_names_the_sign_in_and_cognito_ids_and_allows_only_cognito_beyond_self(monkeypatch):
    monkeypatch.setenv("VIEWER_SIGN_IN", "cognito")
    monkeypatch.setenv("VIEWER_REGION", "eu-west-1")
    monkeypatch.setenv("VIEWER_USER_POOL_ID", "eu-west-1_abc")
    monkeypatch.setenv("VIEWER_CLIENT_ID", "client")
    monkeypatch.setenv("VIEWER_IDENTITY_POOL_ID", "eu-west-1:pool")
    reply = call("/viewer/config.json", "config.json")
    assert json.loads(reply["body"]) == {"sign_in": "cognito", "region": "eu-west-1", "cognito": {
        "user_pool_id": "eu-west-1_abc", "client_id": "client", "identity_pool_id": "eu-west-1:pool"}}
    csp = reply["headers"]["Content-Security-Policy"]
    assert ("connect-src 'self' https://cognito-idp.eu-west-1.amazonaws.com "
            "https://cognito-identity.eu-west-1.amazonaws.com;") in csp
    # The local run's stand-in (AUTH=cognito) is on the page's own origin: paths, nothing added to the CSP.
    monkeypatch.setenv("VIEWER_COGNITO_ENDPOINTS", "/local/cognito-idp/ /local/cognito-identity/")
    reply = call("/viewer/config.json", "config.json")
    assert json.loads(reply["body"])["cognito"]["endpoints"] == ["/local/cognito-idp/", "/local/cognito-identity/"]
    assert "connect-src 'self';" in reply["headers"]["Content-Security-Policy"]
    monkeypatch.setenv("VIEWER_SIGN_IN", "keys")
    assert json.loads(call("/viewer/config.json", "config.json")["body"]) == {"sign_in": "keys", "region": "eu-west-1"}


def test_the_template_serves_it_publicly_with_a_role_that_reaches_nothing():
    resources = template.load()["Resources"]
    function = resources["ViewerFunction"]["Properties"]
    assert function["Handler"] == "handlers.viewer.lambda_handler"
    assert "Policies" not in function  # SAM's basic execution role: its own logs only
    assert function["Environment"]["Variables"]["PAGE_TOKEN_SECRET"] == ""  # the Globals' secret is not given to it
    routes = {(r.path, r.public) for r in template.api_routes() if r.function == "ViewerFunction"}
    assert routes == {("/viewer", True), ("/viewer/{proxy+}", True)}
    assert not any(r.public for r in template.api_routes() if r.function != "ViewerFunction")
    assert "import lib" not in (template.ROOT / "handlers" / "viewer.py").read_text()
    assert "from lib" not in (template.ROOT / "handlers" / "viewer.py").read_text()


def test_sign_in_resources_exist_only_on_request_and_map_groups_to_the_api_policies():
    loaded = template.load()
    assert loaded["Parameters"]["ViewerSignIn"]["Default"] == "false"
    resources = loaded["Resources"]
    for name in ("ViewerUserPool", "ViewerUserPoolClient", "ViewerIdentityPool", "ViewerAdministratorGroup",
                 "ViewerSupervisorGroup", "ViewerAdministratorRole", "ViewerSupervisorRole", "ViewerIdentityPoolRoles"):
        assert resources[name]["Condition"] == "CreateViewerSignIn", name
    assert resources["ViewerAdministratorGroup"]["Properties"]["GroupName"] == "Administrator"
    assert resources["ViewerSupervisorGroup"]["Properties"]["GroupName"] == "Supervisor"
    assert resources["ViewerAdministratorRole"]["Properties"]["ManagedPolicyArns"] == [{"Ref": "AdministratorPolicy"}]
    assert resources["ViewerSupervisorRole"]["Properties"]["ManagedPolicyArns"] == [{"Ref": "SupervisorPolicy"}]
    mapping = resources["ViewerIdentityPoolRoles"]["Properties"]["RoleMappings"]["viewer"]
    assert mapping["Type"] == "Token" and mapping["AmbiguousRoleResolution"] == "Deny"
    assert "Roles" not in resources["ViewerIdentityPoolRoles"]["Properties"]  # no default role: no group, no credentials
    assert resources["ViewerUserPool"]["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
