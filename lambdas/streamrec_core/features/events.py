"""Events as the folds see them: a Kinesis record decoded, checked and keyed for dedup.

Records are written by ingest, which validated every field against schema v1 (`streamrec_core.schema`).
The process and aggregate functions decode them with msgspec into a typed struct built from the same
field rules, for the fields they use (ids become DynamoDB keys, so their rules are checked again; the
other fields are ignored here). msgspec decodes and checks a record in ~1.5 us, about a third of
`json.loads` plus the Python checks it replaces (bench/process_throughput.py).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Final, Literal, NamedTuple

import msgspec

from streamrec_core.constants import (
    DEFAULT_EXPERIMENT_ID,
    EVENT_TYPES,
    ITEM_REQUIRED_TYPES,
    MAX_EVENT_BYTES,
)
from streamrec_core.schema import (
    A_EXPERIMENT_ID,
    A_REQUEST_ID,
    A_VARIANT,
    F_CATEGORY,
    F_EVENT_ID,
    F_ITEM_ID,
    F_USER_ID,
    POSITION_MAX,
    attribution_id_pattern,
    field_spec,
)

# Evidence of interest per event type: purchase > cart > favourite > view (DESIGN, covisit-v1).
TYPE_WEIGHTS: Final = {"view": 1, "click": 1, "favorite": 2, "add_to_cart": 3, "purchase": 4}
# Event types that change item features when they name an item.
ITEM_EVENT_TYPES: Final = frozenset(TYPE_WEIGHTS)
# Attributed event types counted per experiment variant.
COUNTED_TYPES: Final = frozenset({"impression", "click", "purchase"})
# A record holds the event (<= MAX_EVENT_BYTES as ingest measured it) plus `received_at`.
MAX_RECORD_BYTES: Final = MAX_EVENT_BYTES + 256


def _anchored(pattern: str) -> str:
    return f"^(?:{pattern})$"


def _id(name: str) -> msgspec.Meta:
    spec = field_spec(name)
    assert spec.regex is not None
    return msgspec.Meta(pattern=_anchored(spec.regex.pattern))


def _text(name: str) -> msgspec.Meta:
    spec = field_spec(name)
    return msgspec.Meta(min_length=spec.min_length, max_length=spec.max_length)


_AttributionId = Annotated[str, msgspec.Meta(pattern=_anchored(attribution_id_pattern(A_REQUEST_ID)))]
_VariantId = Annotated[str, msgspec.Meta(pattern=_anchored(attribution_id_pattern(A_VARIANT)))]
assert attribution_id_pattern(A_EXPERIMENT_ID) == attribution_id_pattern(A_VARIANT)


class Attribution(msgspec.Struct, frozen=True):
    request_id: _AttributionId
    variant: _VariantId
    experiment_id: _VariantId | None = None
    position: Annotated[int, msgspec.Meta(ge=0, le=POSITION_MAX)] | None = None


class Record(msgspec.Struct, frozen=True):
    """The fields of a record the folds use, with their schema rules (unknown fields are ignored)."""

    event_type: Literal[EVENT_TYPES]  # type: ignore[valid-type]  # a constant tuple: msgspec reads it, mypy cannot
    user_id: Annotated[str, _id(F_USER_ID)]
    timestamp: str
    event_id: Annotated[str, _id(F_EVENT_ID)] | None = None
    item_id: Annotated[str, _id(F_ITEM_ID)] | None = None
    category: Annotated[str, _text(F_CATEGORY)] | None = None
    received_at: str | None = None
    attribution: Attribution | None = None


_DECODER = msgspec.json.Decoder(Record)


class InvalidRecord(ValueError):
    """A record that can never be applied (its reason goes to the dead-letter queue)."""


class Event(NamedTuple):
    """One record as the folds see it."""

    event_id: str
    event_type: str
    user_id: str
    item_id: str | None
    category: str  # '' when the event names none
    time_ms: int  # event time
    received_ms: int  # ingest receipt time (fixed in the record: lateness is deterministic)
    shard_id: str
    sequence_number: str  # as Kinesis gives it (AWS's have 56 digits: compared as integers)
    seq: int
    arrival_ms: int  # Kinesis approximate arrival time
    experiment_id: str | None = None
    variant: str | None = None

    @property
    def digest(self) -> bytes:
        return event_digest(self.event_id)

    @property
    def seqtag(self) -> int:
        return seqtag(self.seq)


def event_digest(event_id: str) -> bytes:
    """What a user row keeps of an event id for dedup: 48 bits of BLAKE2b.

    Two ids of one user collide with probability ~ kept digests / 2**48 per event (one false duplicate
    in years at 100,000 events/s).
    """
    return hashlib.blake2b(event_id.encode(), digest_size=6).digest()


def record_event_id(shard_id: str, sequence_number: str) -> str:
    """The id of an event that came without one (written around ingest), from its place in the stream:
    every delivery and every redrive of the record gets the same id, so it is deduplicated like any."""
    where = f"{shard_id}:{sequence_number}".encode()
    return "record-" + hashlib.blake2b(where, digest_size=16).hexdigest()


def seqtag(seq: int) -> int:
    """The low 32 bits of a sequence number: names one record among a user's recent ones."""
    return seq & 0xFFFFFFFF


