"""The feature store port: what the functions need from the tables, and the domain errors.

Two implementations: `features.dynamodb.DynamoStore` (boto3, in the functions) and
`features.memory_store.MemoryStore` (tests, offline tools, the benchmarks; it bills as DynamoDB does).
Every write is a whole-row PutItem conditional on the version the row was read at; there are no
transactions (each row has its own exactly-once record, see docs/processing.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple, Protocol

from streamrec_core.features.codec import Row
from streamrec_core.features.counters import CounterRow
from streamrec_core.features.keys import Key
from streamrec_core.features.trending import PartialRow

# What a conditional write came to.
WRITTEN: Final = "written"  # stored with version + 1 (the row object's version was bumped)
CONFLICT: Final = "conflict"  # the stored version differs: someone else wrote it; re-read and redo
THROTTLED: Final = "throttled"  # capacity: nothing stored; retry later


class Unreadable(NamedTuple):
    """A stored item that does not decode as its row (corrupted by hand, or an unknown format).

    Readers decide: the hot path fails the batch on it (the mapping retries, bisects, gives the record up
    to the on-failure queue for redrive once the row is fixed); the branches wait as for a record the hot
    path has not applied; serve answers as for an absent row.
    """

    key: Key
    reason: str


class StoreError(RuntimeError):
    """A feature-store request failed for a reason retrying will not fix."""


class Throttled(StoreError):
    """A read was refused for capacity reasons after retries."""


class RowStore(Protocol):
    def get_many(self, keys: Iterable[Key], *, consistent: bool) -> dict[Key, Row | Unreadable | None]:
        """The rows of `keys` (None when absent, Unreadable when the stored item does not decode)."""
        ...

    def put_many(self, rows: Sequence[Row], *, conditional: bool = True) -> dict[Key, str]:
        """Write each row conditional on its version (0: must not exist yet); the outcome per key.

        `conditional=False` overwrites whatever is stored (derived rows, e.g. merged trending lists).
        """
        ...

    def query_partials(self) -> list[PartialRow]:
        """Every shard's trending partial."""
        ...

    def query_counters(self, experiment_id: str) -> list[CounterRow]:
        """Every variant's counters of one experiment."""
        ...
