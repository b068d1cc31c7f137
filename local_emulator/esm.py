"""A Kinesis event source mapping poller with AWS Lambda's documented semantics.

moto stores event source mappings with all their settings but never runs them, so the local runtime
polls each shard itself. This module is that poller. It is usable on its own, in-process, by tests:

    poller = EsmPoller(
        kinesis_client,                       # any boto3 Kinesis client (moto server or mock_aws)
        EsmConfig.from_api(mapping),          # or EsmConfig(event_source_arn=..., function_arn=..., ...)
        invoke=lambda event: (payload, function_error),   # function_error: None | "Handled" | "Unhandled"
        send_on_failure=lambda message: ...,  # receives AWS's on-failure invocation record (a dict)
        clock=time.time,                      # injectable: seconds since the epoch
        executor=None,                        # a concurrent.futures.Executor: lanes invoke concurrently
    )
    poller.poll_once()       # read new records, invoke at most one batch per shard lane; returns #invokes
    poller.run_until_idle()  # poll until a round neither reads a record nor invokes the function
    poller.checkpoints()     # {shard_id: highest sequence number (int) up to which everything is done}

`invoke` receives the event exactly as Lambda builds it (``Records[].kinesis{kinesisSchemaVersion,
partitionKey, sequenceNumber, data (base64), approximateArrivalTimestamp}, eventSource, eventVersion,
eventID, eventName, invokeIdentityArn, awsRegion, eventSourceARN``) and returns what Lambda's Invoke API
returns: the response payload (a JSON value, or its serialized ``str``/``bytes``) and the function error
(``None`` when the function returned normally). An exception raised by `invoke` counts as an unhandled
function error, never as a crash of the poller.

Rules implemented (each has its own test in tests/unit/test_esm_*.py):

- Batching: a batch holds at most ``BatchSize`` records and at most 6 MB of payload. With
  ``MaximumBatchingWindowInSeconds`` > 0 a new batch waits until it is full or the window, counted from
  the moment the lane first held a record, has elapsed (a closed, fully read shard flushes at once).
- Success: without ``ReportBatchItemFailures`` any normal return checkpoints the whole batch. With it, a
  null or empty response, a response without ``batchItemFailures``, or a null or empty list means success.
- Partial failure: the checkpoint moves to just before the LOWEST reported failed sequence number and the
  records from there on are retried. A malformed identifier (missing, null, empty, not a sequence number
  of the batch) or a response of the wrong shape means the whole batch failed.
- ``BisectBatchOnFunctionError``: a failed batch (function error or whole-batch failure) is split into two
  halves retried one after the other; with a partial failure the batch is split at the returned sequence
  number instead. Splitting does not consume the retry quota.
- ``MaximumRetryAttempts`` (-1 = infinite) bounds retries of a batch that cannot be split further;
  ``MaximumRecordAgeInSeconds`` (-1 = infinite) discards records older than that before an invocation.
  Discarded records are reported once to ``send_on_failure`` in AWS's shape (``requestContext``,
  ``responseContext``, ``version``, ``timestamp``, ``KinesisBatchInfo``) with condition
  ``RetryAttemptsExhausted`` or ``RecordAgeExceeded``, and the shard moves on.
- Resharding: a child shard is read only after its parent(s) are closed and fully processed.
- ``ParallelizationFactor`` N > 1: each shard's records are hashed by partition key into N lanes that
  checkpoint independently, so one partition key's records stay in order while other keys go ahead.
  Given an ``executor``, the batches of all ready lanes (and shards) of a round are invoked concurrently.
- ``FilterCriteria``: records whose JSON ``data`` matches no pattern are discarded without an invocation
  and checkpointed (see `local_emulator.filtering`).
- Sequence numbers are compared as integers (moto's are small integers, AWS's are 56-digit numbers).

Documented simplifications: a retried batch keeps the records it had (AWS may append newer records to a
retry after a partial failure); the retry counter resets when the checkpoint advances; a whole-batch
failure caused by a malformed response is bisected like a function error.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import logging
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from local_emulator.filtering import parse_patterns, record_matches

log = logging.getLogger(__name__)

InvokeResult = tuple[Any, str | None]
InvokeFn = Callable[[dict[str, Any]], InvokeResult]
OnFailureFn = Callable[[dict[str, Any]], None]

# Lambda's synchronous invocation payload limit; a batch is cut before its event would exceed it.
MAX_INVOKE_PAYLOAD_BYTES = 6 * 1024 * 1024
# Rough JSON envelope of one record in the event (everything except the base64 data).
_RECORD_OVERHEAD_BYTES = 512
GET_RECORDS_LIMIT = 10_000

CONDITION_RETRIES_EXHAUSTED = "RetryAttemptsExhausted"
CONDITION_RECORD_AGE_EXCEEDED = "RecordAgeExceeded"
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"


@dataclass(frozen=True)
class EsmConfig:
    """The settings of one Kinesis event source mapping, as Lambda's API names them."""

    event_source_arn: str
    function_arn: str
    batch_size: int = 100
    maximum_batching_window_s: float = 0.0
    starting_position: str = "TRIM_HORIZON"
    starting_position_timestamp: float | None = None
    bisect_batch_on_function_error: bool = False
    maximum_retry_attempts: int = -1
    maximum_record_age_s: int = -1
    parallelization_factor: int = 1
    report_batch_item_failures: bool = False
    on_failure_destination: str | None = None
    enabled: bool = True
    uuid: str = ""
    filter_patterns: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_api(cls, mapping: dict[str, Any]) -> EsmConfig:
        """Build from one item of Lambda's ListEventSourceMappings / GetEventSourceMapping response."""
        timestamp = mapping.get("StartingPositionTimestamp")
        if isinstance(timestamp, _dt.datetime):
            timestamp = timestamp.timestamp()
        state = mapping.get("State", "Enabled")
        return cls(
            event_source_arn=mapping["EventSourceArn"],
            function_arn=mapping["FunctionArn"],
            batch_size=int(mapping.get("BatchSize") or 100),
            maximum_batching_window_s=float(mapping.get("MaximumBatchingWindowInSeconds") or 0),
            starting_position=mapping.get("StartingPosition") or "TRIM_HORIZON",
            starting_position_timestamp=timestamp,
            bisect_batch_on_function_error=bool(mapping.get("BisectBatchOnFunctionError", False)),
            maximum_retry_attempts=_int_or(mapping.get("MaximumRetryAttempts"), -1),
            maximum_record_age_s=_int_or(mapping.get("MaximumRecordAgeInSeconds"), -1),
            parallelization_factor=int(mapping.get("ParallelizationFactor") or 1),
            report_batch_item_failures=REPORT_BATCH_ITEM_FAILURES
            in (mapping.get("FunctionResponseTypes") or []),
            on_failure_destination=(mapping.get("DestinationConfig") or {})
            .get("OnFailure", {})
            .get("Destination"),
            enabled=state not in ("Disabled", "Disabling"),
            uuid=mapping.get("UUID", ""),
            filter_patterns=tuple(parse_patterns(mapping.get("FilterCriteria"))),
        )

    @property
    def stream_name(self) -> str:
        """The stream's name, the last part of its ARN (``arn:aws:kinesis:<region>:<acct>:stream/<name>``)."""
        return self.event_source_arn.split(":", 5)[5].split("/", 1)[1]

    @property
    def region(self) -> str:
        """The region named in the stream's ARN."""
        return self.event_source_arn.split(":")[3]


