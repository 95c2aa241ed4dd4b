"""Expressions and Queries: placeholders for every name and value (`Expression`), UpdateItem clauses
(`Update`), and Queries of the table or an index that read about what they return (`Query`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lib.store.codec import decode_item, encode, encode_item
from lib.store.table import call, table_name

MAX_QUERY_LIMIT = 1000  # the largest Limit a filtered Query grows to (1 MB pages cap it anyway)


class Expression:
    """Placeholders for every name and value of a condition, update, key or filter expression
    (a plain class with slots: every write makes one or more)."""

    __slots__ = ("names", "values", "_placeholders")

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self._placeholders: dict[str, str] = {}  # name -> its placeholder (one per name)

    def name(self, path: str | tuple[str, ...]) -> str:
        """An attribute name, or a document path given as a tuple of segments (map keys may hold any
        character, dots and NULs included) -> `#n0.#n1`. A name used twice has one placeholder."""
        if type(path) is str:
            placeholder = self._placeholders.get(path)
            return placeholder if placeholder is not None else self._placeholder(path)
        if isinstance(path, str):
            return self._placeholder(path)
        return ".".join(self._placeholder(segment) for segment in path)

    def _placeholder(self, segment: str) -> str:
        placeholder = self._placeholders.get(segment)
        if placeholder is None:
            placeholder = self._placeholders[segment] = f"#n{len(self.names)}"
            self.names[placeholder] = segment
        return placeholder

    def value(self, value: Any) -> str:
        values = self.values
        placeholder = f":v{len(values)}"
        kind = type(value)
        values[placeholder] = {"S": value} if kind is str else {"N": str(value)} if kind is int else encode(value)
        return placeholder

    def apply(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.names:
            request["ExpressionAttributeNames"] = self.names
        if self.values:
            request["ExpressionAttributeValues"] = self.values
        return request


class Raw(str):
    """An update-expression operand written verbatim (e.g. `#n3 + :v4`) instead of as a value."""


@dataclass
class Update:
    """One UpdateItem (or transactional Update): SET / REMOVE / ADD clauses and a condition built with
    the same Expression, so placeholders never collide."""

    key: dict[str, str]
    sets: dict[str | tuple[str, ...], Any] = field(default_factory=dict)
    removes: list[str | tuple[str, ...]] = field(default_factory=list)
    adds: dict[str, int] = field(default_factory=dict)
    copies: dict[str, str] = field(default_factory=dict)  # SET target = source (attribute to attribute)
    conditions: list[str] = field(default_factory=list)
    expr: Expression = field(default_factory=Expression)

    def request(self) -> dict[str, Any]:
        e = self.expr
        name, value = e.name, e.value
        sets, removed = [], []
        for p, v in self.sets.items():
            if v is None:
                removed.append(p)
            else:
                sets.append(f"{name(p)} = {v if type(v) is Raw else value(v)}")
        sets += [f"{name(target)} = {name(source)}" for target, source in self.copies.items()]
        removes = [name(p) for p in self.removes] + [name(p) for p in removed]
        adds = [f"{name(p)} {value(v)}" for p, v in self.adds.items()]
        clauses = []
        if sets:
            clauses.append("SET " + ", ".join(sets))
        if removes:
            clauses.append("REMOVE " + ", ".join(removes))
        if adds:
            clauses.append("ADD " + ", ".join(adds))
        request = {"TableName": table_name(), "Key": encode_item(self.key), "UpdateExpression": " ".join(clauses)}
        if self.conditions:
            request["ConditionExpression"] = " AND ".join(f"({c})" for c in self.conditions)
        return e.apply(request)



@dataclass
class Query:
    """A Query of the table or one of its indexes: one partition, an optional sort-key range (from
    inclusive, to exclusive, or after a key), an optional filter. Reads in pages sized to what is
    still wanted, so a page reads about what it returns."""

    pk: str
    index: str | None = None
    sk_from: str | None = None  # inclusive
    sk_to: str | None = None  # exclusive
    sk_after: str | None = None  # exclusive lower bound (a resume key)
    filters: list[str] = field(default_factory=list)
    consistent: bool = False
    forward: bool = True
    expr: Expression = field(default_factory=Expression)
    attributes: tuple[str, ...] = ()  # projection (empty: every attribute)
    start_key: dict[str, Any] | None = None  # resume after this item (its table and index keys)
    decoded: frozenset[str] | None = None  # attributes decoded from each item read (None: all of them)
    # What each item read becomes (lib.store.items.decode: its entity); None: a dict of its `decoded`
    decoder: Callable[[dict[str, Any]], Any] | None = None

    def _decode(self, raw: dict[str, Any]) -> Any:
        return self.decoder(raw) if self.decoder is not None else decode_item(raw, self.decoded)

    @property
    def _key_names(self) -> tuple[str, str]:
        if self.index is None:
            return "PK", "SK"
        if self.index.startswith("LSI"):
            return "PK", f"{self.index}SK"
        return f"{self.index}PK", f"{self.index}SK"

    def request(self) -> dict[str, Any]:
        e = self.expr
        pk_name, sk_name = self._key_names
        condition = f"{e.name(pk_name)} = {e.value(self.pk)}"
        lower = self.sk_from if self.sk_after is None else self.sk_after
        if self.sk_after is not None and self.sk_from is not None:
            lower = max(self.sk_after, self.sk_from)
        exclusive_lower = self.sk_after is not None and lower == self.sk_after
        # Bounds are checked by the caller (lib.rules): DynamoDB refuses BETWEEN hi AND lo.
        if isinstance(self.sk_to, int) and lower is not None:
            # A numeric sort key: BETWEEN low AND to - 1 (to stays exclusive).
            if lower > self.sk_to - 1:
                return {}
            condition += f" AND {e.name(sk_name)} BETWEEN {e.value(lower)} AND {e.value(self.sk_to - 1)}"
        elif lower is not None and self.sk_to is not None:
            if lower >= self.sk_to:
                return {}
            # BETWEEN is inclusive: every stored sort key continues past a bare bound ("<time>#<id>"),
            # so a key at exactly sk_to's prefix sorts after sk_to itself and stays excluded; an
            # exclusive lower bound is a full stored key, excluded by the filter-free trick below.
            condition += f" AND {e.name(sk_name)} BETWEEN {e.value(lower + (chr(0) if exclusive_lower else ''))}"
            condition += f" AND {e.value(self.sk_to)}"
        elif lower is not None:
            op = ">" if exclusive_lower else ">="
            condition += f" AND {e.name(sk_name)} {op} {e.value(lower)}"
        elif self.sk_to is not None:
            condition += f" AND {e.name(sk_name)} < {e.value(self.sk_to)}"
        request: dict[str, Any] = {"TableName": table_name(), "KeyConditionExpression": condition,
                                   "ScanIndexForward": self.forward}
        if self.index:
            request["IndexName"] = self.index
        if self.consistent:
            request["ConsistentRead"] = True
        if self.filters:
            request["FilterExpression"] = " AND ".join(f"({f})" for f in self.filters)
        if self.attributes:
            request["ProjectionExpression"] = ", ".join(e.name(a) for a in self.attributes)
        if self.start_key:
            request["ExclusiveStartKey"] = encode_item(self.start_key)
        return e.apply(request)

    def sort_value(self, item: dict[str, Any]) -> Any:
        """The item's sort key in the table or index this Query reads."""
        return item[self._key_names[1]]

    def key_of(self, item: dict[str, Any]) -> dict[str, Any]:
        """The key that resumes this Query right after `item` (table keys and the index's keys)."""
        names = {"PK", "SK", *self._key_names}
        return {name: item[name] for name in names}

    def pages(self, page_size: int | None = None) -> Iterator[list[dict[str, Any]]]:
        """Every page of raw items (each page decoded), until the range is exhausted."""
        request = self.request()
        if not request:
            return
        while True:
            call_request = {**request, "Limit": page_size} if page_size else request
            response = call("query", **call_request)
            yield [self._decode(raw) for raw in response.get("Items", [])]
            start = response.get("LastEvaluatedKey")
            if not start:
                return
            request = {**request, "ExclusiveStartKey": start}

    def first(self, want: int) -> tuple[list[dict[str, Any]], bool]:
        """Up to `want` items, and whether more exist. Reads `want + 1` at most per call (the extra
        item tells whether a next page exists), continuing only when a filter left it short; then each
        further call may read twice as many as the one before (what a selective filter rejects costs
        a few calls, not one per page: a call's items read stay within twice what the answer needed)."""
        request = self.request()
        if not request:
            return [], False
        found: list[dict[str, Any]] = []
        limit = 0
        while True:
            limit = max(want - len(found) + 1, min(2 * limit, MAX_QUERY_LIMIT))
            response = call("query", **{**request, "Limit": limit})
            if self.decoder is not None:
                found.extend(self.decoder(raw) for raw in response.get("Items", []))
            else:
                found.extend(decode_item(raw, self.decoded) for raw in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if len(found) > want:
                return found[:want], True
            if not start:
                return found, False
            request = {**request, "ExclusiveStartKey": start}

    def all(self) -> list[dict[str, Any]]:
        return [item for page in self.pages() for item in page]
