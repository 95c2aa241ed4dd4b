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
    auto_complete_after_seconds: int | None = None  # AUTO_COMPLETE_AFTER: default of auto_complete_after
    export_bucket: str | None = None  # EXPORT_BUCKET: where export files go when deployed
    export_dir: str = "exports"  # EXPORT_DIR: where they go otherwise (the local run)
    jobs_queue_url: str | None = None  # JOBS_QUEUE_URL: where maintenance jobs continue when deployed
    maintenance_budget_ms: int = 20_000  # MAINTENANCE_BUDGET_MS: work a request does before answering 202

    @field_validator("default_expiration_seconds", "auto_complete_after_seconds", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            return int(value) if value.strip().isdigit() else parse_duration(value)  # seconds, or 30d / 4h ...
        return value


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The settings of this process (cached; tests clear the cache after changing the env)."""
    values: dict[str, object] = {}
    if os.environ.get("TABLE_NAME"):
        values["table_name"] = os.environ["TABLE_NAME"]
    if os.environ.get("DEFAULT_EXPIRATION"):
        values["default_expiration_seconds"] = os.environ["DEFAULT_EXPIRATION"]
    for env, name in (("EXPORT_BUCKET", "export_bucket"), ("EXPORT_DIR", "export_dir"),
                      ("JOBS_QUEUE_URL", "jobs_queue_url"), ("MAINTENANCE_BUDGET_MS", "maintenance_budget_ms")):
        if os.environ.get(env):
            values[name] = os.environ[env]
    if os.environ.get("AUTO_COMPLETE_AFTER"):
        values["auto_complete_after_seconds"] = os.environ["AUTO_COMPLETE_AFTER"]
    # Without a configured secret, paging tokens are still signed, with a key derived from the
    # table name: stable across Lambda instances, but guessable. template.yaml always sets one.
    values["page_token_secret"] = os.environ.get("PAGE_TOKEN_SECRET") or f"unset-secret:{values.get('table_name', '')}"
    return Settings(**values)
