"""The store side of an import (contract §11): conversations brought from another Context Services
stored exactly as the API stores them (the typed items of lib.store.items, every index key and TTL
derived by them), in as few requests as DynamoDB allows, never visible half-written.

* **Existence**: the service items of a batch of conversations, 100 keys a BatchGetItem; the
  conversations that exist are read whole (one consistent Query each, at once), so the caller can
  tell "already imported" from "another conversation with this id".
* **Writes**: BatchWriteItem of 25 items, across conversations. A conversation is invisible until
  its service item exists (every read, list, export and purge starts from the service item), so its
  states and tasks are sent first and its service item only once every one of them has been
  acknowledged. The service item then goes in the next request, beside other conversations' children,
  so requests stay full; a service item never shares a request with its own children (DynamoDB may
  apply part of a request and hand the rest back as unprocessed).
* **Never over another conversation**: BatchWriteItem takes no condition; the caller writes only
  conversations whose service item it has just found absent.
* **Never erased by an older deletion**: an id whose key holds an ErasedService (a DELETE or purge of
  a conversation with that id, its erasure still pending) is first taken over (take_over_erasure):
  the fence moves to the import, so the pending erasure leaves the id alone, and the old items are
  removed before the import writes its own. Children written before an interruption
  stay invisible (no service item) and are written again, identically, by the resumed run.
* **Throttling**: a refused request (ProvisionedThroughputExceeded, ThrottlingException,
  RequestLimitExceeded) or one that hands items back unprocessed is sent again after a jittered,
  growing pause, and the pace is told so that it slows the write rate (adaptive back-off); botocore's
  own retries (standard mode) come first.
* **Change feed**: a service item is written without events (`seq` 0: the feed publishes nothing), or,
  when the import is asked for them, with the conversation's history as the feed reads it from any
  write of a service item (`ev`, the events in order; `seq`, their number).
* **Counts**: the service item carries its active children's count and checksum (`open`, `open_sum`)
  and, when it fits, their summary (`act`, `ax`), as the API's own writes keep them
  (lib.store.recording.record_whole), so that ending it is one write like any other.
* **TTLs** are the store's: the service item's come from its expiration (ServiceItem.new), its
  children get the service's `children_ttl` here, as a start gives them.

The import's other uses of the AWS SDK are here too, so that only lib/store imports it: export files
in S3 (listed, read from a byte offset) and SigV4 signatures for a deployed Context Services.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import ClientError

from lib.errors import PayloadTooLarge
from lib.store import erasure, recording, table
from lib.store import keys as K
from lib.store.codec import decode_item, encode_item
from lib.store.concurrency import parallel
from lib.store.expressions import Query
from lib.store.items import Child, ServiceItem, from_plain
from lib.store.records import ErasedService

BATCH_ITEMS = table.BATCH_WRITE_LIMIT
THROTTLING = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
TRANSIENT = {"InternalServerError", "ServiceUnavailable", "InternalFailure"}
ATTEMPTS = 12  # sends of one request before the import stops (resumable from its checkpoint)
BACKOFF_BASE_S, BACKOFF_CAP_S = 0.05, 10.0


class Pace(Protocol):
    """How fast the writer may go (lib.migration.pace): `wait(n)` before sending n items; `throttled()`
    when DynamoDB pushed back; `written(n)` when n items were acknowledged."""

    def wait(self, items: int) -> None: ...

    def throttled(self) -> None: ...

    def written(self, items: int) -> None: ...


class WritesRefused(Exception):
    """DynamoDB kept refusing a request after every attempt: the import stops (it resumes from its
    checkpoint when run again)."""


# ---------------------------------------------------------------- what is there already


def table_problem() -> str | None:
    """Why the target table cannot take an import (None: it can): missing, unreachable, no access."""
    try:
        status = table.call("describe_table", TableName=table.table_name())["Table"].get("TableStatus")
    except ClientError as error:
        return f"{error.response.get('Error', {}).get('Code', '')}: {error.response.get('Error', {}).get('Message', '')}"
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None if status in ("ACTIVE", "UPDATING", None) else f"table {table.table_name()} is {status}"


def stored_services(tenant: str, service_ids: Sequence[str]) -> dict[str, ServiceItem]:
    """The service items of these ids that exist in the tenant (strongly consistent)."""
    return look_up(tenant, service_ids)[0]


def look_up(tenant: str, service_ids: Sequence[str]) -> tuple[dict[str, ServiceItem], set[str]]:
    """One read of these ids' service keys (strongly consistent): the services that exist, and the
    ids of deleted conversations still being erased (their ErasedService: see take_over_erasure)."""
    keys = [K.service_key(tenant, sid) for sid in service_ids]
    found: dict[str, ServiceItem] = {}
    erased: set[str] = set()
    for item in table.get_many(keys).values():
        entity = from_plain(item)
        if isinstance(entity, ServiceItem):
            found[entity.service_id] = entity
        elif isinstance(entity, ErasedService):
            erased.add(entity.service_id)
    return found, erased


def take_over_erasure(tenant: str, service_id: str, token: str) -> int | None:
    """Before writing `service_id` where a deleted conversation with that id is still being erased:
    stop that erasure and remove the old items now (lib.store.erasure.take_over), so that no
    older deletion ever removes what the import writes. Returns the old items removed; None when
    the id holds a service again (written meanwhile: not to be written over). ErasureHeld while
    the old conversation's items are kept for the change feed (lib.store.erasure.held_until)."""
    return erasure.take_over(tenant, service_id, token)


