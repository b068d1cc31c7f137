"""process.handler.handler against moto (DynamoDB + SQS), driven by Kinesis events kept as JSON fixtures."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from process import handler as process_handler
from process.config import ProcessConfig
from streamrec_core import constants as c
from streamrec_core.env import ConfigError
from streamrec_core.features.config import FeatureConfig
from streamrec_core.features.keys import USERS, user_key
from streamrec_core.features.user_fold import EXPERIMENT_EFFECT, ITEM_EFFECT, UserRow

from local_emulator.worker_main import LambdaContext
from tests.feature_kit import USERS_TABLE, FaultyDynamoDB, create_tables, process_env, scan_rows

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "process"
CFG = FeatureConfig(user_ttl_seconds=2_592_000, item_ttl_seconds=604_800, allowed_lateness_ms=3_600_000)
ENV = process_env(CFG, "set-by-fixture")


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def aws():
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb)
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        spy = FaultyDynamoDB(dynamodb)
        config = ProcessConfig.from_env({**ENV, c.ENV_DLQ_URL: dlq})
        process_handler.configure(config, spy, sqs, sleep=lambda s: None)
        yield dynamodb, sqs, dlq, spy
        process_handler.reset()


def dead_letters(sqs, url: str) -> list[dict]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_batch_fixture_is_applied_and_poison_records_are_dead_lettered(aws):
    dynamodb, sqs, dlq, spy = aws
    # GIVEN a batch of 6 events (one a client resend), one undecodable and one invalid record
    event = load("kinesis_batch.json")
    # WHEN the handler runs
    response = process_handler.handler(event, LambdaContext("process"))
    # THEN the batch is done, the two poison records are in the DLQ with payload, reason, shard, sequence
    assert response == {"batchItemFailures": []}
    letters = sorted(dead_letters(sqs, dlq), key=lambda m: m[c.DLQ_SEQUENCE_NUMBER])
    assert [m[c.DLQ_REASON].split(":")[0] for m in letters] == ["undecodable", "invalid"]
    assert letters[1][c.DLQ_REASON].startswith("invalid: ") and "$.event_type" in letters[1][c.DLQ_REASON]
    assert letters[0][c.DLQ_SHARD_ID] == "shardId-000000000003"
    assert base64.b64decode(letters[0][c.DLQ_PAYLOAD]).startswith(b'{"event_type": "view"')
    # AND each distinct event is applied once, to the users table only
    rows = scan_rows(dynamodb)
    assert {key.table for key in rows} == {USERS}
    alice = rows[user_key("alice")]
    assert isinstance(alice, UserRow)
    assert alice.counts == {"view": 1, "add_to_cart": 1, "purchase": 1} and alice.bought == ["book-2"]
    assert alice.watermark("shardId-000000000003") == 49650000000000000000000000000000000000000000000000005000
    # AND the branches will find each item event with its session partner, the attributed purchase too
    assert [(e.pred, e.flags) for e in alice.outbox] == [
        ("", ITEM_EFFECT),
        ("book-1", ITEM_EFFECT),
        ("book-1", ITEM_EFFECT | EXPERIMENT_EFFECT),
    ]
    # AND the writes were coalesced: one conditional write per user, one read pass
    assert spy.put_calls == 2 and spy.batch_get_calls == 1


def test_redelivering_the_fixture_leaves_the_tables_unchanged(aws):
    dynamodb, _sqs, _dlq, spy = aws
    event = load("kinesis_batch.json")
    process_handler.handler(event, LambdaContext("process"))
    before = scan_rows(dynamodb)
    assert process_handler.handler(event, LambdaContext("process")) == {"batchItemFailures": []}
    assert scan_rows(dynamodb) == before
    assert spy.put_calls == 2  # nothing new to write


def test_throttling_that_persists_reports_the_first_unapplied_record(aws):
    dynamodb, _sqs, _dlq, spy = aws
    spy.plan = lambda n: "throttle"
    event = load("kinesis_batch.json")
    response = process_handler.handler(event, LambdaContext("process"))
    first = event["Records"][0]["kinesis"]["sequenceNumber"]
    assert response == {"batchItemFailures": [{"itemIdentifier": first}]}
    assert scan_rows(dynamodb) == {}


def test_an_unexpected_error_propagates_so_the_mapping_retries_or_bisects(aws):
    _dynamodb, _sqs, _dlq, spy = aws
    spy.plan = lambda n: "crash"
    with pytest.raises(RuntimeError):
        process_handler.handler(load("kinesis_batch.json"), LambdaContext("process"))


def test_empty_event_is_a_success(aws):
    assert process_handler.handler({"Records": []}, LambdaContext("process")) == {"batchItemFailures": []}


def test_metrics_are_emitted_with_the_shared_names(aws, capsys):
    process_handler.handler(load("kinesis_batch.json"), LambdaContext("process"))
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {m["Name"] for blob in emitted for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {
        c.METRIC_RECORDS_PROCESSED,
        c.METRIC_DUPLICATES_SKIPPED,
        c.METRIC_LATE_EVENTS,
        c.METRIC_FEATURE_WRITES,
        c.METRIC_DLQ_SENDS,
        c.METRIC_BATCH_ITEM_FAILURES,
    } <= names
    blob = next(b for b in emitted if c.METRIC_FEATURE_WRITES in b)
    value = lambda name: blob[name][0] if isinstance(blob[name], list) else blob[name]  # noqa: E731
    assert value(c.METRIC_FEATURE_WRITES) == 2 and value(c.METRIC_DLQ_SENDS) == 2
    assert value(c.METRIC_DUPLICATES_SKIPPED) == 1 and blob["service"] == c.PROCESS_SERVICE


def test_missing_setting_fails_the_cold_start_naming_the_variable():
    for name in (c.ENV_OUTBOX_RETENTION_SECONDS, c.ENV_USERS_TABLE):
        env = {k: v for k, v in ENV.items() if k != name}
        with pytest.raises(ConfigError, match=name):
            ProcessConfig.from_env(env)


def test_user_row_key_is_the_constant(aws):
    dynamodb, *_ = aws
    process_handler.handler(load("kinesis_batch.json"), LambdaContext("process"))
    item = dynamodb.get_item(TableName=USERS_TABLE, Key={c.USERS_PK: {"S": user_key("bob").pk}})["Item"]
    assert item[c.USERS_PK]["S"] == "bob" and int(item[c.ATTR_VERSION]["N"]) == 1
