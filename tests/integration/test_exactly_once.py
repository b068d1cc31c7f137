"""Property: the feature tables equal those from applying each distinct event once, whatever the faults.

Generated clickstreams (client resends of the same event_id, late and out-of-order events, attributed
events) go into a moto Kinesis stream (resharded midway in some examples). Every consumer of the stream
reads it through the local emulator's `EsmPoller` with its own mapping's semantics: the hot path
(process handler; batch size, ParallelizationFactor 1 or 2), the item branch (aggregate `items` handler)
and the experiment branch (aggregate `experiments` handler, filtered to attributed records), polled in a
generated interleaving, so the branches sometimes run ahead of the hot path. Meanwhile DynamoDB writes
throttle, lose races to concurrent writers and crash after some writes, and invocations are delivered
twice. The tables must then equal the reference fold of each distinct event applied once, in order, and
satisfy counting invariants computed without the feature code.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from aggregate import handler as aggregate_handler
from aggregate.config import AggregateConfig
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from process import handler as process_handler
from process.config import ProcessConfig
from streamrec_core import constants as c
from streamrec_core.backoff import WriteRetries
from streamrec_core.features.config import FeatureConfig
from streamrec_core.features.counters import CounterRow
from streamrec_core.features.events import TYPE_WEIGHTS, decode_event
from streamrec_core.features.item_aggregates import ItemRow
from streamrec_core.features.keys import experiment_key, item_key, user_key
from streamrec_core.features.user_fold import UserRow

from local_emulator import moto_patches
from local_emulator.esm import EsmConfig, EsmPoller
from local_emulator.testing import FUNCTION_ARN, FakeClock, create_stream
from local_emulator.worker_main import LambdaContext
from tests.feature_kit import (
    ITEMS_TABLE,
    USERS_TABLE,
    FaultyDynamoDB,
    assert_same,
    comparable,
    create_tables,
    expected_rows,
    reference_rows,
    scan_rows,
)

STREAM = "events"
LATENESS_S = 600
FEATURES = FeatureConfig(
    user_ttl_seconds=86_400, item_ttl_seconds=3_600, allowed_lateness_ms=LATENESS_S * 1000
)
# Only 2 recent event ids kept: redeliveries must be stopped by the watermarks alone (client resends
# beyond that horizon count as new events, in the pipeline and in the reference alike).
FEATURES_SHORT_IDS = FeatureConfig(
    user_ttl_seconds=86_400,
    item_ttl_seconds=3_600,
    allowed_lateness_ms=LATENESS_S * 1000,
    dedup_min=2,
    dedup_cap=2,
    dedup_window_ms=0,
)
T0 = 1_714_564_800  # 2024-05-01T12:00:00Z
CONSUMERS = ("hot", "items", "experiments")


def iso(seconds: float) -> str:
    from datetime import UTC, datetime

    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


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


fault_plans = st.dictionaries(
    st.integers(1, 40), st.sampled_from(["throttle", "conflict", "crash"]), max_size=6
)


@st.composite
def deliveries(draw: Any) -> dict[str, Any]:
    return {
        "batch_sizes": {name: draw(st.integers(1, 12)) for name in CONSUMERS},
        "parallelization": draw(st.sampled_from([1, 1, 2])),
        "reshard_at": draw(st.one_of(st.none(), st.floats(0.0, 1.0))),
        "faults": {"hot": draw(fault_plans), "aggregate": draw(fault_plans)},
        "duplicate_invokes": {name: draw(st.frozensets(st.integers(1, 8), max_size=3)) for name in CONSUMERS},
        "schedule": draw(st.lists(st.sampled_from(CONSUMERS), max_size=30)),
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

    features = delivery["features"]
    retries = {"sleep": lambda s: None, "retries": WriteRetries(max_conflicts=1, max_throttles=1)}
    hot_faults, aggregate_faults = delivery["faults"]["hot"], delivery["faults"]["aggregate"]
    process_handler.configure(
        ProcessConfig(USERS_TABLE, ITEMS_TABLE, dlq, features),
        FaultyDynamoDB(dynamodb, plan=hot_faults.get),
        sqs,
        **retries,
    )
    clock = {"now": 1000.0}
    # The hot path's mapping never gives a record up here (infinite retries): -1.
    aggregate_handler.configure(
        AggregateConfig(USERS_TABLE, ITEMS_TABLE, features, -1),
        FaultyDynamoDB(dynamodb, plan=aggregate_faults.get),
        not_ready_wait_s=0.0,
        clock=lambda: clock["now"],
        **retries,
    )
    handlers = {
        "hot": process_handler.handler,
        "items": aggregate_handler.items,
        "experiments": aggregate_handler.experiments,
    }
    on_failure: list[dict[str, Any]] = []
    pollers = {}
    for name in CONSUMERS:
        calls = {"n": 0}

        def invoke(event: dict[str, Any], name: str = name, calls: dict = calls) -> tuple[Any, str | None]:
            calls["n"] += 1
            if calls["n"] in delivery["duplicate_invokes"][name]:
                handlers[name](event, LambdaContext(name))  # delivered, but the answer was lost
            return handlers[name](event, LambdaContext(name)), None

        config = EsmConfig(
            arn,
            FUNCTION_ARN,
            batch_size=delivery["batch_sizes"][name],
            bisect_batch_on_function_error=True,
            report_batch_item_failures=True,
            parallelization_factor=delivery["parallelization"] if name == "hot" else 1,
            filter_patterns=(c.ATTRIBUTED_RECORDS_PATTERN,) if name == "experiments" else (),
        )
        pollers[name] = EsmPoller(
            kinesis, config, invoke=invoke, send_on_failure=on_failure.append, clock=FakeClock()
        )
    for name in delivery["schedule"]:  # the branches may run ahead of the hot path
        pollers[name].poll_once()
    pollers["hot"].run_until_idle()
    for name in ("items", "experiments"):
        pollers[name].run_until_idle()
    # The lists are due: merge them from every shard's partial, as the next batch would (without faults).
    clock["now"] += 3600
    deps = aggregate_handler.configure(
        AggregateConfig(USERS_TABLE, ITEMS_TABLE, features, -1), dynamodb, clock=lambda: clock["now"]
    )
    deps.items.merge_if_due()
    return scan_rows(dynamodb), stream_records(kinesis), on_failure


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


def reference(records: list[tuple[str, str, bytes, int]], features: FeatureConfig) -> dict:
    """Each distinct event applied once, in stream order (parents before children)."""
    events = (
        decode_event(data, shard_id=shard, sequence_number=sequence_number, arrival_ms=arrival)
        for shard, sequence_number, data, arrival in records
    )
    return comparable(expected_rows(reference_rows(features, events)))


def check_invariants(rows: dict, events: list[dict[str, Any]]) -> None:
    """Counting invariants computed without the feature code: each distinct event counted once."""
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for body in events:
        first.setdefault((body["user_id"], body["event_id"]), body)
    for user in {u for u, _ in first}:
        counts: dict[str, int] = {}
        for (u, _), body in first.items():
            if u == user:
                counts[body["event_type"]] = counts.get(body["event_type"], 0) + 1
        row = rows[user_key(user)]
        assert isinstance(row, UserRow) and row.counts == counts
    neighbour_weight = sum(
        row.neighbours[other].score
        for row in rows.values()
        if isinstance(row, ItemRow)
        for other in row.neighbours
    )
    assert neighbour_weight % 2 == 0  # every pair is in both of its items' rows
    for variant in ("control", "treatment"):
        attributed = [b for b in first.values() if b.get("attribution", {}).get("variant") == variant]
        row = rows.get(experiment_key("exp", variant))
        if attributed:
            assert isinstance(row, CounterRow)
            assert row.clicks == sum(b["event_type"] == "click" for b in attributed)
            assert row.purchases == sum(b["event_type"] == "purchase" for b in attributed)
            assert row.impressions == sum(b["event_type"] == "impression" for b in attributed)
    for item in {b["item_id"] for b in first.values() if "item_id" in b}:
        row = rows.get(item_key(item))
        assert row is None or all(
            n.score <= sum(TYPE_WEIGHTS.values()) * len(events) for n in row.neighbours.values()
        )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@example(
    # A whole batch delivered twice to every consumer, each user with more events than the recent ids
    # keep: only the watermarks can tell the second delivery apart.
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
        "batch_sizes": {"hot": 8, "items": 8, "experiments": 8},
        "parallelization": 1,
        "reshard_at": None,
        "faults": {"hot": {}, "aggregate": {}},
        "duplicate_invokes": {"hot": frozenset({1}), "items": frozenset({1}), "experiments": frozenset()},
        "schedule": [],
        "features": FEATURES_SHORT_IDS,
    },
)
@example(
    # The branches poll first (nothing is ready), crashes and throttles on both sides, a reshard, two lanes.
    events=[
        {
            "event_id": f"y{i}",
            "event_type": "add_to_cart" if i % 4 else "click",
            "user_id": f"u{i % 3}",
            "timestamp": iso(T0 + 7 * i),
            "schema_version": 1,
            c.RECORD_RECEIVED_AT: iso(T0 + 7 * i),
            "item_id": f"i{i % 5}",
            "category": "c1",
            **(
                {"attribution": {"request_id": "r", "variant": "control", "experiment_id": "exp"}}
                if i % 4 == 0
                else {}
            ),
        }
        for i in range(16)
    ],
    delivery={
        "batch_sizes": {"hot": 6, "items": 5, "experiments": 2},
        "parallelization": 2,
        "reshard_at": 0.5,
        "faults": {
            "hot": {2: "crash", 4: "throttle", 5: "throttle", 6: "conflict"},
            "aggregate": {1: "crash", 3: "conflict"},
        },
        "duplicate_invokes": {"hot": frozenset({3}), "items": frozenset({2}), "experiments": frozenset({1})},
        "schedule": ["items", "experiments", "items", "hot", "items", "experiments", "hot", "items"],
        "features": FEATURES,
    },
)
@given(events=clickstreams(), delivery=deliveries())
def test_feature_tables_equal_each_distinct_event_applied_once(events, delivery):
    with mock_aws(), moto_patches.patched():
        try:
            rows, records, on_failure = run_pipeline(events, delivery)
        finally:
            process_handler.reset()
            aggregate_handler.reset()
    assert on_failure == []  # infinite retries: nothing is given up
    assert len(records) == len(events)
    assert_same(comparable(rows), reference(records, delivery["features"]))
    if delivery["features"] is FEATURES:
        check_invariants(rows, events)
