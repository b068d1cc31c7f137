"""Redrive of the on-failure queue (moto in-process): the hot path's mapping gives a batch up, the
aggregate branches wait for it, and `python -m tools.redrive --source on-failure` re-reads the batch from
the stream, applies it to the user rows and its aggregates, after which the branches go on: the tables
equal each event applied once. Dead-letter replay and the local pipeline: test_redrive_replay.py."""

from __future__ import annotations

import io
import json
import math
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

import boto3
import pytest
from aggregate import handler as aggregate_handler
from aggregate.config import AggregateConfig
from moto import mock_aws
from process import handler as process_handler
from process.config import ProcessConfig
from streamrec_core import constants as c
from streamrec_core.features.config import FeatureConfig
from streamrec_core.features.events import decode_event

from local_emulator import moto_patches
from local_emulator.esm import EsmConfig, EsmPoller
from local_emulator.testing import FakeClock, create_stream
from local_emulator.worker_main import LambdaContext
from tests.feature_kit import (
    USERS_TABLE,
    FaultyDynamoDB,
    aggregate_env,
    comparable,
    create_function,
    create_tables,
    expected_rows,
    process_env,
    reference_rows,
    scan_rows,
)
from tools import redrive
from tools.redrive.messages import CorruptMessage, parse_failed_batch

STREAM = "events"
FEATURES = FeatureConfig(user_ttl_seconds=86_400, item_ttl_seconds=86_400, allowed_lateness_ms=3_600_000)


def body(n: int, user: str, item: str, kind: str = "view") -> dict[str, Any]:
    ts = f"2024-05-01T12:{n // 60:02d}:{n % 60:02d}.000Z"
    return {
        "event_id": f"ev-{n}",
        "event_type": kind,
        "user_id": user,
        "item_id": item,
        "category": f"c{item[-1]}",
        "timestamp": ts,
        "schema_version": 1,
        c.RECORD_RECEIVED_AT: ts,
    }


# Batch A (given up): users u1 and u2. Later records: users u3 and u4, on the same items.
BATCH_A = [
    body(1, "u1", "i1"),
    body(2, "u2", "i2"),
    body(3, "u1", "i4", "add_to_cart"),
    body(4, "u2", "i3"),
    body(5, "u1", "i5", "purchase"),
    body(6, "u2", "i1"),
]
LATER = [
    body(7, "u3", "i1"),
    body(8, "u4", "i2"),
    body(9, "u3", "i2"),
    body(10, "u4", "i1", "favorite"),
    body(11, "u3", "i3"),
    body(12, "u4", "i3"),
]


@pytest.fixture
def outage():
    """A pipeline where DynamoDB throttles every write after the first until the hot path gives a batch
    up; the branches are then polled and wait for the records the hot path has not applied."""
    with mock_aws(), moto_patches.patched():
        region = {"region_name": "us-east-1"}
        kinesis, dynamodb, sqs = (boto3.client(name, **region) for name in ("kinesis", "dynamodb", "sqs"))
        lam, iam = boto3.client("lambda", **region), boto3.client("iam", **region)
        create_tables(dynamodb)
        dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        on_failure_url = sqs.create_queue(QueueName="on-failure")["QueueUrl"]
        env = process_env(FEATURES, dlq)
        arn = create_stream(kinesis, STREAM)
        functions = {
            "process": create_function(lam, iam, env),
            "items": create_function(lam, iam, aggregate_env(FEATURES), "items", "aggregate.handler.items"),
        }
        for function_arn in functions.values():  # redrive finds the stream's consumers by their mappings
            lam.create_event_source_mapping(
                EventSourceArn=arn, FunctionName=function_arn, StartingPosition="TRIM_HORIZON"
            )
        for event in BATCH_A + LATER:
            kinesis.put_record(
                StreamName=STREAM, PartitionKey=event["user_id"], Data=json.dumps(event).encode()
            )

        sent: list[dict[str, Any]] = []
        faulty = FaultyDynamoDB(dynamodb, plan=lambda n: "throttle" if n > 1 and not sent else None)
        process_handler.configure(ProcessConfig.from_env(env), faulty, sqs, sleep=lambda s: None)
        aggregate_handler.configure(
            AggregateConfig.from_env(aggregate_env(FEATURES)),
            dynamodb,
            sleep=lambda s: None,
            not_ready_wait_s=0,
        )

        def send_on_failure(message: dict[str, Any]) -> None:
            sent.append(message)
            sqs.send_message(QueueUrl=on_failure_url, MessageBody=json.dumps(message))

        hot = EsmPoller(
            kinesis,
            EsmConfig(
                arn,
                functions["process"],
                batch_size=6,
                report_batch_item_failures=True,
                maximum_retry_attempts=1,
                on_failure_destination="arn:aws:sqs:us-east-1:123456789012:on-failure",
            ),
            invoke=lambda event: (process_handler.handler(event, LambdaContext("process")), None),
            send_on_failure=send_on_failure,
            clock=FakeClock(),
        )
        hot.run_until_idle()
        items = EsmPoller(
            kinesis,
            EsmConfig(arn, functions["items"], batch_size=6, report_batch_item_failures=True),
            invoke=lambda event: (aggregate_handler.items(event, LambdaContext("items")), None),
            clock=FakeClock(),
        )
        for _ in range(5):  # the item branch waits for the records the hot path has not applied
            items.poll_once()
        yield {
            "dynamodb": dynamodb,
            "sqs": sqs,
            "kinesis": kinesis,
            "queue": on_failure_url,
            "sent": sent,
            "items": items,
        }
        process_handler.reset()
        aggregate_handler.reset()


