"""Who may call (contract §1 "Access when deployed", §2 401 / 403): the caller's role and tenant grant,
checked in the entry point before the resolver runs, so a refused request touches no data.

Deployed, API Gateway has already authenticated the caller with IAM (SigV4) and checked the role's
managed policy (Supervisor: GET only); this check is the second line of defence for the role and the
only one for tenants, which IAM cannot see (they are request headers).

* The caller is `requestContext.identity.userArn`; an assumed-role session
  (`arn:aws:sts::ACCT:assumed-role/NAME/SESSION`) is its role, `arn:aws:iam::ACCT:role/NAME`.
* Its grant (lib.store.grants) holds its role, "Administrator" | "Supervisor", and `tenants`, a list
  of "<ContactCenterId>/<GroupId>" (an absent header is the empty string; "<ContactCenterId>/*" is
  every group of that tenant, "*" every tenant). Locally (AUTH=on) the same records come from a
  JSON file (see :class:`FileGrants`). scripts/grants.py manages both.
* Grants from the table are cached per execution environment (60 s; unknown principals 10 s), so a
  warm function answers without an extra round trip; a revoked grant stops working within that time.
  The local file is read at every request instead: an edit applies to the very next one.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from lib.errors import Forbidden, Unauthorized
from lib.settings import settings

ADMINISTRATOR, SUPERVISOR = "Administrator", "Supervisor"
ROLES = (ADMINISTRATOR, SUPERVISOR)
SUPERVISOR_METHODS = frozenset({"GET"})
TENANT_HEADER, GROUP_HEADER = "contactcenterid", "groupid"
ALL_TENANTS = "*"
_CACHE_LIMIT = 4096
# The local run (AUTH=on) names the caller with this header (local.events turns it into the identity).
LOCAL_PRINCIPAL_HEADER = "X-CS-Principal"
DEPLOYED_MISSING_IDENTITY = "missing or invalid credentials: sign the request with AWS Signature Version 4"
LOCAL_MISSING_IDENTITY = (f"no caller: the local run enforces access (AUTH=on); send the header "
                          f"{LOCAL_PRINCIPAL_HEADER}: <name> (the caller is arn:aws:iam::000000000000:user/<name>)")

_ASSUMED_ROLE = re.compile(r"^arn:(?P<partition>[\w-]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/.+$")
_ROLE_WITH_PATH = re.compile(r"^arn:(?P<partition>[\w-]+):iam::(?P<account>\d{12}):role/(?:.+/)?(?P<role>[^/]+)$")
_VALUE = r"[A-Za-z0-9._-]{1,64}"
_TENANT_ENTRY = re.compile(rf"^(\*|(?:{_VALUE})?/(?:{_VALUE}|\*)?)$")


@lru_cache(maxsize=1024)  # a function's callers are few: their ARNs are matched once
def normalise_principal(arn: str) -> str:
    """The principal a grant is keyed by: a role without its path, and an assumed-role session as its
    role (session ARNs do not carry the role's path); any other ARN is itself."""
    for pattern in (_ASSUMED_ROLE, _ROLE_WITH_PATH):
        match = pattern.match(arn)
        if match:
            return f"arn:{match['partition']}:iam::{match['account']}:role/{match['role']}"
    return arn


def check_tenant_entry(entry: str) -> str:
    """A tenant as a grant names it: "<ContactCenterId>/<GroupId>" (either may be empty), "<ContactCenterId>/*"
    or "*"; ValueError otherwise."""
    if not _TENANT_ENTRY.match(entry):
        raise ValueError(f"{entry!r} is not <ContactCenterId>/<GroupId> (either may be empty; "
                         f"<ContactCenterId>/* or * for wildcards)")
    return entry


def tenant_entry(contact_center: str | None, group: str | None) -> str:
    """How a (tenant, group) pair is written in a grant: "<ContactCenterId>/<GroupId>"."""
    return f"{contact_center or ''}/{group or ''}"


@dataclass(frozen=True)
class Grant:
    """A principal's role and the (tenant, group) pairs it may use."""

    principal: str
    role: str
    tenants: frozenset[str]

    def allows_method(self, method: str) -> bool:
        return self.role == ADMINISTRATOR or (self.role == SUPERVISOR and method.upper() in SUPERVISOR_METHODS)

    def allows_tenant(self, contact_center: str, group: str) -> bool:
        return (ALL_TENANTS in self.tenants or tenant_entry(contact_center, group) in self.tenants
                or f"{contact_center}/*" in self.tenants)

    @classmethod
    def parse(cls, principal: str, record: dict[str, Any]) -> Grant | None:
        """A grant from its stored form, or None when the record is not a valid grant."""
        role, tenants = record.get("role"), record.get("tenants")
        if role not in ROLES or not isinstance(tenants, list | tuple | set | frozenset):
            return None
        if not all(isinstance(t, str) and (t == ALL_TENANTS or "/" in t) for t in tenants):
            return None
        return cls(principal, role, frozenset(tenants))


# ---------------------------------------------------------------- where grants come from


class TableGrants:
    """Grants stored in the project's table (one GetItem per principal, eventually consistent)."""

    def lookup(self, principal: str) -> Grant | None:
        from lib.store import grants  # the one DynamoDB client of the function

        record = grants.lookup(principal)
        return Grant.parse(principal, record) if record is not None else None


class GrantsFileError(Forbidden):
    """The local grants file cannot be used: missing, unreadable, not JSON, or not grants. `make run`
    with AUTH=on stops at start with this reason; if the file breaks while it runs, every request
    is refused with it (403, fail closed) until the file is fixed."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"the grants file {os.path.abspath(path)} {reason}")
        self.reason = reason


def parse_grants_file(raw: bytes, path: str) -> dict[str, Grant]:
    """The grants a grants file holds, by principal; GrantsFileError naming the first problem."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise GrantsFileError(path, "is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise GrantsFileError(path, f"is not valid JSON (line {error.lineno}, column {error.colno}: "
                                    f"{error.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("grants"), list):
        raise GrantsFileError(path, 'is not a JSON object {"grants": [...]}')
    grants: dict[str, Grant] = {}
    for index, record in enumerate(data["grants"]):
        where = f"grants[{index}]"
        if not isinstance(record, dict):
            raise GrantsFileError(path, f"has {where} that is not an object")
        principal = record.get("principal")
        if not isinstance(principal, str) or not principal.strip():
            raise GrantsFileError(path, f"has {where} without a principal (an IAM ARN)")
        if record.get("role") not in ROLES:
            raise GrantsFileError(path, f"has {where} ({principal}) whose role is {json.dumps(record.get('role'))}, "
                                        f"not {' or '.join(ROLES)}")
        grant = Grant.parse(normalise_principal(principal), record)
        if grant is None:
            raise GrantsFileError(path, f'has {where} ({principal}) whose tenants are not a list of "<ContactCenterId>/'
                                        f'<GroupId>", "<ContactCenterId>/*" or "*"')
        if grant.principal in grants:
            raise GrantsFileError(path, f"has {where} for {principal}, which an earlier grant names already")
        grants[grant.principal] = grant
    return grants


class FileGrants:
    """Grants from a JSON file (the local run with AUTH=on), read at every request so that an edit
    applies to the very next one (the file is small and local: no cache, no clock-tick blind spot);
    parsed again only when its bytes changed:

        {"grants": [{"principal": "arn:aws:iam::000000000000:user/alice",
                     "role": "Administrator", "tenants": ["acme/", "acme/sales", "beta/*"]}]}

    A missing or malformed file raises GrantsFileError (403 for the request) with the reason."""

    def __init__(self, path: str):
        self.path = path
        self._raw: bytes | None = None
        self._grants: dict[str, Grant] = {}

    def load(self) -> dict[str, Grant]:
        """Every grant of the file, by principal, as the file is now."""
        try:
            raw = Path(self.path).read_bytes()
        except FileNotFoundError:
            raise GrantsFileError(self.path, "does not exist (GRANTS_FILE; write it with scripts/grants.py "
                                             "--file, README: Access)") from None
        except OSError as error:
            raise GrantsFileError(self.path, f"cannot be read ({error.strerror})") from None
        if raw != self._raw:
            self._grants, self._raw = parse_grants_file(raw, self.path), raw
        return self._grants

    def lookup(self, principal: str) -> Grant | None:
        return self.load().get(principal)

    get = lookup  # what the request path calls on the grant source (GrantCache.get for the table)

    def clear(self) -> None:
        self._raw, self._grants = None, {}


class GrantCache:
    """Grants of recent callers, per execution environment: positive answers for `ttl` seconds,
    unknown principals for `negative_ttl` (so a new grant is seen soon, and a flood of unknown
    callers cannot turn into a flood of reads)."""

    def __init__(self, source: Any, ttl: float, negative_ttl: float):
        self.source, self.ttl, self.negative_ttl = source, ttl, negative_ttl
        self._entries: dict[str, tuple[Grant | None, float]] = {}
        self._lock = threading.Lock()

    def get(self, principal: str) -> Grant | None:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(principal)
        if entry is not None and entry[1] > now:
            return entry[0]
        grant: Grant | None = self.source.lookup(principal)
        with self._lock:
            if len(self._entries) >= _CACHE_LIMIT:
                self._entries.clear()
            self._entries[principal] = (grant, now + (self.ttl if grant else self.negative_ttl))
        return grant

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@lru_cache(maxsize=1)
def grants() -> GrantCache | FileGrants:
    """Where this process finds grants: the table's, behind a cache; or the local grants file,
    never cached (an edit applies to the next request)."""
    config = settings()
    if config.grants_file:
        return FileGrants(config.grants_file)
    return GrantCache(TableGrants(), config.grant_cache_seconds, config.grant_negative_cache_seconds)


def reset() -> None:
    """Forget cached grants and the grant source (tests; SnapStart restore)."""
    if grants.cache_info().currsize:
        grants().clear()
    grants.cache_clear()


# ---------------------------------------------------------------- the decision


def caller(event: dict[str, Any]) -> str | None:
    """The authenticated caller of an API Gateway event, normalised; None when there is none."""
    identity = (event.get("requestContext") or {}).get("identity") or {}
    arn = identity.get("userArn")
    return normalise_principal(arn) if isinstance(arn, str) and arn.startswith("arn:") else None


def tenancy(event: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(ContactCenterId values, GroupId values) of a request, every value it carries for each
    whatever the header's case or repetition (the check must cover the value the resolver will use,
    whichever that is); an absent header is {""}. One pass over the headers."""
    found: dict[str, set[str]] = {TENANT_HEADER: set(), GROUP_HEADER: set()}
    for key, value in (event.get("headers") or {}).items():
        values = found.get(key.lower())
        if values is not None and value is not None:
            values.add(value)
    for key, many in (event.get("multiValueHeaders") or {}).items():
        values = found.get(key.lower())
        if values is not None:
            values.update(v for v in many or () if v is not None)
    return found[TENANT_HEADER] or {""}, found[GROUP_HEADER] or {""}


@dataclass(frozen=True)
class Decision:
    """An allowed request: who called, with which role."""

    principal: str
    role: str


_UNKNOWN: Any = object()


def authorize(event: dict[str, Any], principal: str | None = _UNKNOWN) -> Decision | None:
    """Allow the request or raise Unauthorized (401) / Forbidden (403). None when access control
    is off (the local run by default). `principal`: the event's :func:`caller`, when known already."""
    if settings().access_mode == "off":
        return None
    if principal is _UNKNOWN:
        principal = caller(event)
    if principal is None:
        # the local enforcing mode (AUTH=on) names callers with a header; AUTH=sigv4 and deployed: a signature
        raise Unauthorized(LOCAL_MISSING_IDENTITY if settings().caller_header else DEPLOYED_MISSING_IDENTITY)
    grant = grants().get(principal)
    if grant is None:
        raise Forbidden(f"{principal} has no access grant")
    method = str(event.get("httpMethod") or "").upper()
    if not grant.allows_method(method):
        raise Forbidden(f"role {grant.role} may not call {method}; it may call {', '.join(sorted(SUPERVISOR_METHODS))}")
    centers, groups = tenancy(event)
    if len(centers) == 1 and len(groups) == 1 and grant.allows_tenant(next(iter(centers)), next(iter(groups))):
        return Decision(principal, grant.role)  # one tenant and group, granted: the usual request
    refused = sorted(tenant_entry(c, g) for c in centers for g in groups if not grant.allows_tenant(c, g))
    if refused:
        raise Forbidden(f"ContactCenterId/GroupId {_describe(refused)} not granted to {principal}")
    return Decision(principal, grant.role)


def _describe(entries: list[str]) -> str:
    # Header values are not validated yet (that is the resolver's job): quote them, shortened.
    shown = [entry if len(entry) <= 130 else entry[:127] + "..." for entry in entries[:4]]
    more = f" (and {len(entries) - 4} more)" if len(entries) > 4 else ""
    return ", ".join(json.dumps(entry) for entry in shown) + more + (" is" if len(entries) == 1 else " are")
