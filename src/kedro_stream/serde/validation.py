"""A record against its Avro schema: a quick check for flat records, fastavro for the rest.

fastavro's ``validate`` walks the schema afresh for every record (about 5 µs for a
nine-field payment), a sizeable share of a JSON micro-batch. Most stream records are flat
records of primitives, so a check specialised once per schema settles them with one type
lookup per field. It is conservative: it accepts only what fastavro accepts, and anything it
is unsure of (a missing field, a logical or nested type, a failure) goes to fastavro, which
stays the authority and writes the error message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastavro.const import INT_MAX_VALUE, INT_MIN_VALUE, LONG_MAX_VALUE, LONG_MIN_VALUE

# Exact Python types fastavro accepts for each primitive (bool is not an int for Avro).
_TYPES: dict[str, tuple[type, ...]] = {
    "null": (type(None),),
    "boolean": (bool,),
    "string": (str,),
    "int": (int,),
    "long": (int,),
    "float": (float, int),
    "double": (float, int),
}
_RANGES = {"int": (INT_MIN_VALUE, INT_MAX_VALUE), "long": (LONG_MIN_VALUE, LONG_MAX_VALUE)}
_NOT_A_VALUE = object()
_FieldCheck = tuple[str, frozenset[type], tuple[int, int] | None]


def quick_check(schema: dict[str, Any]) -> Callable[[dict[str, Any]], bool] | None:
    """A predicate that is True only for records fastavro would accept; ``None`` when the
    schema is not a flat record of primitives (and optional primitives)."""
    if schema.get("type") != "record":
        return None
    checks: list[_FieldCheck] = []
    for field in schema["fields"]:
        check = _field_check(field["type"])
        if check is None:
            return None
        checks.append((field["name"], *check))

    def accepts(record: dict[str, Any]) -> bool:
        if "-type" in record:  # fastavro's marker naming a record's type: its own rules
            return False
        for name, types, bounds in checks:
            value = record.get(name, _NOT_A_VALUE)
            if type(value) not in types:
                return False
            if bounds is not None and type(value) is int and not bounds[0] <= value <= bounds[1]:
                return False
        return True

    return accepts


def _field_check(avro_type: Any) -> tuple[frozenset[type], tuple[int, int] | None] | None:
    """A primitive name, or a union of ``null`` and one primitive."""
    branches = avro_type if isinstance(avro_type, list) else [avro_type]
    if branches == ["null"]:
        return frozenset(_TYPES["null"]), None
    named = [b for b in branches if b != "null"]
    if len(named) != 1 or not isinstance(named[0], str) or named[0] not in _TYPES:
        return None
    types = set(_TYPES[named[0]])
    if len(branches) == 2:  # null and one type
        types.add(type(None))
    elif len(branches) != 1:
        return None
    return frozenset(types), _RANGES.get(named[0])
