"""Configuration from environment variables, parsed once into a typed model."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, field_validator

from lib.clock import parse_duration


class Settings(BaseModel):
    """What the functions read from their environment (see README, Configuration)."""

    table_name: str = "context-services"
    default_expiration_seconds: int = 5 * 365 * 86400
    page_token_secret: str = ""
    idempotency_expiration_seconds: int = 86400
    max_body_bytes: int = 128 * 1024

    @field_validator("default_expiration_seconds", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The settings of this process (cached; tests clear the cache after changing the env)."""
    values: dict[str, object] = {}
    if os.environ.get("TABLE_NAME"):
        values["table_name"] = os.environ["TABLE_NAME"]
    if os.environ.get("DEFAULT_EXPIRATION"):
        values["default_expiration_seconds"] = os.environ["DEFAULT_EXPIRATION"]
    # Without a configured secret, paging tokens are still signed, with a key derived from the
    # table name: stable across Lambda instances, but guessable. template.yaml always sets one.
    values["page_token_secret"] = os.environ.get("PAGE_TOKEN_SECRET") or f"unset-secret:{values.get('table_name', '')}"
    return Settings(**values)
