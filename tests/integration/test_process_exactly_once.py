"""Property: the feature tables equal those from applying each distinct event once, whatever the faults.

Generated clickstreams (with client resends of the same event_id, late events and attributed events)
go into a moto Kinesis stream (optionally resharded midway) and are delivered to the real process
handler by the local emulator's `EsmPoller` (batch size, ReportBatchItemFailures, bisect on error,
ParallelizationFactor) while faults are injected into DynamoDB writes: throttles, version conflicts,
crashes after some writes, and whole batches delivered twice. The tables must then equal an in-memory
fold that applies each distinct event exactly once, and satisfy independent counting invariants.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from process import handler as process_handler
from process.config import ProcessConfig
from streamrec_core import constants as c
from streamrec_core.feature_store import from_item, to_item
from streamrec_core.features import (
    TYPE_WEIGHTS,
    FeatureConfig,
    MemoryFeatures,
    event_from_record,
)

from local_emulator import moto_patches
from local_emulator.esm import EsmConfig, EsmPoller
from local_emulator.testing import FUNCTION_ARN, FakeClock, create_stream
from tests.feature_kit import (
    ITEMS_TABLE,
    USERS_TABLE,
    FaultyDynamoDB,
    assert_same_rows,
    create_tables,
    readers_view,
    table_state,
)

STREAM = "events"
LATENESS_S = 600
FEATURES = FeatureConfig(
    user_ttl_seconds=86_400, item_ttl_seconds=3_600, allowed_lateness_ms=LATENESS_S * 1000, trending_slots=2
)
# With only 2 recent event ids kept, redeliveries are stopped by the watermarks alone (client resends
# older than that horizon count as new events, in the pipeline and in the reference alike).
FEATURES_SHORT_IDS = FeatureConfig(
    user_ttl_seconds=86_400,
    item_ttl_seconds=3_600,
    allowed_lateness_ms=LATENESS_S * 1000,
    trending_slots=2,
    recent_ids_cap=2,
)
T0 = 1_714_564_800  # 2024-05-01T12:00:00Z


def iso(seconds: float) -> str:
    from datetime import UTC, datetime

    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class FakeContext:
    function_name: str = "process"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = FUNCTION_ARN
    aws_request_id: str = "req"


# --- generated clickstreams --------------------------------------------------------------------------
ITEM_TYPES = ["view", "view", "view", "click", "favorite", "add_to_cart", "purchase"]


@st.composite
def clickstreams(draw: Any) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 24))
    clock = T0
    events: list[dict[str, Any]] = []
    for index in range(n):
        if events and draw(st.integers(0, 9)) == 0:  # a client resends an earlier event (same event_id)
            again = dict(draw(st.sampled_from(events)))
            again[c.RECORD_RECEIVED_AT] = iso(clock + 1)
            events.append(again)
            continue
        clock += draw(st.integers(0, 400))
        user = f"u{draw(st.integers(0, 2))}"
        kind = draw(st.sampled_from(ITEM_TYPES + ["impression", "search"]))
        event_time = clock - draw(st.sampled_from([0, 0, 0, 30, 300]))  # out of order within lateness
        late = draw(st.integers(0, 14)) == 0
        received = event_time + (LATENESS_S + 1 if late else draw(st.integers(0, 5)))
        body: dict[str, Any] = {
            "event_id": f"ev-{index}",
            "event_type": kind,
            "user_id": user,
            "timestamp": iso(event_time),
            "schema_version": 1,
            c.RECORD_RECEIVED_AT: iso(received),
        }
        if kind in ITEM_TYPES:
            item = draw(st.integers(0, 5))
            body["item_id"] = f"i{item}"
            body["category"] = f"c{item % 2}"
        if kind in ("impression", "click", "purchase") and draw(st.booleans()):
            body["attribution"] = {
                "request_id": f"r{index}",
                "variant": draw(st.sampled_from(["control", "treatment"])),
                "experiment_id": "exp",
            }
        events.append(body)
    return events


@st.composite
def deliveries(draw: Any) -> dict[str, Any]:
    faults = draw(
        st.dictionaries(st.integers(1, 25), st.sampled_from(["throttle", "conflict", "crash"]), max_size=6)
    )
    return {
        "batch_size": draw(st.integers(1, 12)),
        "parallelization": draw(st.sampled_from([1, 1, 2])),
        "reshard_at": draw(st.one_of(st.none(), st.floats(0.0, 1.0))),
        "faults": faults,
        "duplicate_invokes": draw(st.frozensets(st.integers(1, 8), max_size=4)),
        "transact_max_items": draw(st.sampled_from([10, 16, 100])),
        "features": draw(st.sampled_from([FEATURES, FEATURES_SHORT_IDS])),
    }


# --- the pipeline under faults -------------------------------------------------------------------------
def run_pipeline(events: list[dict[str, Any]], delivery: dict[str, Any]) -> tuple[dict, list[tuple], list]:
    kinesis = boto3.client("kinesis", region_name="us-east-1")
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    create_tables(dynamodb)
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    arn = create_stream(kinesis, STREAM)
    reshard_at = None if delivery["reshard_at"] is None else int(delivery["reshard_at"] * len(events))
    for index, body in enumerate(events):
        if index == reshard_at:
            kinesis.split_shard(
                StreamName=STREAM, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**127)
            )
        kinesis.put_record(StreamName=STREAM, PartitionKey=body["user_id"], Data=json.dumps(body).encode())

    faults = delivery["faults"]
    faulty = FaultyDynamoDB(dynamodb, plan=lambda n: faults.get(n))
    config = ProcessConfig(USERS_TABLE, ITEMS_TABLE, dlq, delivery["features"])
    process_handler.configure(
        config,
        faulty,
        sqs,
        sleep=lambda s: None,
        max_throttle_retries=1,
        max_conflict_retries=1,
        transact_max_items=delivery["transact_max_items"],
    )
    invocations = {"n": 0}

    def invoke(event: dict[str, Any]) -> tuple[Any, str | None]:
        invocations["n"] += 1
        if invocations["n"] in delivery["duplicate_invokes"]:
            process_handler.handler(event, FakeContext())  # delivered, but the answer was lost
        return process_handler.handler(event, FakeContext()), None

    on_failure: list[dict[str, Any]] = []
    esm = EsmConfig(
        arn,
        FUNCTION_ARN,
        batch_size=delivery["batch_size"],
        bisect_batch_on_function_error=True,
        report_batch_item_failures=True,
        parallelization_factor=delivery["parallelization"],
    )
    EsmPoller(
        kinesis, esm, invoke=invoke, send_on_failure=on_failure.append, clock=FakeClock()
    ).run_until_idle()
    return table_state(dynamodb), stream_records(kinesis), on_failure


def stream_records(kinesis: Any) -> list[tuple[str, str, bytes, int]]:
    """Every record of every shard (parents first), as (shard, sequence number, data, arrival ms)."""
    shards = kinesis.list_shards(StreamName=STREAM)["Shards"]
    out = []
    for shard in sorted(shards, key=lambda s: ("ParentShardId" in s, s["ShardId"])):
        iterator = kinesis.get_shard_iterator(
            StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
            for record in page["Records"]:
                arrival = round(record["ApproximateArrivalTimestamp"].timestamp(), 3)
                out.append(
                    (shard["ShardId"], record["SequenceNumber"], record["Data"], int(round(arrival * 1000)))
                )
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return out


# --- the reference: each distinct event applied once ----------------------------------------------------
def reference_state(records: list[tuple[str, str, bytes, int]], features: FeatureConfig) -> dict:
    memory = MemoryFeatures(features)
    for shard, sequence_number, data, arrival in records:
        body = json.loads(data)
        memory.apply_event(
            event_from_record(body, shard_id=shard, sequence_number=sequence_number, arrival_ms=arrival)
        )
    state = {}
    for (table, pk, sk), row in memory.rows.items():
        stored = from_item(to_item(row))  # the same number normalization the store applies
        stored.pop(c.ATTR_VERSION, None)
        state[("users", pk) if table == "users" else ("items", pk, sk)] = stored
    return state


def check_invariants(state: dict, events: list[dict[str, Any]]) -> None:
    """Counting invariants computed without the feature code: each distinct event counted once."""
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for body in events:
        first.setdefault((body["user_id"], body["event_id"]), body)
    for user in {u for u, _ in first}:
        mine = [b for (u, _), b in first.items() if u == user]
        counts: dict[str, int] = {}
        for body in mine:
            counts[body["event_type"]] = counts.get(body["event_type"], 0) + 1
        assert state[("users", user)][c.USER_COUNTS] == counts
    on_time = [
        b
        for b in first.values()
        if "item_id" in b and _seconds(b[c.RECORD_RECEIVED_AT]) - _seconds(b["timestamp"]) <= LATENESS_S
    ]
    for item in {b["item_id"] for b in on_time}:
        expected = sum(TYPE_WEIGHTS[b["event_type"]] for b in on_time if b["item_id"] == item)
        profile = state[("items", f"{c.ITEM_PK_PREFIX}{item}", c.ITEM_PROFILE_SK)]
        assert sum(profile[c.ITEM_POPULARITY].values()) == expected
    for variant in ("control", "treatment"):
        attributed = [b for b in first.values() if b.get("attribution", {}).get("variant") == variant]
        key = ("items", f"{c.EXPERIMENT_PK_PREFIX}exp", f"{c.EXPERIMENT_VARIANT_SK_PREFIX}{variant}")
        if attributed:
            row = state[key]
            assert row[c.EXPERIMENT_CLICKS] == sum(b["event_type"] == "click" for b in attributed)
            assert row[c.EXPERIMENT_PURCHASES] == sum(b["event_type"] == "purchase" for b in attributed)
            assert row[c.EXPERIMENT_IMPRESSIONS] == sum(b["event_type"] == "impression" for b in attributed)


def _seconds(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@example(
    # A whole batch delivered twice, each user with more events than the recent ids keep: only the
    # watermarks can tell the second delivery apart.
    events=[
        {
            "event_id": f"x{i}",
            "event_type": "view",
            "user_id": f"u{i % 2}",
            "timestamp": iso(T0 + i),
            "schema_version": 1,
            c.RECORD_RECEIVED_AT: iso(T0 + i),
            "item_id": f"i{i % 3}",
            "category": "c0",
        }
        for i in range(8)
    ],
    delivery={
        "batch_size": 8,
        "parallelization": 1,
        "reshard_at": None,
        "faults": {},
        "duplicate_invokes": frozenset({1}),
        "transact_max_items": 100,
        "features": FEATURES_SHORT_IDS,
    },
)
@example(
    # A crash after the first of several transactions, with a reshard and two lanes.
    events=[
        {
            "event_id": f"y{i}",
            "event_type": "add_to_cart",
            "user_id": f"u{i % 3}",
            "timestamp": iso(T0 + 7 * i),
            "schema_version": 1,
            c.RECORD_RECEIVED_AT: iso(T0 + 7 * i),
            "item_id": f"i{i % 5}",
            "category": "c1",
        }
        for i in range(16)
    ],
    delivery={
        "batch_size": 6,
        "parallelization": 2,
        "reshard_at": 0.5,
        "faults": {2: "crash", 4: "throttle", 5: "throttle", 6: "conflict"},
        "duplicate_invokes": frozenset({3}),
        "transact_max_items": 10,
        "features": FEATURES_SHORT_IDS,
    },
)
@given(events=clickstreams(), delivery=deliveries())
def test_feature_tables_equal_each_distinct_event_applied_once(events, delivery):
    with mock_aws(), moto_patches.patched():
        try:
            state, records, on_failure = run_pipeline(events, delivery)
        finally:
            process_handler.reset()
    assert on_failure == []  # infinite retries: nothing is given up
    assert len(records) == len(events)
    features = delivery["features"]
    expected = reference_state(records, features)
    half_life = features.trending_half_life_hours
    assert_same_rows(readers_view(state, half_life), readers_view(expected, half_life))
    if delivery["features"] is FEATURES:
        check_invariants(state, events)
