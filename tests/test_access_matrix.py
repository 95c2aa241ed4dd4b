"""The access matrix (contract §1 "Access when deployed", §2 401 / 403): every route x caller
(Administrator, Supervisor, an unknown principal, none) x the granted tenant and three it was not
granted, through the real `lambda_handler` of each route with the caller's identity in the request
context as API Gateway sets it after IAM authentication. A refusal comes before any data is touched:
the only DynamoDB call it may make is the grant lookup. An allowed request reaches its route.

Separate from tests/test_access.py because it keeps one table for the whole module.
"""

from __future__ import annotations

import os

import pytest
from moto import mock_aws

from lib import settings as settings_module
from lib.api import access
from lib.store import table as store_table
from local import embedded_dynamodb, template
from tests.test_access import (
    ADMIN,
    CALLERS,
    GRANTED,
    GRANTED_TENANTS,
    OPERATIONS,
    OTHER_TENANTS,
    SUPERVISOR,
    DynamoCalls,
    _assert_reached_route,
    _call,
    _concrete,
    _expected,
    _put_grant,
)


@pytest.fixture(scope="module")
def matrix():
    """One enforcing table for the whole matrix (a fresh table per case would cost minutes)."""
    embedded_dynamodb.faithful_updates()
    embedded_dynamodb.partition_scoped()
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        patch.setenv("ACCESS_MODE", "iam")
        settings_module.settings.cache_clear()
        access.reset()
        client = store_table.reset_client()
        template.create_table(client, os.environ["TABLE_NAME"])
        _put_grant(client, ADMIN, "Administrator", ["acme/sales", "acme/"])
        _put_grant(client, SUPERVISOR, "Supervisor", ["acme/*"])
        yield DynamoCalls(client)
        store_table.reset_client()
    settings_module.settings.cache_clear()
    access.reset()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_route_role_tenant_matrix(matrix, method, path):
    """Every role (and no / an unknown caller) x the granted tenant and three it was not granted."""
    for role, principal in CALLERS.items():
        for tenant in ("granted", *OTHER_TENANTS):
            case = f"{role}, {tenant}"
            headers = GRANTED if tenant == "granted" else OTHER_TENANTS[tenant]
            matrix.calls.clear()
            reply = _call(method, _concrete(path), principal, headers)
            expected = _expected(role, method, tenant in GRANTED_TENANTS.get(role, ()))
            if expected is None:
                _assert_reached_route(reply, case)
                if path == "/no/such/route":
                    assert reply.status == 404 and reply.json["exception"] == "NotFoundException", case
            else:
                assert (reply.status, reply.json["exception"]) == expected, f"{case}: {reply.text}"
                assert matrix.data_calls() == [], f"{case}: a refused request touched data"
                assert matrix.grant_lookups() <= 1, case


