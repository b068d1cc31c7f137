"""In-memory feature stores for the benchmarks (the process logic's `StorePort`), and a counting client.

- `DictStore`: rows kept as the fold's own dicts, no marshalling: the process logic alone (decode,
  validate, aggregate) with no I/O at all.
- `MarshallingStore`: rows kept as DynamoDB typed JSON, converted with the feature store's own
  `to_item`/`from_item` on every read and commit: the CPU the real store spends besides the network.
  It also sizes every written item (write units).
- `CountingDynamoDB`: wraps a boto3 DynamoDB client and counts write and read API calls, items and
  write units, whatever code makes them (the feature store, a per-record baseline).

All of them count requests the way DynamoDB bills them: one commit = one TransactWriteItems request.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamrec_core.constants import ATTR_VERSION  # noqa: E402
from streamrec_core.ddb_size import item_size, read_units, write_units  # noqa: E402

import bench.common  # noqa: F401  (puts lambdas/ on sys.path, as Lambda has it)

WRITE_CALLS = ("batch_write_item", "transact_write_items", "put_item", "update_item", "delete_item")
READ_CALLS = ("batch_get_item", "get_item", "query", "scan", "transact_get_items")


@dataclass
class WriteTally:
    """Write requests, items written and write units (transactional items count double)."""

    requests: int = 0
    items: int = 0
    units: int = 0
    bytes: int = 0
    largest_item_bytes: int = 0
    by_call: dict[str, int] = field(default_factory=dict)
    # kind of row -> [items, write units, bytes]
    by_kind: dict[str, list[int]] = field(default_factory=dict)

    def add_item(self, size: int, *, transactional: bool, kind: str = "other") -> None:
        units = write_units(size, transactional=transactional)
        self.items += 1
        self.bytes += size
        self.units += units
        self.largest_item_bytes = max(self.largest_item_bytes, size)
        tally = self.by_kind.setdefault(kind, [0, 0, 0])
        tally[0] += 1
        tally[1] += units
        tally[2] += size

    def add_request(self, call: str) -> None:
        self.requests += 1
        self.by_call[call] = self.by_call.get(call, 0) + 1


class DictStore:
    """Rows by reference: reads return the stored dicts, commits store them. No copies, no marshalling."""

    def __init__(self) -> None:
        self.rows: dict[Any, dict[str, Any]] = {}
        self.reads = 0
        self.commits = 0
        self.items_written = 0

    def read(self, keys: Iterable[Any], *, consistent: bool = True) -> dict[Any, Any]:
        self.reads += 1
        rows = self.rows
        return {key: rows.get(key) for key in keys}

    def commit(self, writes: Sequence[tuple[Any, dict[str, Any], int]]) -> None:
        self.commits += 1
        self.items_written += len(writes)
        rows = self.rows
        for key, row, _expected in writes:
            rows[key] = row


class MarshallingStore:
    """Rows as DynamoDB typed JSON; every read deserializes, every commit serializes and sizes the items."""

    def __init__(self, *, size_items: bool = True) -> None:
        from streamrec_core.feature_store import from_item, to_item

        self._to_item = to_item
        self._from_item = from_item
        self.items: dict[Any, dict[str, Any]] = {}
        self.size_items = size_items
        self.reads = 0
        self.read_units = 0.0
        self.writes = WriteTally()

    def read(self, keys: Iterable[Any], *, consistent: bool = True) -> dict[Any, Any]:
        wanted = list(dict.fromkeys(keys))
        self.reads += (len(wanted) + 99) // 100  # BatchGetItem takes 100 keys
        found: dict[Any, Any] = {}
        for key in wanted:
            item = self.items.get(key)
            if item is None:
                found[key] = None
                continue
            found[key] = self._from_item(item)
            if self.size_items:
                self.read_units += read_units(item_size(item), consistent=consistent)
        return found

    def commit(self, writes: Sequence[tuple[Any, dict[str, Any], int]]) -> None:
        self.writes.add_request("transact_write_items")
        for key, row, expected in writes:
            item = self._to_item({**row, ATTR_VERSION: expected + 1})
            self.items[key] = item
            if self.size_items:
                self.writes.add_item(item_size(item), transactional=True, kind=row_kind(item))
            else:
                self.writes.items += 1


class CountingDynamoDB:
    """A boto3 DynamoDB client wrapper that counts every read and write request and sizes written items."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.writes = WriteTally()
        self.reads: dict[str, int] = {}
        self.read_units = 0.0
        self.items_read = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name in WRITE_CALLS:
            return self._counted_write(name, attribute)
        if name in READ_CALLS:
            return self._counted_read(name, attribute)
        return attribute

    def _counted_read(self, name: str, call: Any) -> Any:
        def wrapper(**kwargs: Any) -> Any:
            self.reads[name] = self.reads.get(name, 0) + 1
            response = call(**kwargs)
            if name == "batch_get_item":
                # A key that finds no item still costs the minimum read (as GetItem does).
                for table, request in kwargs["RequestItems"].items():
                    consistent = bool(request.get("ConsistentRead"))
                    unprocessed = len((response.get("UnprocessedKeys") or {}).get(table, {}).get("Keys", []))
                    items = response.get("Responses", {}).get(table, [])
                    missing = len(request["Keys"]) - unprocessed - len(items)
                    self.read_units += max(0, missing) * read_units(0, consistent=consistent)
                    for item in items:
                        self.items_read += 1
                        self.read_units += read_units(item_size(item), consistent=consistent)
            elif name == "get_item" and response.get("Item"):
                self.items_read += 1
                self.read_units += read_units(
                    item_size(response["Item"]), consistent=bool(kwargs.get("ConsistentRead"))
                )
            return response

        return wrapper

    def _counted_write(self, name: str, call: Any) -> Any:
        def wrapper(**kwargs: Any) -> Any:
            self.writes.add_request(name)
            for item, transactional in written_items(name, kwargs):
                self.writes.add_item(item_size(item), transactional=transactional, kind=row_kind(item))
            return call(**kwargs)

        return wrapper

    @property
    def read_requests(self) -> int:
        return sum(self.reads.values())


