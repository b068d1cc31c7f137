"""What Kinesis and DynamoDB publish to CloudWatch, measured inside the emulator's moto server.

AWS publishes per stream ``IncomingRecords``, ``IncomingBytes``, ``PutRecords.FailedRecords`` and
``WriteProvisionedThroughputExceeded``, and per table ``ConsumedReadCapacityUnits``,
``ConsumedWriteCapacityUnits``, ``ReadThrottleEvents`` and ``WriteThrottleEvents``: the stack's dashboard
and alarms read them. moto publishes the first two only (one CloudWatch datum per call, kept forever) and
nothing for DynamoDB. `apply()` (moto server process) replaces that with a `Meter` that sums each metric
per second; the local runtime reads it over HTTP (`ROUTE` on the moto server, acknowledging what it
recorded: `Meter.read`) once per monitor tick into its metric store, which feeds the console, the alarms
and moto's CloudWatch.

How the values are measured:
- Kinesis: records and bytes (data and partition key, as moto counts them) of every accepted
  PutRecord(s); moto neither throttles nor fails a record of an accepted call, so the failure metrics
  are an observed 0 with each call.
- DynamoDB, by its capacity rules (`streamrec_core.ddb_size`): a write costs 1 unit per started KB of the
  larger of the item before and after it (a failed condition still costs), 2 in a transaction; a read 1
  unit per started 4 KB (half when eventually consistent), a Query's or Scan's items summed before
  rounding, a missing item the minimum. BatchWriteItem and TransactWriteItems, which the stack does not
  send, count the item sent (the minimum for a delete, update or condition check), not the one replaced.
  moto never throttles: throttle events are 0 with every request.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

from streamrec_core.ddb_size import item_size, read_units, write_units

ROUTE = "/_local/service-metrics"
# The route's ?acknowledged=N: ASCII digits, short enough for int() ("²".isdigit() is true).
_BATCH_NUMBER = re.compile(r"[0-9]{1,18}")
KINESIS = "AWS/Kinesis"
DYNAMODB = "AWS/DynamoDB"
_CONDITION_FAILED = "ConditionalCheckFailedException"
# Batches kept for a reader that does not acknowledge them (the runtime reads one a second).
MAX_UNACKNOWLEDGED = 600

# (namespace, metric name, ((dimension, value), ...), unit, epoch second)
_Key = tuple[str, str, tuple[tuple[str, str], ...], str, int]


class Meter:
    """Thread-safe sums per metric and second, read over HTTP by one acknowledging reader.

    Each `read` seals the sums so far into a numbered batch and answers every batch not yet
    acknowledged; a batch goes when a later read acknowledges its number. So a reader whose answer was
    lost (a timeout while the server is slow) gets it again, and a second reader that does not
    acknowledge (a curl of the route) sees the batches without taking them from the runtime.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._sums: dict[_Key, float] = {}
        self._unacknowledged: dict[int, dict[_Key, float]] = {}
        self._sealed = 0
        self._lock = threading.Lock()

    def add(self, namespace: str, name: str, dimensions: dict[str, str], value: float, unit: str) -> None:
        key = (namespace, name, tuple(sorted(dimensions.items())), unit, int(self._clock()))
        with self._lock:
            self._sums[key] = self._sums.get(key, 0.0) + value

    def read(self, acknowledged: int = 0) -> tuple[int, list[dict[str, Any]]]:
        """Forget the batches up to `acknowledged`, seal the sums since the last read; (the last batch's
        number, the datapoints of every batch not acknowledged, oldest first). Timestamps are whole
        epoch seconds."""
        with self._lock:
            for number in [n for n in self._unacknowledged if n <= acknowledged]:
                del self._unacknowledged[number]
            if self._sums:
                self._sealed += 1
                self._unacknowledged[self._sealed] = self._sums
                self._sums = {}
            while len(self._unacknowledged) > MAX_UNACKNOWLEDGED:  # nobody reads: keep the latest
                del self._unacknowledged[next(iter(self._unacknowledged))]
            sealed, batches = self._sealed, list(self._unacknowledged.values())
        return sealed, [_datapoint(key, value) for batch in batches for key, value in batch.items()]

    def drain(self) -> list[dict[str, Any]]:
        """Every datapoint not read yet, acknowledged at once (the one reader of in-process tests)."""
        sealed, datapoints = self.read()
        self.read(acknowledged=sealed)
        return datapoints

    def read_json(self, query: str) -> tuple[int, bytes]:
        """The route's answer to ``?acknowledged=N`` (N: the ``through`` of the reader's last answer)."""
        text = urllib.parse.parse_qs(query).get("acknowledged", ["0"])[0]
        if not _BATCH_NUMBER.fullmatch(text):
            rule = "acknowledged must be a batch number (1 to 18 digits 0-9)"
            return 400, json.dumps({"message": rule}).encode()
        through, datapoints = self.read(int(text))
        return 200, json.dumps({"through": through, "datapoints": datapoints}).encode()


