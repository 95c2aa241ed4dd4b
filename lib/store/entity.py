"""The base of every typed item of the table (`Entity`: its keys, index keys and stored form), and how
an entity is made from values the code trusts or from a stored item without pydantic's per-field
work (`Construct`). lib.store.items holds the items themselves and the one decoder."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict

from lib.store.codec import decode_fields


class Entity(BaseModel):
    """An item of the table. Subclasses declare `TYPE`, `key()` and `index_keys()`."""

    model_config = ConfigDict(extra="ignore", defer_build=True)
    TYPE: ClassVar[str]

    expire_at: int | None = None  # the table's TTL attribute (epoch seconds)
    op: str | None = None  # token of the request that wrote it last (recognises our own retried write)

    @classmethod
    def trusted(cls, **values: Any) -> Self:
        """An entity of values the code computed from input already validated (the request's body by
        the resolver, the rest by the rules), built without validating them again: what
        `model_construct` builds, at the cost of a read's decoding (see `Construct`)."""
        entity = Construct.of(cls).build(values)
        assert isinstance(entity, cls)
        return entity

    def key(self) -> dict[str, str]:
        raise NotImplementedError

    def index_keys(self) -> dict[str, str]:
        return {}

    def to_item(self) -> dict[str, Any]:
        """The stored form: keys, type, fields (absent when None) and index keys."""
        fields = {name: value for name, value in self.__dict__.items() if value is not None}
        return {**self.key(), "type": self.TYPE, **fields, **self.index_keys()}


class Construct:
    """pydantic's `model_construct` for one entity class, with the work that depends only on the
    class done once: which fields take a default, and which default must be made afresh. Every read
    builds its entities this way (a page builds a hundred), and `model_construct` re-derives that
    for every field of every entity. The result is the same: the same `__dict__` (fields in
    declaration order), fields set, no extra and no private attributes
    (tests/unit/test_items_construct.py compares the two for every entity class)."""

    _plans: ClassVar[dict[type[Entity], Construct]] = {}

    def __init__(self, cls: type[Entity]):
        if cls.__pydantic_post_init__ or cls.model_config.get("extra") == "allow" or any(
                f.alias or f.validation_alias for f in cls.model_fields.values()):
            raise TypeError(f"{cls.__name__}: model_construct's other paths are not reproduced")
        self.cls = cls
        # (name, how its default is had, the default or what makes it), in declaration order
        self.fields: list[tuple[str, int, Any]] = []
        for name, info in cls.model_fields.items():
            default = info.default
            if info.is_required():
                self.fields.append((name, REQUIRED, None))
            elif info.default_factory is None and isinstance(default, _IMMUTABLE):
                self.fields.append((name, SHARED, default))
            elif info.default_factory is None and type(default) in (dict, list, set) and not default:
                self.fields.append((name, MADE, type(default)))  # pydantic copies an empty one: a new one
            else:
                self.fields.append((name, MADE, lambda info=info, values=None: info.get_default(
                    call_default_factory=True, validated_data=values or {})))
        self.names = frozenset(name for name, _, _ in self.fields)

    @classmethod
    def of(cls, entity: type[Entity]) -> Construct:
        plan = cls._plans.get(entity)
        if plan is None:
            plan = cls._plans[entity] = cls(entity)
        return plan

    def build(self, item: dict[str, Any]) -> Entity:
        values: dict[str, Any] = {}
        for name, how, default in self.fields:
            if name in item:
                values[name] = item[name]
            elif how is SHARED:
                values[name] = default
            elif how is MADE:
                values[name] = default()
        return self._entity(values, item.keys() & self.names)

    def decode(self, raw: dict[str, Any]) -> Entity:
        """The entity of a stored item (attribute values), decoded field by field: what
        `build(decode_item(raw))` builds, without the intermediate dict of every attribute."""
        return self._entity(decode_fields(raw, self.fields), raw.keys() & self.names)

    def _entity(self, values: dict[str, Any], present: set[str]) -> Entity:
        entity = self.cls.__new__(self.cls)
        object.__setattr__(entity, "__dict__", values)
        object.__setattr__(entity, "__pydantic_fields_set__", present)
        object.__setattr__(entity, "__pydantic_extra__", None)
        object.__setattr__(entity, "__pydantic_private__", None)
        return entity


REQUIRED, SHARED, MADE = 0, 1, 2  # how a field's default is had (lib.store.codec.decode_fields reads them)
_IMMUTABLE = (str, int, float, bool, type(None), tuple, frozenset)
