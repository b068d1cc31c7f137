# The previous design, frozen for the benchmarks' same-run baselines: lambdas/process/logic.py
# at 6aa4c9a (main before issue 12), unchanged but for its imports. Do not edit: bench/old_design/__init__.py.
"""Process a batch of Kinesis records into the feature tables, with an exactly-once effect.

No boto3 here: the feature store and the dead-letter queue come in through small ports, so the same
logic runs in the Lambda handler, in the redrive tool, in the benchmarks and against in-memory fakes.

How a batch is processed (the argument for why the effect is exactly once is in docs/processing.md):

1. Decode and validate every record; a record that can never succeed (not base64, not JSON, invalid,
   oversized) goes to the dead-letter port with its payload and reason and never blocks the shard.
2. Read every row the batch can touch (users, item profiles, co-visitation partners from the users'
   histories, trending slots, experiment counters) with BatchGetItem, consistent reads.
3. Fold the records in sequence order through `features.plan_event` / `features.apply_event`, cutting
   the run into *chunks* of consecutive records whose touched rows fit in one TransactWriteItems
   (<= 100 rows and <= 4 MB; a chunk that would be larger is re-folded and cut smaller). Each chunk
   is committed atomically, every row conditional on the version read, so an event's effects (user
   row, item rows, trending, experiment counters) land all together or not at all, and the user row's
   per-shard watermark records it in the same transaction.
4. A version conflict (a concurrent writer, e.g. another lane with ParallelizationFactor > 1) re-reads
   that chunk's rows and re-folds it, moving to another trending slot for that shard (lanes of one
   shard that collide on its slot spread out and stay apart while warm; readers sum every slot).
   Throttling is retried with backoff, then the batch stops and reports a batch item failure at the
   first record not applied. Chunks commit in sequence order and the fold stops at the first failure,
   so what is applied is always a prefix of the batch.
"""

from __future__ import annotations

import base64
import binascii
import gc
import hashlib
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from streamrec_core.schema import PoisonRecord, decode_record, validate_event

from bench.old_design.constants import (
    DDB_TRANSACT_MAX_ITEMS,
    DEFAULT_EXPERIMENT_ID,
    MAX_EVENT_BYTES,
    USER_HISTORY,
    USER_RECENT_IDS,
)
from bench.old_design.features import (
    APPLY,
    DUPLICATE,
    LATE,
    SEEN,
    Event,
    FeatureConfig,
    Key,
    Row,
    apply_event,
    event_from_record,
    experiment_key,
    item_key,
    other_slot,
    plan_event,
    slot_for_shard,
    trending_key,
    user_key,
    user_watermark,
)
from bench.old_design.store import Throttled, TransactionTooLarge, WriteConflict

# A record holds the event plus `received_at` and the JSON framing ingest adds; anything larger than
# this can never be a valid event.
MAX_RECORD_DATA_BYTES = MAX_EVENT_BYTES + 256
MAX_REMEMBERED_SHARDS = 1024
REASON_NOT_BASE64 = "undecodable: record data is not base64"
REASON_OVERSIZED = f"oversized: record data exceeds {MAX_RECORD_DATA_BYTES} bytes"


@dataclass(frozen=True, slots=True)
class KinesisRecord:
    """One record of a Kinesis event source mapping event."""

    shard_id: str
    sequence_number: str
    partition_key: str
    data: bytes | None  # None when the base64 data could not be decoded (raw text kept in `raw_data`)
    arrival_ms: int
    event_source_arn: str = ""
    raw_data: str = ""

    @property
    def seq(self) -> int:
        return int(self.sequence_number)


def parse_kinesis_event(event: Mapping[str, Any]) -> list[KinesisRecord]:
    """The records of a Lambda Kinesis event (eventID is '<shardId>:<sequenceNumber>')."""
    records = []
    for raw in event.get("Records") or []:
        kinesis = raw["kinesis"]
        sequence_number = str(kinesis["sequenceNumber"])
        event_id = str(raw.get("eventID", ""))
        shard_id = event_id.rsplit(":", 1)[0] if ":" in event_id else event_id
        text = kinesis.get("data", "")
        try:
            data: bytes | None = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError, TypeError):
            data = None
        arrival = kinesis.get("approximateArrivalTimestamp") or 0
        records.append(
            KinesisRecord(
                shard_id=shard_id,
                sequence_number=sequence_number,
                partition_key=str(kinesis.get("partitionKey", "")),
                data=data,
                arrival_ms=int(round(float(arrival) * 1000)),
                event_source_arn=str(raw.get("eventSourceARN", "")),
                raw_data=text if data is None else "",
            )
        )
    return records


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: KinesisRecord
    reason: str


