"""Give, revoke and list access grants (lib/api/access.py): which role a principal has and which
(ContactCenterId, GroupId) pairs it may use.

Against a deployed stack's table, with the standard AWS credential chain (profile, env, SSO ...):

    python -m scripts.grants add arn:aws:iam::123456789012:role/agents-desktop --role Administrator \\
        --tenant acme/ --tenant acme/sales --stack context-services --region eu-west-1
    python -m scripts.grants revoke arn:aws:iam::123456789012:role/agents-desktop --tenant acme/sales --stack ...
    python -m scripts.grants revoke arn:aws:iam::123456789012:role/agents-desktop --stack ...   # the whole grant
    python -m scripts.grants list --stack context-services --region eu-west-1

`--table NAME` instead of `--stack` names the table directly. For the local run's enforcing mode
(`AUTH=on make run`), `--file local-grants.json` edits the grants file instead.

A tenant is "<ContactCenterId>/<GroupId>": "acme/" is tenant acme without a group, "/" the default
tenant, "acme/*" every group of acme, "*" every tenant. A role ARN is stored without its path
(assumed-role sessions do not carry it); an assumed-role session ARN is stored as its role.
Deployed functions see a change within a minute (their grant cache); the local server sees a file
edit at the next request.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from lib.api.access import ROLES, check_tenant_entry, normalise_principal


class TableGrants:
    """Grant items of a deployed table (lib.store.grants, with the standard AWS credential chain)."""

    def __init__(self, table: str, region: str | None = None):
        os.environ["TABLE_NAME"] = table
        if region:
            os.environ["AWS_DEFAULT_REGION"] = region
        from lib import settings
        from lib.store import grants
        from lib.store import table as store_table

        settings.settings.cache_clear()
        store_table.reset_client()
        self.store = grants

    def get(self, principal: str) -> dict[str, Any] | None:
        return self.store.read(principal)

    def put(self, grant: dict[str, Any]) -> None:
        self.store.put(grant["principal"], grant["role"], grant["tenants"])

    def delete(self, principal: str) -> None:
        self.store.delete(principal)

    def all(self) -> list[dict[str, Any]]:
        return self.store.every()


class FileGrants:
    """The local grants file: {"grants": [{"principal", "role", "tenants"}]}."""

    def __init__(self, path: Path):
        self.path = path

    def _load(self) -> list[dict[str, Any]]:
        return json.loads(self.path.read_text()).get("grants", []) if self.path.exists() else []

    def _save(self, grants: list[dict[str, Any]]) -> None:
        # Written aside, then renamed over the file: the running local server reads it at every
        # request and must never see half of it.
        staged = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        staged.write_text(json.dumps({"grants": grants}, indent=2) + "\n")
        os.replace(staged, self.path)

    def get(self, principal: str) -> dict[str, Any] | None:
        return next((g for g in self._load() if g.get("principal") == principal), None)

    def put(self, grant: dict[str, Any]) -> None:
        self._save([g for g in self._load() if g.get("principal") != grant["principal"]] + [grant])

    def delete(self, principal: str) -> None:
        self._save([g for g in self._load() if g.get("principal") != principal])

    def all(self) -> list[dict[str, Any]]:
        return self._load()


def principal_key(arn: str) -> str:
    """The principal as lib.api.access sees the caller (a role without its path; an assumed-role
    session as its role); ValueError when it is no ARN."""
    if not arn.startswith("arn:"):
        raise ValueError(f"{arn!r} is not an ARN")
    return normalise_principal(arn)


def add(grants: Any, principal: str, role: str | None, tenants: list[str]) -> dict[str, Any]:
    """Give `principal` the role (kept when None) and add tenants to its grant."""
    principal = principal_key(principal)
    current = grants.get(principal) or {"principal": principal, "role": None, "tenants": []}
    role = role or current["role"]
    if role not in ROLES:
        raise ValueError(f"a new grant needs --role ({' or '.join(ROLES)})")
    merged = list(dict.fromkeys([*current["tenants"], *(check_tenant_entry(t) for t in tenants)]))
    if not merged:
        raise ValueError("a grant needs at least one --tenant")
    grant = {"principal": principal, "role": role, "tenants": merged}
    grants.put(grant)
    return grant


def revoke(grants: Any, principal: str, tenants: list[str]) -> dict[str, Any] | None:
    """Remove tenants from a grant, or the whole grant when no tenant is named (or none is left)."""
    principal = principal_key(principal)
    current = grants.get(principal)
    if current is None:
        return None
    left = [t for t in current["tenants"] if t not in set(tenants)] if tenants else []
    if not left:
        grants.delete(principal)
        return None
    grant = {**current, "tenants": left}
    grants.put(grant)
    return grant


def _table_name(args: argparse.Namespace) -> str:
    if args.table:
        return args.table
    import boto3

    session = boto3.Session(region_name=args.region) if args.region else boto3.Session()
    outputs = session.client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"][0].get("Outputs", [])
    return next(o["OutputValue"] for o in outputs if o["OutputKey"] == "TableName")


def _store(args: argparse.Namespace) -> Any:
    if args.file:
        return FileGrants(Path(args.file))
    if not (args.table or args.stack):
        raise SystemExit("name the grants: --stack NAME, --table NAME or --file PATH")
    return TableGrants(_table_name(args), args.region)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.grants", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("add", "revoke", "list"):
        command = commands.add_parser(name)
        if name != "list":
            command.add_argument("principal", help="IAM user or role ARN (or an assumed-role session ARN)")
            command.add_argument("--tenant", action="append", default=[], help="<ContactCenterId>/<GroupId>, repeatable")
        if name == "add":
            command.add_argument("--role", choices=ROLES)
        where = command.add_mutually_exclusive_group()
        where.add_argument("--stack", help="CloudFormation stack whose TableName output holds the grants")
        where.add_argument("--table", help="DynamoDB table that holds the grants")
        where.add_argument("--file", help="local grants file (AUTH=on make run)")
        command.add_argument("--region")
    args = parser.parse_args(argv)
    store = _store(args)
    try:
        if args.command == "add":
            print(json.dumps(add(store, args.principal, args.role, args.tenant)))
        elif args.command == "revoke":
            grant = revoke(store, args.principal, args.tenant)
            print(json.dumps(grant) if grant else f"no grant left for {principal_key(args.principal)}")
        else:
            for grant in store.all():
                print(json.dumps(grant))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