ErasureHeld = erasure.ErasureHeld


def stored_conversations(tenant: str, service_ids: Sequence[str]) -> dict[str, tuple[ServiceItem, list[Child]]]:
    """Whole conversations (service item and children) of these ids, one consistent Query each, at once."""

    def read(service_id: str) -> tuple[str, ServiceItem | None, list[Child]]:
        entities = [from_plain(item) for item in Query(K.conversation_pk(tenant, service_id), consistent=True).all()]
        service = next((e for e in entities if isinstance(e, ServiceItem)), None)
        return service_id, service, [e for e in entities if isinstance(e, Child)]

    results = parallel(*[lambda sid=sid: read(sid) for sid in service_ids])
    return {sid: (service, children) for sid, service, children in results if service is not None}


# ---------------------------------------------------------------- writing


@dataclass
class WriteStats:
    """What the writer sent: requests (every BatchWriteItem, retries included), items acknowledged,
    throttling answers, items sent again."""

    requests: int = 0
    items: int = 0
    throttled: int = 0
    resent_items: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _Conversation:
    service: dict[str, Any]  # the stored form of its service item
    waiting: int  # children not yet acknowledged
    done: Callable[[], None]
    failed: Callable[[str], None]
    broken: bool = False


@dataclass
class _Entry:
    item: dict[str, Any]  # attribute values, ready to send
    owner: _Conversation
    is_service: bool
    attempts: int = 0


