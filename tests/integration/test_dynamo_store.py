"""The DynamoDB feature store (features.dynamodb.DynamoStore) against moto: reads, conditional writes,
error codes, queries."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws
from streamrec_core.features.counters import CounterRow
from streamrec_core.features.dynamodb import DynamoStore
from streamrec_core.features.item_aggregates import ItemRow, Neighbour
from streamrec_core.features.keys import item_key, partial_key, user_key
from streamrec_core.features.store import CONFLICT, THROTTLED, WRITTEN, StoreError, Throttled
from streamrec_core.features.trending import PartialRow, TrendEntry
from streamrec_core.features.user_fold import HistoryEntry, UserRow, Watermark

from tests.feature_kit import ITEMS_TABLE, USERS_TABLE, FaultyDynamoDB, client_error, create_tables

AWS_SEQUENCE = "49590338271490256608559692538361571095921575989136588898"


@pytest.fixture
def dynamodb():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(client)
        yield client


def store_of(client: Any, **options: Any) -> DynamoStore:
    return DynamoStore(client, USERS_TABLE, ITEMS_TABLE, sleep=lambda s: None, **options)


def test_rows_come_back_as_written_with_their_version(dynamodb) -> None:
    store = store_of(dynamodb)
    user = UserRow(
        "u1",
        last_event_ms=1_700_000_000_123,
        history=[HistoryEntry("i1", "view", 1_700_000_000_000, "c1")],  # rows keep whole seconds
        affinity={"c1": 1.5},
        watermarks={"shardId-000000000000": Watermark(AWS_SEQUENCE, 1_700_000_000_000)},
    )
    item = ItemRow("i1", category="c1", neighbours={"i2": Neighbour(3, "c2")})
    assert store.put_many([user, item]) == {user_key("u1"): WRITTEN, item_key("i1"): WRITTEN}
    assert user.version == 1 and item.version == 1
    back = store.get_many([user_key("u1"), item_key("i1"), user_key("nobody")], consistent=True)
    assert back == {user_key("u1"): user, item_key("i1"): item, user_key("nobody"): None}


def test_reads_are_chunked_by_100_keys(dynamodb) -> None:
    spy = FaultyDynamoDB(dynamodb)
    found = store_of(spy).get_many([item_key(f"i{n}") for n in range(250)], consistent=False)
    assert len(found) == 250 and spy.batch_get_calls == 3


def test_a_write_is_conditional_on_the_version_read(dynamodb) -> None:
    store = store_of(dynamodb)
    first, second = UserRow("u1"), UserRow("u1")  # two writers that both read "absent"
    assert store.put_many([first]) == {user_key("u1"): WRITTEN}
    assert store.put_many([second]) == {user_key("u1"): CONFLICT} and second.version == 0
    stale = UserRow("u1", version=1, last_event_ms=5)
    fresh = store.get_many([user_key("u1")], consistent=True)[user_key("u1")]
    assert isinstance(fresh, UserRow)
    assert store.put_many([fresh]) == {user_key("u1"): WRITTEN}  # version 1 -> 2
    assert store.put_many([stale]) == {user_key("u1"): CONFLICT}  # still thinks 1


def test_an_unconditional_write_overwrites_whatever_is_stored(dynamodb) -> None:
    store = store_of(dynamodb)
    store.put_many([PartialRow("s", entries={"a": TrendEntry(1.0, 5, "c")}, max_hour=5)])
    assert store.put_many([PartialRow("s")], conditional=False) == {partial_key("s"): WRITTEN}


def test_throttling_is_an_outcome_and_other_errors_are_domain_errors(dynamodb) -> None:
    class Refusing(FaultyDynamoDB):
        def __init__(self, client: Any, code: str) -> None:
            super().__init__(client)
            self.code = code

        def put_item(self, **kwargs: Any) -> Any:
            raise client_error(self.code, "PutItem")

        def batch_get_item(self, **kwargs: Any) -> Any:
            raise client_error(self.code, "BatchGetItem")

    throttling = store_of(Refusing(dynamodb, "ProvisionedThroughputExceededException"))
    assert throttling.put_many([UserRow("u1")]) == {user_key("u1"): THROTTLED}
    with pytest.raises(Throttled):
        throttling.get_many([user_key("u1")], consistent=True)
    broken = store_of(Refusing(dynamodb, "ValidationException"))
    with pytest.raises(StoreError) as info:
        broken.put_many([UserRow("u1")])
    assert not isinstance(info.value, Throttled) and "ValidationException" in str(info.value)


def test_unprocessed_keys_are_retried_then_reported_as_throttling(dynamodb) -> None:
    class Unprocessed(FaultyDynamoDB):
        def batch_get_item(self, **kwargs: Any) -> Any:
            self.batch_get_calls += 1
            return {"Responses": {}, "UnprocessedKeys": kwargs["RequestItems"]}

    spy = Unprocessed(dynamodb)
    with pytest.raises(Throttled):
        store_of(spy, max_unprocessed_retries=2).get_many([user_key("u1")], consistent=True)
    assert spy.batch_get_calls == 3


def test_partials_and_counters_are_read_with_one_query_each(dynamodb) -> None:
    store = store_of(dynamodb)
    store.put_many([PartialRow(f"shardId-00000000000{n}", max_hour=n) for n in range(3)])
    store.put_many([CounterRow("exp", "a", clicks=2), CounterRow("exp", "b"), CounterRow("other", "a")])
    spy = FaultyDynamoDB(dynamodb)
    reader = store_of(spy)
    assert [p.shard_id for p in reader.query_partials()] == [f"shardId-00000000000{n}" for n in range(3)]
    assert [(c.variant, c.clicks) for c in reader.query_counters("exp")] == [("a", 2), ("b", 0)]
    assert spy.query_calls == 2


def test_many_rows_are_written_concurrently_each_with_its_own_outcome(dynamodb) -> None:
    store = store_of(dynamodb, writers=8)
    rows = [UserRow(f"u{n}") for n in range(40)]
    outcomes = store.put_many(rows)
    assert set(outcomes.values()) == {WRITTEN} and len(outcomes) == 40
    assert all(row.version == 1 for row in rows) and store.counts.put == 40
