"""Re-drive the change feed: publish the stream records of every batch the publisher gave up on
(lib/feed/redrive.py; README, Change feed). `make feed-redrive` runs it.

Against a deployed stack, with the standard AWS credential chain (profile, env, SSO ...):

    python -m scripts.feed_redrive --stack context-services --region eu-west-1 [--dry-run] [--limit N]

It reads the stack's outputs (FeedDeadLetterQueueUrl, FeedBusName) and its FeedEventSource
parameter. `--queue-url`, `--bus` and `--source` name them directly instead, for example against the
local run (`make run` prints its endpoints; botocore's endpoint variables point the clients at them):

    AWS_ENDPOINT_URL_SQS=http://127.0.0.1:<sqs port> AWS_ENDPOINT_URL_DYNAMODB_STREAMS=http://127.0.0.1:<dynamodb port> \\
    AWS_ENDPOINT_URL_EVENTBRIDGE=http://127.0.0.1:<events port> AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \\
    python -m scripts.feed_redrive --region us-east-1 --queue-url <FeedDeadLetterQueue URL> --bus local-feed

Each message is deleted only when every record it describes is published; the others stay in the
queue and are listed with the reason. Exit code 0 when the queue was emptied of what was read,
1 when messages were left.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from lib.feed import bus, redrive


def _stack(session: Any, name: str) -> tuple[dict[str, str], dict[str, str]]:
    """(outputs, parameters) of a deployed stack."""
    stack = session.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    return outputs, parameters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Publish the change-feed batches described in the feed's "
                                                 "dead-letter queue (their records read again from the stream).")
    parser.add_argument("--stack", help="the deployed stack (its outputs name the queue and the bus)")
    parser.add_argument("--region")
    parser.add_argument("--queue-url", help="the feed's dead-letter queue (output FeedDeadLetterQueueUrl)")
    parser.add_argument("--bus", help="the feed's bus (output FeedBusName)")
    parser.add_argument("--table", help="the table (output TableName): a service's end whose cascade is read "
                                        "reads its active children there")
    parser.add_argument("--source", help=f"the events' source (parameter FeedEventSource; default {bus.DEFAULT_SOURCE})")
    parser.add_argument("--limit", type=int, help="re-drive at most this many messages")
    parser.add_argument("--dry-run", action="store_true",
                        help="only check that the records of each message can still be read; publish nothing")
    args = parser.parse_args(argv)

    import boto3

    session = boto3.session.Session(region_name=args.region)
    outputs, parameters = _stack(session, args.stack) if args.stack else ({}, {})
    queue_url = args.queue_url or outputs.get("FeedDeadLetterQueueUrl")
    bus_name = args.bus or outputs.get("FeedBusName")
    if not queue_url or not bus_name:
        parser.error("name the stack (--stack), or the queue and the bus (--queue-url, --bus)")
    source = args.source or parameters.get("FeedEventSource") or bus.DEFAULT_SOURCE
    table = args.table or outputs.get("TableName")
    if table:
        os.environ["TABLE_NAME"] = table
        if args.region:
            os.environ.setdefault("AWS_DEFAULT_REGION", args.region)
    from lib.rules.feed import active_children

    report = redrive.redrive(session.client("sqs"), queue_url, session.client("dynamodbstreams"),
                             bus.Destination(bus_name, source), session.client("events"),
                             limit=args.limit, dry_run=args.dry_run, read=active_children if table else None)
    print("\n".join(report.lines()))
    return 1 if report.left else 0


if __name__ == "__main__":
    sys.exit(main())