def row_kind(item: dict[str, Any]) -> str:
    """Which feature row a typed item is: user, item profile, trending (global/category), experiment."""
    from streamrec_core import constants as c

    if c.USERS_PK in item and c.ITEMS_PK not in item:
        return "user"
    pk = item.get(c.ITEMS_PK, {}).get("S")
    if pk is None:
        return "other"
    if pk.startswith(c.ITEM_PK_PREFIX):
        return "item profile"
    if pk == c.TRENDING_GLOBAL_PK:
        return "trending, global"
    if pk.startswith(c.TRENDING_CATEGORY_PK_PREFIX):
        return "trending, category"
    if pk.startswith(c.EXPERIMENT_PK_PREFIX):
        return "experiment"
    return "other"


def written_items(call: str, kwargs: dict[str, Any]) -> list[tuple[dict[str, Any], bool]]:
    """The items a write request writes, with whether they are billed as transactional.

    UpdateItem and DeleteItem are sized by their key only (a lower bound: DynamoDB bills the larger of the
    item before and after an update).
    """
    if call == "put_item":
        return [(kwargs["Item"], False)]
    if call in ("update_item", "delete_item"):
        return [(kwargs["Key"], False)]
    if call == "batch_write_item":
        items = []
        for requests in kwargs["RequestItems"].values():
            for request in requests:
                if "PutRequest" in request:
                    items.append((request["PutRequest"]["Item"], False))
                else:
                    items.append((request["DeleteRequest"]["Key"], False))
        return items
    if call == "transact_write_items":
        items = []
        for action in kwargs["TransactItems"]:
            ((kind, body),) = action.items()
            items.append((body.get("Item") or body.get("Key") or {}, True))
        return items
    return []
