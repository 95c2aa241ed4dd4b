"""The paging key read at run time from Secrets Manager (moto), through lambda_handler: tokens
signed with the current version, still accepted with the previous one for a day after a rotation
(no redeploy), fetched once per cache period, fetched again after a SnapStart restore and when a
token signed with a newer key arrives; and never taken from the environment inside Lambda."""

from __future__ import annotations

import base64
import json
import re

import boto3
import pytest

from lib import paging, paging_keys
from lib import settings as settings_module
from lib.api import entry
from lib.store import secrets as stored_secrets

OLD, NEW, NEWER = "old-paging-key-0123456789", "new-paging-key-0123456789", "newer-paging-key-012345678"


class SecretsCalls:
    """GetSecretValue calls of the paging key source's client, by stage."""

    def __init__(self):
        self.stages: list[str] = []

    def __call__(self, params, model, **_):
        if model.name == "GetSecretValue":
            self.stages.append(params.get("VersionStage"))


@pytest.fixture
def secret(table, monkeypatch):
    """A Secrets Manager secret holding the key, named by PAGE_TOKEN_SECRET_ARN (no PAGE_TOKEN_SECRET)."""
    client = boto3.client("secretsmanager")
    arn = client.create_secret(Name="paging", SecretString=json.dumps({"secret": OLD}))["ARN"]
    monkeypatch.setenv("PAGE_TOKEN_SECRET_ARN", arn)
    monkeypatch.delenv("PAGE_TOKEN_SECRET")
    settings_module.settings.cache_clear()
    calls = SecretsCalls()
    stored_secrets.reset_client().meta.events.register("provide-client-params.secrets-manager.*", calls)
    yield {"client": client, "arn": arn, "calls": calls}
    settings_module.settings.cache_clear()


def rotate(secret, key: str) -> None:
    """What README's rotation does: a new version becomes AWSCURRENT, the old one AWSPREVIOUS."""
    secret["client"].put_secret_value(SecretId=secret["arn"], SecretString=json.dumps({"secret": key}))


def first_page(api, customer: str = "c") -> str:
    """The page token of the first page of a customer's three services."""
    reply = api.get(f"/customers/{customer}/services?limit=1")
    assert reply.status == 200, reply.text
    return re.search(r"page_token=([^&>]+)", reply.headers["Link"]).group(1)


def signed_with(token: str, key: str) -> bool:
    body, signature = token.split(".", 1)
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    return signature == paging._sign(key.encode(), payload)


def resign(token: str, key: str) -> str:
    """The same token signed with another key (what an environment holding that key would issue)."""
    body = token.split(".", 1)[0]
    return f"{body}.{paging._sign(key.encode(), base64.urlsafe_b64decode(body + '=' * (-len(body) % 4)))}"


def second_page(api, token: str, customer: str = "c"):
    return api.get(f"/customers/{customer}/services?limit=1&page_token={token}")


@pytest.fixture
def services(api):
    for _ in range(3):
        api.start(customer_id="c")


def test_tokens_are_signed_with_the_secret_read_from_secrets_manager(api, secret, services):
    token = first_page(api)
    assert signed_with(token, OLD)
    assert second_page(api, token).status == 200
    assert second_page(api, resign(token, "a-key-nobody-has-0123456")).status == 400


def test_the_key_is_fetched_once_per_cache_period_with_both_stages(api, secret, services):
    for _ in range(3):
        assert second_page(api, first_page(api)).status == 200
    assert secret["calls"].stages == ["AWSCURRENT", "AWSPREVIOUS"]  # one fetch for six token uses


def test_a_rotation_needs_no_redeploy_and_old_tokens_work_during_the_grace_period(api, secret, services, frozen):
    before = first_page(api)
    rotate(secret, NEW)
    paging_keys.source().forget()  # what MAX_AGE_SECONDS does in time: the cached keys expire
    after = first_page(api)
    assert signed_with(after, NEW) and signed_with(before, OLD)
    assert second_page(api, after).status == 200
    assert second_page(api, before).status == 200  # a client that started paging before the rotation
    frozen.advance(paging_keys.GRACE_SECONDS + 60)
    paging_keys.source().forget()
    assert second_page(api, before).status == 400  # the grace period is over
    assert second_page(api, after).status == 200