def reference() -> dict:
    events = [
        decode_event(
            json.dumps(e).encode(), shard_id="shardId-000000000000", sequence_number=str(n), arrival_ms=0
        )
        for n, e in enumerate(BATCH_A + LATER, start=1)
    ]
    return comparable(expected_rows(reference_rows(FEATURES, events)))


def settle(outage: dict) -> dict:
    """Let the item branch go on and merge, then the tables as readers compare them."""
    outage["items"].run_until_idle()
    aggregate_handler._get_dependencies().items.clock = lambda: 10**10  # the lists are due
    aggregate_handler._get_dependencies().items.merge_if_due()
    return comparable(scan_rows(outage["dynamodb"]))


def run_cli(*args: str) -> tuple[int, dict, str]:
    """Redrive the outage's on-failure queue: (exit code, that queue's summary, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = redrive.main(["--source", "on-failure", "--region", "us-east-1", *args])
    return code, json.loads(out.getvalue())["on-failure"], err.getvalue()


def visible_now(sqs, queue: str) -> list[dict]:
    """The messages a consumer gets right now: hidden ones are not among them (and these stay visible)."""
    return sqs.receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=0
    ).get("Messages", [])


def test_a_given_up_batch_is_on_the_queue_and_the_branch_waits_for_it(outage):
    (message,) = outage["sent"]
    info = message["KinesisBatchInfo"]
    # u1 (the first write) landed; the mapping retried from u2's first record and gave the rest up
    assert info["startSequenceNumber"] == "2" and info["endSequenceNumber"] == "6"
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    rows = scan_rows(outage["dynamodb"])
    assert {key.pk for key in rows if key.table == "users"} == {"u1", "u3", "u4"}
    # the item branch stopped at u2's first record: nothing after it is applied yet
    assert not outage["items"].is_idle()
    assert comparable(rows) != reference()


def test_redrive_restores_the_exact_features_and_deletes_the_message(outage):
    code, summary, _ = run_cli("--on-failure-url", outage["queue"])
    # u2's three events are applied with their aggregates; u1's two were applied before the give-up
    assert code == 0 and summary["handled"] == 1 and summary["records"] == 5
    assert (summary["applied"], summary["already_applied"], summary["aggregated"]) == (3, 2, 3)
    assert settle(outage) == reference()
    assert outage["sqs"].receive_message(QueueUrl=outage["queue"]).get("Messages") is None
    assert run_cli("--on-failure-url", outage["queue"])[1]["messages"] == 0  # nothing left to do


def test_redriving_the_same_range_twice_counts_nothing_twice(outage):
    (message,) = outage["sent"]
    outage["sqs"].send_message(QueueUrl=outage["queue"], MessageBody=json.dumps(message))  # a duplicate
    code, summary, _ = run_cli("--on-failure-url", outage["queue"])
    assert code == 0 and summary["handled"] == 2 and summary["aggregated"] == 3
    assert settle(outage) == reference()


def test_dry_run_says_what_it_would_apply_changes_nothing_and_keeps_the_message(outage):
    before = scan_rows(outage["dynamodb"])
    code, summary, _ = run_cli("--on-failure-url", outage["queue"], "--dry-run")
    assert code == 0 and summary["messages"] == 1 and summary["handled"] == 1
    assert summary["applied"] == 3  # what a run would apply, from the real rows
    assert scan_rows(outage["dynamodb"]) == before
    assert len(visible_now(outage["sqs"], outage["queue"])) == 1


def test_a_corrupt_message_is_reported_by_field_kept_visible_and_the_others_are_redriven(outage):
    outage["sqs"].send_message(QueueUrl=outage["queue"], MessageBody="hello")
    code, summary, err = run_cli("--on-failure-url", outage["queue"])
    assert code == 1 and summary["kept"] == 1 and summary["handled"] == 1
    assert "body: must be JSON" in err and "Traceback" not in err
    assert [m["Body"] for m in visible_now(outage["sqs"], outage["queue"])] == ["hello"]
    assert settle(outage) == reference()


def test_a_corrupt_feature_row_fails_that_message_only_and_it_is_visible_again_at_once(outage):
    """Given a user row of the given-up batch that does not decode, when redrive runs, it names the
    message and the error (no traceback), exits 1, leaves the message visible at once, and a second run
    finds it again instead of reporting an empty queue."""
    outage["dynamodb"].put_item(
        TableName=USERS_TABLE,
        Item={c.USERS_PK: {"S": "u2"}, c.ATTR_DATA: {"B": b"\xc1 not msgpack"}, c.ATTR_VERSION: {"N": "1"}},
    )
    code, summary, err = run_cli("--on-failure-url", outage["queue"])
    assert code == 1 and summary["kept"] == 1 and summary["handled"] == 0
    (problem,) = summary["problems"]
    assert "processing failed" in problem and "does not decode" in problem
    assert "Traceback" not in err and problem in err
    assert len(visible_now(outage["sqs"], outage["queue"])) == 1
    code, summary, _ = run_cli("--on-failure-url", outage["queue"])
    assert code == 1 and summary["messages"] == 1 and summary["kept"] == 1


def test_parse_failed_batch_reads_aws_batch_info():
    message = {
        "MessageId": "m",
        "ReceiptHandle": "r",
        "Body": json.dumps(
            {
                "requestContext": {"functionArn": "arn:f", "condition": "RecordAgeExceeded"},
                "KinesisBatchInfo": {
                    "shardId": "shardId-1",
                    "startSequenceNumber": "49590338271490256608559692538361571095921575989136588898",
                    "endSequenceNumber": "49590338271490256608559692540925702759324208523137515618",
                    "streamArn": "arn:aws:kinesis:us-east-1:1:stream/events",
                    "batchSize": 3,
                },
            }
        ),
    }
    batch = parse_failed_batch(message)
    assert batch.stream_name == "events" and batch.condition == "RecordAgeExceeded"
    assert int(batch.end) > int(batch.start) and not math.isnan(batch.batch_size)


@pytest.mark.parametrize(
    ("info", "field"),
    [
        (None, "KinesisBatchInfo"),
        ({"startSequenceNumber": "x1"}, "KinesisBatchInfo.startSequenceNumber"),
        ({"endSequenceNumber": "1"}, "KinesisBatchInfo.endSequenceNumber"),
        ({"streamArn": "events"}, "KinesisBatchInfo.streamArn"),
        ({"shardId": ""}, "KinesisBatchInfo.shardId"),
        ({"batchSize": "3"}, "KinesisBatchInfo.batchSize"),
    ],
)
def test_parse_failed_batch_names_the_broken_field(info, field):
    good = {
        "shardId": "shardId-1",
        "startSequenceNumber": "5",
        "endSequenceNumber": "9",
        "streamArn": "arn:aws:kinesis:us-east-1:1:stream/events",
        "batchSize": 3,
    }
    body = {"KinesisBatchInfo": None if info is None else {**good, **info}}
    with pytest.raises(CorruptMessage, match=f"^{field}: "):
        parse_failed_batch({"Body": json.dumps(body)})