_HOUR_BASE: dict[str, int] = {}


def timestamp_ms(value: str) -> int:
    """Epoch milliseconds of an RFC 3339 timestamp (fast path: ingest's normalized form)."""
    if len(value) == 24 and value[-1] == "Z" and value[19] == "." and value[10] == "T":
        prefix = value[:13]
        base = _HOUR_BASE.get(prefix)
        if base is None:
            base = int(datetime.fromisoformat(prefix + ":00:00+00:00").timestamp()) * 1000
            if len(_HOUR_BASE) > 10_000:
                _HOUR_BASE.clear()
            _HOUR_BASE[prefix] = base
        return base + int(value[14:16]) * 60_000 + int(value[17:19]) * 1000 + int(value[20:23])
    moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def decode_event(data: bytes, *, shard_id: str, sequence_number: str, arrival_ms: int) -> Event:
    """The Event of a record's data; InvalidRecord (with the reason) when it can never be applied."""
    if len(data) > MAX_RECORD_BYTES:
        raise InvalidRecord(f"oversized: record data exceeds {MAX_RECORD_BYTES} bytes")
    try:
        record = _DECODER.decode(data)
    except msgspec.ValidationError as error:
        raise InvalidRecord(f"invalid: {error}") from None
    except msgspec.DecodeError as error:
        raise InvalidRecord(f"undecodable: record is not UTF-8 JSON ({error})") from None
    return event_of(record, shard_id=shard_id, sequence_number=sequence_number, arrival_ms=arrival_ms)


def event_of(record: Record, *, shard_id: str, sequence_number: str, arrival_ms: int) -> Event:
    if record.item_id is None and record.event_type in ITEM_REQUIRED_TYPES:
        raise InvalidRecord(f"invalid: {F_ITEM_ID} is required for event_type {record.event_type}")
    try:
        time_ms = timestamp_ms(record.timestamp)
        received_ms = timestamp_ms(record.received_at) if record.received_at else time_ms
    except ValueError:
        raise InvalidRecord("invalid: timestamp is not an RFC 3339 date-time") from None
    attribution = record.attribution
    return Event(
        record.event_id or record_event_id(shard_id, sequence_number),
        record.event_type,
        record.user_id,
        record.item_id,
        record.category or "",
        time_ms,
        received_ms,
        shard_id,
        sequence_number,
        int(sequence_number),
        arrival_ms,
        (attribution.experiment_id or DEFAULT_EXPERIMENT_ID) if attribution else None,
        attribution.variant if attribution else None,
    )


def event_from_dict(
    event: dict, *, shard_id: str = "offline", sequence_number: str = "0", arrival_ms: int | None = None
) -> Event:
    """An Event from a normalized event dict (offline folds and tests; the same checks as records)."""
    record = msgspec.convert(event, Record)
    if arrival_ms is None:
        arrival_ms = timestamp_ms(event["timestamp"])
    return event_of(record, shard_id=shard_id, sequence_number=sequence_number, arrival_ms=arrival_ms)
