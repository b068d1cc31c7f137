"""moto 5.2.5's TransactWriteItems deep-copies whole tables: make it back up only the touched items.

`DynamoDBBackend.transact_write_items` takes a rollback copy with ``copy.deepcopy(self.tables[name])``
once per action in the transaction, so one call of 100 actions deep-copies the table 100 times: the
cost grows with the table, not the request. Replaying the 67,402 real events (tables of ~50,000 items)
through moto in-process took 13 s of CPU for the first batch of 500 and 70 s for the third, and 15 GB of
memory before it was stopped. AWS has no such cost, and the write *counts* the benchmarks report do not
depend on it, but the time they take does.

`fast_transactions()` patches, for the duration of a block, moto's DynamoDB module so that copying a
whole Table returns the table itself (moto's own rollback becomes a no-op), and backs up the items the
transaction touches instead, restoring them if moto raises. Conditions, conflicts and cancellation
reasons are still moto's own code. Only the benchmarks use it; the same idea would speed up the local
emulator's moto server (see BENCHMARKS.md).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any


class _TableIdentityCopy:
    """Stands in for the `copy` module inside moto.dynamodb.models: a Table 'copy' is the table itself."""

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if isinstance(value, self._table_type):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def _key_of(backend: Any, op_type: str, op: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    table_name = op.get("TableName")
    if not table_name or table_name not in backend.tables:
        return None
    if op_type != "Put":
        return table_name, op.get("Key", {})
    table = backend.tables[table_name]
    attrs = op.get("Item", {})
    if table.hash_key_attr not in attrs:
        return None
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None and table.range_key_attr in attrs:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return table_name, key


@contextlib.contextmanager
def fast_transactions() -> Iterator[None]:
    """Within the block, moto's TransactWriteItems backs up touched items instead of whole tables."""
    import moto.dynamodb.models as models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items
    original_copy = models.copy

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        backups: list[tuple[str, dict[str, Any], Any]] = []
        for action in transact_items:
            if len(action) != 1:
                continue  # moto raises its own error for this below
            ((op_type, op),) = action.items()
            found = _key_of(self, op_type, op)
            if found is None:
                continue
            table_name, key = found
            try:
                current = self.get_item(table_name, key)
            except Exception:
                current = None  # moto reports the bad key itself
            backups.append((table_name, key, copy.deepcopy(current)))
        try:
            original(self, transact_items)
        except BaseException:
            for table_name, key, item in reversed(backups):
                if item is None:
                    with contextlib.suppress(Exception):
                        self.delete_item(table_name, key)
                else:
                    self.tables[table_name].put_item(item.to_json()["Attributes"])
            raise

    models.copy = _TableIdentityCopy(Table)  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    try:
        yield
    finally:
        DynamoDBBackend.transact_write_items = original  # type: ignore[method-assign]
        models.copy = original_copy
