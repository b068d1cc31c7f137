"""The two kinds of failure message redrive reads, parsed into what it needs (pure: no AWS here).

- On-failure queue: AWS's batch metadata for a range the event source mapping gave up on (no records):

      {"requestContext": {"functionArn": ..., "condition": "RetryAttemptsExhausted", ...},
       "KinesisBatchInfo": {"shardId", "startSequenceNumber", "endSequenceNumber", "streamArn",
                            "batchSize", ...}}

- Dead-letter queue: one record the process function could not use, with its payload
  (`process.dead_letter.message_body`): payload_base64, reason, shard_id, sequence_number,
  partition_key, event_source_arn, and `payload_truncated` when the payload was cut to fit SQS.

A message that does not have its kind's shape raises `CorruptMessage`, naming the field and the rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from process.dead_letter import PAYLOAD_TRUNCATED
from streamrec_core.constants import (
    DLQ_EVENT_SOURCE_ARN,
    DLQ_PARTITION_KEY,
    DLQ_PAYLOAD,
    DLQ_REASON,
    DLQ_SEQUENCE_NUMBER,
    DLQ_SHARD_ID,
)
from streamrec_core.kinesis import KinesisRecord, parse_kinesis_event

SENT_TIMESTAMP = "SentTimestamp"  # SQS system attribute: when the message was sent (epoch ms)


class MessageProblem(Exception):
    """Why one message cannot be redriven now; it stays in its queue and the run goes on."""


class CorruptMessage(MessageProblem):
    """A message that is not what its queue holds; the text names the field and the rule."""


@dataclass(frozen=True, slots=True)
class FailedBatch:
    """One on-failure message: which records of which shard the event source mapping gave up on."""

    shard_id: str
    start: str
    end: str
    stream_arn: str
    batch_size: int
    function_arn: str
    condition: str

    @property
    def stream_name(self) -> str:
        return self.stream_arn.split(":", 5)[5].split("/", 1)[1]

    @property
    def label(self) -> str:
        return f"{self.shard_id} {self.start}..{self.end}"


@dataclass(frozen=True, slots=True)
class DeadLetterMessage:
    """One dead-letter message: a record of the stream, with why the process function refused it."""

    shard_id: str
    sequence_number: str
    partition_key: str
    event_source_arn: str
    payload: str  # base64 of the record's data (or the raw text when the data was not base64)
    reason: str
    truncated: bool
    sent_ms: int

    @property
    def label(self) -> str:
        return f"{self.shard_id} {self.sequence_number}"

    def record(self) -> KinesisRecord:
        """The record again, decoded by the process function's own parser (Lambda's event shape).

        The arrival time is not in the message; the time it was dead-lettered stands in for it (it only
        dates the shard's watermark entry in the user row).
        """
        event = {
            "Records": [
                {
                    "eventID": f"{self.shard_id}:{self.sequence_number}",
                    "eventSourceARN": self.event_source_arn,
                    "kinesis": {
                        "sequenceNumber": self.sequence_number,
                        "partitionKey": self.partition_key,
                        "data": self.payload,
                        "approximateArrivalTimestamp": self.sent_ms / 1000,
                    },
                }
            ]
        }
        (record,) = parse_kinesis_event(event)
        return record


def parse_failed_batch(message: dict[str, Any]) -> FailedBatch:
    """The batch an on-failure message describes."""
    body = _json_object(message)
    info = body.get("KinesisBatchInfo")
    if not isinstance(info, dict):
        raise CorruptMessage("KinesisBatchInfo: missing; not an on-failure message of a Kinesis mapping")
    context = body.get("requestContext")
    context = context if isinstance(context, dict) else {}
    start = _sequence_number(info, "startSequenceNumber", "KinesisBatchInfo.")
    end = _sequence_number(info, "endSequenceNumber", "KinesisBatchInfo.")
    if int(end) < int(start):
        raise CorruptMessage("KinesisBatchInfo.endSequenceNumber: must not be below startSequenceNumber")
    stream_arn = _text(info, "streamArn", "KinesisBatchInfo.")
    if not stream_arn.startswith("arn:") or ":stream/" not in stream_arn:
        raise CorruptMessage("KinesisBatchInfo.streamArn: must be a Kinesis stream ARN")
    batch_size = info.get("batchSize", 0)
    if type(batch_size) is not int or batch_size < 0:
        raise CorruptMessage("KinesisBatchInfo.batchSize: must be a whole number >= 0")
    return FailedBatch(
        shard_id=_text(info, "shardId", "KinesisBatchInfo."),
        start=start,
        end=end,
        stream_arn=stream_arn,
        batch_size=batch_size,
        function_arn=str(context.get("functionArn") or ""),
        condition=str(context.get("condition") or ""),
    )


def parse_dead_letter(message: dict[str, Any]) -> DeadLetterMessage:
    """The record a dead-letter message carries."""
    body = _json_object(message)
    if DLQ_PAYLOAD not in body:
        raise CorruptMessage(f"{DLQ_PAYLOAD}: missing; not a dead-letter message of the process function")
    truncated = body.get(PAYLOAD_TRUNCATED, False)
    if type(truncated) is not bool:
        raise CorruptMessage(f"{PAYLOAD_TRUNCATED}: must be true or false")
    sent = (message.get("Attributes") or {}).get(SENT_TIMESTAMP, "0")
    return DeadLetterMessage(
        shard_id=_text(body, DLQ_SHARD_ID),
        sequence_number=_sequence_number(body, DLQ_SEQUENCE_NUMBER),
        partition_key=_text(body, DLQ_PARTITION_KEY, allow_empty=True),
        event_source_arn=_text(body, DLQ_EVENT_SOURCE_ARN, allow_empty=True),
        payload=_text(body, DLQ_PAYLOAD, allow_empty=True),
        reason=_text(body, DLQ_REASON, allow_empty=True),
        truncated=truncated,
        sent_ms=int(sent) if str(sent).isdigit() else 0,
    )


def _json_object(message: dict[str, Any]) -> dict[str, Any]:
    try:
        body = json.loads(message.get("Body", ""))
    except ValueError:
        raise CorruptMessage("body: must be JSON") from None
    if not isinstance(body, dict):
        raise CorruptMessage("body: must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str, prefix: str = "", *, allow_empty: bool = False) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not (value or allow_empty):
        rule = "a string" if allow_empty else "a non-empty string"
        raise CorruptMessage(f"{prefix}{name}: must be {rule}")
    return value


def _sequence_number(body: dict[str, Any], name: str, prefix: str = "") -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise CorruptMessage(f"{prefix}{name}: must be a decimal sequence number")
    return value
