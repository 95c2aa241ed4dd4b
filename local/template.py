"""Reads template.yaml, the single description of the deployed system, so that tests, the local
run and the benchmark build the same table and the same routes that SAM deploys."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that understands CloudFormation's short tags (!Ref, !Sub, !GetAtt ...)."""


def _intrinsic(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@lru_cache(maxsize=1)
def load() -> dict[str, Any]:
    """The parsed template."""
    with TEMPLATE.open() as handle:
        return yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def _resource(kind: str) -> tuple[str, dict[str, Any]]:
    for name, resource in load()["Resources"].items():
        if resource["Type"] == kind:
            return name, resource
    raise LookupError(kind)


def create_table(client: Any, table_name: str) -> None:
    """Create the template's DynamoDB table (keys, indexes, TTL) through `client` (moto or real)."""
    _, table = _resource("AWS::DynamoDB::Table")
    props = table["Properties"]
    client.create_table(
        TableName=table_name,
        BillingMode=props["BillingMode"],
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=props.get("GlobalSecondaryIndexes", []),
        **({"LocalSecondaryIndexes": props["LocalSecondaryIndexes"]} if props.get("LocalSecondaryIndexes") else {}),
    )
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        client.update_time_to_live(
            TableName=table_name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
        )


@dataclass(frozen=True)
class ApiRoute:
    """One API event of a function: `path` as API Gateway writes it (`{name}`), `method` or ANY."""

    path: str
    method: str
    function: str
    handler: str


def api_routes() -> list[ApiRoute]:
    """Every API event of every function in the template."""
    routes = []
    for name, resource in load()["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        handler = resource["Properties"]["Handler"]
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "Api":
                props = event["Properties"]
                routes.append(ApiRoute(props["Path"], props["Method"].upper(), name, handler))
    return routes


def plain_environment() -> dict[str, str]:
    """The Globals environment variables that are plain strings or parameter defaults (the local
    run and tests set the ones that refer to resources themselves)."""
    template = load()
    params = template.get("Parameters", {})
    variables = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    env = {}
    for key, value in variables.items():
        if isinstance(value, str):
            env[key] = value
        elif isinstance(value, dict) and "Ref" in value and "Default" in params.get(value["Ref"], {}):
            env[key] = str(params[value["Ref"]]["Default"])
    return env