def _int_or(value: Any, default: int) -> int:
    return default if value is None else int(value)


@dataclass
class StreamRecord:
    """One Kinesis record as the poller holds it; `seq` is the sequence number as an integer."""

    seq: int
    sequence_number: str
    partition_key: str
    data: bytes
    arrival: float  # seconds since the epoch

    @property
    def size_estimate(self) -> int:
        """Bytes this record adds to the invocation payload (base64 data plus JSON envelope)."""
        return (len(self.data) + 2) // 3 * 4 + len(self.partition_key) + _RECORD_OVERHEAD_BYTES


@dataclass
class BatchOutcome:
    """What happened to one invocation; handed to the optional `on_batch` observer (metrics)."""

    shard_id: str
    lane: int
    records: int
    iterator_age_ms: float
    function_error: str | None
    result: str  # "success" | "partial" | "failure"
    duration_ms: float


@dataclass
class _Attempt:
    """A batch that failed and waits to be retried, or a half of a bisected batch."""

    records: list[StreamRecord]
    retries: int = 0
    invokes: int = 0
    last_request_id: str = ""
    last_response: dict[str, Any] | None = None


@dataclass
class _Lane:
    buffer: deque[StreamRecord] = field(default_factory=deque)
    pending: deque[_Attempt] = field(default_factory=deque)
    first_seen: float | None = None

    def is_empty(self) -> bool:
        return not self.buffer and not self.pending


