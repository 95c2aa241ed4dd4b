"""The access rules on their own (contract §1 "Access when deployed"): principals as IAM names them,
callers from the request context, grants' tenant wildcards, settings that fail closed inside Lambda,
and scripts/grants.py refusing grants that would grant nothing or too much."""

from __future__ import annotations

import json
import os
import re

import pytest

from lib import settings as settings_module
from lib.api import access

ACCOUNT = "111122223333"
ADMIN = f"arn:aws:iam::{ACCOUNT}:user/admin"


@pytest.mark.parametrize(("arn", "principal"), [
    (f"arn:aws:sts::{ACCOUNT}:assumed-role/supervisors/bob", f"arn:aws:iam::{ACCOUNT}:role/supervisors"),
    (f"arn:aws:sts::{ACCOUNT}:assumed-role/ops/i-0abc/with/slashes", f"arn:aws:iam::{ACCOUNT}:role/ops"),
    (f"arn:aws-cn:sts::{ACCOUNT}:assumed-role/ops/s", f"arn:aws-cn:iam::{ACCOUNT}:role/ops"),
    (f"arn:aws:iam::{ACCOUNT}:user/team/alice", f"arn:aws:iam::{ACCOUNT}:user/team/alice"),
    (f"arn:aws:sts::{ACCOUNT}:federated-user/carol", f"arn:aws:sts::{ACCOUNT}:federated-user/carol"),
])
def test_principal_normalisation(arn, principal):
    assert access.normalise_principal(arn) == principal


def test_no_identity_or_not_an_arn_is_no_caller():
    assert access.caller({"requestContext": {"identity": {"userArn": None}}}) is None
    assert access.caller({"requestContext": {"identity": {"userArn": "alice"}}}) is None
    assert access.caller({}) is None


def test_grant_tenant_wildcards():
    grant = access.Grant("p", "Supervisor", frozenset({"acme/*", "/", "beta/"}))
    assert grant.allows_tenant("acme", "any") and grant.allows_tenant("acme", "")
    assert grant.allows_tenant("", "") and grant.allows_tenant("beta", "")
    assert not grant.allows_tenant("beta", "x") and not grant.allows_tenant("", "x")
    assert access.Grant("p", "Administrator", frozenset({"*"})).allows_tenant("anything", "at-all")


# ---------------------------------------------------------------- fail closed


@pytest.fixture
def lambda_env(environment):
    """Inside Lambda (not SAM local), with both security settings given; `lambda_env(NAME=...)` changes
    them for the test."""
    environment(AWS_LAMBDA_FUNCTION_NAME="ServicesFunction", AWS_SAM_LOCAL=None, PAGE_TOKEN_SECRET="x" * 32,
                ACCESS_MODE="iam")
    return environment


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("ACCESS_MODE", None, "ACCESS_MODE is not set"),
    ("ACCESS_MODE", "open", "ACCESS_MODE='open' is not one of"),
    ("PAGE_TOKEN_SECRET", None, "PAGE_TOKEN_SECRET_ARN is missing"),
    ("PAGE_TOKEN_SECRET", "short", "PAGE_TOKEN_SECRET is too short"),
])
def test_inside_lambda_a_missing_security_setting_stops_the_function(lambda_env, variable, value, message):
    lambda_env(**{variable: value})
    with pytest.raises(settings_module.ConfigurationError, match=re.escape(message)):
        settings_module.settings()


def test_inside_lambda_grants_always_come_from_the_table(lambda_env):
    lambda_env(AUTH="on", GRANTS_FILE="/tmp/anything.json")
    config = settings_module.settings()
    assert config.access_mode == "iam" and config.grants_file is None


def test_sam_local_is_not_lambda(lambda_env):
    lambda_env(AWS_SAM_LOCAL="true", ACCESS_MODE=None, PAGE_TOKEN_SECRET=None)
    config = settings_module.settings()
    assert config.access_mode == "off" and len(config.page_token_secret) >= 32


def test_outside_lambda_a_missing_secret_is_random_never_guessable(environment):
    environment(PAGE_TOKEN_SECRET=None)
    first = settings_module.settings().page_token_secret
    settings_module.settings.cache_clear()  # read again: another process
    second = settings_module.settings().page_token_secret
    assert first != second and len(first) >= 32 and os.environ["TABLE_NAME"] not in first


def test_auth_on_defaults_to_the_local_grants_file(environment):
    environment(AUTH="on", GRANTS_FILE=None)
    config = settings_module.settings()
    assert config.access_mode == "iam" and config.grants_file == "local-grants.json"


# ---------------------------------------------------------------- scripts/grants.py


def test_grants_script_refuses_what_would_grant_nothing_or_too_much(tmp_path, capsys):
    from scripts import grants

    path = ["--file", str(tmp_path / "g.json")]
    assert grants.main(["add", ADMIN, "--tenant", "acme/", *path]) == 2  # no role for a new grant
    assert grants.main(["add", ADMIN, "--role", "Administrator", "--tenant", "acme", *path]) == 2  # no "/"
    assert grants.main(["add", "alice", "--role", "Administrator", "--tenant", "acme/", *path]) == 2
    assert grants.main(["add", ADMIN, "--role", "Administrator", *path]) == 2  # no tenant
    assert not (tmp_path / "g.json").exists()
    assert grants.main(["add", ADMIN, "--role", "Administrator", "--tenant", "acme/*", *path]) == 0
    assert json.loads((tmp_path / "g.json").read_text())["grants"] == [
        {"principal": ADMIN, "role": "Administrator", "tenants": ["acme/*"]}]
