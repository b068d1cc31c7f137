"""The DynamoDB feature store: the only code that talks to DynamoDB about features.

Reads are BatchGetItem in chunks of 100 keys (unprocessed keys retried with backoff). Writes are
PutItem calls, each conditional on the row's version, sent concurrently from a small thread pool (a
batch writes hundreds of independent rows; one after another they would take seconds). botocore errors
become outcomes or domain errors by their *code*, never their message. The client is injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

from botocore.config import Config
from botocore.exceptions import ClientError

from streamrec_core.backoff import backoff_delay
from streamrec_core.constants import (
    ATTR_VERSION,
    DDB_BATCH_GET_MAX_KEYS,
    EXPERIMENT_PK_PREFIX,
    ITEMS_PK,
    ITEMS_SK,
    TRENDING_PARTIAL_PK,
    USERS_PK,
)
from streamrec_core.features.codec import DECODE_ERRORS, Row, from_item, key_of, to_item
from streamrec_core.features.counters import CounterRow
from streamrec_core.features.keys import ITEMS, USERS, Key, key_attributes
from streamrec_core.features.store import CONFLICT, THROTTLED, WRITTEN, StoreError, Throttled, Unreadable
from streamrec_core.features.trending import PartialRow

# Error codes (never message text) that mean "too much now, retry later".
THROTTLE_CODES: Final = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)
CONDITIONAL_CHECK_FAILED: Final = "ConditionalCheckFailedException"
DEFAULT_WRITERS: Final = 16
# The client of the functions that write rows (hot path, branches): botocore retries a throttled call a
# few times itself, the store and its callers add their own bounded retries, then hand the rest back to
# the event source mapping. Rows are written from DEFAULT_WRITERS threads: one connection each.
WRITER_CLIENT_CONFIG: Final = Config(
    retries={"total_max_attempts": 3, "mode": "standard"},
    connect_timeout=2,
    read_timeout=10,
    max_pool_connections=DEFAULT_WRITERS + 4,
)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@dataclass
class RequestCounts:
    """Requests made, by API call (the process metrics and benchmarks read these)."""

    batch_get: int = 0
    put: int = 0
    query: int = 0

    @property
    def writes(self) -> int:
        return self.put


class DynamoStore:
    def __init__(
        self,
        client: Any,
        users_table: str,
        items_table: str,
        *,
        writers: int = DEFAULT_WRITERS,
        max_unprocessed_retries: int = 5,
        backoff_base_s: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.users_table = users_table
        self.items_table = items_table
        self.max_unprocessed_retries = max_unprocessed_retries
        self.backoff_base_s = backoff_base_s
        self.sleep = sleep
        self.counts = RequestCounts()
        self._pool = (
            ThreadPoolExecutor(max_workers=writers, thread_name_prefix="put") if writers > 1 else None
        )

    def _table(self, key: Key) -> str:
        return self.users_table if key.table == USERS else self.items_table

    # --- reads -----------------------------------------------------------------------------------
    def get_many(self, keys: Iterable[Key], *, consistent: bool) -> dict[Key, Row | Unreadable | None]:
        wanted = list(dict.fromkeys(keys))
        found: dict[Key, Row | Unreadable | None] = dict.fromkeys(wanted)
        for start in range(0, len(wanted), DDB_BATCH_GET_MAX_KEYS):
            request: dict[str, Any] = {}
            for key in wanted[start : start + DDB_BATCH_GET_MAX_KEYS]:
                entry = request.setdefault(self._table(key), {"Keys": [], "ConsistentRead": consistent})
                entry["Keys"].append({name: {"S": value} for name, value in key_attributes(key).items()})
            self._batch_get(request, found)
        return found

    def _batch_get(self, request: dict[str, Any], found: dict[Key, Row | Unreadable | None]) -> None:
        attempt = 0
        while request:
            try:
                self.counts.batch_get += 1
                response = self.client.batch_get_item(RequestItems=request)
            except ClientError as error:
                raise _read_error(error) from error
            for table, items in response.get("Responses", {}).items():
                for item in items:
                    key = self._key_of(table, item)
                    found[key] = decoded(key, item)
            request = response.get("UnprocessedKeys") or {}
            if request:
                attempt += 1
                if attempt > self.max_unprocessed_retries:
                    raise Throttled("BatchGetItem left keys unprocessed after retries")
                self.sleep(backoff_delay(attempt, base=self.backoff_base_s))

    def _key_of(self, table: str, item: dict[str, Any]) -> Key:
        if table == self.users_table:
            return Key(USERS, item[USERS_PK]["S"])
        return Key(ITEMS, item[ITEMS_PK]["S"], item[ITEMS_SK]["S"])

    def _query(self, pk: str) -> list[tuple[Key, dict[str, Any]]]:
        found: list[tuple[Key, dict[str, Any]]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.items_table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": ITEMS_PK},
            "ExpressionAttributeValues": {":pk": {"S": pk}},
        }
        while True:
            try:
                self.counts.query += 1
                response = self.client.query(**kwargs)
            except ClientError as error:
                raise _read_error(error) from error
            found.extend((Key(ITEMS, pk, item[ITEMS_SK]["S"]), item) for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                return found
            kwargs["ExclusiveStartKey"] = last

    def query_partials(self) -> list[PartialRow]:
        rows = (decoded(key, item) for key, item in self._query(TRENDING_PARTIAL_PK))
        return [row for row in rows if isinstance(row, PartialRow)]

    def query_counters(self, experiment_id: str) -> list[CounterRow]:
        rows = (decoded(key, item) for key, item in self._query(EXPERIMENT_PK_PREFIX + experiment_id))
        return [row for row in rows if isinstance(row, CounterRow)]

    # --- writes ----------------------------------------------------------------------------------
    def put_many(self, rows: Sequence[Row], *, conditional: bool = True) -> dict[Key, str]:
        def put(row: Row) -> str:
            return self._put(row, conditional)

        if self._pool is None or len(rows) <= 1:
            return {key_of(row): put(row) for row in rows}
        outcomes = self._pool.map(put, rows)
        return {key_of(row): outcome for row, outcome in zip(rows, outcomes, strict=True)}

    def _put(self, row: Row, conditional: bool) -> str:
        expected = row.version
        request: dict[str, Any] = {"TableName": self._table(key_of(row)), "Item": to_item(row, expected + 1)}
        if conditional:
            request["ExpressionAttributeNames"] = {"#v": ATTR_VERSION}
            if expected == 0:
                request["ConditionExpression"] = "attribute_not_exists(#v)"
            else:
                request["ConditionExpression"] = "#v = :v"
                request["ExpressionAttributeValues"] = {":v": {"N": str(expected)}}
        try:
            self.counts.put += 1
            self.client.put_item(**request)
        except ClientError as error:
            code = error_code(error)
            if code == CONDITIONAL_CHECK_FAILED:
                return CONFLICT
            if code in THROTTLE_CODES:
                return THROTTLED
            raise StoreError(code or "unknown DynamoDB error") from error
        row.version = expected + 1
        return WRITTEN


def decoded(key: Key, item: dict[str, Any]) -> Row | Unreadable:
    """The row an item holds, or Unreadable saying why not."""
    try:
        return from_item(key, item)
    except DECODE_ERRORS as error:
        return Unreadable(key, f"{type(error).__name__}: {error}")


def _read_error(error: ClientError) -> StoreError:
    code = error_code(error)
    if code in THROTTLE_CODES:
        return Throttled(code)
    return StoreError(code or "unknown DynamoDB error")
