"""Publisher function: the table's stream -> the change feed's EventBridge bus (contract §10).

Invoked by the DynamoDB event source mapping of template.yaml (ReportBatchItemFailures on): it
answers the records it could not publish, and Lambda retries from the first of them. The bus and
the events' `source` come from EVENT_BUS_NAME and EVENT_SOURCE, read at init (a function without its
bus fails its init instead of dropping events); the EventBridge client is built at init too, so
SnapStart's snapshot holds it. The table is read for one kind of record only (a service's end whose
cascade is read: lib.store.events.cascade_read), with TABLE_NAME, on first need.
"""

from typing import Any

from lib.api.framework_imports import imports_done
from lib.feed import bus, publisher
from lib.observability import logger, metrics

imports_done()  # imported: the collector, paused by handlers/__init__.py, resumes (before an init that may fail)
destination = bus.Destination.from_environment()
bus.events_client()


def active_children(pk: str) -> list[dict[str, Any]]:
    """A conversation's active states and tasks, read only for a service's end without a trusted
    summary (its cascade): the store is imported on that first need, not at init."""
    from lib.rules.feed import active_children as read

    return read(pk)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return publisher.handle(event, context, destination, read=active_children)
