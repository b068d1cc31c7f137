"""Small fixes that make moto's Kinesis and Lambda behave like AWS where the emulator depends on it.

Applied inside the emulator's moto server process (see `moto_server`), and available to in-process tests
through `patched()`. Each patch is a documented moto gap (moto 5.2.5):

1. Kinesis PutRecord(s) after a reshard: moto routes writes by the first shard whose hash range
   matches, which is the CLOSED parent, so children never receive data. AWS writes only to open shards.
2. Kinesis SplitShard / MergeShards: moto moves (split) or copies (merge) the parent's records into the
   children, re-numbering them. In AWS the parent keeps its records, readable until retention ends,
   and the children start empty; consumers finish the parent first.
3. Lambda: on every PutRecord moto pushes the record to each mapped function through Docker (one
   record per invocation, no ESM semantics). Lambda code never runs inside moto here: the local
   runtime's poller is the event source mapping, so the push is turned off.
4. DynamoDB is not thread-safe in moto's server (concurrent TransactWriteItems fail, and a transaction
   can interleave with other writes); AWS serializes conflicting writes. Requests are serialized.
5. DynamoDB TransactWriteItems deep-copies every touched TABLE (once per action) to roll back on
   failure, so its cost grows with the table: seconds per batch once tables hold thousands of items.
   The patch backs up only the items the transaction touches and restores those on failure (the same
   idea the benchmarks rely on, via `patched()`); conditions and cancellation reasons stay moto's own.
6. Kinesis is not thread-safe in moto's server either. A shard numbers a new record max+1 and then
   inserts it, so concurrent PutRecord(s) callers (the two ingest workers) get the same sequence number
   and overwrite each other's records while every call reports success; GetRecords iterates a shard's
   records in Python and fails with a 500 ("OrderedDict mutated during iteration") while a put inserts;
   a put that arrives during a split is numbered against the parent and then moved to a child. AWS
   never loses or moves an acknowledged record. Every access to a stream's shard map or a shard's
   records now holds one lock (routing + numbering + insert, splits and merges, reads), and the next
   sequence number is found in O(1) instead of by listing the shard's keys. Request parsing, base64
   and response serialization stay outside the lock.
7. Kinesis reads scan the whole shard: GetRecords walks every record from the shard's first to find
   those after the iterator, and ListShards/DescribeStream list every key twice per shard for the
   sequence number range. A shard is numbered densely (1, 2, 3, ...), so GetRecords starts at the
   iterator's position and the range ends are read in O(1); a shard that is not dense (none is, unless
   moto changes its numbering) is still scanned as before. Measured on the 2-core machine: with
   33,000 records in a shard (the Taobao file on two shards) moto's scan costs 2.2 ms per GetRecords
   at the shard's end (3 us from the position), and the three event source mappings ask every shard
   ten times a second when idle.
8. CloudWatch keeps every datum it is given, forever (~0.8 KB each): a pipeline left running grows
   moto's memory without bound. AWS keeps datapoints for a retention period; here PutMetricData drops
   those older than the local metric store's retention (`metrics.RETENTION_S`), at most once a minute.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import functools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import moto.dynamodb.models as dynamodb_models
from moto.awslambda.models import LambdaBackend
from moto.cloudwatch.models import CloudWatchBackend
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.kinesis.exceptions import InvalidArgumentError
from moto.kinesis.models import KinesisBackend, Record, Shard, Stream
from moto.utilities.utils import md5_hash

from local_emulator.metrics import RETENTION_S

_ORIGINALS: dict[str, Any] = {}


def _get_shard_for_key(self: Stream, partition_key: str, explicit_hash_key: str) -> Shard | None:
    if not isinstance(partition_key, str) or len(partition_key) > 256:
        raise InvalidArgumentError("partition_key")
    if explicit_hash_key:
        int_key = int(explicit_hash_key)
        if int_key >= 2**128:
            raise InvalidArgumentError("explicit_hash_key")
    else:
        int_key = int(md5_hash(partition_key.encode("utf-8")).hexdigest(), 16)
    for shard in self.shards.values():
        if shard.is_open and shard.starting_hash <= int_key <= shard.ending_hash:
            return shard
    return None


def _split_shard(self: Stream, shard_to_split: str, new_starting_hash_key: str) -> None:
    shard = self.get_shard(shard_to_split)
    kept = shard.records
    shard.records = type(kept)()  # the original re-puts whatever it finds: give it nothing
    try:
        _ORIGINALS["split_shard"](self, shard_to_split, new_starting_hash_key)
    finally:
        shard.records = kept


def _merge_shards(self: Stream, shard_to_merge: str, adjacent_shard_to_merge: str) -> None:
    first, second = self.get_shard(shard_to_merge), self.get_shard(adjacent_shard_to_merge)
    kept = (first.records, second.records)
    first.records, second.records = type(kept[0])(), type(kept[1])()
    try:
        _ORIGINALS["merge_shards"](self, shard_to_merge, adjacent_shard_to_merge)
    finally:
        first.records, second.records = kept


# Guards every stream's shard map and every shard's record map (re-entrant: a reshard calls other
# guarded methods). One lock for all streams: moto's work is GIL-bound, so finer locks gain nothing.
_KINESIS_LOCK = threading.RLock()

# The moto methods that read or change those maps, serialized as they are. Stream.put_record routes a
# record to a shard and inserts it: atomic, so that no record lands in a shard a concurrent reshard just
# closed (its consumer may have finished it). Reads that copy a map in one C call (ListShards and
# DescribeStream listing `shards.values()`) are atomic under the GIL already; their per-shard
# sequence-number ranges are read through the guarded methods below.
_KINESIS_GUARDED: tuple[tuple[type, str], ...] = (
    (Stream, "put_record"),
    (Stream, "split_shard"),
    (Stream, "merge_shards"),
    (Stream, "update_shard_count"),
    (KinesisBackend, "update_shard_count"),
    (Shard, "get_records"),
    (Shard, "get_sequence_number_at"),
    (Shard, "get_min_sequence_number"),
    (Shard, "get_max_sequence_number"),
)


def _under_kinesis_lock(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        with _KINESIS_LOCK:
            return method(*args, **kwargs)

    return guarded


def _shard_put_record(self: Shard, partition_key: str, data: str, explicit_hash_key: str) -> str:
    with _KINESIS_LOCK:
        # Keys are inserted in increasing order, so the last one is the highest (moto's own put_record
        # lists every key of the shard to find it: O(records) per record).
        sequence_number = next(reversed(self.records), 0) + 1
        self.records[sequence_number] = Record(partition_key, data, sequence_number, explicit_hash_key)
    return str(sequence_number)


def _dense(shard: Shard) -> tuple[int, int] | None:
    """(first, last) sequence number of a shard numbered without gaps, else None."""
    records = shard.records
    if not records:
        return None
    first, last = next(iter(records)), next(reversed(records))
    return (first, last) if last - first + 1 == len(records) else None


def _shard_get_records(
    self: Shard, last_sequence_id: str, limit: int | None
) -> tuple[list[Record], int, int]:
    bounds = _dense(self)
    if bounds is None:
        return _ORIGINALS["shard_get_records"](self, last_sequence_id, limit)
    first, last = bounds
    after = int(last_sequence_id)
    start = max(after + 1, first)
    stop = last + 1 if limit is None else min(last + 1, start + limit)
    results = [self.records[n] for n in range(start, stop)]
    if not results:
        return [], after, 0
    behind = self.records[last].created_at - results[-1].created_at
    return results, results[-1].sequence_number, int(behind * 1000)


def _shard_min_sequence_number(self: Shard) -> int:
    return next(iter(self.records), 0)


def _shard_max_sequence_number(self: Shard) -> int:
    return next(reversed(self.records), 0)


def _no_kinesis_push(self: LambdaBackend, *args: Any, **kwargs: Any) -> None:
    return None


_DYNAMODB_LOCK = threading.RLock()


def _serialized_call_action(self: DynamoHandler) -> Any:
    with _DYNAMODB_LOCK:
        return _ORIGINALS["call_action"](self)


class _TablesAreNotCopied:
    """Stands in for `copy` inside moto.dynamodb.models: "copying" a Table returns the table itself."""

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def touched_key(
    backend: DynamoDBBackend, op_type: str, op: dict[str, Any]
) -> tuple[str, dict[str, Any]] | None:
    """(table, key) of the item a write touches: `op_type` Put (its key from the item), Update, Delete
    or ConditionCheck (its Key); None when the table is unknown or a Put's item has no hash key."""
    table = backend.tables.get(op.get("TableName", ""))
    if table is None:
        return None
    if op_type != "Put":
        return table.name, op.get("Key", {})
    item = op.get("Item", {})
    if table.hash_key_attr not in item:
        return None
    key = {table.hash_key_attr: item[table.hash_key_attr]}
    if table.range_key_attr and table.range_key_attr in item:
        key[table.range_key_attr] = item[table.range_key_attr]
    return table.name, key


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    backups: list[tuple[str, dict[str, Any], Any]] = []
    for action in transact_items:
        if len(action) != 1:
            continue  # moto reports the malformed action itself
        ((op_type, op),) = action.items()
        touched = touched_key(self, op_type, op)
        if touched is None:
            continue
        try:
            current = self.get_item(*touched)
        except Exception:  # a bad key: moto raises the proper error below
            current = None
        backups.append((*touched, copy.deepcopy(current)))
    with _DYNAMODB_LOCK:
        dynamodb_models.copy = _TablesAreNotCopied()  # type: ignore[assignment]  # a stand-in for `copy`
        try:
            _ORIGINALS["transact_write_items"](self, transact_items)
        except BaseException:
            for table_name, key, item in reversed(backups):
                if item is None:
                    with contextlib.suppress(Exception):
                        self.delete_item(table_name, key)
                else:
                    self.tables[table_name].put_item(item.to_json()["Attributes"])
            raise
        finally:
            dynamodb_models.copy = copy


