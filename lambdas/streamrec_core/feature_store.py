"""Feature-table access: the only code that talks to DynamoDB about features.

Rows are the plain dicts of `streamrec_core.features`; this module converts them to DynamoDB's typed
JSON and back, enforces DynamoDB's limits in our own code (the emulator is looser than AWS), retries
unprocessed keys, counts the requests it makes, and turns botocore errors into domain errors by error
*code*: `Throttled` (retry later), `WriteConflict` (a condition failed: someone else wrote the row,
re-read and re-merge), `StoreError` (anything else).

The AWS client is injected (tests hand in a moto-backed or a fault-injecting one).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from streamrec_core.constants import (
    ATTR_VERSION,
    DDB_BATCH_GET_MAX_KEYS,
    DDB_TRANSACT_MAX_BYTES,
    DDB_TRANSACT_MAX_ITEMS,
    ITEM_COUNTS,
    ITEM_COVISIT,
    ITEM_POPULARITY,
    ITEMS_PK,
    ITEMS_SK,
    TRENDING_ENTRIES,
    USER_AFFINITY,
    USER_BOUGHT,
    USER_COUNTS,
    USER_HISTORY,
    USER_RECENT_IDS,
    USER_WATERMARKS,
    USERS_PK,
)
from streamrec_core.ddb_size import item_size
from streamrec_core.features import ITEMS, USERS, Key, Row, key_attributes

# Error codes (never message text) that mean "too much, slow down and retry".
THROTTLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        # Cancellation reason codes inside TransactionCanceledException.
        "ProvisionedThroughputExceeded",
        "ThrottlingError",
    }
)
# Cancellation reason codes that mean another writer got there first.
# DynamoDB numbers: magnitudes between 1e-130 and 9.99e125 (we flush below 1e-100 to zero).
DDB_NUMBER_MIN = 1e-100
DDB_NUMBER_MAX = 1e125
CONFLICT_CODES = frozenset({"ConditionalCheckFailed", "TransactionConflict"})
TRANSACTION_CANCELED = "TransactionCanceledException"
CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailedException"


class StoreError(RuntimeError):
    """A feature-store request failed for a reason retrying will not fix."""


class Throttled(StoreError):
    """DynamoDB refused the request for capacity reasons; the caller should back off and retry later."""


class WriteConflict(StoreError):
    """A version condition failed: the rows changed since they were read. Re-read, re-merge, retry."""


class TransactionTooLarge(StoreError):
    """The rows would exceed DynamoDB's 4 MB per transaction; nothing was sent. Commit fewer at once."""


def check_transaction_size(items: Iterable[Mapping[str, Any]]) -> None:
    """Raise TransactionTooLarge when typed-JSON items add up to more than one transaction may hold.

    AWS refuses such a transaction (ValidationException); the emulator does not, so the limit is
    enforced here, before anything is sent.
    """
    total = 0
    for item in items:
        total += item_size(item)
        if total > DDB_TRANSACT_MAX_BYTES:
            raise TransactionTooLarge(f"transaction items exceed {DDB_TRANSACT_MAX_BYTES} bytes")


# --- Typed JSON -------------------------------------------------------------------------------------
def serialize(value: Any) -> dict[str, Any]:
    """A Python value as a DynamoDB AttributeValue. Floats are written with repr (round-trips exactly)."""
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
            return {"N": "0"}  # a fully decayed score; DynamoDB cannot hold magnitudes below 1e-130
        return {"N": repr(value)}
    if kind is dict:
        return {"M": {str(k): serialize(v) for k, v in value.items()}}
    if kind is list or kind is tuple:
        return {"L": [serialize(v) for v in value]}
    if value is None:
        return {"NULL": True}
    raise TypeError(f"cannot store {kind.__name__} in a feature row")


def deserialize(attr: Mapping[str, Any]) -> Any:
    """A DynamoDB AttributeValue as a Python value (numbers: int when integral in form, else float)."""
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


# The bulky collections of a row (histories, id lists, neighbour and bucket maps) are stored as one
# compact JSON string each: rows are always read and written whole, JSON is encoded in C (5-10x faster
# than building typed AttributeValues in Python) and the item is smaller (fewer write units). Floats
# round-trip exactly (repr); numbers inside are not bound by DynamoDB's number range.
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
    """A row as a DynamoDB item (typed JSON)."""
    return {
        name: {"S": _dumps(value)} if name in JSON_ATTRIBUTES else serialize(value)
        for name, value in row.items()
    }


def from_item(item: Mapping[str, Any]) -> Row:
    """A DynamoDB item as a row."""
    row: Row = {}
    for name, value in item.items():
        if name in JSON_ATTRIBUTES and "S" in value:
            row[name] = _loads(value["S"])
        else:
            row[name] = deserialize(value)
    return row