class StorePort(Protocol):
    def read(self, keys: Iterable[Key], *, consistent: bool = True) -> dict[Key, Row | None]: ...

    def commit(self, writes: Sequence[tuple[Key, Row, int]]) -> None: ...


class DeadLetterPort(Protocol):
    def send(self, letters: Sequence[DeadLetter]) -> list[DeadLetter]:
        """Send the letters; return the ones that could not be sent."""
        ...


@dataclass
class BatchResult:
    """What a batch did; `failed_sequence_number` is where the event source mapping must resume."""

    failed_sequence_number: str | None = None
    records: int = 0
    applied: int = 0
    late: int = 0
    duplicates: int = 0
    seen: int = 0
    dead_lettered: int = 0
    dead_letter_failures: int = 0
    chunks: int = 0
    conflicts: int = 0
    throttles: int = 0
    redrive_uncertain: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    # Applied attributed events: (experiment id, variant, event type) -> count (per-variant metrics).
    attributed: dict[tuple[str, str, str], int] = field(default_factory=dict)


def decode(record: KinesisRecord) -> tuple[dict[str, Any] | None, str | None]:
    """(normalized event, None) or (None, dead-letter reason)."""
    if record.data is None:
        return None, REASON_NOT_BASE64
    if len(record.data) > MAX_RECORD_DATA_BYTES:
        return None, REASON_OVERSIZED
    try:
        raw = decode_record(record.data)
    except PoisonRecord as error:
        return None, f"undecodable: {error}"
    event, violations = validate_event(
        raw,
        now=None,
        max_age=timedelta(0),
        max_future=timedelta(0),
        assign_id=lambda: record_event_id(record),
    )
    if event is None:
        return None, "invalid: " + "; ".join(v.message() for v in violations)
    return event, None


def record_event_id(record: KinesisRecord) -> str:
    """The id of an event that came without one (written around ingest), from its place in the stream:
    every delivery and every redrive of the record gets the same id, so redrive mode dedupes it."""
    where = f"{record.shard_id}:{record.sequence_number}".encode()
    return "record-" + hashlib.blake2b(where, digest_size=16).hexdigest()


def reason_kind(reason: str) -> str:
    """Low-cardinality reason for metrics: the word before the colon."""
    return reason.split(":", 1)[0]


