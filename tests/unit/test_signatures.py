"""The local SigV4 check (local/signatures.py) with temporary credentials, as AUTH=cognito issues
them: accepted with their session token until they end, refused otherwise (no server, no moto)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from local import signatures
from local.events import HttpRequest

SESSION = signatures.SessionCredentials(
    "ASIALOCALTESTSESSION", "a-secret-for-this-test-only-0000000000000", "the-session-token",
    "arn:aws:sts::000000000000:assumed-role/ViewerSupervisorRole/CognitoIdentityCredentials",
    expires=int(time.time()) + 600, identity={"cognitoIdentityId": "us-east-1:someone"})


def signed_request(key: str, secret: str, token: str | None, sent_token: str | None = None) -> HttpRequest:
    url = "http://127.0.0.1:3000/genesys/1/cs/customers/c%201/services?limit=5"
    request = AWSRequest(method="GET", url=url, headers={"ContactCenterId": "acme"})
    SigV4Auth(Credentials(key, secret, token), "execute-api", "us-east-1").add_auth(request)
    headers = dict(request.headers)
    if sent_token is not None:
        headers["X-Amz-Security-Token"] = sent_token
    return HttpRequest.from_target("GET", "/genesys/1/cs/customers/c%201/services?limit=5", list(headers.items()))


@pytest.fixture(autouse=True)
def registered():
    signatures.register_session(SESSION)
    yield
    signatures._sessions.pop(SESSION.access_key, None)


def test_temporary_credentials_sign_as_their_role_session_with_its_cognito_identity():
    caller = signatures.verify(signed_request(SESSION.access_key, SESSION.secret_key, SESSION.session_token),
                               "127.0.0.1:3000")
    assert caller.principal == SESSION.principal and caller.access_key == SESSION.access_key
    assert caller.identity == {"cognitoIdentityId": "us-east-1:someone"}


def test_another_session_token_is_refused():
    request = signed_request(SESSION.access_key, SESSION.secret_key, SESSION.session_token, sent_token="another-token")
    with pytest.raises(signatures.SignatureRejected, match="X-Amz-Security-Token"):
        signatures.verify(request, "127.0.0.1:3000")
    with pytest.raises(signatures.SignatureRejected, match="X-Amz-Security-Token"):  # no token at all
        signatures.verify(signed_request(SESSION.access_key, SESSION.secret_key, None), "127.0.0.1:3000")


def test_credentials_past_their_end_are_refused():
    ending = signatures.SessionCredentials("ASIALOCALTESTENDING1", "another-secret-for-this-test-only-00000000",
                                           "its-token", SESSION.principal, expires=int(time.time()) + 60)
    signatures.register_session(ending)
    try:
        request = signed_request(ending.access_key, ending.secret_key, ending.session_token)
        assert signatures.verify(request, "127.0.0.1:3000").principal == SESSION.principal
        after_the_end = datetime.fromtimestamp(ending.expires + 1, UTC)  # the signature's date is still fine then
        with pytest.raises(signatures.SignatureRejected, match="security token included in the request is expired"):
            signatures.verify(request, "127.0.0.1:3000", now=after_the_end)
    finally:
        signatures._sessions.pop(ending.access_key, None)


def test_a_wrong_secret_and_an_unknown_key_are_refused():
    with pytest.raises(signatures.SignatureRejected, match="signature"):
        signatures.verify(signed_request(SESSION.access_key, "not-the-secret", SESSION.session_token), "127.0.0.1:3000")
    signatures._sessions.pop(SESSION.access_key)
    with pytest.raises(signatures.SignatureRejected, match="unknown access key"):
        signatures.verify(signed_request(SESSION.access_key, SESSION.secret_key, SESSION.session_token), "127.0.0.1:3000")
