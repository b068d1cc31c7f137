"""DynamoDB item sizes and write/read units, computed from typed JSON (AttributeValues) by AWS's rules.

Rules (Amazon DynamoDB Developer Guide, "DynamoDB item sizes and formats"): an item's size is the sum of
its attribute names' UTF-8 bytes and its values' sizes; a string is its UTF-8 bytes; a binary its bytes
(given as bytes, or as base64 text the way the JSON API carries it); a number is about
1 byte per two significant digits plus 1 byte; a boolean or null is 1 byte; a list or map is 3 bytes plus
its elements, each element 1 byte more (a map element also its key's bytes).

Units: a standard write costs 1 write unit per started KB, a transactional write 2; a strongly
consistent read 1 read unit per started 4 KB, eventually consistent half that, transactional twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

KB = 1024
READ_UNIT_BYTES = 4 * KB


def number_size(text: str) -> int:
    """Bytes of a DynamoDB number given as its string form."""
    mantissa = text.lstrip("+-").lower().split("e", 1)[0]
    # "Leading and trailing zeroes are trimmed" (the decimal point does not count).
    digits = mantissa.replace(".", "").strip("0")
    return math.ceil(len(digits) / 2) + 1


def base64_length(text: str) -> int:
    """Bytes that base64 `text` decodes to (a binary value on the wire, as DynamoDB's JSON API sends it)."""
    return len(text) * 3 // 4 - (len(text) - len(text.rstrip("=")))


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one AttributeValue ({"S": ...}, {"N": ...}, {"M": ...}, ...)."""
    ((tag, inner),) = value.items()
    if tag == "S":
        return len(inner.encode("utf-8"))
    if tag == "N":
        return number_size(inner)
    if tag in ("BOOL", "NULL"):
        return 1
    if tag == "B":
        return len(inner) if isinstance(inner, bytes | bytearray) else base64_length(inner)
    if tag == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if tag == "M":
        return 3 + sum(len(k.encode("utf-8")) + value_size(v) + 1 for k, v in inner.items())
    if tag == "SS":
        return sum(len(s.encode("utf-8")) for s in inner)
    if tag == "NS":
        return sum(number_size(n) for n in inner)
    raise TypeError(f"unsupported attribute type {tag}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Bytes of an item in typed JSON: attribute names plus values."""
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def write_units(size_bytes: int, *, transactional: bool = False) -> int:
    """Write (request) units of writing an item of `size_bytes`: per started KB, doubled in a transaction."""
    units = max(1, math.ceil(size_bytes / KB))
    return 2 * units if transactional else units


def read_units(size_bytes: int, *, consistent: bool = True, transactional: bool = False) -> float:
    """Read (request) units of reading an item of `size_bytes` (per started 4 KB)."""
    units = max(1, math.ceil(size_bytes / READ_UNIT_BYTES))
    if transactional:
        return 2.0 * units
    return float(units) if consistent else units / 2
