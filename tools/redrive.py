"""Redrive: reprocess the Kinesis batches the event source mapping gave up on.

When a batch exhausts its retries (or its records grow too old), Lambda sends the on-failure
destination a message with AWS's batch metadata, not the records:

    {"requestContext": {"functionArn": ..., "condition": "RetryAttemptsExhausted", ...},
     "KinesisBatchInfo": {"shardId", "startSequenceNumber", "endSequenceNumber", "streamArn",
                          "batchSize", ...}}

This command reads those messages, re-reads each range from the stream by sequence number
(AT_SEQUENCE_NUMBER, stopping after endSequenceNumber), runs the process function's own logic on the
records in redrive mode (idempotent: an event already applied is recognised by its event id, see
docs/processing.md), and deletes each message whose records were all handled. Messages it cannot handle
(records trimmed from the stream, throttling that persists, not a Kinesis batch) stay in the queue.

    python -m tools.redrive                                                 # the local pipeline (make up)
    python -m tools.redrive --queue-url URL --region eu-west-1 --dry-run    # a real account

The process settings (tables, TTLs, lateness, trending slots) are read from the environment of the
function named in each message (Lambda GetFunctionConfiguration), so reprocessing uses exactly what the
function uses; --function-name overrides it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Tools import the shared code exactly as the functions do, with lambdas/ on the path.
_LAMBDAS = str(Path(__file__).resolve().parent.parent / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.insert(0, _LAMBDAS)

import boto3  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from process.config import ProcessConfig  # noqa: E402
from process.dead_letter import SqsDeadLetters  # noqa: E402
from process.logic import BatchProcessor, KinesisRecord  # noqa: E402
from streamrec_core.constants import (  # noqa: E402
    OUTPUT_ON_FAILURE_QUEUE_URL,
)
from streamrec_core.feature_store import FeatureStore  # noqa: E402

from tools.progress import Progress  # noqa: E402

GET_RECORDS_LIMIT = 1000
DEFAULT_ENDPOINT_FILE = Path(__file__).resolve().parent.parent / ".local" / "endpoint.json"
SQS_MAX_RECEIVE = 10


@dataclass(frozen=True, slots=True)
class FailedBatch:
    """One on-failure message: which records of which shard the event source mapping gave up on."""

    message_id: str
    receipt_handle: str
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


def parse_message(message: dict[str, Any]) -> FailedBatch | None:
    """The batch an on-failure message describes, or None when it is no Kinesis batch record."""
    try:
        body = json.loads(message["Body"])
        info = body["KinesisBatchInfo"]
        context = body.get("requestContext") or {}
        return FailedBatch(
            message_id=message.get("MessageId", ""),
            receipt_handle=message["ReceiptHandle"],
            shard_id=str(info["shardId"]),
            start=str(info["startSequenceNumber"]),
            end=str(info["endSequenceNumber"]),
            stream_arn=str(info["streamArn"]),
            batch_size=int(info.get("batchSize") or 0),
            function_arn=str(context.get("functionArn", "")),
            condition=str(context.get("condition", "")),
        )
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def read_range(kinesis: Any, batch: FailedBatch) -> tuple[list[KinesisRecord], bool]:
    """Records start..end of the shard (sequence numbers compared as integers); (records, complete).

    `complete` is False when the range can no longer be read whole (trimmed by retention).
    """
    first, last = int(batch.start), int(batch.end)
    try:
        iterator = kinesis.get_shard_iterator(
            StreamName=batch.stream_name,
            ShardId=batch.shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=batch.start,
        )["ShardIterator"]
    except ClientError:
        return [], False
    records: list[KinesisRecord] = []
    while iterator:
        page = kinesis.get_records(ShardIterator=iterator, Limit=GET_RECORDS_LIMIT)
        for raw in page.get("Records", []):
            seq = int(raw["SequenceNumber"])
            if seq > last:
                return records, _complete(records, first, batch)
            if seq < first:
                continue
            arrival = raw.get("ApproximateArrivalTimestamp")
            records.append(
                KinesisRecord(
                    shard_id=batch.shard_id,
                    sequence_number=str(raw["SequenceNumber"]),
                    partition_key=raw.get("PartitionKey", ""),
                    data=bytes(raw["Data"]),
                    arrival_ms=int(round(arrival.timestamp(), 3) * 1000) if arrival is not None else 0,
                    event_source_arn=batch.stream_arn,
                )
            )
            if seq == last:
                return records, _complete(records, first, batch)
        if not page.get("Records") and not page.get("MillisBehindLatest"):
            break  # at the tip of an open shard, or the end of a closed one
        iterator = page.get("NextShardIterator")
    return records, _complete(records, first, batch)


def _complete(records: list[KinesisRecord], first: int, batch: FailedBatch) -> bool:
    if (
        not records
        or int(records[0].sequence_number) != first
        or int(records[-1].sequence_number) != int(batch.end)
    ):
        return False
    return batch.batch_size <= 0 or len(records) >= batch.batch_size


@dataclass
class Summary:
    messages: int = 0
    redriven: int = 0
    kept: int = 0
    unrecognised: int = 0
    records: int = 0
    applied: int = 0
    already_applied: int = 0
    dead_lettered: int = 0
    uncertain: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


ProcessorFactory = Callable[[FailedBatch], BatchProcessor]


class Redriver:
    """Drains an on-failure queue: re-read, reprocess (redrive mode), delete what was handled."""

    def __init__(
        self,
        sqs: Any,
        kinesis: Any,
        queue_url: str,
        processor_for: ProcessorFactory,
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> None:
        self.sqs = sqs
        self.kinesis = kinesis
        self.queue_url = queue_url
        self.processor_for = processor_for
        self.dry_run = dry_run
        self.progress = progress

    def messages(self, limit: int | None) -> Iterator[dict[str, Any]]:
        seen: set[str] = set()
        while limit is None or len(seen) < limit:
            want = SQS_MAX_RECEIVE if limit is None else min(SQS_MAX_RECEIVE, limit - len(seen))
            page = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=want, WaitTimeSeconds=0, VisibilityTimeout=300
            ).get("Messages", [])
            fresh = [m for m in page if m.get("MessageId") not in seen]
            for message in page:
                if message.get("MessageId") in seen:  # a kept message came round again: leave it be
                    self._release(message)
            if not fresh:
                return
            for message in fresh:
                seen.add(message.get("MessageId", ""))
                yield message

    def run(self, limit: int | None = None) -> Summary:
        self._kept: list[dict[str, Any]] = []
        try:
            return self._run(limit)
        finally:
            for message in self._kept:
                self._release(message)

    def _run(self, limit: int | None) -> Summary:
        summary = Summary()
        for message in self.messages(limit):
            summary.messages += 1
            batch = parse_message(message)
            if batch is None:
                summary.unrecognised += 1
                summary.problems.append(f"message {message.get('MessageId')}: not a Kinesis batch record")
                self._kept.append(message)
                self._tick(0, "unrecognised message kept")
                continue
            records, complete = read_range(self.kinesis, batch)
            summary.records += len(records)
            if not complete:
                summary.kept += 1
                summary.problems.append(
                    f"{batch.shard_id} {batch.start}..{batch.end}: read {len(records)} of {batch.batch_size} "
                    "records (trimmed from the stream?); message kept"
                )
                self._kept.append(message)
                self._tick(len(records), "incomplete range kept")
                continue
            if self.dry_run:
                self._kept.append(message)
                self._tick(len(records), f"would redrive {batch.shard_id} {batch.start}..{batch.end}")
                continue
            result = self.processor_for(batch).process(records, redrive=True)
            summary.applied += result.applied + result.late
            summary.already_applied += result.duplicates + result.seen
            summary.dead_lettered += result.dead_lettered
            summary.uncertain += result.redrive_uncertain
            if result.failed_sequence_number is not None:
                summary.kept += 1
                summary.problems.append(
                    f"{batch.shard_id} {batch.start}..{batch.end}: stopped at "
                    f"{result.failed_sequence_number} (throttled?); message kept, run again"
                )
                self._kept.append(message)
                self._tick(len(records), "stopped; kept")
                continue
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            summary.redriven += 1
            self._tick(len(records), f"redriven {batch.shard_id} {batch.start}..{batch.end}")
        return summary

    def _release(self, message: dict[str, Any]) -> None:
        """Make a message we keep visible again at once (for the next run)."""
        try:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        except ClientError:
            pass

    def _tick(self, records: int, status: str) -> None:
        if self.progress is not None:
            self.progress.update(1, status)


def function_processor_factory(
    lambda_client: Any, dynamodb: Any, sqs: Any, function_name: str | None
) -> ProcessorFactory:
    """Processors configured from the process function's own environment (cached per function)."""
    cache: dict[str, BatchProcessor] = {}

    def processor_for(batch: FailedBatch) -> BatchProcessor:
        name = function_name or batch.function_arn
        if not name:
            raise SystemExit("the message names no function; pass --function-name")
        if name not in cache:
            env = (
                lambda_client.get_function_configuration(FunctionName=name)
                .get("Environment", {})
                .get("Variables", {})
            )
            config = ProcessConfig.from_env(env)
            store = FeatureStore(dynamodb, config.users_table, config.items_table)
            cache[name] = BatchProcessor(
                store, SqsDeadLetters(sqs, config.dead_letter_queue_url), config.features
            )
        return cache[name]

    return processor_for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Reprocess Kinesis batches from the on-failure queue.")
    parser.add_argument("--endpoint-file", type=Path, help="the local pipeline's .local/endpoint.json")
    parser.add_argument("--endpoint-url", help="AWS endpoint (e.g. the local moto server)")
    parser.add_argument("--region", help="AWS region")
    parser.add_argument("--queue-url", help="the on-failure queue (default: the stack output)")
    parser.add_argument(
        "--function-name", help="process function whose settings to use (default: from each message)"
    )
    parser.add_argument("--max-messages", type=int, default=None, help="stop after this many messages")
    parser.add_argument(
        "--dry-run", action="store_true", help="read and report; change nothing, delete nothing"
    )
    args = parser.parse_args(argv)

    endpoint, region, queue_url = args.endpoint_url, args.region, args.queue_url
    if args.endpoint_file is None and queue_url is None and DEFAULT_ENDPOINT_FILE.exists():
        args.endpoint_file = DEFAULT_ENDPOINT_FILE  # the running local pipeline (`make up`)
    if args.endpoint_file:
        document = json.loads(args.endpoint_file.read_text())
        endpoint = endpoint or document.get("moto_endpoint")
        region = region or document.get("region")
        queue_url = queue_url or (document.get("outputs") or {}).get(OUTPUT_ON_FAILURE_QUEUE_URL)
    if not queue_url:
        parser.error("no queue: pass --queue-url or --endpoint-file")

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=endpoint, region_name=region)

    sqs = client("sqs")
    total = None
    try:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        total = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
        if args.max_messages is not None:
            total = min(total, args.max_messages)
    except (ClientError, KeyError, ValueError):
        pass
    progress = Progress(total, label="redrive")
    redriver = Redriver(
        sqs,
        client("kinesis"),
        queue_url,
        function_processor_factory(client("lambda"), client("dynamodb"), sqs, args.function_name),
        dry_run=args.dry_run,
        progress=progress,
    )
    summary = redriver.run(args.max_messages)
    progress.close()
    for problem in summary.problems:
        print(f"kept: {problem}", file=sys.stderr)
    print(json.dumps({"dry_run": args.dry_run, **summary.as_dict()}, indent=2))
    return 0 if summary.kept == 0 and summary.unrecognised == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