def _datapoint(key: _Key, value: float) -> dict[str, Any]:
    namespace, name, dimensions, unit, second = key
    return {
        "namespace": namespace,
        "name": name,
        "dimensions": dict(dimensions),
        "unit": unit,
        "timestamp": second,
        "value": value,
    }


METER = Meter()


# --- Kinesis -------------------------------------------------------------------------------------------
def _send_stream_metrics(self: Any, stream_name: str, incoming_bytes: int, incoming_records: int) -> None:
    """Replaces KinesisBackend._send_stream_metrics (called once per accepted PutRecord(s))."""
    dims = {"StreamName": stream_name}
    METER.add(KINESIS, "IncomingRecords", dims, incoming_records, "Count")
    METER.add(KINESIS, "IncomingBytes", dims, incoming_bytes, "Bytes")
    METER.add(KINESIS, "PutRecords.FailedRecords", dims, 0, "Count")
    METER.add(KINESIS, "WriteProvisionedThroughputExceeded", dims, 0, "Count")


# --- DynamoDB ------------------------------------------------------------------------------------------
def _stored_size(backend: Any, table_name: str, key: dict[str, Any]) -> int:
    """Size of the item stored under `key` now (0 when there is none or the key is not valid)."""
    try:
        item = backend.get_item(table_name, key)
    except Exception:  # moto answers the bad key itself
        return 0
    return item_size(item.to_json()["Attributes"]) if item is not None else 0


# A single-item write -> its operation's name inside TransactWriteItems (same parameters).
_SINGLE_WRITES = {"PutItem": "Put", "UpdateItem": "Update", "DeleteItem": "Delete"}


def _writes_before(backend: Any, action: str, params: dict[str, Any]) -> dict[str, int]:
    """The stored size of the item each single-item write touches, read before the write."""
    if action not in _SINGLE_WRITES:
        return {}
    from local_emulator.moto_patches import touched_key  # moto: the server process only

    touched = touched_key(backend, _SINGLE_WRITES[action], params)
    return {params.get("TableName", ""): _stored_size(backend, *touched) if touched else 0}


def _write_units(
    backend: Any, action: str, params: dict[str, Any], before: dict[str, int]
) -> dict[str, float]:
    table = params.get("TableName", "")
    if action == "PutItem":
        return {table: write_units(max(before[table], item_size(params.get("Item", {}))))}
    if action == "UpdateItem":
        return {table: write_units(max(before[table], _stored_size(backend, table, params.get("Key", {}))))}
    if action == "DeleteItem":
        return {table: write_units(before[table])}
    units: dict[str, float] = {}
    if action == "BatchWriteItem":
        for name, requests in params.get("RequestItems", {}).items():
            for request in requests:
                size = item_size(request.get("PutRequest", {}).get("Item", {}))
                units[name] = units.get(name, 0.0) + write_units(size)
    elif action == "TransactWriteItems":
        for entry in params.get("TransactItems", []):
            for operation in entry.values():
                name = operation.get("TableName", "")
                units[name] = units.get(name, 0.0) + write_units(
                    item_size(operation.get("Item", {})), transactional=True
                )
    return units


