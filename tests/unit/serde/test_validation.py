"""The quick schema check never accepts a record fastavro refuses."""

from __future__ import annotations

import fastavro
import numpy as np
import pytest
from fastavro.validation import validate
from hypothesis import given, settings
from hypothesis import strategies as st

from kedro_stream.serde.validation import quick_check
from tests.records import PAYMENT, SCHEMAS

PAYMENT_SCHEMA = fastavro.parse_schema(
    __import__("json").loads((SCHEMAS / "payment.avsc").read_text())
)
EVERY_PRIMITIVE = fastavro.parse_schema(
    {
        "type": "record",
        "name": "Every",
        "fields": [
            {"name": "i", "type": "int"},
            {"name": "l", "type": "long"},
            {"name": "f", "type": "float"},
            {"name": "d", "type": "double"},
            {"name": "b", "type": "boolean"},
            {"name": "s", "type": "string"},
            {"name": "n", "type": "null"},
            {"name": "optional", "type": ["null", "long"], "default": None},
            {"name": "optional_last", "type": ["string", "null"]},
        ],
    }
)
ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63 - 1, 2**63, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.binary(max_size=3),
    st.just(np.int64(1)),
    st.just(np.float32(1.5)),
    st.lists(st.integers(), max_size=2),
)


VALID = {
    "payment": dict(PAYMENT),
    "every": {
        "i": 1,
        "l": 2,
        "f": 1.5,
        "d": 2.5,
        "b": True,
        "s": "x",
        "n": None,
        "optional": None,
        "optional_last": "y",
    },
}


def _variants(valid: dict) -> st.SearchStrategy[dict]:
    """A valid record with one or two fields replaced or removed, maybe with extra keys."""
    change = st.tuples(
        st.sampled_from([*valid, "-type", "extra"]), st.one_of(ANY_VALUE, st.just(_DROP))
    )
    return st.lists(change, min_size=1, max_size=2).map(lambda changes: _apply(valid, changes))


_DROP = object()


def _apply(valid: dict, changes: list[tuple[str, object]]) -> dict:
    record = dict(valid)
    for name, value in changes:
        if value is _DROP:
            record.pop(name, None)
        else:
            record[name] = value
    return record


@pytest.mark.parametrize(
    ("schema", "valid"),
    [(PAYMENT_SCHEMA, VALID["payment"]), (EVERY_PRIMITIVE, VALID["every"])],
    ids=["payment", "every"],
)
@settings(max_examples=800, deadline=None)
@given(data=st.data())
def test_quick_acceptance_implies_fastavro_acceptance(
    schema: dict, valid: dict, data: st.DataObject
) -> None:
    record = data.draw(_variants(valid))
    quick = quick_check(schema)
    assert quick is not None
    if quick(record):
        assert validate(record, schema, raise_errors=False), record


def test_it_settles_well_formed_records_without_fastavro() -> None:
    quick = quick_check(PAYMENT_SCHEMA)
    assert quick is not None
    assert quick(dict(PAYMENT))
    assert quick({**PAYMENT, "amount": 12, "extra": [1]})  # an int is a double; extras ignored
    assert not quick({**PAYMENT, "card_present": 1})
    assert not quick({k: v for k, v in PAYMENT.items() if k != "amount"})  # fastavro decides


@pytest.mark.parametrize(
    "field_type",
    [
        {"type": "long", "logicalType": "timestamp-millis"},
        {"type": "enum", "name": "E", "symbols": ["A"]},
        {"type": "array", "items": "long"},
        ["null", "string", "long"],
        "bytes",
    ],
)
def test_schemas_it_cannot_settle_are_left_to_fastavro(field_type: object) -> None:
    schema = fastavro.parse_schema(
        {"type": "record", "name": "R", "fields": [{"name": "x", "type": field_type}]}
    )
    assert quick_check(schema) is None
