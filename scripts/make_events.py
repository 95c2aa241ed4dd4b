"""Write events/<operation>.json: one sample API Gateway REST proxy event per route of the OpenAPI
document, for `sam local invoke -e` and for tests/unit/test_documents_agree.py. Run: python -m scripts.make_events"""

from __future__ import annotations

import json
import re

from lib.api.resolver import BASE_PATH
from local.openapi import generate
from local.template import ROOT

QUERIES = {"/maintenance/services/stream": {"time_from": "2026-01-01T00:00:00Z"},
           "/maintenance/services/files": {"time_from": "2026-01-01T00:00:00Z", "format": "csv"}}
SAMPLES = {"service_id": "457135415370943698", "customer_id": "customer-1", "contact_key": "contact-1",
           "ext_name": "note", "state_id": "1", "task_id": "1", "job_id": "0123456789abcdef01234567"}
BODIES = {
    "/services/start": {"customer_id": "customer-1", "service_type": "billing", "note": "attached data"},
    "/services/{service_id}": {"ttl": 3600},
    "/services/{service_id}/extensions/{ext_name}": {"any": "json"},
    "/services/{service_id}/extensions/{ext_name}/merge": {"any": "json"},
    "/services/{service_id}/states/{state_id}/extensions/{ext_name}": {"any": "json"},
    "/services/{service_id}/states/{state_id}/extensions/{ext_name}/merge": {"any": "json"},
    "/services/{service_id}/tasks/{task_id}/extensions/{ext_name}": {"any": "json"},
    "/services/{service_id}/tasks/{task_id}/extensions/{ext_name}/merge": {"any": "json"},
    "/services/{service_id}/states/start": {"state_type": "identify"},
    "/services/{service_id}/states/transition": {"from": {"state_id": 1}, "to": {"state_type": "next"}},
    "/services/{service_id}/tasks/start": {"task_type": "lookup"},
    "/maintenance/purge": {"limit": "2020-01-01T00:00:00Z", "operation": "purge.service.completed"},
    "/services_composite/start": {"services": [{"service": {"customer_id": "customer-1", "service_type": "billing"},
                                                 "state": {"state_type": "identify"}}]},
}


def main() -> None:
    target = ROOT / "events"
    target.mkdir(exist_ok=True)
    for old in target.glob("*.json"):
        old.unlink()
    for path, operations in generate()["paths"].items():
        for method, operation in operations.items():
            concrete = re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m.group(1)], path)
            body = BODIES.get(path) if method in ("post", "put") else None
            event = {
                "resource": BASE_PATH + path,
                "path": BASE_PATH + concrete,
                "httpMethod": method.upper(),
                "headers": {"Host": "localhost:3000", "Content-Type": "application/json", "ContactCenterId": "sample"},
                "multiValueHeaders": {"Host": ["localhost:3000"], "Content-Type": ["application/json"],
                                      "ContactCenterId": ["sample"]},
                "queryStringParameters": QUERIES.get(path),
                "multiValueQueryStringParameters": {k: [v] for k, v in QUERIES[path].items()} if path in QUERIES else None,
                "pathParameters": {name: SAMPLES[name] for name in re.findall(r"\{(\w+)\}", path)} or None,
                "stageVariables": None,
                "requestContext": {"resourcePath": BASE_PATH + path, "httpMethod": method.upper(),
                                   "path": "/Prod" + BASE_PATH + concrete, "stage": "Prod",
                                   "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "accountId": "123456789012",
                                   "identity": {"sourceIp": "127.0.0.1"}},
                "body": json.dumps(body) if body is not None else None,
                "isBase64Encoded": False,
            }
            (target / f"{operation['operationId']}.json").write_text(json.dumps(event, indent=2) + "\n")


if __name__ == "__main__":
    main()