@dataclass
class _Shard:
    shard_id: str
    parents: tuple[str, ...]
    lanes: list[_Lane]
    iterator: str | None = None
    started: bool = False
    last_read_seq: int | None = None
    closed: bool = False
    reached_end: bool = False
    # Read but not yet checkpointed sequence numbers, in stream order; `done` marks finished ones.
    order: deque[int] = field(default_factory=deque)
    done: set[int] = field(default_factory=set)
    checkpoint: int | None = None

    def finished(self) -> bool:
        return (
            self.closed
            and self.reached_end
            and not self.order
            and all(lane.is_empty() for lane in self.lanes)
        )


class EsmPoller:
    """Polls every shard of one stream for one event source mapping and invokes the function.

    Not thread-safe: one thread drives one poller. See the module docstring for the rules.
    """

    def __init__(
        self,
        kinesis_client: Any,
        config: EsmConfig,
        invoke: InvokeFn,
        send_on_failure: OnFailureFn | None = None,
        *,
        clock: Callable[[], float] = time.time,
        invoke_identity_arn: str = "",
        on_batch: Callable[[BatchOutcome], None] | None = None,
        shard_refresh_interval_s: float = 0.0,
        executor: Executor | None = None,
    ) -> None:
        if config.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if config.parallelization_factor < 1:
            raise ValueError("parallelization_factor must be >= 1")
        self._kinesis = kinesis_client
        self.config = config
        self._invoke = invoke
        self._send_on_failure = send_on_failure
        self._clock = clock
        self._identity = invoke_identity_arn
        self._on_batch = on_batch
        self._refresh_interval = shard_refresh_interval_s
        self._executor = executor
        self._last_refresh: float | None = None
        self._shards: dict[str, _Shard] = {}
        self._initial_shards: set[str] | None = None
        self._known_ids: set[str] = set()
        self._records_seen = 0
        self.invocations = 0

    # --- public API -------------------------------------------------------------------------------
    def poll_once(self) -> int:
        """One polling round: read new records, then invoke at most one batch per ready lane.

        Lanes are prepared and their results applied in a fixed order; with `executor` their
        invocations run concurrently. Returns the number of function invocations made.
        """
        if not self.config.enabled:
            return 0
        self._refresh_shards()
        for shard in self._readable_shards():
            self._read(shard)
        ready = [
            (shard, index, lane, attempt)
            for shard in list(self._shards.values())
            for index, lane in enumerate(shard.lanes)
            if (attempt := self._next_attempt(shard, lane)) is not None
        ]
        events = [self._event(shard.shard_id, attempt.records) for shard, _, _, attempt in ready]
        started = self._clock()
        if self._executor is not None and len(ready) > 1:
            results = list(self._executor.map(self._call, events))
        else:
            results = [self._call(event) for event in events]
        for (shard, index, lane, attempt), (payload, error) in zip(ready, results, strict=True):
            self._apply(shard, index, lane, attempt, payload, error, started)
        return len(ready)

    def run_until_idle(self, max_rounds: int = 10_000) -> int:
        """Poll until a round reads no record and makes no invocation; returns total invocations.

        Records held back by a batching window stay buffered when the (injected) clock does not move.
        """
        total = 0
        for _ in range(max_rounds):
            read_before = self._records_seen
            invoked = self.poll_once()
            total += invoked
            if invoked == 0 and self._records_seen == read_before:
                return total
        raise RuntimeError(f"event source mapping still busy after {max_rounds} rounds")

    def is_idle(self) -> bool:
        """True when no record is buffered or waiting for a retry in any shard."""
        return all(not shard.order for shard in self._shards.values())

    def checkpoints(self) -> dict[str, int | None]:
        """Per shard, the highest sequence number up to which every record is processed (or discarded)."""
        return {shard_id: shard.checkpoint for shard_id, shard in self._shards.items()}

    def reconfigure(self, config: EsmConfig) -> None:
        """Apply updated mapping settings (UpdateEventSourceMapping); lanes keep their number."""
        if config.parallelization_factor != self.config.parallelization_factor:
            log.warning("ParallelizationFactor changes apply to shards discovered from now on")
        self.config = config

    def records_read(self) -> int:
        """Records read from the stream since the poller started (all shards)."""
        return self._records_seen

    def oldest_pending_age_ms(self) -> float | None:
        """Age of the oldest record read but not yet processed (the lag a stuck shard builds up)."""
        arrivals = [lane.buffer[0].arrival for s in self._shards.values() for lane in s.lanes if lane.buffer]
        return None if not arrivals else max(0.0, (self._clock() - min(arrivals)) * 1000.0)

    def buffered_records(self) -> int:
        """Records read from the stream and not yet checkpointed, over all shards."""
        return sum(len(shard.order) for shard in self._shards.values())

    # --- shards -----------------------------------------------------------------------------------
    def _refresh_shards(self) -> None:
        now = self._clock()
        if (
            self._last_refresh is not None
            and self._refresh_interval > 0
            and now - self._last_refresh < self._refresh_interval
        ):
            return
        self._last_refresh = now
        listed = self._list_shards()
        if self._initial_shards is None:
            # Shards present when the mapping starts honour StartingPosition; later ones start at the
            # beginning, as Lambda does after a reshard.
            self._initial_shards = {s["ShardId"] for s in listed}
        for desc in listed:
            shard_id = desc["ShardId"]
            closed = "EndingSequenceNumber" in desc.get("SequenceNumberRange", {})
            if shard_id not in self._shards:
                parents = tuple(
                    p for p in (desc.get("ParentShardId"), desc.get("AdjacentParentShardId")) if p
                )
                lanes = [_Lane() for _ in range(self.config.parallelization_factor)]
                self._shards[shard_id] = _Shard(shard_id, parents, lanes)
            self._shards[shard_id].closed = closed
        self._known_ids = {s["ShardId"] for s in listed}

    def _list_shards(self) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"StreamName": self.config.stream_name}
        while True:
            page = self._kinesis.list_shards(**kwargs)
            shards.extend(page.get("Shards", []))
            token = page.get("NextToken")
            if not token:
                return shards
            kwargs = {"NextToken": token}

    def _readable_shards(self) -> Iterable[_Shard]:
        for shard in self._shards.values():
            if shard.reached_end:
                continue
            if all(self._parent_finished(p) for p in shard.parents):
                yield shard

    def _parent_finished(self, parent_id: str) -> bool:
        parent = self._shards.get(parent_id)
        if parent is None or parent_id not in self._known_ids:
            return True  # trimmed past retention: nothing left to process
        return parent.finished()

    def _read(self, shard: _Shard) -> None:
        if shard.iterator is None:
            shard.iterator = self._new_iterator(shard)
        try:
            response = self._kinesis.get_records(ShardIterator=shard.iterator, Limit=GET_RECORDS_LIMIT)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ExpiredIteratorException":
                raise
            shard.iterator = self._new_iterator(shard)
            response = self._kinesis.get_records(ShardIterator=shard.iterator, Limit=GET_RECORDS_LIMIT)
        records = response.get("Records", [])
        next_iterator = response.get("NextShardIterator")
        shard.iterator = next_iterator
        now = self._clock()
        patterns = list(self.config.filter_patterns)
        for raw in records:
            record = _to_record(raw)
            shard.last_read_seq = record.seq
            shard.order.append(record.seq)
            if not record_matches(patterns, record.data):
                # Filtered out: discarded without an invocation, and checkpointed like a success.
                shard.done.add(record.seq)
                continue
            lane = shard.lanes[self._lane_of(record.partition_key)]
            if not lane.buffer and lane.first_seen is None:
                lane.first_seen = now
            lane.buffer.append(record)
        self._advance_checkpoint(shard)
        if next_iterator is None or (shard.closed and not records):
            shard.reached_end = True
        self._records_seen += len(records)

    def _new_iterator(self, shard: _Shard) -> str:
        kwargs: dict[str, Any] = {"StreamName": self.config.stream_name, "ShardId": shard.shard_id}
        if shard.last_read_seq is not None:
            kwargs.update(
                ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                StartingSequenceNumber=str(shard.last_read_seq),
            )
        elif self._initial_shards is not None and shard.shard_id in self._initial_shards:
            position = self.config.starting_position
            kwargs["ShardIteratorType"] = position
            if position == "AT_TIMESTAMP":
                kwargs["Timestamp"] = self.config.starting_position_timestamp
        else:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        shard.started = True
        return self._kinesis.get_shard_iterator(**kwargs)["ShardIterator"]

    def _lane_of(self, partition_key: str) -> int:
        factor = self.config.parallelization_factor
        return 0 if factor == 1 else zlib.crc32(partition_key.encode("utf-8")) % factor

    # --- one lane, one step -----------------------------------------------------------------------
    def _next_attempt(self, shard: _Shard, lane: _Lane) -> _Attempt | None:
        """The batch this lane invokes next (a pending retry first), or None if it must wait."""
        attempt = lane.pending[0] if lane.pending else None
        if attempt is None:
            if not lane.buffer or not self._window_elapsed(shard, lane):
                return None
            attempt = _Attempt(self._take_batch(lane))
            lane.pending.append(attempt)
        if not self._discard_expired(shard, lane, attempt):
            return None
        return attempt

    def _window_elapsed(self, shard: _Shard, lane: _Lane) -> bool:
        window = self.config.maximum_batching_window_s
        if window <= 0 or len(lane.buffer) >= self.config.batch_size:
            return True
        if shard.closed and shard.reached_end:
            return True
        if self._batch_bytes_full(lane):
            return True
        assert lane.first_seen is not None
        return self._clock() - lane.first_seen >= window

    def _batch_bytes_full(self, lane: _Lane) -> bool:
        return sum(r.size_estimate for r in lane.buffer) >= MAX_INVOKE_PAYLOAD_BYTES

    def _take_batch(self, lane: _Lane) -> list[StreamRecord]:
        batch: list[StreamRecord] = []
        size = 0
        for record in lane.buffer:
            if len(batch) == self.config.batch_size:
                break
            if batch and size + record.size_estimate > MAX_INVOKE_PAYLOAD_BYTES:
                break
            batch.append(record)
            size += record.size_estimate
        return batch

    def _discard_expired(self, shard: _Shard, lane: _Lane, attempt: _Attempt) -> bool:
        """Drop records older than MaximumRecordAgeInSeconds; False when nothing is left to invoke."""
        max_age = self.config.maximum_record_age_s
        if max_age < 0:
            return True
        now = self._clock()
        expired = [r for r in attempt.records if now - r.arrival > max_age]
        if not expired:
            return True
        # Records of one lane arrive in order, so the expired ones are a prefix of the batch.
        attempt.records = attempt.records[len(expired) :]
        self._discard(shard, lane, expired, attempt, CONDITION_RECORD_AGE_EXCEEDED)
        if not attempt.records:
            lane.pending.remove(attempt)
            return False
        return True

    def _call(self, event: dict[str, Any]) -> InvokeResult:
        try:
            return self._invoke(event)
        except Exception as error:  # an invoke failure must never stop the shard's poller
            log.warning("invoke of %s failed: %s", self.config.function_arn, error)
            return {"errorType": type(error).__name__, "errorMessage": str(error)}, "Unhandled"

    def _apply(
        self,
        shard: _Shard,
        index: int,
        lane: _Lane,
        attempt: _Attempt,
        payload: Any,
        function_error: str | None,
        started: float,
    ) -> None:
        """Checkpoint, retry, bisect or discard according to one invocation's result."""
        records = attempt.records
        self.invocations += 1
        attempt.invokes += 1
        attempt.last_request_id = str(uuid.uuid4())
        attempt.last_response = {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": function_error or "",
        }
        age_ms = max(0.0, (started - records[-1].arrival) * 1000.0)

        if function_error is not None:
            result, failed_from = "failure", None
        elif not self.config.report_batch_item_failures:
            result, failed_from = "success", None
        else:
            result, failed_from = _parse_batch_response(payload, records)

        if result == "success":
            lane.pending.popleft()
            self._complete(shard, lane, records)
        elif result == "partial":
            assert failed_from is not None
            self._partial_failure(shard, lane, attempt, failed_from)
        else:
            self._whole_failure(shard, lane, attempt)

        if self._on_batch is not None:
            self._on_batch(
                BatchOutcome(
                    shard_id=shard.shard_id,
                    lane=index,
                    records=len(records),
                    iterator_age_ms=age_ms,
                    function_error=function_error,
                    result=result,
                    duration_ms=max(0.0, (self._clock() - started) * 1000.0),
                )
            )

    def _partial_failure(self, shard: _Shard, lane: _Lane, attempt: _Attempt, failed_from: int) -> None:
        records = attempt.records
        succeeded = records[:failed_from]
        remaining = records[failed_from:]
        self._complete(shard, lane, succeeded)
        lane.pending.popleft()
        if succeeded and self.config.bisect_batch_on_function_error:
            # Split at the returned sequence number: a bisect, not a retry.
            lane.pending.appendleft(_Attempt(remaining, attempt.retries, attempt.invokes))
            return
        retry = _Attempt(remaining, 0 if succeeded else attempt.retries + 1, attempt.invokes)
        retry.last_request_id, retry.last_response = attempt.last_request_id, attempt.last_response
        if self._retries_exhausted(retry):
            self._discard(shard, lane, remaining, retry, CONDITION_RETRIES_EXHAUSTED)
        else:
            lane.pending.appendleft(retry)

    def _whole_failure(self, shard: _Shard, lane: _Lane, attempt: _Attempt) -> None:
        records = attempt.records
        if self.config.bisect_batch_on_function_error and len(records) > 1:
            middle = len(records) // 2
            lane.pending.popleft()
            # Halves inherit the retry count: splitting does not consume the retry quota.
            lane.pending.appendleft(_Attempt(records[middle:], attempt.retries, attempt.invokes))
            lane.pending.appendleft(_Attempt(records[:middle], attempt.retries, attempt.invokes))
            return
        attempt.retries += 1
        if self._retries_exhausted(attempt):
            lane.pending.popleft()
            self._discard(shard, lane, records, attempt, CONDITION_RETRIES_EXHAUSTED)

    def _retries_exhausted(self, attempt: _Attempt) -> bool:
        limit = self.config.maximum_retry_attempts
        return limit >= 0 and attempt.retries > limit

    # --- bookkeeping --------------------------------------------------------------------------------
    def _complete(self, shard: _Shard, lane: _Lane, records: list[StreamRecord]) -> None:
        for record in records:
            # Completed records are always the oldest ones of their lane.
            head = lane.buffer.popleft()
            assert head.seq == record.seq, (head.seq, record.seq)
            shard.done.add(record.seq)
        if not lane.buffer:
            lane.first_seen = None
        self._advance_checkpoint(shard)

    def _advance_checkpoint(self, shard: _Shard) -> None:
        while shard.order and shard.order[0] in shard.done:
            seq = shard.order.popleft()
            shard.done.discard(seq)
            shard.checkpoint = seq

    def _discard(
        self,
        shard: _Shard,
        lane: _Lane,
        records: list[StreamRecord],
        attempt: _Attempt,
        condition: str,
    ) -> None:
        log.warning(
            "discarding %d record(s) %s..%s of %s: %s",
            len(records),
            records[0].sequence_number,
            records[-1].sequence_number,
            shard.shard_id,
            condition,
        )
        message = self._on_failure_message(shard.shard_id, records, attempt, condition)
        # Without an on-failure destination Lambda drops the records silently, and so do we.
        if self._send_on_failure is not None and self.config.on_failure_destination:
            self._send_on_failure(message)
        self._complete(shard, lane, records)

    def _on_failure_message(
        self, shard_id: str, records: list[StreamRecord], attempt: _Attempt, condition: str
    ) -> dict[str, Any]:
        response = attempt.last_response or {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "",
        }
        return {
            "requestContext": {
                "requestId": attempt.last_request_id or str(uuid.uuid4()),
                "functionArn": self.config.function_arn,
                "condition": condition,
                "approximateInvokeCount": attempt.invokes,
            },
            "responseContext": dict(response),
            "version": "1.0",
            "timestamp": _iso(self._clock()),
            "KinesisBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": records[0].sequence_number,
                "endSequenceNumber": records[-1].sequence_number,
                "approximateArrivalOfFirstRecord": _iso(records[0].arrival),
                "approximateArrivalOfLastRecord": _iso(records[-1].arrival),
                "batchSize": len(records),
                "streamArn": self.config.event_source_arn,
            },
        }

    def _event(self, shard_id: str, records: list[StreamRecord]) -> dict[str, Any]:
        return {
            "Records": [
                {
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": r.partition_key,
                        "sequenceNumber": r.sequence_number,
                        "data": base64.b64encode(r.data).decode("ascii"),
                        "approximateArrivalTimestamp": round(r.arrival, 3),
                    },
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": f"{shard_id}:{r.sequence_number}",
                    "eventName": "aws:kinesis:record",
                    "invokeIdentityArn": self._identity,
                    "awsRegion": self.config.region,
                    "eventSourceARN": self.config.event_source_arn,
                }
                for r in records
            ]
        }


