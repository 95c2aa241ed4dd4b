"""The local run's stand-in for the viewer's sign-in when deployed with `ViewerSignIn=true`
(AUTH=cognito): a person signs in with a user name and password, receives temporary AWS credentials
for their group's role, and the page signs its API calls with them, which the local server verifies
as AUTH=sigv4 does. So the page's whole Cognito path runs on a machine without AWS.

* User pool: moto's Cognito user pools (`cognito-idp`), served at /local/cognito-idp/ on the local
  server's own origin. The pool, its app client and its groups are created from template.yaml's
  resources (password policy, admin-only sign-up, the groups' names, precedence and roles) through
  the same JSON API an operator's `aws cognito-idp` calls use; people are added the way README says
  for the deployed pool, with `--endpoint-url http://127.0.0.1:3000/local/cognito-idp/`.
* Identity pool: the two calls the page makes, `GetId` and `GetCredentialsForIdentity`, served at
  /local/cognito-identity/. The ID token must be one the pool issued (signature checked against
  the pool's published keys, issuer, audience = the app client, not expired). The role is the one
  the template's role mapping gives (`Type: Token`, `AmbiguousRoleResolution: Deny`): the role of
  the person's group with the lowest precedence; no group with a role, or two roles at the lowest
  precedence, and there are no credentials. The credentials are new random keys with a session
  token, registered with local.signatures for their lifetime (LOCAL_COGNITO_CREDENTIALS_SECONDS,
  default 3600); the caller they stand for is the role's session,
  `arn:aws:sts::000000000000:assumed-role/<role>/CognitoIdentityCredentials`, whose grant is the
  role's (lib/api/access), as deployed.

What this does not reproduce is written in README ("The journey viewer", Sign-in locally).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import string
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from local import signatures, template
from local.events import LOCAL_REGION, PRINCIPAL_ACCOUNT

IDP_PATH = "/local/cognito-idp"
IDENTITY_PATH = "/local/cognito-identity"
SESSION_NAME = "CognitoIdentityCredentials"
JSON_TYPE = "application/x-amz-json-1.1"


@dataclass(frozen=True)
class SignIn:
    """What the page's config.json tells it (VIEWER_* variables of the viewer function)."""

    user_pool_id: str
    client_id: str
    identity_pool_id: str

    def environment(self) -> dict[str, str]:
        return {"VIEWER_SIGN_IN": "cognito", "VIEWER_USER_POOL_ID": self.user_pool_id,
                "VIEWER_CLIENT_ID": self.client_id, "VIEWER_IDENTITY_POOL_ID": self.identity_pool_id,
                "VIEWER_COGNITO_ENDPOINTS": f"{IDP_PATH}/ {IDENTITY_PATH}/"}


class CognitoError(Exception):
    def __init__(self, kind: str, message: str, status: int = 400):
        super().__init__(message)
        self.kind, self.status = kind, status


def role_arn(logical_id: str) -> str:
    """A template role's local ARN (deployed, its name is generated from the stack's)."""
    return f"arn:aws:iam::{PRINCIPAL_ACCOUNT}:role/{logical_id}"


def _reference(value: Any) -> str | None:
    """The logical id a `!GetAtt X.Arn` / `!Ref X` names."""
    if isinstance(value, dict):
        target = value.get("Fn::GetAtt") or value.get("Ref")
        if isinstance(target, list):
            return target[0]
        if isinstance(target, str):
            return target.split(".")[0]
    return None