@dataclass
class RequestCounts:
    """Requests made, by API call (the benchmark's "write requests per event" reads `writes`)."""

    batch_get: int = 0
    get: int = 0
    query: int = 0
    transact_write: int = 0

    @property
    def reads(self) -> int:
        return self.batch_get + self.get + self.query

    @property
    def writes(self) -> int:
        return self.transact_write


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def domain_error(error: ClientError) -> StoreError:
    """Map a botocore error to a domain error by its code (and cancellation reason codes)."""
    code = _code(error)
    if code == TRANSACTION_CANCELED:
        reasons = [str(r.get("Code", "")) for r in error.response.get("CancellationReasons", []) or []]
        if any(r in THROTTLE_CODES for r in reasons):
            return Throttled(f"transaction throttled: {reasons}")
        if any(r in CONFLICT_CODES for r in reasons):
            return WriteConflict(f"transaction canceled: {reasons}")
        return StoreError(f"transaction canceled: {reasons}")
    if code == CONDITIONAL_CHECK_FAILED:
        return WriteConflict(code)
    if code in THROTTLE_CODES:
        return Throttled(code)
    return StoreError(code or "unknown DynamoDB error")


class FeatureStore:
    """Reads and writes feature rows in the users and items tables."""

    def __init__(
        self,
        client: Any,
        users_table: str,
        items_table: str,
        *,
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

    def _table(self, key: Key) -> str:
        return self.users_table if key[0] == USERS else self.items_table

    def _key_of(self, table: str, item: Mapping[str, Any]) -> Key:
        if table == self.users_table:
            return (USERS, item[USERS_PK]["S"], "")
        return (ITEMS, item[ITEMS_PK]["S"], item[ITEMS_SK]["S"])

    # --- reads -----------------------------------------------------------------------------------
    def read(self, keys: Iterable[Key], *, consistent: bool = True) -> dict[Key, Row | None]:
        """Rows for `keys` (None when absent), with BatchGetItem in chunks of at most 100 keys."""
        wanted = list(dict.fromkeys(keys))
        found: dict[Key, Row | None] = dict.fromkeys(wanted)
        for start in range(0, len(wanted), DDB_BATCH_GET_MAX_KEYS):
            chunk = wanted[start : start + DDB_BATCH_GET_MAX_KEYS]
            request: dict[str, Any] = {}
            for key in chunk:
                table = self._table(key)
                entry = request.setdefault(table, {"Keys": [], "ConsistentRead": consistent})
                entry["Keys"].append({k: {"S": v} for k, v in key_attributes(key).items()})
            self._batch_get(request, found)
        return found

    def _batch_get(self, request: dict[str, Any], found: dict[Key, Row | None]) -> None:
        attempt = 0
        while request:
            try:
                self.counts.batch_get += 1
                response = self.client.batch_get_item(RequestItems=request)
            except ClientError as error:
                raise domain_error(error) from error
            for table, items in response.get("Responses", {}).items():
                for item in items:
                    found[self._key_of(table, item)] = from_item(item)
            request = response.get("UnprocessedKeys") or {}
            if request:
                attempt += 1
                if attempt > self.max_unprocessed_retries:
                    raise Throttled("BatchGetItem left keys unprocessed after retries")
                self.sleep(self.backoff_base_s * 2 ** (attempt - 1))

    def get(self, key: Key, *, consistent: bool = False) -> Row | None:
        """One row with GetItem."""
        try:
            self.counts.get += 1
            response = self.client.get_item(
                TableName=self._table(key),
                Key={k: {"S": v} for k, v in key_attributes(key).items()},
                ConsistentRead=consistent,
            )
        except ClientError as error:
            raise domain_error(error) from error
        item = response.get("Item")
        return from_item(item) if item else None

    def query_items(self, pk: str, *, limit: int = 1000) -> list[Row]:
        """All rows of one items-table partition (experiment variants), in sort key order."""
        rows: list[Row] = []
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
                raise domain_error(error) from error
            rows.extend(from_item(item) for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last or len(rows) >= limit:
                return rows
            kwargs["ExclusiveStartKey"] = last

    # --- writes ----------------------------------------------------------------------------------
    def commit(self, writes: Sequence[tuple[Key, Row, int]]) -> None:
        """Write rows atomically with ONE TransactWriteItems call.

        Each write is (key, row, expected_version): the row is stored with version expected+1 on the
        condition that the stored version is still `expected` (0 = the row must not exist yet). Raises
        WriteConflict when any condition fails, Throttled on capacity errors, TransactionTooLarge when the
        rows add up to more than DynamoDB's 4 MB per transaction (nothing was written in any of these).
        """
        if not writes:
            return
        if len(writes) > DDB_TRANSACT_MAX_ITEMS:
            raise ValueError(f"a transaction holds at most {DDB_TRANSACT_MAX_ITEMS} items, got {len(writes)}")
        actions = []
        for key, row, expected in writes:
            item = dict(row)
            item[ATTR_VERSION] = expected + 1
            put: dict[str, Any] = {"TableName": self._table(key), "Item": to_item(item)}
            if expected == 0:
                put["ConditionExpression"] = "attribute_not_exists(#v)"
                put["ExpressionAttributeNames"] = {"#v": ATTR_VERSION}
            else:
                put["ConditionExpression"] = "#v = :v"
                put["ExpressionAttributeNames"] = {"#v": ATTR_VERSION}
                put["ExpressionAttributeValues"] = {":v": {"N": str(expected)}}
            actions.append({"Put": put})
        check_transaction_size(action["Put"]["Item"] for action in actions)
        try:
            self.counts.transact_write += 1
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            raise domain_error(error) from error