def _read_units(action: str, params: dict[str, Any], answer: dict[str, Any]) -> dict[str, float]:
    consistent = bool(params.get("ConsistentRead"))
    if action == "GetItem":
        return {params["TableName"]: read_units(item_size(answer.get("Item", {})), consistent=consistent)}
    if action in ("Query", "Scan"):
        size = sum(item_size(item) for item in answer.get("Items", []))
        return {params["TableName"]: read_units(size, consistent=consistent)}
    units: dict[str, float] = {}
    if action == "BatchGetItem":
        unprocessed = answer.get("UnprocessedKeys", {})
        for name, request in params.get("RequestItems", {}).items():
            strong = bool(request.get("ConsistentRead"))
            items = answer.get("Responses", {}).get(name, [])
            asked = len(request.get("Keys", [])) - len(unprocessed.get(name, {}).get("Keys", []))
            found = sum(read_units(item_size(item), consistent=strong) for item in items)
            units[name] = found + max(0, asked - len(items)) * read_units(0, consistent=strong)
    return units


_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan"})


def _metered(call_action: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wraps DynamoHandler.call_action: the answer is moto's; the units are added to METER."""

    @functools.wraps(call_action)
    def call(handler: Any) -> Any:
        action = str(handler.headers.get("X-Amz-Target", "")).rpartition(".")[2]
        if action not in _WRITES and action not in _READS:
            return call_action(handler)
        params = getattr(handler, "params", None) or {}
        backend = handler.dynamodb_backend
        before = _writes_before(backend, action, params) if action in _WRITES else {}
        answer = call_action(handler)
        status, _headers, body = answer
        try:
            text = body.decode() if isinstance(body, bytes) else str(body)
            if status == 200 and action in _READS:
                kind, units = "Read", _read_units(action, params, json.loads(text))
            elif action in _WRITES and (status == 200 or _CONDITION_FAILED in text):
                kind, units = "Write", _write_units(backend, action, params, before)
            else:
                return answer  # refused before any work: AWS meters nothing either
            for table, value in units.items():
                dims = {"TableName": table}
                METER.add(DYNAMODB, f"Consumed{kind}CapacityUnits", dims, value, "Count")
                METER.add(DYNAMODB, f"{kind}ThrottleEvents", dims, 0, "Count")
        except Exception:  # metering must never change an answer
            pass
        return answer

    return call


_ORIGINALS: dict[str, Any] = {}


def apply() -> None:
    """Meter Kinesis and DynamoDB in this process (the moto server; after `moto_patches.apply`)."""
    if _ORIGINALS:
        return
    from moto.dynamodb.responses import DynamoHandler
    from moto.kinesis.models import KinesisBackend

    _ORIGINALS["call_action"] = DynamoHandler.call_action
    _ORIGINALS["_send_stream_metrics"] = KinesisBackend._send_stream_metrics
    DynamoHandler.call_action = _metered(DynamoHandler.call_action)  # type: ignore[method-assign]
    KinesisBackend._send_stream_metrics = _send_stream_metrics  # type: ignore[method-assign]


def remove() -> None:
    """Restore moto's own behaviour (in-process tests)."""
    if not _ORIGINALS:
        return
    from moto.dynamodb.responses import DynamoHandler
    from moto.kinesis.models import KinesisBackend

    DynamoHandler.call_action = _ORIGINALS.pop("call_action")  # type: ignore[method-assign]
    KinesisBackend._send_stream_metrics = _ORIGINALS.pop("_send_stream_metrics")  # type: ignore[method-assign]


@contextlib.contextmanager
def metered() -> Iterator[Meter]:
    """Meter for the duration of a block (in-process tests with `mock_aws`); yields a fresh METER."""
    already = bool(_ORIGINALS)
    apply()
    METER.drain()
    try:
        yield METER
    finally:
        if not already:
            remove()