# Seconds between two trims of a CloudWatch backend's datapoints.
TRIM_INTERVAL_S = 60.0
_TRIMMED_AT: dict[int, float] = {}
_CLOUDWATCH_LOCK = threading.Lock()


def trim_metric_data(backend: CloudWatchBackend, now: float) -> None:
    """Drop `backend`'s datapoints older than RETENTION_S before `now` (epoch seconds)."""
    cutoff = now - RETENTION_S
    backend.metric_data = [d for d in backend.metric_data if _epoch(d.timestamp) >= cutoff]


def _epoch(moment: datetime.datetime) -> float:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)  # moto's utcnow() is naive
    return aware.timestamp()


def _put_metric_data(self: CloudWatchBackend, namespace: str, metric_data: list[dict[str, Any]]) -> None:
    # One lock with the trim: a put appending to the list the trim is replacing would be lost.
    with _CLOUDWATCH_LOCK:
        _ORIGINALS["put_metric_data"](self, namespace, metric_data)
        now = time.time()
        if now - _TRIMMED_AT.get(id(self), 0.0) >= TRIM_INTERVAL_S:
            _TRIMMED_AT[id(self)] = now
            trim_metric_data(self, now)


# The moto methods replaced: the key their original is kept under in _ORIGINALS -> (class, method, the
# replacement).
_REPLACED: dict[str, tuple[type, str, Callable[..., Any]]] = {
    "get_shard_for_key": (Stream, "get_shard_for_key", _get_shard_for_key),
    "split_shard": (Stream, "split_shard", _split_shard),
    "merge_shards": (Stream, "merge_shards", _merge_shards),
    "send_kinesis_message": (LambdaBackend, "send_kinesis_message", _no_kinesis_push),
    "call_action": (DynamoHandler, "call_action", _serialized_call_action),
    "transact_write_items": (DynamoDBBackend, "transact_write_items", _transact_write_items),
    "shard_put_record": (Shard, "put_record", _shard_put_record),
    "shard_get_records": (Shard, "get_records", _shard_get_records),
    "shard_min": (Shard, "get_min_sequence_number", _shard_min_sequence_number),
    "shard_max": (Shard, "get_max_sequence_number", _shard_max_sequence_number),
    "put_metric_data": (CloudWatchBackend, "put_metric_data", _put_metric_data),
}


def apply() -> None:
    """Apply all patches (idempotent)."""
    if _ORIGINALS:
        return
    # Replaced before the lock is wrapped around them (below), so the faster reads hold it too.
    for key, (owner, name, replacement) in _REPLACED.items():
        _ORIGINALS[key] = getattr(owner, name)
        setattr(owner, name, replacement)
    for owner, name in _KINESIS_GUARDED:
        _ORIGINALS[f"{owner.__name__}.{name}"] = vars(owner)[name]
        setattr(owner, name, _under_kinesis_lock(vars(owner)[name]))


def remove() -> None:
    """Restore moto's own behaviour."""
    if not _ORIGINALS:
        return
    for owner, name in reversed(_KINESIS_GUARDED):
        setattr(owner, name, _ORIGINALS.pop(f"{owner.__name__}.{name}"))
    for key, (owner, name, _replacement) in _REPLACED.items():
        setattr(owner, name, _ORIGINALS.pop(key))


@contextlib.contextmanager
def patched() -> Iterator[None]:
    """Apply the patches for the duration of a block (in-process tests with `mock_aws`)."""
    already = bool(_ORIGINALS)
    apply()
    try:
        yield
    finally:
        if not already:
            remove()
