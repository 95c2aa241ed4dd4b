"""Configuration from environment variables, parsed once into a typed model.

Security settings fail closed inside Lambda: a function whose `ACCESS_MODE` is missing or unknown,
or that has no paging key, refuses to start: the error is raised while the handler module is
imported, so Lambda reports an init error naming the variable, instead of serving with a guessable
default. The paging key is `PAGE_TOKEN_SECRET_ARN`'s Secrets Manager secret (what template.yaml
sets: the key is never in the environment, which anyone allowed lambda:GetFunctionConfiguration
reads; lib.paging_keys reads it), else `PAGE_TOKEN_SECRET`, the key itself (at least 16 characters
inside Lambda; both at once is refused there). Outside Lambda (tests, `make run`, `sam local`) the
API is open unless `AUTH=on`, and without either variable the key is random for the life of the
process.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from lib.clock import parse_duration

ACCESS_MODES = ("off", "iam")
MIN_SECRET_LENGTH = 16
DEFAULT_GRANTS_FILE = "local-grants.json"
LOCAL_CALLER_HEADER = "X-CS-Principal"  # AUTH=on: the header local/events.py makes the caller


class ConfigurationError(RuntimeError):
    """A setting that makes the function unsafe or unable to run; raised at init."""


class Settings(BaseModel):
    """What the functions read from their environment (see README, Configuration)."""

    table_name: str = "context-services"
    default_expiration_seconds: int = 5 * 365 * 86400
    page_token_secret: str = ""  # PAGE_TOKEN_SECRET: the paging key itself (outside Lambda only)
    page_token_secret_arn: str | None = None  # PAGE_TOKEN_SECRET_ARN: the Secrets Manager secret holding it
    idempotency_expiration_seconds: int = 86400
    max_body_bytes: int = 128 * 1024
    # Who may call (lib.api.access): "iam" checks the caller's grant on every request, "off" does not.
    access_mode: Literal["off", "iam"] = "off"
    # Grants from this JSON file instead of the table (the local run's AUTH=on; never inside Lambda).
    grants_file: str | None = None
    # The request header that names the caller when AUTH=on (local/events.py turns it into the identity).
    caller_header: str | None = None
    grant_cache_seconds: float = 60.0
    grant_negative_cache_seconds: float = 10.0
    auto_complete_after_seconds: int | None = None  # AUTO_COMPLETE_AFTER: default of auto_complete_after
    export_bucket: str | None = None  # EXPORT_BUCKET: where export files go when deployed
    export_dir: str = "exports"  # EXPORT_DIR: where they go otherwise (the local run)
    jobs_queue_url: str | None = None  # JOBS_QUEUE_URL: where maintenance jobs continue when deployed
    maintenance_budget_ms: int = 20_000  # MAINTENANCE_BUDGET_MS: work a request does before answering 202
    # Partitions of each tenant's time indexes (INDEX_SHARDS) and of the due-work index all tenants share
    # (DUE_SHARDS). Raising either on a live table is safe, lowering is a migration (docs/DESIGN.md, Scale).
    index_shards: int = Field(default=8, ge=1, le=1000)
    due_shards: int = Field(default=8, ge=1, le=1000)

    @field_validator("default_expiration_seconds", "auto_complete_after_seconds", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            # plain seconds ("3600") or the DEFAULT_EXPIRATION format ("1h")
            return int(value) if value.strip().isdigit() else parse_duration(value.strip())
        return value


def in_lambda() -> bool:
    """True inside a deployed Lambda function (not `sam local`, whose container sets AWS_SAM_LOCAL)."""
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) and not os.environ.get("AWS_SAM_LOCAL")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "on", "true", "yes")


def _access(values: dict[str, object], deployed: bool) -> None:
    mode = os.environ.get("ACCESS_MODE", "").strip().lower()
    if mode and mode not in ACCESS_MODES:
        raise ConfigurationError(f"ACCESS_MODE={mode!r} is not one of {', '.join(ACCESS_MODES)}")
    if deployed:
        if not mode:
            raise ConfigurationError("ACCESS_MODE is not set: a deployed function must say who may call it "
                                     "(template.yaml sets ACCESS_MODE=iam)")
        values["access_mode"] = mode
        return  # grants always come from the table in Lambda: GRANTS_FILE and AUTH are ignored there
    if _flag("AUTH"):
        if mode == "off":
            raise ConfigurationError("AUTH=on contradicts ACCESS_MODE=off")
        values["access_mode"] = "iam"
        values["grants_file"] = os.environ.get("GRANTS_FILE") or DEFAULT_GRANTS_FILE
        values["caller_header"] = LOCAL_CALLER_HEADER
    elif mode:
        values["access_mode"] = mode
        if os.environ.get("GRANTS_FILE"):
            values["grants_file"] = os.environ["GRANTS_FILE"]


def _secret(values: dict[str, object], deployed: bool) -> None:
    arn = os.environ.get("PAGE_TOKEN_SECRET_ARN", "").strip()
    secret = os.environ.get("PAGE_TOKEN_SECRET", "")
    if deployed:
        if arn and secret:
            raise ConfigurationError("PAGE_TOKEN_SECRET is set beside PAGE_TOKEN_SECRET_ARN: the paging key must not "
                                     "be in the environment (lambda:GetFunctionConfiguration shows it); unset it")
        if not arn and len(secret) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                "PAGE_TOKEN_SECRET_ARN is missing: a deployed function reads the key that signs paging tokens from "
                "this Secrets Manager secret (template.yaml sets it)" if not secret else
                f"PAGE_TOKEN_SECRET is too short: a key that signs paging tokens needs at least {MIN_SECRET_LENGTH} "
                "characters (deployed, prefer PAGE_TOKEN_SECRET_ARN: a Secrets Manager secret)")
    if arn:
        values["page_token_secret_arn"] = arn
    # Without a key outside Lambda, a random one: tokens stop working when the process restarts, nothing more.
    values["page_token_secret"] = secret or secrets.token_urlsafe(32)


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The settings of this process (cached; tests clear the cache after changing the env).

    Raises ConfigurationError when a security setting is missing or invalid inside Lambda."""
    deployed = in_lambda()
    values: dict[str, object] = {}
    if os.environ.get("TABLE_NAME"):
        values["table_name"] = os.environ["TABLE_NAME"]
    if os.environ.get("DEFAULT_EXPIRATION"):
        values["default_expiration_seconds"] = os.environ["DEFAULT_EXPIRATION"]
    if os.environ.get("AUTO_COMPLETE_AFTER", "").strip():
        values["auto_complete_after_seconds"] = os.environ["AUTO_COMPLETE_AFTER"].strip()
    for env, name in (("EXPORT_BUCKET", "export_bucket"), ("EXPORT_DIR", "export_dir"),
                      ("JOBS_QUEUE_URL", "jobs_queue_url"), ("MAINTENANCE_BUDGET_MS", "maintenance_budget_ms"),
                      ("INDEX_SHARDS", "index_shards"), ("DUE_SHARDS", "due_shards")):
        if os.environ.get(env):
            values[name] = os.environ[env]
    _access(values, deployed)
    _secret(values, deployed)
    return Settings.model_validate(values)