@dataclass
class ConversationWriter:
    """Writes whole conversations in BatchWriteItem requests of 25 items (see the module doc).

    `add` queues a conversation; requests go out as soon as 25 items are ready, so a caller feeding
    conversations continuously gets full requests; `flush` sends what is left. `done()` is called once
    a conversation's service item is acknowledged (it is then visible, whole); `failed(reason)` when
    DynamoDB refused one of its items for good (it stays invisible)."""

    pace: Pace
    sleep: Callable[[float], None] = time.sleep
    stats: WriteStats = field(default_factory=WriteStats)
    _ready: deque[_Entry] = field(default_factory=deque)

    def add(self, service: ServiceItem, children: Sequence[Child], done: Callable[[], None],
            failed: Callable[[str], None], events: list[dict[str, Any]] | None = None) -> None:
        """Queue a conversation. `events`: its change-feed history, carried by the service item's
        write (`ev`, `seq` = their number) for the feed to publish; None: nothing (`seq` stays 0)."""
        item = {**service.to_item(), **recording.record_whole(service, children)}
        if events is not None:
            item.update(ev=events, seq=len(events))
        owner = _Conversation(encode_item(item), len(children), done, failed)
        for child in children:
            child.expire_at = service.children_ttl  # erased with their service, never before it
        if children:
            self._ready.extend(_Entry(encode_item(child.to_item()), owner, False) for child in children)
        else:
            self._ready.appendleft(_Entry(owner.service, owner, True))
        while len(self._ready) >= BATCH_ITEMS:
            self._send_next()

    def flush(self) -> None:
        """Send everything queued, service items included (they become ready as their children are
        acknowledged)."""
        while self._ready:
            self._send_next()

    @property
    def queued(self) -> int:
        return len(self._ready)

    # ---- one request

    def _send_next(self) -> None:
        batch = [self._ready.popleft() for _ in range(min(BATCH_ITEMS, len(self._ready)))]
        batch = [entry for entry in batch if not entry.owner.broken]
        if not batch:
            return
        self.pace.wait(len(batch))
        self.stats.requests += 1
        try:
            response = table.call("batch_write_item", RequestItems={
                table.table_name(): [{"PutRequest": {"Item": entry.item}} for entry in batch]})
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in THROTTLING or code in TRANSIENT:
                if code in THROTTLING:
                    self.stats.throttled += 1
                    self.pace.throttled()
                self._again(batch, code)
                return
            self._one_by_one(batch, error.response.get("Error", {}).get("Message", "") or str(error))
            return
        except PayloadTooLarge as error:  # (table.call's name for an item over 400 KB)
            self._one_by_one(batch, str(error))
            return
        unprocessed = response.get("UnprocessedItems", {}).get(table.table_name(), [])
        returned = [decode_item(request["PutRequest"]["Item"]) or {} for request in unprocessed]
        keys = {(item["PK"], item["SK"]) for item in returned}
        back = [entry for entry in batch if (entry.item["PK"]["S"], entry.item["SK"]["S"]) in keys]
        self._acknowledged([entry for entry in batch if (entry.item["PK"]["S"], entry.item["SK"]["S"]) not in keys])
        if back:
            self.stats.throttled += 1
            self.pace.throttled()
            self._again(back, "unprocessed items")

    def _acknowledged(self, entries: list[_Entry]) -> None:
        self.stats.items += len(entries)
        self.pace.written(len(entries))
        for entry in entries:
            owner = entry.owner
            if entry.is_service:
                owner.done()
                continue
            owner.waiting -= 1
            if owner.waiting == 0 and not owner.broken:
                # Every child is stored: the service item goes in the very next request.
                self._ready.appendleft(_Entry(owner.service, owner, True))

    def _again(self, entries: list[_Entry], why: str) -> None:
        """Put entries back at the front after a growing, jittered pause."""
        attempt = max(entry.attempts for entry in entries) + 1
        if attempt >= ATTEMPTS:
            raise WritesRefused(f"DynamoDB refused a write {attempt} times ({why}); stopping")
        for entry in entries:
            entry.attempts = attempt
        self.stats.resent_items += len(entries)
        self.sleep(min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** attempt) * random.uniform(0.5, 1.0))
        self._ready.extendleft(reversed(entries))

    def _one_by_one(self, batch: list[_Entry], message: str) -> None:
        """A request refused for what it holds (an item over the size limit, ...): each item alone,
        so only the conversations whose items are refused fail."""
        if len(batch) == 1:
            entry = batch[0]
            entry.owner.broken = True
            entry.owner.failed(f"the store refused its {'service' if entry.is_service else 'child'} item: {message}")
            return
        saved = self._ready
        try:
            for entry in batch:
                self._ready = deque([entry])
                while self._ready:  # the item, then its service item if it was the last child
                    self._send_next()
        finally:
            self._ready = saved


# ---------------------------------------------------------------- the sources' AWS access


def s3_client(profile: str | None = None, region: str | None = None) -> Any:
    import boto3

    return boto3.Session(profile_name=profile, region_name=region).client("s3", config=table.CLIENT_CONFIG)


def s3_objects(client: Any, bucket: str, prefix: str) -> dict[str, int]:
    """Every object under `prefix`: key -> size. Raises SourceUnreadable."""
    names: dict[str, int] = {}
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            names.update({obj["Key"]: obj["Size"] for obj in page.get("Contents", [])})
    except Exception as error:
        raise SourceUnreadable(f"s3://{bucket}/{prefix}: cannot list ({error})") from None
    return names


def s3_read(client: Any, bucket: str, key: str, offset: int = 0) -> Any:
    """An object's bytes from `offset` (a ranged GET when resuming): a file-like stream."""
    try:
        extra = {"Range": f"bytes={offset}-"} if offset else {}
        return client.get_object(Bucket=bucket, Key=key, **extra)["Body"]
    except Exception as error:
        raise SourceUnreadable(f"s3://{bucket}/{key}: cannot read ({error})") from None


class SourceUnreadable(Exception):
    """An import's source cannot be read with the AWS credentials at hand."""


def execute_api_signer(region: str | None, profile: str | None = None, host: str = "") -> Any:
    """A function (method, url, headers) -> signed headers: SigV4 for API Gateway (`execute-api`)
    from the standard credential chain (environment, profile, SSO, role). The region: given, else
    the one in an execute-api host name, else the profile's."""
    import re

    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    session = botocore.session.Session(profile=profile)
    credentials = session.get_credentials()
    if credentials is None:
        raise SourceUnreadable("signing requests needs AWS credentials (environment, profile, SSO or role); none found")
    found = re.search(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$", host)
    region = region or (found.group(1) if found else None) or session.get_config_variable("region")
    if not region:
        raise SourceUnreadable("signing requests needs a region: --source-region")

    def sign(method: str, url: str, headers: dict[str, str]) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=b"", headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
        return dict(request.headers.items())

    return sign