def test_only_the_previous_key_is_honoured_not_every_older_one(api, secret, services):
    oldest = first_page(api)
    rotate(secret, NEW)
    rotate(secret, NEWER)
    paging_keys.source().forget()
    assert second_page(api, oldest).status == 400
    assert second_page(api, resign(oldest, NEW)).status == 200
    assert signed_with(first_page(api), NEWER)


def test_a_token_from_an_environment_that_saw_the_rotation_first_is_accepted(api, secret, services, monkeypatch):
    token = first_page(api)  # this environment caches the old key
    rotate(secret, NEW)
    from_elsewhere = resign(token, NEW)  # another environment's cache expired sooner
    monkeypatch.setattr(paging_keys, "REFRESH_SECONDS", 0)
    assert second_page(api, from_elsewhere).status == 200
    assert signed_with(first_page(api), NEW)  # and this environment signs with the new key from now on


def test_refusing_bad_tokens_costs_at_most_one_fetch_per_refresh_period(api, secret, services, monkeypatch):
    token = first_page(api)
    monkeypatch.setattr(paging_keys, "REFRESH_SECONDS", 3600)
    fetched = len(secret["calls"].stages)
    for attempt in range(5):
        assert second_page(api, resign(token, f"forged-key-{attempt}-0123456789")).status == 400
    assert len(secret["calls"].stages) == fetched  # fetched less than an hour ago: no new fetch


def test_a_snapstart_restore_fetches_the_key_again(api, secret, services):
    first_page(api)
    rotate(secret, NEW)
    assert signed_with(first_page(api), OLD)  # cached
    entry.after_restore()
    assert signed_with(first_page(api), NEW)


def test_a_secret_that_was_never_rotated_has_no_previous_key(secret):
    keys = paging_keys.source().keys()
    assert keys.signing == OLD.encode() and keys.verifying == (OLD.encode(),)


def test_a_plain_string_secret_is_the_key_itself(secret):
    secret["client"].put_secret_value(SecretId=secret["arn"], SecretString=NEW)
    assert paging_keys.source().keys(force=True).signing == NEW.encode()


def test_a_secret_without_a_usable_key_is_a_500_that_reveals_nothing(api, secret, services):
    rotate(secret, "short")
    reply = api.get("/customers/c/services?limit=1")
    assert reply.status == 500 and reply.json["exception"] == "InternalException"
    assert "short" not in reply.text and "secret" not in reply.json["message"]


# ---------------------------------------------------------------- the environment


@pytest.fixture
def in_lambda(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "ServicesFunction")
    monkeypatch.delenv("AWS_SAM_LOCAL", raising=False)
    monkeypatch.setenv("ACCESS_MODE", "iam")
    monkeypatch.delenv("PAGE_TOKEN_SECRET", raising=False)
    settings_module.settings.cache_clear()
    yield monkeypatch
    settings_module.settings.cache_clear()


def test_inside_lambda_the_key_comes_from_the_secret_named_by_its_arn(in_lambda):
    in_lambda.setenv("PAGE_TOKEN_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:paging-AbCdEf")
    in_lambda.setenv("PAGE_TOKEN_SECRET", "")  # what the template declares (for sam local only)
    config = settings_module.settings()
    assert config.page_token_secret_arn.endswith(":secret:paging-AbCdEf")
    assert isinstance(paging_keys.source(), paging_keys.SecretsManagerKeys)


def test_inside_lambda_the_key_itself_beside_its_arn_is_refused(in_lambda):
    in_lambda.setenv("PAGE_TOKEN_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:paging-AbCdEf")
    in_lambda.setenv("PAGE_TOKEN_SECRET", "x" * 32)
    with pytest.raises(settings_module.ConfigurationError, match="must not be in the environment"):
        settings_module.settings()


def test_outside_lambda_page_token_secret_is_the_key(monkeypatch):
    monkeypatch.delenv("PAGE_TOKEN_SECRET_ARN", raising=False)
    monkeypatch.setenv("PAGE_TOKEN_SECRET", "local-key-0123456789")
    settings_module.settings.cache_clear()
    try:
        keys = paging_keys.source().keys()
        assert keys.signing == b"local-key-0123456789" and keys.verifying == (b"local-key-0123456789",)
    finally:
        settings_module.settings.cache_clear()