class UserPools:
    """moto's cognito-idp, in this process, and calls to it as an AWS client makes them."""

    def __init__(self) -> None:
        from moto.server import create_backend_app
        from werkzeug.test import Client

        self.app = create_backend_app("cognito-idp")
        self._client = Client(self.app)

    def call(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = self._client.post("/", data=json.dumps(body), headers={
            "X-Amz-Target": f"AWSCognitoIdentityProviderService.{action}", "Content-Type": JSON_TYPE})
        data = json.loads(reply.get_data(as_text=True) or "{}")
        if reply.status_code >= 300:
            kind = str(data.get("__type", "Error")).rsplit("#", 1)[-1]
            raise CognitoError(kind, data.get("message") or data.get("Message") or kind, reply.status_code)
        return data

    def keys(self, pool_id: str) -> dict[str, Any]:
        reply = self._client.get(f"/{pool_id}/.well-known/jwks.json")
        return json.loads(reply.get_data(as_text=True))


def create_from_template(pools: UserPools, path: Path | str | None = None) -> tuple[SignIn, dict[str, str]]:
    """The template's user pool, app client and groups, created in the stand-in (the template's
    properties, as CloudFormation would pass them); and the identity pool's id."""
    resources = template.load(path)["Resources"]

    def one(kind: str) -> dict[str, Any]:
        found = [r["Properties"] for r in resources.values() if r["Type"] == kind]
        if len(found) != 1:
            raise SystemExit(f"AUTH=cognito needs one {kind} in the template (ViewerSignIn), found {len(found)}")
        return found[0]

    pool = one("AWS::Cognito::UserPool")
    settings = {key: pool[key] for key in ("Policies", "AdminCreateUserConfig", "AccountRecoverySetting") if key in pool}
    pool_id = pools.call("CreateUserPool", {"PoolName": "local-viewer", **settings})["UserPool"]["Id"]
    client = one("AWS::Cognito::UserPoolClient")
    client_settings = {key: client[key] for key in ("ExplicitAuthFlows", "PreventUserExistenceErrors", "AccessTokenValidity",
                                                    "IdTokenValidity", "RefreshTokenValidity", "TokenValidityUnits",
                                                    "EnableTokenRevocation") if key in client}
    client_id = pools.call("CreateUserPoolClient", {"UserPoolId": pool_id, "ClientName": client.get("ClientName", "viewer"),
                                                    "GenerateSecret": False, **client_settings})["UserPoolClient"]["ClientId"]
    roles = {}
    for resource in resources.values():
        if resource["Type"] != "AWS::Cognito::UserPoolGroup":
            continue
        group = resource["Properties"]
        arn = role_arn(_reference(group["RoleArn"])) if "RoleArn" in group else None
        optional = {"Precedence": group.get("Precedence"), "RoleArn": arn, "Description": group.get("Description")}
        pools.call("CreateGroup", {"UserPoolId": pool_id, "GroupName": group["GroupName"],
                                   **{key: value for key, value in optional.items() if value is not None}})
        roles[group["GroupName"]] = arn
    identity_pool_id = f"{LOCAL_REGION}:{uuid.uuid4()}"
    return SignIn(pool_id, client_id, identity_pool_id), roles


class IdentityPool:
    """The identity pool's GetId and GetCredentialsForIdentity (module doc), as a WSGI app."""

    def __init__(self, pools: UserPools, sign_in: SignIn, lifetime: int):
        self.pools, self.sign_in, self.lifetime = pools, sign_in, lifetime
        self.provider = f"cognito-idp.{LOCAL_REGION}.amazonaws.com/{sign_in.user_pool_id}"
        self.identities: dict[str, str] = {}  # identity id -> the user's sub
        self.lock = threading.Lock()
        self.issued = 0

    def __call__(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        target = request.headers.get("X-Amz-Target", "")
        try:
            if request.method != "POST":
                raise CognitoError("InvalidParameterException", "POST only")
            try:
                body = json.loads(request.get_data(as_text=True) or "{}")
            except ValueError:
                raise CognitoError("InvalidParameterException", "the body is not JSON") from None
            if target == "AWSCognitoIdentityService.GetId":
                reply = self.get_id(body)
            elif target == "AWSCognitoIdentityService.GetCredentialsForIdentity":
                reply = self.credentials(body)
            else:
                raise CognitoError("InvalidActionException", f"this stand-in answers GetId and GetCredentialsForIdentity, "
                                   f"not {target or 'a request without X-Amz-Target'}")
            response = Response(json.dumps(reply), content_type=JSON_TYPE)
        except CognitoError as error:
            response = Response(json.dumps({"__type": error.kind, "message": str(error)}), status=error.status,
                                content_type=JSON_TYPE)
        return response(environ, start_response)

    # -- the two calls

    def get_id(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("IdentityPoolId") != self.sign_in.identity_pool_id:
            raise CognitoError("ResourceNotFoundException", f"IdentityPool '{body.get('IdentityPoolId')}' not found.", 400)
        claims = self.verified(body.get("Logins"))
        identity = f"{LOCAL_REGION}:{uuid.uuid5(uuid.NAMESPACE_URL, self.provider + '/' + claims['sub'])}"
        with self.lock:
            self.identities[identity] = claims["sub"]
        return {"IdentityId": identity}

    def credentials(self, body: dict[str, Any]) -> dict[str, Any]:
        identity = body.get("IdentityId", "")
        with self.lock:
            sub = self.identities.get(identity)
        if sub is None:
            raise CognitoError("ResourceNotFoundException", f"Identity '{identity}' not found.")
        claims = self.verified(body.get("Logins"))
        if claims["sub"] != sub:
            raise CognitoError("NotAuthorizedException", "Invalid login token. The token is not for this identity.")
        role = self.role(claims.get("cognito:groups") or [])
        principal = f"arn:aws:sts::{PRINCIPAL_ACCOUNT}:assumed-role/{role.rsplit('/', 1)[-1]}/{SESSION_NAME}"
        expires = int(time.time()) + self.lifetime
        key = "ASIA" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16))
        secret = secrets.token_urlsafe(30)[:40]
        token = base64.b64encode(secrets.token_bytes(96)).decode("ascii")
        signatures.register_session(signatures.SessionCredentials(
            key, secret, token, principal, expires,
            identity={"cognitoIdentityPoolId": self.sign_in.identity_pool_id, "cognitoIdentityId": identity,
                      "cognitoAuthenticationType": "authenticated",
                      "cognitoAuthenticationProvider": f"{self.provider},{self.provider}:CognitoSignIn:{sub}"}))
        with self.lock:
            self.issued += 1
        print(f"cognito: credentials {key} for {claims.get('cognito:username')} as {principal}, "
              f"until {time.strftime('%H:%M:%S', time.gmtime(expires))} UTC", flush=True)
        return {"IdentityId": identity, "Credentials": {"AccessKeyId": key, "SecretKey": secret, "SessionToken": token,
                                                         "Expiration": expires}}

    # -- checks

    def verified(self, logins: Any) -> dict[str, Any]:
        """The claims of the ID token in `Logins`, checked as the identity pool checks it."""
        from joserfc import jwt
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        if not isinstance(logins, dict) or set(logins) != {self.provider}:
            raise CognitoError("NotAuthorizedException", f"Logins must hold one token, from {self.provider}")
        try:
            token = jwt.decode(logins[self.provider], KeySet.import_key_set(self.pools.keys(self.sign_in.user_pool_id)))
        except (JoseError, ValueError) as error:
            raise CognitoError("NotAuthorizedException", f"Invalid login token. {error}") from None
        claims = token.claims
        if claims.get("iss") != f"https://{self.provider}" or claims.get("aud") != self.sign_in.client_id:
            raise CognitoError("NotAuthorizedException", "Invalid login token. Issuer or audience do not match.")
        if claims.get("token_use") != "id":
            raise CognitoError("NotAuthorizedException", "Invalid login token. Not an ID token.")
        if int(claims.get("exp", 0)) <= time.time():
            raise CognitoError("NotAuthorizedException", "Invalid login token. Token expired.")
        return claims

    def role(self, groups: list[str]) -> str:
        """The template's role mapping (Token, AmbiguousRoleResolution Deny): the role of the group
        with the lowest precedence; none, or a tie between two roles, gives no credentials."""
        ranked = []
        for name in groups:
            group = self.pools.call("GetGroup", {"UserPoolId": self.sign_in.user_pool_id, "GroupName": name})["Group"]
            if group.get("RoleArn"):
                ranked.append((group.get("Precedence") if group.get("Precedence") is not None else 2**31, group["RoleArn"]))
        if not ranked:
            raise CognitoError("NotAuthorizedException", "No role for this user: the user is in no group that has a role, "
                                                         "and the identity pool's role mapping denies the rest.")
        best = min(rank for rank, _ in ranked)
        roles = {arn for rank, arn in ranked if rank == best}
        if len(roles) > 1:
            raise CognitoError("NotAuthorizedException", "Ambiguous role: the user's groups of the same precedence have "
                                                         "different roles, and the role mapping denies ambiguous roles.")
        return roles.pop()


def start(path: Path | str | None = None) -> tuple[SignIn, dict[str, Any], IdentityPool]:
    """Create the stand-in: what the page needs to know, the WSGI apps to serve at IDP_PATH and
    IDENTITY_PATH, and the identity pool (which counts the credentials it issued)."""
    pools = UserPools()
    sign_in, _roles = create_from_template(pools, path)
    lifetime = int(os.environ.get("LOCAL_COGNITO_CREDENTIALS_SECONDS") or 3600)
    identities = IdentityPool(pools, sign_in, lifetime)
    return sign_in, {IDP_PATH: pools.app, IDENTITY_PATH: identities}, identities
