"""The local run's SigV4-verifying mode (AUTH=sigv4): API Gateway's IAM authentication, played with
a fixed set of test credentials, so that a client's real Signature Version 4 signing (the journey
viewer's, any SDK's) is checked end to end on a machine without AWS.

A request to a route that requires IAM must carry `Authorization: AWS4-HMAC-SHA256 Credential=<key>/
<date>/us-east-1/execute-api/aws4_request, SignedHeaders=…, Signature=…` and `X-Amz-Date`, signed
with one of TEST_CREDENTIALS; the signature is recomputed with botocore's SigV4 signer (the one
every AWS SDK for Python uses) over the request as received. A missing, malformed, expired (more
than 5 minutes off) or wrong signature, or an unknown key, is refused as API Gateway refuses it, in
the contract's shape: 401 UnauthorizedException. A valid one becomes the event's IAM identity (the
key's principal ARN), which the functions then check against their grants (GRANTS_FILE), as deployed.

AUTH=cognito (local.cognito) adds temporary credentials: registered when issued, each with its session
token (X-Amz-Security-Token must carry it) and its end (afterwards: 401, the token is expired).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

from local.events import LOCAL_REGION, PRINCIPAL_ACCOUNT, HttpRequest

SERVICE = "execute-api"
MAX_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class TestCredentials:
    access_key: str
    secret_key: str
    principal: str  # the IAM ARN the key belongs to, as API Gateway puts it in requestContext.identity.userArn


# Fixed, public, good for nothing but this local mode (README, "The journey viewer"). Each principal
# still needs a grant in GRANTS_FILE, as a deployed caller needs one in the table.
TEST_CREDENTIALS = {c.access_key: c for c in (
    TestCredentials("AKIDLOCALADMIN000001", "local-administrator-secret-key-0000000001",
                    f"arn:aws:iam::{PRINCIPAL_ACCOUNT}:user/local-administrator"),
    TestCredentials("AKIDLOCALSUPERVISOR1", "local-supervisor-secret-key-00000000001",
                    f"arn:aws:iam::{PRINCIPAL_ACCOUNT}:user/local-supervisor"),
    TestCredentials("AKIDLOCALNOGRANT0001", "local-no-grant-secret-key-000000000001",
                    f"arn:aws:iam::{PRINCIPAL_ACCOUNT}:user/local-no-grant"),
)}

@dataclass(frozen=True)
class SessionCredentials:
    """Temporary credentials with a session token, as STS gives them (AUTH=cognito: local.cognito
    issues them for a signed-in person's role); valid until `expires` (seconds since the epoch)."""

    access_key: str
    secret_key: str
    session_token: str
    principal: str  # the role session's ARN (arn:aws:sts::…:assumed-role/<role>/<session>)
    expires: int
    identity: dict[str, str] = field(default_factory=dict)  # requestContext.identity fields of such a caller


_sessions: dict[str, SessionCredentials] = {}


def register_session(credentials: SessionCredentials) -> None:
    """Accept signatures made with these temporary credentials (until they expire)."""
    now = time.time()
    for key in [k for k, c in _sessions.items() if c.expires < now]:  # forget the expired ones
        _sessions.pop(key, None)
    _sessions[credentials.access_key] = credentials


_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)"
    r"/aws4_request\s*,\s*SignedHeaders=(?P<signed>[a-z0-9;._-]+)\s*,\s*Signature=(?P<signature>[0-9a-f]{64})$")


class SignatureRejected(Exception):
    """The request is not authenticated: 401 with this message."""


@dataclass(frozen=True)
class Caller:
    principal: str
    access_key: str
    identity: dict[str, str] = field(default_factory=dict)  # more requestContext.identity fields (Cognito)


def verify(request: HttpRequest, host: str, now: datetime | None = None) -> Caller:
    """The caller of a SigV4-signed request, or SignatureRejected saying what is wrong with it."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers: dict[str, str] = {}
    for key, value in request.headers:
        headers.setdefault(key.lower(), value)
    authorization = headers.get("authorization")
    if not authorization:
        raise SignatureRejected("missing credentials: sign the request with AWS Signature Version 4")
    match = _AUTHORIZATION.match(authorization.strip())
    if match is None:
        raise SignatureRejected("the Authorization header is not an AWS4-HMAC-SHA256 signature")
    credentials: TestCredentials | SessionCredentials | None = TEST_CREDENTIALS.get(match["key"]) or _sessions.get(match["key"])
    if credentials is None:
        raise SignatureRejected("the security token included in the request is invalid (unknown access key)")
    if isinstance(credentials, SessionCredentials):
        if not hmac.compare_digest(headers.get("x-amz-security-token", ""), credentials.session_token):
            raise SignatureRejected("the security token included in the request is invalid (X-Amz-Security-Token)")
        if (now or datetime.now(UTC)).timestamp() >= credentials.expires:
            raise SignatureRejected("the security token included in the request is expired")
    if match["region"] != LOCAL_REGION or match["service"] != SERVICE:
        raise SignatureRejected(f"credential scope must be {LOCAL_REGION}/{SERVICE}, "
                                f"not {match['region']}/{match['service']}")
    amz_date = headers.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise SignatureRejected("X-Amz-Date is missing or not YYYYMMDDTHHMMSSZ") from None
    if amz_date[:8] != match["date"]:
        raise SignatureRejected("the credential scope's date is not the date of X-Amz-Date")
    if abs((now or datetime.now(UTC)) - signed_at) > MAX_SKEW:
        raise SignatureRejected("signature expired: X-Amz-Date is more than 5 minutes from the server's time")
    signed = match["signed"].split(";")
    if "host" not in signed:
        raise SignatureRejected("the host header must be signed")
    body = request.body or b""
    declared_hash = headers.get("x-amz-content-sha256")
    if declared_hash is not None and declared_hash != hashlib.sha256(body).hexdigest():
        raise SignatureRejected("X-Amz-Content-Sha256 is not the hash of the body")
    signed_headers = {name: headers.get(name, "") for name in signed}
    signed_headers["host"] = headers.get("host") or host
    aws_request = AWSRequest(method=request.method, url=f"http://{signed_headers['host']}{request.raw_path}",
                             headers=signed_headers, data=body,
                             params=parse_qsl(request.query_string, keep_blank_values=True))
    aws_request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(credentials.access_key, credentials.secret_key), SERVICE, LOCAL_REGION)
    if signer.signed_headers(signer.headers_to_sign(aws_request)) != match["signed"]:
        raise SignatureRejected("SignedHeaders names headers this server does not sign (or not in order)")
    expected = signer.signature(signer.string_to_sign(aws_request, signer.canonical_request(aws_request)), aws_request)
    if not hmac.compare_digest(expected, match["signature"]):
        raise SignatureRejected("the request signature we calculated does not match the signature you provided")
    return Caller(credentials.principal, credentials.access_key, getattr(credentials, "identity", {}))
