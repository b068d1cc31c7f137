"""SQS access for redrive: each message of a queue once, hidden while in use, never left hidden.

Receiving a message hides it for VISIBILITY_S so that nobody else handles it meanwhile. Every message a
session received and did not delete is made visible again when the session ends, whatever ends it (done,
an error, Ctrl-C): a message redrive keeps, and the ones it had received but not reached yet, are back in
the queue at once rather than after the visibility timeout.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tools.redrive.messages import SENT_TIMESTAMP

VISIBILITY_S = 300
SQS_MAX_RECEIVE = 10
# Long polling of one second asks every SQS server, so an empty answer means an empty queue (short
# polling samples a subset and can answer empty while messages wait).
RECEIVE_WAIT_S = 1


class QueueSession:
    """Messages of one queue for one run; use it as a context manager."""

    def __init__(self, sqs: Any, queue_url: str, *, wait_s: int = RECEIVE_WAIT_S) -> None:
        self.sqs = sqs
        self.url = queue_url
        self.wait_s = wait_s
        self._held: dict[str, dict[str, Any]] = {}  # message id -> newest receipt, not deleted yet
        self._seen: set[str] = set()
        self.unreleased: list[str] = []  # ids that could not be made visible again (stay hidden)

    def __enter__(self) -> QueueSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release_all()

    def approximate_count(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def messages(self, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Every message once (a kept message that comes round again is not handed out twice)."""
        while limit is None or len(self._seen) < limit:
            want = SQS_MAX_RECEIVE if limit is None else min(SQS_MAX_RECEIVE, limit - len(self._seen))
            page = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=want,
                WaitTimeSeconds=self.wait_s,
                VisibilityTimeout=VISIBILITY_S,
                MessageSystemAttributeNames=[SENT_TIMESTAMP],
            ).get("Messages", [])
            fresh = []
            for message in page:
                self._held[message["MessageId"]] = message
                if message["MessageId"] not in self._seen:
                    self._seen.add(message["MessageId"])
                    fresh.append(message)
            if not fresh:
                return
            yield from fresh

    def delete(self, message: dict[str, Any]) -> None:
        """Delete a handled message (with its newest receipt handle)."""
        held = self._held.get(message["MessageId"], message)
        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=held["ReceiptHandle"])
        self._held.pop(message["MessageId"], None)

    def release_all(self) -> None:
        """Make every message received and not deleted visible again now."""
        held = list(self._held.values())
        self._held.clear()
        for start in range(0, len(held), SQS_MAX_RECEIVE):
            chunk = held[start : start + SQS_MAX_RECEIVE]
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(chunk)
            ]
            try:
                failed = self.sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries).get(
                    "Failed", []
                )
            except (BotoCoreError, ClientError):
                failed = [{"Id": entry["Id"]} for entry in entries]
            self.unreleased.extend(chunk[int(entry["Id"])]["MessageId"] for entry in failed)