def _to_record(raw: dict[str, Any]) -> StreamRecord:
    arrival = raw.get("ApproximateArrivalTimestamp")
    if isinstance(arrival, _dt.datetime):
        arrival_s = arrival.timestamp()
    elif arrival is None:
        arrival_s = time.time()
    else:
        arrival_s = float(arrival)
    data = raw["Data"]
    if isinstance(data, str):
        data = data.encode("utf-8")
    return StreamRecord(
        seq=int(raw["SequenceNumber"]),
        sequence_number=str(raw["SequenceNumber"]),
        partition_key=raw["PartitionKey"],
        data=bytes(data),
        arrival=arrival_s,
    )


def _parse_batch_response(payload: Any, records: list[StreamRecord]) -> tuple[str, int | None]:
    """Classify a ReportBatchItemFailures response: ("success"|"partial"|"failure", index of lowest)."""
    if isinstance(payload, bytes | bytearray):
        payload = payload.decode("utf-8", errors="replace")
    if isinstance(payload, str):
        if not payload.strip():
            return "success", None  # empty EventResponse
        try:
            payload = json.loads(payload)
        except ValueError:
            return "failure", None  # invalid JSON response
    if payload is None:
        return "success", None  # null EventResponse
    if not isinstance(payload, dict):
        return "failure", None
    failures = payload.get("batchItemFailures")
    if failures is None or failures == []:
        return "success", None
    if not isinstance(failures, list):
        return "failure", None
    index_of = {r.seq: i for i, r in enumerate(records)}
    lowest: int | None = None
    for item in failures:
        if not isinstance(item, dict):
            return "failure", None
        identifier = item.get("itemIdentifier")
        if not isinstance(identifier, str | int) or isinstance(identifier, bool) or identifier == "":
            return "failure", None
        try:
            seq = int(identifier)
        except ValueError:
            return "failure", None
        if seq not in index_of:
            return "failure", None
        lowest = index_of[seq] if lowest is None else min(lowest, index_of[seq])
    return "partial", lowest


def _iso(epoch_s: float) -> str:
    moment = _dt.datetime.fromtimestamp(epoch_s, tz=_dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
