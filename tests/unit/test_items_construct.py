"""Entities read from the table are built by lib.store.items' own `model_construct` (done once per
class, not per field of every entity): it must build exactly what pydantic's would."""

import pytest

from lib.store import items


def _everything(cls):
    """A plain item with every field of `cls` given (a value of a plausible type)."""
    values = {"type": cls.TYPE}
    for name, info in cls.model_fields.items():
        text = str(info.annotation)
        if "dict" in text:
            values[name] = {"1": 2}
        elif "list" in text:
            values[name] = ["x"]
        elif "int" in text:
            values[name] = 7
        elif "bool" in text:
            values[name] = True
        else:
            values[name] = f"{name}-value"
    return values


def _required_only(cls):
    full = _everything(cls)
    return {"type": cls.TYPE, **{n: full[n] for n, info in cls.model_fields.items() if info.is_required()},
            "unknown_attribute": 1}


def _same(built, expected):
    assert type(built) is type(expected)
    assert list(built.__dict__.items()) == list(expected.__dict__.items())  # values and field order
    assert built.model_fields_set == expected.model_fields_set
    assert built.__pydantic_extra__ == expected.__pydantic_extra__
    assert built.__pydantic_private__ == expected.__pydantic_private__
    assert built == expected


@pytest.mark.parametrize("cls", list(items.ENTITIES.values()), ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("shape", [_everything, _required_only])
def test_read_entity_is_what_model_construct_builds(cls, shape):
    item = shape(cls)
    expected = cls.model_construct(**{n: item[n] for n in cls.model_fields if n in item})
    _same(items.from_plain(item), expected)


@pytest.mark.parametrize("cls", list(items.ENTITIES.values()), ids=lambda cls: cls.__name__)
def test_mutable_defaults_are_not_shared_between_entities(cls):
    item = _required_only(cls)
    first, second = items.from_plain(item), items.from_plain(item)
    for name, value in first.__dict__.items():
        if isinstance(value, (dict, list, set)) and name not in item:
            assert value is not second.__dict__[name], name


def test_unknown_type_is_refused():
    with pytest.raises(ValueError, match="unknown type"):
        items.from_plain({"type": "nonsense"})


@pytest.mark.parametrize("cls", list(items.ENTITIES.values()), ids=lambda cls: cls.__name__)
def test_trusted_entity_is_what_model_construct_builds(cls):
    values = {n: v for n, v in _everything(cls).items() if n != "type"}
    _same(cls.trusted(**values), cls.model_construct(**values))


@pytest.mark.parametrize("cls", list(items.ENTITIES.values()), ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("shape", [_everything, _required_only])
def test_stored_item_decodes_to_the_entity_of_its_plain_values(cls, shape):
    """items.decode (a stored item straight to its entity, reads of services and pages) builds what
    decoding every attribute and then the entity builds; a field set later is recorded as set."""
    from lib.store.codec import encode_item

    stored = {**encode_item(shape(cls)), "PK": {"S": "p"}, "GSI1SK": {"N": "3"}, "not_a_field": {"L": [{"NULL": True}]}}
    built = items.decode(stored)
    _same(built, cls.model_construct(**{n: v for n, v in shape(cls).items() if n in cls.model_fields}))
    _same(built, items.from_plain(items.decode_item(stored)))
    built.op = "changed"  # as a start sets its token on the child it built
    assert "op" in built.model_fields_set


def test_stored_item_of_unknown_type_is_refused():
    with pytest.raises(ValueError, match="unknown type 'nonsense'"):
        items.decode({"type": {"S": "nonsense"}})
    assert items.decode(None) is None
