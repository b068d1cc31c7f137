"""Ingest against moto's Kinesis: records land keyed by user_id and decode back to the events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from ingest import handler as ingest_handler
from moto import mock_aws
from streamrec_core import constants as c
from streamrec_core.schema import decode_record

from local_emulator.worker_main import LambdaContext
from tests.unit.ingest_fakes import (
    PRODUCER_KEY_ID,
    ingest_config,
    load_fixture,
    proxy_event,
)

STREAM = "streamrec-events-test"


@pytest.fixture
def kinesis() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("kinesis", region_name="us-east-1")
        client.create_stream(StreamName=STREAM, ShardCount=4)
        client.get_waiter("stream_exists").wait(StreamName=STREAM)
        yield client
    ingest_handler.reset()


def read_all(client: Any) -> dict[str, list[dict[str, Any]]]:
    """Every record of the stream, by shard, in sequence order."""
    records: dict[str, list[dict[str, Any]]] = {}
    for shard in client.list_shards(StreamName=STREAM)["Shards"]:
        iterator = client.get_shard_iterator(
            StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        got = client.get_records(ShardIterator=iterator, Limit=10_000)["Records"]
        records[shard["ShardId"]] = sorted(got, key=lambda r: int(r["SequenceNumber"]))
    return records


def test_accepted_events_land_keyed_by_user_and_decode_back(kinesis: Any) -> None:
    # Given the ingest function wired to a real (moto) stream
    ingest_handler.configure(ingest_config(stream_name=STREAM), kinesis)
    # When a batch with one invalid event and one repeat is posted
    response = ingest_handler.handler(load_fixture("batch_mixed.json"), LambdaContext("ingest"))
    body = json.loads(response["body"])
    # Then exactly the two distinct valid events are in the stream, keyed by user, decodable
    assert response["statusCode"] == 200
    records = [r for shard in read_all(kinesis).values() for r in shard]
    assert len(records) == 2
    by_id = {decode_record(r["Data"])["event_id"]: r for r in records}
    assert set(by_id) == {"e-0", "e-2"} == {a["event_id"] for a in body["accepted"]}
    for record in records:
        event = decode_record(record["Data"])
        assert record["PartitionKey"] == event["user_id"]
        assert event["schema_version"] == 1 and event[c.RECORD_RECEIVED_AT].endswith("Z")
    assert decode_record(by_id["e-2"]["Data"])["price"] == 19.99


def test_one_users_events_stay_in_order_on_one_shard(kinesis: Any) -> None:
    ingest_handler.configure(ingest_config(stream_name=STREAM), kinesis)
    events = [
        {"event_id": f"e-{i}", "event_type": "view", "user_id": f"user-{i % 5}", "item_id": f"i-{i}"}
        for i in range(100)
    ]
    response = ingest_handler.handler(proxy_event({"events": events}), LambdaContext("ingest"))
    assert response["statusCode"] == 200
    shards_of_user: dict[str, set[str]] = {}
    order_of_user: dict[str, list[str]] = {}
    for shard_id, records in read_all(kinesis).items():
        for record in records:
            event = decode_record(record["Data"])
            shards_of_user.setdefault(event["user_id"], set()).add(shard_id)
            order_of_user.setdefault(event["user_id"], []).append(event["event_id"])
    assert all(len(shards) == 1 for shards in shards_of_user.values())
    for user, ids in order_of_user.items():
        assert ids == [e["event_id"] for e in events if e["user_id"] == user]


def test_cold_start_reads_the_environment_and_creates_its_client(
    kinesis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the environment CDK sets, and no injected dependencies
    for name, value in {
        c.ENV_STREAM_NAME: STREAM,
        c.ENV_MAX_EVENT_AGE_SECONDS: "604800",
        c.ENV_MAX_FUTURE_SKEW_SECONDS: "300",
        c.ENV_MAX_BODY_BYTES: "1048576",
        c.ENV_MAX_EVENTS_PER_REQUEST: "500",
        c.ENV_PUT_RETRY_BUDGET_SECONDS: "5",
        c.ENV_PRODUCER_API_KEY_ID: PRODUCER_KEY_ID,
    }.items():
        monkeypatch.setenv(name, value)
    ingest_handler.reset()
    # When an event arrives
    response = ingest_handler.handler(load_fixture("single_event.json"), LambdaContext("ingest"))
    # Then it is in the stream
    assert response["statusCode"] == 200
    records = [r for shard in read_all(kinesis).values() for r in shard]
    assert [decode_record(r["Data"])["event_id"] for r in records] == ["5b9c1f3e-2a4d-4e8f-9a1b-7c6d5e4f3a21"]


def test_a_missing_stream_answers_503_with_retry_after(kinesis: Any) -> None:
    ingest_handler.configure(ingest_config(stream_name="no-such-stream"), kinesis)
    response = ingest_handler.handler(load_fixture("single_event.json"), LambdaContext("ingest"))
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"] == "1"
    assert json.loads(response["body"])["error"]["code"] == "stream_unavailable"
