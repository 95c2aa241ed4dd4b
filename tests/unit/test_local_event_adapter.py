"""The HTTP -> API Gateway event adapter of the local run and the tests (local.events) on its own: the
raw path and every query value, an encoded slash inside one segment, the caller's identity only in the
enforcing mode, bodies that are not UTF-8, and results read back into HTTP responses."""

from __future__ import annotations

import pytest

from local import events, template
from tests.support import BASE


def _route_for(path: str):
    routes = events.compile_routes(template.api_routes())
    return routes, events.find_route(routes, "GET", path)


def test_adapter_keeps_the_raw_path_and_every_query_value():
    routes, (route, params) = _route_for(f"{BASE}/customers/C%23123/services")
    request = events.HttpRequest.from_target(
        "GET", f"{BASE}/customers/C%23123/services?service_types=A&service_types=B,C&q=a+b%2Bc#frag",
        [("Host", "h"), ("X-Forwarded-Proto", "javascript"), ("X-Forwarded-For", "10.1.1.1")])
    event = events.build_event(request, route, params, stage="Prod", stage_in_path=True, auth=False)
    assert route.api.path == "/genesys/1/cs/customers/{customer_id}/services"
    assert event["path"] == f"{BASE}/customers/C%23123/services"
    assert event["requestContext"]["path"] == f"/Prod{BASE}/customers/C%23123/services"
    assert event["pathParameters"] == {"customer_id": "C%23123"}
    assert event["multiValueQueryStringParameters"] == {"service_types": ["A", "B,C"], "q": ["a b+c"]}
    assert event["queryStringParameters"] == {"service_types": "B,C", "q": "a b+c"}
    assert event["headers"]["X-Forwarded-Proto"] == "https"  # the gateway's, not the client's
    assert event["headers"]["X-Forwarded-For"] == "10.1.1.1, 127.0.0.1"
    assert event["requestContext"]["identity"]["userArn"] is None


def test_adapter_routes_an_encoded_slash_inside_one_segment():
    routes, found = _route_for(f"{BASE}/customers/a%2Fb/services")
    assert found is not None and found[1] == {"customer_id": "a%2Fb"}
    other = events.find_route(routes, "GET", f"{BASE}/customers/a/b/services")
    assert other is None or other[0].api.path == "/{proxy+}"  # not the customer list: at most the catch-all
    route, params = events.find_route(routes, "GET", f"{BASE}/customers/c/services/active")
    assert route.api.path.endswith("/services/active") and params == {"customer_id": "c"}


def test_adapter_identity_only_with_auth_on():
    _, (route, params) = _route_for(f"{BASE}/services/1")
    request = events.HttpRequest.from_target("GET", f"{BASE}/services/1", [("X-CS-Principal", "alice")])
    identity = events.build_event(request, route, params, auth=True)["requestContext"]["identity"]
    assert identity["userArn"] == "arn:aws:iam::000000000000:user/alice"
    assert (identity["caller"], identity["accessKey"]) == ("alice", "LOCAL")
    closed = events.build_event(request, route, params, auth=False)
    assert closed["requestContext"]["identity"]["userArn"] is None
    assert "X-CS-Principal" not in closed["headers"]
    anonymous = events.HttpRequest.from_target("GET", f"{BASE}/services/1")
    assert events.build_event(anonymous, route, params, auth=True)["requestContext"]["identity"]["userArn"] is None


def test_adapter_passes_non_utf8_bodies_base64_encoded_and_reads_results():
    _, (route, params) = _route_for(f"{BASE}/services/1")
    event = events.build_event(events.HttpRequest("POST", f"{BASE}/services/1", body=b"\xff\x00"), route, params)
    assert (event["body"], event["isBase64Encoded"]) == ("/wA=", True)
    response = events.to_response({"statusCode": 201, "headers": {"A": "1", "B": True},
                                   "multiValueHeaders": {"A": ["2", "3"]}, "body": "x"})
    assert (response.status, response.body) == (201, b"x")
    assert response.headers == [("A", "2"), ("A", "3"), ("B", "true")]
    with pytest.raises(events.MalformedResult):
        events.to_response("not a dict")