class BatchProcessor:
    """Applies batches of records to the feature tables through a `StorePort`."""

    def __init__(
        self,
        store: StorePort,
        dead_letters: DeadLetterPort,
        cfg: FeatureConfig,
        *,
        max_conflict_retries: int = 5,
        max_throttle_retries: int = 3,
        backoff_base_s: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        transact_max_items: int = DDB_TRANSACT_MAX_ITEMS,
    ) -> None:
        if not 10 <= transact_max_items <= DDB_TRANSACT_MAX_ITEMS:
            raise ValueError("transact_max_items must be between 10 and the DynamoDB limit")
        self.store = store
        self.dead_letters = dead_letters
        self.cfg = cfg
        self.max_conflict_retries = max_conflict_retries
        self.max_throttle_retries = max_throttle_retries
        self.backoff_base_s = backoff_base_s
        self.sleep = sleep
        self.jitter = jitter
        self.transact_max_items = transact_max_items
        # Shard id -> the trending slot this (warm) processor writes for it, once a conflict moved it.
        self._slots: dict[str, int] = {}

    # --- public ----------------------------------------------------------------------------------
    def process(self, records: Sequence[KinesisRecord], *, redrive: bool = False) -> BatchResult:
        """Apply the records (one shard, ascending sequence numbers) and say where to resume, if anywhere.

        `redrive=True` is for records re-read from the stream after the event source mapping gave up on
        them: their sequence numbers may lie below watermarks that later records advanced, so whether a
        record was applied is decided by the user's recent event ids instead.
        """
        # The cyclic garbage collector is paused for the batch: decoding and the fold allocate many small
        # containers (events, rows, lists in rows) that stay alive until the batch ends, so the collector's
        # repeated scans of them find nothing (rows are acyclic; reference counting frees them). Measured:
        # about a quarter of the batch's CPU. A batch's allocations are bounded (<= 10,000 records).
        collecting = gc.isenabled()
        if collecting:
            gc.disable()
        try:
            return self._process(records, redrive=redrive)
        finally:
            if collecting:
                gc.enable()

    def _process(self, records: Sequence[KinesisRecord], *, redrive: bool) -> BatchResult:
        result = BatchResult(records=len(records))
        events: list[Event] = []
        letters: list[DeadLetter] = []
        for record in sorted(records, key=lambda r: r.seq):
            event, reason = decode(record)
            if event is None:
                letters.append(DeadLetter(record, reason or "invalid"))
                continue
            try:
                events.append(
                    event_from_record(
                        event,
                        shard_id=record.shard_id,
                        sequence_number=record.sequence_number,
                        arrival_ms=record.arrival_ms,
                    )
                )
            except (KeyError, ValueError) as error:
                letters.append(DeadLetter(record, f"invalid: {type(error).__name__}"))
        failed_at: int | None = None
        if letters:
            unsent = self.dead_letters.send(letters)
            result.dead_lettered = len(letters) - len(unsent)
            result.dead_letter_failures = len(unsent)
            for letter in letters:
                kind = reason_kind(letter.reason)
                result.reasons[kind] = result.reasons.get(kind, 0) + 1
            if unsent:
                failed_at = min(letter.record.seq for letter in unsent)
        stopped = self._apply(events, result, redrive=redrive)
        if stopped is not None and (failed_at is None or stopped < failed_at):
            failed_at = stopped
        if failed_at is not None:
            result.failed_sequence_number = next(r.sequence_number for r in records if r.seq == failed_at)
        return result

    # --- the fold ----------------------------------------------------------------------------------
    def _apply(self, events: list[Event], result: BatchResult, *, redrive: bool) -> int | None:
        """Fold and commit the events chunk by chunk; the sequence number to resume at, or None."""
        if not events:
            return None
        rows: dict[Key, Row | None] = {}
        slots = self.cfg.trending_slots
        shard = events[0].shard_id  # a batch is one shard's
        slot = self._slots.get(shard)
        if slot is None:
            slot = slot_for_shard(shard, slots)
        self._load(rows, self._first_keys(events, slot))
        self._load(rows, self._partner_keys(events, rows, slot))
        limit = self.transact_max_items
        cfg = self.cfg
        load = self._load
        count = len(events)
        position = 0
        conflicts = throttles = 0
        while position < count:
            chunk: dict[Key, None] = {}
            verdicts: list[str] = []
            attributed: list[tuple[str, str, str]] = []
            uncertain = 0
            index = position
            while index < count:
                event = events[index]
                ukey = user_key(event.user_id)
                if event.item_id:
                    ikey = item_key(event.item_id)
                    if ukey not in rows or ikey not in rows:
                        load(rows, [ukey, ikey])
                elif ukey not in rows:
                    load(rows, [ukey])
                plan = plan_event(rows, event, cfg, redrive=redrive, slot=slot)
                keys = plan.keys
                for key in keys:
                    if key not in rows:
                        load(rows, keys)
                        break
                new_keys = [key for key in keys if key not in chunk]
                if chunk and len(chunk) + len(new_keys) > limit:
                    break
                verdict = plan.verdict
                if redrive and verdict in (APPLY, LATE) and self._uncertain(rows, event):
                    uncertain += 1
                apply_event(rows, event, plan, cfg)  # type: ignore[arg-type]
                for key in new_keys:
                    chunk[key] = None
                verdicts.append(verdict)
                if event.variant is not None and verdict in (APPLY, LATE):
                    attributed.append(
                        (event.experiment_id or DEFAULT_EXPERIMENT_ID, event.variant, event.event_type)
                    )
                index += 1
            writes = [(key, rows[key], int(rows[key]["version"])) for key in chunk]  # type: ignore[index]
            try:
                self.store.commit(writes)  # type: ignore[arg-type]
            except WriteConflict:
                conflicts += 1
                result.conflicts += 1
                if conflicts > self.max_conflict_retries:
                    return events[position].seq
                # Someone else wrote some of these rows: forget our unwritten changes, re-read, re-fold.
                # Full jitter first: two lanes of one shard that collided would otherwise re-read and
                # collide again in lockstep until both ran out of retries.
                for key in chunk:
                    rows.pop(key, None)
                self.sleep(self.jitter() * self.backoff_base_s * 2 ** (conflicts - 1))
                self._load(rows, chunk)
                # The row we lost on may be the slot another lane of this shard writes: move, and stay.
                slot = other_slot(slot, slots, self.jitter())
                if len(self._slots) > MAX_REMEMBERED_SHARDS:
                    self._slots.clear()
                self._slots[shard] = slot
                continue
            except TransactionTooLarge:
                # Long ids and categories can make 100 rows pass DynamoDB's 4 MB per transaction:
                # re-fold this stretch from the stored rows and commit fewer rows at a time.
                if index - position <= 1:
                    raise  # one event's rows alone (rows are capped far below this: never in practice)
                for key in chunk:
                    rows.pop(key, None)
                self._load(rows, chunk)
                limit = max(1, len(chunk) // 2)
                continue
            except Throttled:
                throttles += 1
                result.throttles += 1
                if throttles > self.max_throttle_retries:
                    return events[position].seq
                for key in chunk:
                    rows.pop(key, None)
                self.sleep(self.backoff_base_s * 2 ** (throttles - 1))
                self._load(rows, chunk)
                continue
            for key in chunk:
                row = rows[key]
                assert row is not None
                row["version"] = int(row["version"]) + 1
            conflicts = throttles = 0
            limit = self.transact_max_items
            result.chunks += 1
            result.redrive_uncertain += uncertain
            for triple in attributed:
                result.attributed[triple] = result.attributed.get(triple, 0) + 1
            for verdict in verdicts:
                if verdict == APPLY:
                    result.applied += 1
                elif verdict == LATE:
                    result.late += 1
                elif verdict == DUPLICATE:
                    result.duplicates += 1
                elif verdict == SEEN:
                    result.seen += 1
            position = index
        return None

    def _uncertain(self, rows: Mapping[Key, Row | None], event: Event) -> bool:
        """Redrive of a record below the watermark whose id may have aged out of the recent ids."""
        user = rows.get(user_key(event.user_id))
        if user is None:
            return False
        mark = user_watermark(user, event.shard_id)
        return (
            mark is not None and event.seq <= mark and len(user[USER_RECENT_IDS]) >= self.cfg.recent_ids_cap
        )

    def _load(self, rows: dict[Key, Row | None], keys: Iterable[Key]) -> None:
        missing = [key for key in keys if key not in rows]
        if missing:
            rows.update(self.store.read(missing, consistent=True))

    def _first_keys(self, events: list[Event], slot: int) -> list[Key]:
        keys: dict[Key, None] = {}
        for event in events:
            keys[user_key(event.user_id)] = None
            if event.item_id is not None:
                keys[item_key(event.item_id)] = None
                keys[trending_key(None, slot)] = None
                if event.category:
                    keys[trending_key(event.category, slot)] = None
            if event.variant is not None:
                keys[experiment_key(event.experiment_id or DEFAULT_EXPERIMENT_ID, event.variant)] = None
        return list(keys)

    def _partner_keys(self, events: list[Event], rows: Mapping[Key, Row | None], slot: int) -> list[Key]:
        """Rows only known after the first read: partners from stored histories, categories from profiles."""
        first_time: dict[str, int] = {}
        keys: dict[Key, None] = {}
        for event in events:
            if event.user_id not in first_time or event.time_ms < first_time[event.user_id]:
                first_time[event.user_id] = event.time_ms
            if event.item_id is not None and not event.category:
                profile = rows.get(item_key(event.item_id))
                if profile and profile.get("category"):
                    keys[trending_key(profile["category"], slot)] = None
        gap = self.cfg.session_gap_ms
        for user_id, start in first_time.items():
            user = rows.get(user_key(user_id))
            if not user:
                continue
            for other, _type, when, _category in user[USER_HISTORY]:
                if when >= start - gap:
                    keys[item_key(other)] = None
        return [key for key in keys if key not in rows]
