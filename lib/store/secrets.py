"""The paging secret in Secrets Manager (deployed): its current version with the time it was created,
and its previous version if it was ever rotated. lib.paging_keys caches what this reads and decides
which keys sign and verify; lib.api.entry hands it this reader (the shared ground imports no floor)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3

from lib.store.table import CLIENT_CONFIG

CURRENT, PREVIOUS = "AWSCURRENT", "AWSPREVIOUS"
_client: Any = None


def client() -> Any:
    """The Secrets Manager client of this process (built on first use: only a deployed function reads
    the secret; SnapStart's before_snapshot builds it so restores do not)."""
    global _client
    if _client is None:
        _client = boto3.client("secretsmanager", config=CLIENT_CONFIG)
    return _client


def reset_client() -> Any:
    """Build the client again (tests: inside a moto mock)."""
    global _client
    _client = None
    return client()


@dataclass(frozen=True)
class SecretVersions:
    """A secret's AWSCURRENT value and creation time (epoch seconds), and its AWSPREVIOUS value."""

    current: str
    created: float
    previous: str | None


def read_versions(secret_id: str) -> SecretVersions:
    """Both stages of a secret (two GetSecretValue calls; AWSPREVIOUS is None before a first rotation)."""
    current = client().get_secret_value(SecretId=secret_id, VersionStage=CURRENT)
    try:
        previous = client().get_secret_value(SecretId=secret_id, VersionStage=PREVIOUS)["SecretString"]
    except client().exceptions.ResourceNotFoundException:
        previous = None
    return SecretVersions(current["SecretString"], current["CreatedDate"].timestamp(), previous)
