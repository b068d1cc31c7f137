"""An in-memory feature store with DynamoDB's semantics and DynamoDB's bill.

Rows are stored as the codec's DynamoDB items, so what is measured is what DynamoDB would store. Writes
are conditional on the version, exactly as `DynamoStore` sends them. Billing follows the DynamoDB
Developer Guide ("DynamoDB read and write operations", "Item sizes"):

- a write costs 1 write unit per started KB of the larger of the old and the new item; a write whose
  condition fails costs the same ("Condition expressions": it depends on the size of the existing item
  or of the new one, e.g. 310 KB for a 310 KB new item over a 300 KB stored one);
- a read costs 1 read unit per started 4 KB when strongly consistent, half when eventually consistent;
  BatchGetItem bills every requested key as its own GetItem (a missing item still costs the minimum);
- a Query bills the sum of the items' sizes, rounded up to 4 KB once.

It also keeps, per key, how many writes it took and when (the benchmarks' hottest-key figure), and can
inject faults (`fault(operation, key)` returns "throttle", "conflict" or None) for the tests.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamrec_core.constants import ATTR_VERSION, EXPERIMENT_PK_PREFIX, TRENDING_PARTIAL_PK
from streamrec_core.ddb_size import KB, READ_UNIT_BYTES, item_size
from streamrec_core.features.codec import Row, from_item, key_of, new_row, to_item
from streamrec_core.features.counters import CounterRow
from streamrec_core.features.dynamodb import decoded
from streamrec_core.features.keys import ITEMS, Key, kind_of
from streamrec_core.features.store import CONFLICT, THROTTLED, WRITTEN, Throttled, Unreadable
from streamrec_core.features.trending import PartialRow

Fault = Callable[[str, Key], str | None]


@dataclass
class Bill:
    """Capacity used, as DynamoDB bills it, and the requests that used it."""

    write_units: float = 0.0
    read_units: float = 0.0
    puts: int = 0
    failed_puts: int = 0
    batch_gets: int = 0
    keys_read: int = 0
    queries: int = 0
    writes_by_key: Counter[Key] = field(default_factory=Counter)
    write_units_by_kind: Counter[str] = field(default_factory=Counter)
    item_bytes_written: list[int] = field(default_factory=list)


def write_units(size: int) -> int:
    return max(1, math.ceil(size / KB))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


class MemoryStore:
    def __init__(self, fault: Fault | None = None) -> None:
        self.items: dict[Key, dict[str, Any]] = {}
        self.bill = Bill()
        self.fault = fault or (lambda operation, key: None)
        self._lock = threading.Lock()

    # --- the RowStore port ------------------------------------------------------------------------
    def get_many(self, keys: Iterable[Key], *, consistent: bool) -> dict[Key, Row | Unreadable | None]:
        wanted = list(dict.fromkeys(keys))
        found: dict[Key, Row | Unreadable | None] = {}
        with self._lock:
            self.bill.batch_gets += math.ceil(len(wanted) / 100) if wanted else 0
            for key in wanted:
                if self.fault("read", key) == "throttle":
                    raise Throttled("injected read throttle")
                item = self.items.get(key)
                self.bill.keys_read += 1
                self.bill.read_units += read_units(item_size(item) if item else 0, consistent)
                found[key] = decoded(key, item) if item is not None else None
        return found

    def put_many(self, rows: Sequence[Row], *, conditional: bool = True) -> dict[Key, str]:
        outcomes: dict[Key, str] = {}
        with self._lock:
            for row in rows:
                outcomes[key_of(row)] = self._put(row, conditional)
        return outcomes

    def _put(self, row: Row, conditional: bool) -> str:
        key = key_of(row)
        fault = self.fault("write", key)
        if fault == "throttle":
            return THROTTLED
        if fault == "conflict":  # a concurrent writer rewrote the row unchanged: only its version moved
            self._bump(key)
        stored = self.items.get(key)
        old_size = item_size(stored) if stored is not None else 0
        version = int(stored[ATTR_VERSION]["N"]) if stored is not None else 0
        item = to_item(row, row.version + 1)
        size = item_size(item)
        if conditional and version != row.version:
            self.bill.failed_puts += 1
            self.bill.write_units += write_units(max(old_size, size))
            return CONFLICT
        units = write_units(max(old_size, size))
        self.bill.puts += 1
        self.bill.write_units += units
        self.bill.writes_by_key[key] += 1
        self.bill.write_units_by_kind[kind_of(key)] += units
        self.bill.item_bytes_written.append(size)
        self.items[key] = item
        row.version += 1
        return WRITTEN

    def _bump(self, key: Key) -> None:
        stored = self.items.get(key)
        if stored is None:
            self.items[key] = to_item(new_row(key), 1)
        else:
            stored[ATTR_VERSION] = {"N": str(int(stored[ATTR_VERSION]["N"]) + 1)}

    def _query(self, prefix: str, exact: bool) -> list[tuple[Key, dict[str, Any]]]:
        with self._lock:
            found = [
                (key, item)
                for key, item in sorted(self.items.items())
                if key.table == ITEMS and (key.pk == prefix if exact else key.pk.startswith(prefix))
            ]
            self.bill.queries += 1
            size = sum(item_size(item) for _, item in found)
            self.bill.read_units += read_units(size, consistent=False)
        return found

    def query_partials(self) -> list[PartialRow]:
        rows = (from_item(key, item) for key, item in self._query(TRENDING_PARTIAL_PK, True))
        return [row for row in rows if isinstance(row, PartialRow)]

    def query_counters(self, experiment_id: str) -> list[CounterRow]:
        pk = EXPERIMENT_PK_PREFIX + experiment_id
        rows = (from_item(key, item) for key, item in self._query(pk, True))
        return [row for row in rows if isinstance(row, CounterRow)]

    # --- for tests and tools -------------------------------------------------------------------------
    def rows(self) -> dict[Key, Row]:
        """Every stored row, decoded (no bill)."""
        with self._lock:
            return {key: from_item(key, item) for key, item in self.items.items()}

    def row(self, key: Key) -> Row | None:
        item = self.items.get(key)
        return from_item(key, item) if item is not None else None
