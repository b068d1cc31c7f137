"""The previous design's rows as DynamoDB items, and an in-memory store billed as DynamoDB bills it.

`to_item`/`from_item`, `serialize`/`deserialize` and the error classes are the feature store's at 6aa4c9a
(lambdas/streamrec_core/feature_store.py): rows were typed attributes, their bulky collections compact
JSON strings. `BilledStore` is that design's `StorePort` (read / commit) in memory:

- a commit is one TransactWriteItems: every row in it costs 2 write units per started KB of the larger
  of the stored and the new item (DynamoDB Developer Guide, "Transactions: capacity management");
- a read is a consistent BatchGetItem (the process function's): 1 read unit per started 4 KB per key,
  a missing key the minimum 1.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamrec_core.ddb_size import item_size, read_units, write_units

from bench.old_design.constants import (
    ATTR_VERSION,
    EXPERIMENT_PK_PREFIX,
    ITEM_COUNTS,
    ITEM_COVISIT,
    ITEM_PK_PREFIX,
    ITEM_POPULARITY,
    TRENDING_CATEGORY_PK_PREFIX,
    TRENDING_ENTRIES,
    TRENDING_GLOBAL_PK,
    USER_AFFINITY,
    USER_BOUGHT,
    USER_COUNTS,
    USER_HISTORY,
    USER_RECENT_IDS,
    USER_WATERMARKS,
)

Key = tuple[str, str, str]
DDB_NUMBER_MIN = 1e-100
DDB_NUMBER_MAX = 1e125


class StoreError(RuntimeError):
    """A feature-store request failed for a reason retrying will not fix."""


class Throttled(StoreError):
    """DynamoDB refused the request for capacity reasons."""


class WriteConflict(StoreError):
    """A version condition failed: the rows changed since they were read."""


class TransactionTooLarge(StoreError):
    """The rows would exceed DynamoDB's 4 MB per transaction."""


def serialize(value: Any) -> dict[str, Any]:
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is bool:
        return {"BOOL": value}
    if kind is int:
        return {"N": str(value)}
    if kind is float:
        if not math.isfinite(value) or abs(value) > DDB_NUMBER_MAX:
            raise ValueError("DynamoDB numbers must be finite and below 1e125")
        if abs(value) < DDB_NUMBER_MIN:
            return {"N": "0"}
        return {"N": repr(value)}
    if kind is dict:
        return {"M": {str(k): serialize(v) for k, v in value.items()}}
    if kind is list or kind is tuple:
        return {"L": [serialize(v) for v in value]}
    if value is None:
        return {"NULL": True}
    raise TypeError(f"cannot store {kind.__name__} in a feature row")


def deserialize(attr: Mapping[str, Any]) -> Any:
    ((tag, value),) = attr.items()
    if tag == "S":
        return value
    if tag == "N":
        if "." in value or "e" in value or "E" in value:
            return float(value)
        return int(value)
    if tag == "M":
        return {k: deserialize(v) for k, v in value.items()}
    if tag == "L":
        return [deserialize(v) for v in value]
    if tag == "BOOL":
        return value
    if tag == "NULL":
        return None
    raise TypeError(f"unsupported attribute type {tag}")


JSON_ATTRIBUTES = frozenset(
    {
        USER_HISTORY,
        USER_AFFINITY,
        USER_COUNTS,
        USER_RECENT_IDS,
        USER_BOUGHT,
        USER_WATERMARKS,
        ITEM_POPULARITY,
        ITEM_COVISIT,
        ITEM_COUNTS,
        TRENDING_ENTRIES,
    }
)
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_loads = json.loads


def to_item(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: {"S": _dumps(value)} if name in JSON_ATTRIBUTES else serialize(value)
        for name, value in row.items()
    }


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, value in item.items():
        if name in JSON_ATTRIBUTES and "S" in value:
            row[name] = _loads(value["S"])
        else:
            row[name] = deserialize(value)
    return row


def kind_of(key: Key) -> str:
    """'user', 'item', 'trending, global', 'trending, category' or 'counter'."""
    table, pk, _sk = key
    if table == "users":
        return "user"
    if pk.startswith(ITEM_PK_PREFIX):
        return "item"
    if pk == TRENDING_GLOBAL_PK:
        return "trending, global"
    if pk.startswith(TRENDING_CATEGORY_PK_PREFIX):
        return "trending, category"
    if pk.startswith(EXPERIMENT_PK_PREFIX):
        return "counter"
    return "other"


@dataclass
class OldBill:
    write_units: float = 0.0
    read_units: float = 0.0
    transactions: int = 0
    items_written: int = 0
    batch_gets: int = 0
    keys_read: int = 0
    writes_by_key: Counter[Key] = field(default_factory=Counter)


class BilledStore:
    """The previous design's StorePort over a dict of typed items, billed per DynamoDB's rules."""

    def __init__(self) -> None:
        self.items: dict[Key, dict[str, Any]] = {}
        self.bill = OldBill()

    def read(self, keys: Iterable[Key], *, consistent: bool = True) -> dict[Key, Any]:
        wanted = list(dict.fromkeys(keys))
        self.bill.batch_gets += math.ceil(len(wanted) / 100)
        found: dict[Key, Any] = {}
        for key in wanted:
            item = self.items.get(key)
            self.bill.keys_read += 1
            self.bill.read_units += read_units(item_size(item) if item else 0, consistent=consistent)
            found[key] = from_item(item) if item is not None else None
        return found

    def commit(self, writes: Sequence[tuple[Key, Mapping[str, Any], int]]) -> None:
        for key, _row, expected in writes:
            stored = self.items.get(key)
            version = int(stored[ATTR_VERSION]["N"]) if stored is not None else 0
            if version != expected:
                raise WriteConflict(f"{key}: stored version {version}, expected {expected}")
        self.bill.transactions += 1
        for key, row, expected in writes:
            item = to_item({**row, ATTR_VERSION: expected + 1})
            stored = self.items.get(key)
            size = max(item_size(item), item_size(stored) if stored is not None else 0)
            self.bill.write_units += write_units(size, transactional=True)
            self.bill.items_written += 1
            self.bill.writes_by_key[key] += 1
            self.items[key] = item

    def item(self, key: Key) -> dict[str, Any] | None:
        return self.items.get(key)
