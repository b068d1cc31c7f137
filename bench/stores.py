"""Stores for the benchmarks, and the meter that attributes the in-memory store's DynamoDB bill.

- `CodecStore`: the hot path's `RowStore` with no bill and no I/O: rows are kept as the codec's DynamoDB
  items and decoded / encoded on every read / write, as `DynamoStore` does: what the function's CPU does
  per row besides the network (bench.process_throughput).
- `Meter`: a consumer's view of one shared `MemoryStore` (which bills as DynamoDB does): everything the
  consumer reads and writes is billed to its `Usage`, and every write counted per key and second
  (`KeyRates`: the hottest key). bench.scale gives the hot path, each aggregate branch and serve one each.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from streamrec_core.constants import ATTR_VERSION
from streamrec_core.ddb_size import item_size
from streamrec_core.features.codec import Row, from_item, key_of, to_item
from streamrec_core.features.counters import CounterRow
from streamrec_core.features.keys import Key, kind_of
from streamrec_core.features.memory_store import MemoryStore, read_units
from streamrec_core.features.store import CONFLICT, WRITTEN, Unreadable
from streamrec_core.features.trending import PartialRow

T = TypeVar("T")


class CodecStore:
    """Rows as the codec's items in a dict; reads decode, writes encode (version-checked). No bill."""

    def __init__(self, items: dict[Key, dict[str, Any]] | None = None) -> None:
        self.items: dict[Key, dict[str, Any]] = dict(items or {})

    def get_many(self, keys: Iterable[Key], *, consistent: bool) -> dict[Key, Row | Unreadable | None]:
        items = self.items
        found: dict[Key, Row | Unreadable | None] = {}
        for key in keys:
            item = items.get(key)
            found[key] = from_item(key, item) if item is not None else None
        return found

    def put_many(self, rows: Sequence[Row], *, conditional: bool = True) -> dict[Key, str]:
        outcomes: dict[Key, str] = {}
        items = self.items
        for row in rows:
            key = key_of(row)
            stored = items.get(key)
            version = int(stored[ATTR_VERSION]["N"]) if stored is not None else 0
            if conditional and version != row.version:
                outcomes[key] = CONFLICT
                continue
            items[key] = to_item(row, row.version + 1)
            row.version += 1
            outcomes[key] = WRITTEN
        return outcomes

    def query_partials(self) -> list[PartialRow]:
        return [row for row in self.rows().values() if isinstance(row, PartialRow)]

    def query_counters(self, experiment_id: str) -> list[CounterRow]:
        rows = self.rows().values()
        return [row for row in rows if isinstance(row, CounterRow) and row.experiment_id == experiment_id]

    def rows(self) -> dict[Key, Row]:
        return {key: from_item(key, item) for key, item in self.items.items()}


class Clock:
    """Simulated time in seconds (the stream's arrival clock): the merge schedule's and serve's cache's."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Usage:
    """What one consumer used of the shared store, as DynamoDB bills it, and its CPU."""

    write_units: float = 0.0
    read_units: float = 0.0
    puts: int = 0
    failed_puts: int = 0
    batch_gets: int = 0
    keys_read: int = 0
    queries: int = 0
    write_units_by_kind: Counter[str] = field(default_factory=Counter)
    # Read units are not whole: an eventually consistent read of up to 4 KB is half a unit.
    read_units_by_kind: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    sizes_by_kind: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    cpu_s: float = 0.0
    batches: int = 0

    def as_dict(self, events: int) -> dict[str, Any]:
        return {
            "write_units": self.write_units,
            "read_units": self.read_units,
            "write_units_per_event": round(self.write_units / events, 4),
            "read_units_per_event": round(self.read_units / events, 4),
            "puts": self.puts,
            "puts_per_event": round(self.puts / events, 4),
            "failed_puts": self.failed_puts,
            "batch_gets": self.batch_gets,
            "keys_read": self.keys_read,
            "queries": self.queries,
            "batches": self.batches,
            "cpu_s": round(self.cpu_s, 3),
            "write_units_per_event_by_kind": {
                k: round(v / events, 4) for k, v in self.write_units_by_kind.items()
            },
            "read_units_per_event_by_kind": {
                k: round(v / events, 4) for k, v in self.read_units_by_kind.items()
            },
        }


class KeyRates:
    """Writes per key: in total, in the busiest simulated second, and the write units they cost."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.writes: Counter[Any] = Counter()
        self.units: Counter[Any] = Counter()
        self.busiest: dict[Any, int] = {}
        self._second: dict[Any, tuple[int, int]] = {}

    def add(self, key: Any, units: int) -> None:
        self.writes[key] += 1
        self.units[key] += units
        second = int(self.clock.now)
        last, count = self._second.get(key, (second, 0))
        count = count + 1 if last == second else 1
        self._second[key] = (second, count)
        if count > self.busiest.get(key, 0):
            self.busiest[key] = count


