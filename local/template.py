"""Reads template.yaml, the single description of the deployed system, so that tests, the local
run and the benchmark build the same table and the same routes that SAM deploys."""

from __future__ import annotations

import re
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


def load(path: Path | str | None = None) -> dict[str, Any]:
    """The parsed template (template.yaml unless `path` names another one)."""
    return _load(Path(path or TEMPLATE).resolve())


@lru_cache(maxsize=8)
def _load(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return yaml.load(handle, Loader=_CfnLoader)  # SafeLoader subclass


def _resource(kind: str, path: Path | str | None = None) -> tuple[str, dict[str, Any]]:
    for name, resource in load(path)["Resources"].items():
        if resource["Type"] == kind:
            return name, resource
    raise LookupError(kind)


def resources(kind: str, path: Path | str | None = None) -> dict[str, dict[str, Any]]:
    """Every resource of one type, by logical id."""
    return {name: resource for name, resource in load(path)["Resources"].items() if resource["Type"] == kind}


def create_table(client: Any, table_name: str, path: Path | str | None = None, stream: bool = True) -> None:
    """Create the template's DynamoDB table (keys, indexes, stream, TTL) through `client` (moto or real).
    `stream=False`: without the stream (the benchmark's tables: moto keeps every stream record in the
    table object, which the benchmark copies before each measured write)."""
    _, table = _resource("AWS::DynamoDB::Table", path)
    props = table["Properties"]
    client.create_table(
        TableName=table_name,
        BillingMode=props["BillingMode"],
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=props.get("GlobalSecondaryIndexes", []),
        **({"LocalSecondaryIndexes": props["LocalSecondaryIndexes"]} if props.get("LocalSecondaryIndexes") else {}),
        **({"StreamSpecification": {"StreamEnabled": True, **props["StreamSpecification"]}}
           if stream and props.get("StreamSpecification") else {}),
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
    public: bool = False  # `Auth: {Authorizer: NONE}`: no IAM authentication (the viewer's static files)


def api_routes(path: Path | str | None = None) -> list[ApiRoute]:
    """Every API event of every function in the template."""
    routes = []
    for name, resource in load(path)["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        handler = resource["Properties"]["Handler"]
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "Api":
                props = event["Properties"]
                public = str((props.get("Auth") or {}).get("Authorizer", "")).upper() == "NONE"
                routes.append(ApiRoute(props["Path"], props["Method"].upper(), name, handler, public))
    return routes


def plain_environment(path: Path | str | None = None) -> dict[str, str]:
    """The Globals environment variables that are plain strings or parameter defaults (the local
    run and tests set the ones that refer to resources themselves)."""
    template = load(path)
    params = template.get("Parameters", {})
    variables = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    env = {}
    for key, value in variables.items():
        if isinstance(value, str):
            env[key] = value
        elif isinstance(value, dict) and "Ref" in value and "Default" in params.get(value["Ref"], {}):
            env[key] = str(params[value["Ref"]]["Default"])
    return env


# ---------------------------------------------------------------- functions and their events (local run)


@dataclass(frozen=True)
class Function:
    """One AWS::Serverless::Function: where its code is, its settings (Globals merged in), its
    environment as written (intrinsics unresolved) and its events as {name: (Type, Properties)}."""

    name: str
    handler: str
    code_root: Path
    timeout: int
    memory: int
    environment: dict[str, Any]
    events: dict[str, tuple[str, dict[str, Any]]]


def _mapped_events(template: dict[str, Any]) -> dict[str, dict[str, tuple[str, dict[str, Any]]]]:
    """Explicit AWS::Lambda::EventSourceMapping resources of SQS queues, as SQS events of the
    function they name (`!Ref F`, `!Ref F.Alias`, `!GetAtt F.Arn`): {function: {logical id: event}}."""
    found: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::EventSourceMapping":
            continue
        props = resource.get("Properties") or {}
        target = props.get("FunctionName")
        if isinstance(target, dict) and "Ref" in target:
            function = str(target["Ref"]).split(".", 1)[0]
        elif isinstance(target, dict) and "Fn::GetAtt" in target:
            function = target["Fn::GetAtt"][0]
        else:
            continue
        source = props.get("EventSourceArn")
        if not (isinstance(source, dict) and "Fn::GetAtt" in source
                and template["Resources"].get(source["Fn::GetAtt"][0], {}).get("Type") == "AWS::SQS::Queue"):
            continue
        event = {"Queue": source, **{key: props[key] for key in ("BatchSize", "FunctionResponseTypes", "Enabled")
                                     if key in props}}
        found.setdefault(function, {})[name] = ("SQS", event)
    return found


def functions(path: Path | str | None = None) -> list[Function]:
    """Every function of the template, with its events and the SQS event source mappings that name
    it. CodeUri is relative to the template's folder, as in SAM."""
    template = load(path)
    folder = Path(path or TEMPLATE).resolve().parent
    globals_ = template.get("Globals", {}).get("Function", {})
    mapped = _mapped_events(template)
    found = []
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = {**globals_, **resource.get("Properties", {})}
        environment = {**globals_.get("Environment", {}).get("Variables", {}),
                       **resource.get("Properties", {}).get("Environment", {}).get("Variables", {})}
        events = {event_name: (event["Type"], event.get("Properties") or {})
                  for event_name, event in (resource["Properties"].get("Events") or {}).items()}
        events.update(mapped.get(name, {}))
        code_uri = props.get("CodeUri", ".")
        found.append(Function(name, props["Handler"], (folder / code_uri).resolve() if isinstance(code_uri, str) else folder,
                              int(props.get("Timeout", 3)), int(props.get("MemorySize", 128)), environment, events))
    return found


class Unresolved(Exception):
    """An intrinsic the local run has no value for (a secret, an attribute it does not emulate)."""


def resolve(value: Any, refs: dict[str, str], attributes: dict[tuple[str, str], str]) -> str:
    """A template value with !Ref, !GetAtt and !Sub resolved from `refs` (logical id or parameter ->
    value) and `attributes` ((logical id, attribute) -> value); Unresolved when something is missing."""
    if isinstance(value, (str, int, float, bool)):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, dict) and len(value) == 1:
        (kind, argument), = value.items()
        if kind == "Ref":
            if argument in refs:
                return refs[argument]
            raise Unresolved(f"!Ref {argument}")
        if kind == "Fn::GetAtt":
            key = (argument[0], argument[1]) if isinstance(argument, list) else tuple(argument.split(".", 1))
            if key in attributes:
                return attributes[key]
            raise Unresolved(f"!GetAtt {'.'.join(key)}")
        if kind == "Fn::Sub" and isinstance(argument, str):
            def substitute(match: Any) -> str:
                name = match.group(1)
                if "." in name:
                    return resolve({"Fn::GetAtt": name}, refs, attributes)
                return resolve({"Ref": name}, refs, attributes)

            if "{{resolve:" in argument:
                raise Unresolved("dynamic reference")
            return re.sub(r"\$\{([^}!]+)\}", substitute, argument)
    raise Unresolved(repr(value))
