"""The keys that sign and verify paging tokens (lib.paging), and where they come from.

Deployed, the key is a Secrets Manager secret (`PAGE_TOKEN_SECRET_ARN`; template.yaml creates it),
read at run time and never put in the environment, where anyone allowed
`lambda:GetFunctionConfiguration` would read it. The store reads it (lib.store.secrets; this module
is shared ground and imports no floor: lib.api.entry hands it the reader), Powertools Parameters'
provider cache keeps it per execution environment for MAX_AGE_SECONDS; after a SnapStart restore the
cache is dropped (lib.api.entry.after_restore), so a snapshot taken before a rotation never signs
with the old key for longer than a fresh environment would.

Rotation needs no redeploy: writing a new version of the secret (`put-secret-value`, README) makes it
AWSCURRENT and the old one AWSPREVIOUS. Tokens are signed with the current key and verified with the
current one or, for GRACE_SECONDS after the current version was created, the previous one, so a
client paging through a list across a rotation is not refused. A token that verifies with neither,
while the cached keys are older than REFRESH_SECONDS, makes the environment fetch them again once
(another environment may have seen the rotation first; a flood of bad tokens costs at most one
fetch per REFRESH_SECONDS).

Locally and in tests, `PAGE_TOKEN_SECRET` is the key itself (a random one per process when unset).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.parameters.base import BaseProvider

from lib import clock
from lib.settings import MIN_SECRET_LENGTH, ConfigurationError, settings

MAX_AGE_SECONDS = 300  # a rotation reaches every warm environment within 5 minutes
GRACE_SECONDS = 24 * 3600  # tokens signed with the previous key stay valid for a day after a rotation
REFRESH_SECONDS = 10  # a token no cached key verifies refreshes the keys at most this often
CURRENT, PREVIOUS = "AWSCURRENT", "AWSPREVIOUS"


@dataclass(frozen=True)
class Keys:
    """The key that signs new tokens, and every key a token may be signed with (signing first)."""

    signing: bytes
    verifying: tuple[bytes, ...]


class EnvironmentKeys:
    """`PAGE_TOKEN_SECRET`: one key, as the environment gives it (local run, tests, sam local)."""

    def __init__(self, secret: str):
        key = secret.encode()
        self._keys = Keys(key, (key,))

    def keys(self) -> Keys:
        return self._keys

    def refresh(self) -> Keys | None:
        return None  # nothing newer can appear

    def forget(self) -> None:
        pass


def _secret_key(text: str, stage: str) -> bytes:
    """The key a version of the secret holds: {"secret": "..."} (what the template generates) or the
    plain string."""
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    key = value.get("secret") if isinstance(value, dict) else value
    if not isinstance(key, str) or len(key) < MIN_SECRET_LENGTH:
        raise ConfigurationError(f"the paging secret's {stage} version holds no key of at least {MIN_SECRET_LENGTH} "
                                 'characters (write {"secret": "<key>"})')
    return key.encode()


class _Versions(BaseProvider):
    """Powertools' parameter cache over a reader of both versions of a secret (the two stages are
    one value, so they are fetched, cached and expire together)."""

    def __init__(self, read: Callable[[str], Any]):
        super().__init__()
        self._read = read

    def _get(self, name: str, **_: Any) -> Any:
        return self._read(name)

    def _get_multiple(self, path: str, **_: Any) -> dict[str, str]:
        raise NotImplementedError("one secret at a time")


class SecretsManagerKeys:
    """The paging secret in Secrets Manager (see the module doc). `read(secret_id)` returns its
    versions: `.current`, `.created` (epoch seconds) and `.previous` (None before a rotation)."""

    def __init__(self, secret_id: str, read: Callable[[str], Any]):
        self.secret_id = secret_id
        self._provider = _Versions(read)
        self._fetched: Any = None  # the value last fetched, and when
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def keys(self, force: bool = False) -> Keys:
        """The keys as Secrets Manager has them (fetched at most MAX_AGE_SECONDS ago, unless `force`)."""
        value = self._provider.get(self.secret_id, max_age=MAX_AGE_SECONDS, force_fetch=force)
        if value is not self._fetched:  # a new object: the provider fetched it just now
            self._fetched, self._fetched_at = value, time.monotonic()
        signing = _secret_key(value.current, CURRENT)
        verifying = (signing,)
        if value.previous is not None and clock.now_ms() / 1000 - value.created < GRACE_SECONDS:
            verifying += (_secret_key(value.previous, PREVIOUS),)
        return Keys(signing, verifying)

    def refresh(self) -> Keys | None:
        """Fetch the keys again, unless they were fetched less than REFRESH_SECONDS ago (None then)."""
        with self._lock:
            if time.monotonic() - self._fetched_at < REFRESH_SECONDS:
                return None
            return self.keys(force=True)

    def forget(self) -> None:
        """Drop the cached keys."""
        self._provider.clear_cache()
        self._fetched, self._fetched_at = None, 0.0


_read_secret: Callable[[str], Any] | None = None


def read_secrets_with(read: Callable[[str], Any]) -> None:
    """How to read a secret's versions here (lib.api.entry passes lib.store.secrets.read_versions)."""
    global _read_secret
    _read_secret = read


_source: tuple[Any, EnvironmentKeys | SecretsManagerKeys] | None = None  # (the settings it follows, the source)


def source() -> EnvironmentKeys | SecretsManagerKeys:
    """Where this process's paging keys come from: PAGE_TOKEN_SECRET_ARN's secret, else
    PAGE_TOKEN_SECRET. Built once per settings object (tests that change the settings get a new one)."""
    global _source
    config = settings()
    if _source is None or _source[0] is not config:
        if config.page_token_secret_arn and _read_secret is None:
            raise ConfigurationError("PAGE_TOKEN_SECRET_ARN is set, but nothing here reads Secrets Manager "
                                     "(lib.api.entry registers the store's reader)")
        found = (SecretsManagerKeys(config.page_token_secret_arn, _read_secret) if config.page_token_secret_arn
                 else EnvironmentKeys(config.page_token_secret))
        _source = (config, found)
    return _source[1]


def forget_cached_keys() -> None:
    """After a SnapStart restore: keep the client, fetch the keys again at their next use."""
    if _source is not None:
        _source[1].forget()
