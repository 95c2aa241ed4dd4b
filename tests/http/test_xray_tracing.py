"""Inside Lambda with tracing on (X-Ray), each DynamoDB call of a request is a subsegment of the
handler's segment, and responses (customer data) are not recorded: a handler run in a subprocess as
Lambda's runtime would, against the embedded DynamoDB served over HTTP, with a UDP socket standing in
for the X-Ray daemon."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import textwrap

from local.template import ROOT

TRACED_CALL = textwrap.dedent("""
    import json, sys
    from handlers import services
    from lib.observability import tracer
    assert tracer is not None, "tracing is on inside Lambda"

    class Context:
        function_name = "ServicesFunction"
        memory_limit_in_mb = 512
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ServicesFunction"
        aws_request_id = "lambda-request-1"
        def get_remaining_time_in_millis(self):
            return 29000

    event = json.load(open(sys.argv[1]))
    print("STATUS", services.lambda_handler(event, Context())["statusCode"])
""")


def test_each_dynamodb_call_is_an_xray_subsegment():
    from local import embedded_dynamodb, template

    server, endpoint = embedded_dynamodb.start()
    import boto3

    client = boto3.client("dynamodb", endpoint_url=endpoint)
    template.create_table(client, "traced")
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(5)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("POWERTOOLS_TRACE")},
           "AWS_LAMBDA_FUNCTION_NAME": "ServicesFunction", "LAMBDA_TASK_ROOT": str(ROOT),
           "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
           "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}", "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
           "TABLE_NAME": "traced", "ACCESS_MODE": "off", "PAGE_TOKEN_SECRET": "x" * 32}
    try:
        done = subprocess.run([sys.executable, "-c", TRACED_CALL, str(ROOT / "events" / "get_service.json")],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "STATUS 404" in done.stdout, done.stderr
        documents = []
        with contextlib.suppress(TimeoutError):
            while True:
                header, _, body = daemon.recv(65536).decode().partition("\n")
                documents.append(json.loads(body))
    finally:
        daemon.close()
        server.shutdown()

    def walk(segment):
        yield segment
        for child in segment.get("subsegments", []):
            yield from walk(child)

    segments = [s for document in documents for s in walk(document)]
    dynamodb = [s for s in segments if s.get("name", "").lower() == "dynamodb"]
    assert dynamodb and all(s["aws"]["operation"] == "GetItem" for s in dynamodb), segments
    assert all(s["aws"]["table_name"] == "traced" for s in dynamodb)
    handler = [s for s in segments if s.get("name") == "## lambda_handler"]
    assert handler and all(s["parent_id"] == handler[0]["id"] for s in dynamodb)
    # Responses hold customer data: they are not recorded in traces.
    assert not any("lambda_handler response" in s.get("metadata", {}).get("context-services", {})
                   for s in segments)
