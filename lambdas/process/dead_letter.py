"""Dead-letter queue sender: records that can never succeed, with payload, reason, shard and sequence."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError
from streamrec_core.constants import (
    DLQ_EVENT_SOURCE_ARN,
    DLQ_PARTITION_KEY,
    DLQ_PAYLOAD,
    DLQ_REASON,
    DLQ_SEQUENCE_NUMBER,
    DLQ_SHARD_ID,
)
from streamrec_core.kinesis import DeadLetter

# SQS limits: 10 entries and 256 KiB per SendMessageBatch, 256 KiB per message.
SQS_BATCH_MAX_ENTRIES = 10
SQS_MAX_BYTES = 256 * 1024
# Room for the JSON envelope around the payload; a larger payload is cut (and flagged) to fit.
_ENVELOPE_BYTES = 4 * 1024
PAYLOAD_TRUNCATED = "payload_truncated"


def message_body(letter: DeadLetter) -> str:
    """The JSON body of one dead-letter message."""
    record = letter.record
    payload = base64.b64encode(record.data).decode("ascii") if record.data is not None else record.raw_data
    truncated = len(payload) > SQS_MAX_BYTES - _ENVELOPE_BYTES
    body: dict[str, Any] = {
        DLQ_REASON: letter.reason[:1024],
        DLQ_SHARD_ID: record.shard_id,
        DLQ_SEQUENCE_NUMBER: record.sequence_number,
        DLQ_PARTITION_KEY: record.partition_key[:256],
        DLQ_EVENT_SOURCE_ARN: record.event_source_arn,
        DLQ_PAYLOAD: payload[: SQS_MAX_BYTES - _ENVELOPE_BYTES] if truncated else payload,
    }
    if truncated:
        body[PAYLOAD_TRUNCATED] = True
    return json.dumps(body, separators=(",", ":"))


class SqsDeadLetters:
    """Sends dead letters with SendMessageBatch (<= 10 entries, <= 256 KiB per call)."""

    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self.client = sqs_client
        self.queue_url = queue_url
        self.calls = 0

    def send(self, letters: Sequence[DeadLetter]) -> list[DeadLetter]:
        failed: list[DeadLetter] = []
        batch: list[tuple[DeadLetter, str]] = []
        size = 0
        for letter in letters:
            body = message_body(letter)
            if batch and (len(batch) == SQS_BATCH_MAX_ENTRIES or size + len(body) > SQS_MAX_BYTES):
                failed.extend(self._send_batch(batch))
                batch, size = [], 0
            batch.append((letter, body))
            size += len(body)
        if batch:
            failed.extend(self._send_batch(batch))
        return failed

    def _send_batch(self, batch: list[tuple[DeadLetter, str]]) -> list[DeadLetter]:
        entries = [{"Id": str(i), "MessageBody": body} for i, (_, body) in enumerate(batch)]
        try:
            self.calls += 1
            response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
        except ClientError:
            return [letter for letter, _ in batch]
        return [batch[int(entry["Id"])][0] for entry in response.get("Failed", [])]
