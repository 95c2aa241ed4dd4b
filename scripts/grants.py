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
Running functions see a change within a minute (their grant cache).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROLES = ("Administrator", "Supervisor")
GRANT_SK = "#GRANT"
# Grants are listed through GSI1 (whose tenant partitions always contain "|", so never this one).
LIST_INDEX, LIST_PK = "GSI1", "ACCESS#GRANTS"
_VALUE = r"[A-Za-z0-9._-]{1,64}"
_TENANT = re.compile(rf"^(\*|(?:{_VALUE})?/(?:{_VALUE}|\*)?)$")
_ROLE_WITH_PATH = re.compile(r"^arn:([\w-]+):iam::(\d{12}):role/(?:.+/)?([^/]+)$")
_ASSUMED_ROLE = re.compile(r"^arn:([\w-]+):sts::(\d{12}):assumed-role/([^/]+)/.+$")


def principal_key(arn: str) -> str:
    """The principal as lib.api.access sees the caller: a role without its path, an assumed-role
    session as its role, anything else unchanged."""
    for pattern in (_ASSUMED_ROLE, _ROLE_WITH_PATH):
        match = pattern.match(arn)
        if match:
            return f"arn:{match[1]}:iam::{match[2]}:role/{match[3]}"
    if not arn.startswith("arn:"):
        raise ValueError(f"{arn!r} is not an ARN")
    return arn


def check_tenant(tenant: str) -> str:
    if not _TENANT.match(tenant):
        raise ValueError(f"{tenant!r} is not <ContactCenterId>/<GroupId> (either may be empty; "
                         f"<ContactCenterId>/* or * for wildcards)")
    return tenant


class TableGrants:
    """Grant items of the deployed table."""

    def __init__(self, client: Any, table: str):
        self.client, self.table = client, table

    def _key(self, principal: str) -> dict[str, Any]:
        return {"PK": {"S": f"ACCESS#{principal}"}, "SK": {"S": GRANT_SK}}

    def get(self, principal: str) -> dict[str, Any] | None:
        item = self.client.get_item(TableName=self.table, Key=self._key(principal), ConsistentRead=True).get("Item")
        if not item:
            return None
        return {"principal": principal, "role": item["role"]["S"], "tenants": [v["S"] for v in item["tenants"]["L"]]}

    def put(self, grant: dict[str, Any]) -> None:
        self.client.put_item(TableName=self.table, Item={
            **self._key(grant["principal"]), "type": {"S": "grant"}, "role": {"S": grant["role"]},
            "tenants": {"L": [{"S": t} for t in grant["tenants"]]},
            "GSI1PK": {"S": LIST_PK}, "GSI1SK": {"S": grant["principal"]}})

    def delete(self, principal: str) -> None:
        self.client.delete_item(TableName=self.table, Key=self._key(principal))

    def all(self) -> list[dict[str, Any]]:
        grants, start = [], None
        while True:
            page = self.client.query(TableName=self.table, IndexName=LIST_INDEX,
                                     KeyConditionExpression="GSI1PK = :pk",
                                     ExpressionAttributeValues={":pk": {"S": LIST_PK}},
                                     **({"ExclusiveStartKey": start} if start else {}))
            grants += [{"principal": i["GSI1SK"]["S"], "role": i["role"]["S"],
                        "tenants": [v["S"] for v in i["tenants"]["L"]]} for i in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                return grants


class FileGrants:
    """The local grants file: {"grants": [{"principal", "role", "tenants"}]}."""

    def __init__(self, path: Path):
        self.path = path

    def _load(self) -> list[dict[str, Any]]:
        return json.loads(self.path.read_text()).get("grants", []) if self.path.exists() else []

    def _save(self, grants: list[dict[str, Any]]) -> None:
        self.path.write_text(json.dumps({"grants": grants}, indent=2) + "\n")

    def get(self, principal: str) -> dict[str, Any] | None:
        return next((g for g in self._load() if g.get("principal") == principal), None)

    def put(self, grant: dict[str, Any]) -> None:
        self._save([g for g in self._load() if g.get("principal") != grant["principal"]] + [grant])

    def delete(self, principal: str) -> None:
        self._save([g for g in self._load() if g.get("principal") != principal])

    def all(self) -> list[dict[str, Any]]:
        return self._load()


def add(grants: Any, principal: str, role: str | None, tenants: list[str]) -> dict[str, Any]:
    """Give `principal` the role (kept when None) and add tenants to its grant."""
    principal = principal_key(principal)
    current = grants.get(principal) or {"principal": principal, "role": None, "tenants": []}
    role = role or current["role"]
    if role not in ROLES:
        raise ValueError(f"a new grant needs --role ({' or '.join(ROLES)})")
    merged = list(dict.fromkeys([*current["tenants"], *(check_tenant(t) for t in tenants)]))
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


def _table_name(args: argparse.Namespace, session: Any) -> str:
    if args.table:
        return args.table
    outputs = session.client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"][0].get("Outputs", [])
    return next(o["OutputValue"] for o in outputs if o["OutputKey"] == "TableName")


def _store(args: argparse.Namespace) -> Any:
    if args.file:
        return FileGrants(Path(args.file))
    if not (args.table or args.stack):
        raise SystemExit("name the grants: --stack NAME, --table NAME or --file PATH")
    import boto3

    session = boto3.Session(region_name=args.region) if args.region else boto3.Session()
    return TableGrants(session.client("dynamodb"), _table_name(args, session))


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