def _size(item: dict[str, Any] | None) -> int:
    return item_size(item) if item is not None else 0


class Meter:
    """A consumer's RowStore: forwards to the shared MemoryStore and bills what it used to `usage`.

    Read units are attributed per row kind by the store's own rule (and checked against the store's
    bill); write units come from the store's bill, per kind.
    """

    def __init__(self, store: MemoryStore, usage: Usage, rates: KeyRates) -> None:
        self.store = store
        self.usage = usage
        self.rates = rates

    def get_many(self, keys: Iterable[Key], *, consistent: bool) -> dict[Key, Row | Unreadable | None]:
        wanted = list(dict.fromkeys(keys))
        items = self.store.items
        by_kind: defaultdict[str, float] = defaultdict(float)
        for key in wanted:
            by_kind[kind_of(key)] += read_units(_size(items.get(key)), consistent)
        before = self.store.bill.read_units
        found = self.store.get_many(wanted, consistent=consistent)
        billed = self.store.bill.read_units - before
        if abs(billed - sum(by_kind.values())) > 1e-6:
            raise AssertionError("meter and store disagree on read units")
        self.usage.read_units += billed
        for kind, units in by_kind.items():
            self.usage.read_units_by_kind[kind] += units
        self.usage.keys_read += len(wanted)
        self.usage.batch_gets += math.ceil(len(wanted) / 100)
        return found

    def put_many(self, rows: Sequence[Row], *, conditional: bool = True) -> dict[Key, str]:
        bill = self.store.bill
        before_units, before_failed = bill.write_units, bill.failed_puts
        before_kinds = Counter(bill.write_units_by_kind)
        old_sizes = {key_of(row): _size(self.store.items.get(key_of(row))) for row in rows}
        outcomes = self.store.put_many(rows, conditional=conditional)
        self.usage.write_units += bill.write_units - before_units
        self.usage.write_units_by_kind.update(bill.write_units_by_kind - before_kinds)
        self.usage.failed_puts += bill.failed_puts - before_failed
        self.usage.puts += len(rows)
        for key, outcome in outcomes.items():
            if outcome == WRITTEN:
                size = item_size(self.store.items[key])
                self.usage.sizes_by_kind[kind_of(key)].append(size)
                self.rates.add(key, max(1, math.ceil(max(size, old_sizes[key]) / 1024)))
        return outcomes

    def query_partials(self) -> list[PartialRow]:
        return self._query(self.store.query_partials, "partial")

    def query_counters(self, experiment_id: str) -> list[CounterRow]:
        return self._query(lambda: self.store.query_counters(experiment_id), "counter")

    def _query(self, call: Callable[[], list[T]], kind: str) -> list[T]:
        before = self.store.bill.read_units
        found = call()
        units = self.store.bill.read_units - before
        self.usage.read_units += units
        self.usage.read_units_by_kind[f"{kind} (Query)"] += units
        self.usage.queries += 1
        return found
