"""Kinesis records as the event source mapping hands them to a function, and their dead letters.

Shared by every consumer of the stream (process, the aggregate branches) and by redrive.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from streamrec_core.features.events import Event, InvalidRecord, decode_event

REASON_NOT_BASE64: Final = "undecodable: record data is not base64"


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


def to_event(record: KinesisRecord) -> Event:
    """The record's Event; InvalidRecord (its message is the dead-letter reason) when it never can be."""
    if record.data is None:
        raise InvalidRecord(REASON_NOT_BASE64)
    return decode_event(
        record.data,
        shard_id=record.shard_id,
        sequence_number=record.sequence_number,
        arrival_ms=record.arrival_ms,
    )


def reason_kind(reason: str) -> str:
    """Low-cardinality reason for metrics: the word before the colon."""
    return reason.split(":", 1)[0]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: KinesisRecord
    reason: str


class DeadLetterPort(Protocol):
    def send(self, letters: Sequence[DeadLetter]) -> list[DeadLetter]:
        """Send the letters; return the ones that could not be sent."""
        ...


def decode_batch(records: Sequence[KinesisRecord]) -> tuple[list[Event], list[DeadLetter]]:
    """The batch's events in sequence order, and the records that can never be applied."""
    events: list[Event] = []
    letters: list[DeadLetter] = []
    for record in sorted(records, key=lambda r: r.seq):
        try:
            events.append(to_event(record))
        except InvalidRecord as error:
            letters.append(DeadLetter(record, str(error)))
    return events, letters
