"""Feature store (DynamoDB access) against moto: limits, typed JSON round trip, error mapping."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from streamrec_core import constants as c
from streamrec_core.feature_store import (
    FeatureStore,
    StoreError,
    Throttled,
    TransactionTooLarge,
    WriteConflict,
    deserialize,
    domain_error,
    serialize,
)
from streamrec_core.features import experiment_key, item_key, new_row, user_key

from tests.feature_kit import ITEMS_TABLE, USERS_TABLE, FaultyDynamoDB, client_error, create_tables


@pytest.fixture
def dynamodb():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(client)
        yield client


def test_rows_round_trip_with_nested_maps_lists_and_exact_floats(dynamodb):
    store = FeatureStore(dynamodb, USERS_TABLE, ITEMS_TABLE)
    row = new_row(user_key("u1"))
    row[c.USER_AFFINITY] = {"x": 0.1 + 0.2, "y": 1.5e-7}
    row[c.USER_HISTORY] = [["i1", "view", 1_700_000_000_123, ""]]
    row[c.USER_WATERMARKS] = {"shardId-0": ["49590338271490256608559692538361571095921575989136588898", 1]}
    store.commit([(user_key("u1"), row, 0)])
    back = store.read([user_key("u1")])[user_key("u1")]
    assert back[c.ATTR_VERSION] == 1
    assert back[c.USER_AFFINITY]["x"] == 0.1 + 0.2
    assert (
        back[c.USER_WATERMARKS]["shardId-0"][0] == "49590338271490256608559692538361571095921575989136588898"
    )
    assert {k: v for k, v in back.items() if k != c.ATTR_VERSION} == {
        k: v for k, v in row.items() if k != c.ATTR_VERSION
    }


def test_read_returns_none_for_absent_rows_and_chunks_by_100_keys(dynamodb):
    spy = FaultyDynamoDB(dynamodb)
    store = FeatureStore(spy, USERS_TABLE, ITEMS_TABLE)
    keys = [item_key(f"i{n}") for n in range(250)] + [user_key("nobody")]
    found = store.read(keys)
    assert set(found) == set(keys) and all(v is None for v in found.values())
    assert spy.batch_get_calls == 3  # 251 keys -> 100 + 100 + 51


def test_commit_refuses_more_than_100_rows_before_calling_dynamodb(dynamodb):
    spy = FaultyDynamoDB(dynamodb)
    store = FeatureStore(spy, USERS_TABLE, ITEMS_TABLE)
    writes = [(item_key(f"i{n}"), new_row(item_key(f"i{n}")), 0) for n in range(101)]
    with pytest.raises(ValueError):
        store.commit(writes)
    assert spy.transact_calls == 0
    store.commit(writes[:100])
    assert spy.transact_calls == 1


def test_commit_refuses_more_than_4_mb_of_rows_before_calling_dynamodb(dynamodb):
    # 41 rows of ~100 KB: under 100 rows, over the 4 MB AWS allows per transaction (moto does not check)
    spy = FaultyDynamoDB(dynamodb)
    store = FeatureStore(spy, USERS_TABLE, ITEMS_TABLE)
    neighbours = {f"n{n:03d}-" + "x" * 120: [1, "c" * 900] for n in range(100)}
    writes = [
        (item_key(f"i{n}"), {**new_row(item_key(f"i{n}")), c.ITEM_COVISIT: neighbours}, 0) for n in range(41)
    ]
    with pytest.raises(TransactionTooLarge):
        store.commit(writes)
    assert spy.transact_calls == 0
    store.commit(writes[:39])
    assert spy.transact_calls == 1


def test_commit_is_conditional_on_the_version_read(dynamodb):
    store = FeatureStore(dynamodb, USERS_TABLE, ITEMS_TABLE)
    key = experiment_key("exp", "a")
    row = new_row(key)
    store.commit([(key, row, 0)])
    with pytest.raises(WriteConflict):
        store.commit([(key, row, 0)])  # the row exists now
    store.commit([(key, row, 1)])
    with pytest.raises(WriteConflict):
        store.commit([(key, row, 1)])  # stale version
    assert store.read([key])[key][c.ATTR_VERSION] == 2


def test_a_failed_condition_writes_nothing_of_the_transaction(dynamodb):
    store = FeatureStore(dynamodb, USERS_TABLE, ITEMS_TABLE)
    existing = experiment_key("exp", "a")
    store.commit([(existing, new_row(existing), 0)])
    fresh = item_key("new")
    with pytest.raises(WriteConflict):
        store.commit([(fresh, new_row(fresh), 0), (existing, new_row(existing), 0)])
    assert store.read([fresh])[fresh] is None


def test_throttling_becomes_a_domain_error_by_code(dynamodb):
    spy = FaultyDynamoDB(dynamodb, plan=lambda n: "throttle")
    store = FeatureStore(spy, USERS_TABLE, ITEMS_TABLE)
    with pytest.raises(Throttled):
        store.commit([(item_key("a"), new_row(item_key("a")), 0)])
    spy.plan = lambda n: "throttle-top"
    with pytest.raises(Throttled):
        store.commit([(item_key("a"), new_row(item_key("a")), 0)])


@pytest.mark.parametrize(
    ("code", "reasons", "expected"),
    [
        (
            "TransactionCanceledException",
            [{"Code": "ConditionalCheckFailed"}, {"Code": "None"}],
            WriteConflict,
        ),
        ("TransactionCanceledException", [{"Code": "TransactionConflict"}], WriteConflict),
        ("TransactionCanceledException", [{"Code": "ProvisionedThroughputExceeded"}], Throttled),
        ("TransactionCanceledException", [{"Code": "ValidationError"}], StoreError),
        ("ConditionalCheckFailedException", None, WriteConflict),
        ("ThrottlingException", None, Throttled),
        ("RequestLimitExceeded", None, Throttled),
        ("ResourceNotFoundException", None, StoreError),
    ],
)
def test_domain_errors_are_chosen_by_error_code_never_by_message(code, reasons, expected):
    extra = {"CancellationReasons": reasons} if reasons is not None else {}
    error = domain_error(client_error(code, "TransactWriteItems", **extra))
    assert type(error) is expected


def test_unprocessed_keys_are_retried_then_reported_as_throttling(dynamodb):
    class Unprocessing(FaultyDynamoDB):
        def batch_get_item(self, **kwargs):
            self.batch_get_calls += 1
            if self.batch_get_calls <= self.limit:
                return {"Responses": {}, "UnprocessedKeys": kwargs["RequestItems"]}
            return self._client.batch_get_item(**kwargs)

    flaky = Unprocessing(dynamodb)
    flaky.limit = 2
    store = FeatureStore(flaky, USERS_TABLE, ITEMS_TABLE, sleep=lambda s: None)
    assert store.read([user_key("u")]) == {user_key("u"): None}
    assert flaky.batch_get_calls == 3
    flaky.batch_get_calls, flaky.limit = 0, 100
    with pytest.raises(Throttled):
        store.read([user_key("u")])


def test_serialize_handles_every_row_type_and_rejects_others():
    value = {"s": "x", "n": 3, "f": 2.5, "b": True, "l": [1, "a"], "m": {"k": None}}
    assert deserialize(serialize(value)) == value
    with pytest.raises(TypeError):
        serialize({1, 2})
    with pytest.raises(ValueError):
        serialize(float("nan"))
    assert serialize(1e-300) == {"N": "0"}  # below DynamoDB's smallest magnitude: fully decayed


def test_query_items_reads_a_whole_partition(dynamodb):
    store = FeatureStore(dynamodb, USERS_TABLE, ITEMS_TABLE)
    for name in ("a", "b", "c"):
        key = experiment_key("exp", name)
        store.commit([(key, new_row(key), 0)])
    rows = store.query_items(c.EXPERIMENT_PK_PREFIX + "exp")
    assert [r[c.EXPERIMENT_VARIANT_ATTR] for r in rows] == ["a", "b", "c"]


def test_bulky_collections_are_stored_as_compact_json_strings(dynamodb):
    store = FeatureStore(dynamodb, USERS_TABLE, ITEMS_TABLE)
    row = new_row(user_key("u1"))
    row[c.USER_RECENT_IDS] = ["e1", "e2"]
    row[c.USER_AFFINITY] = {"x": 1e-300}  # fine inside JSON, below DynamoDB's number range outside it
    store.commit([(user_key("u1"), row, 0)])
    raw = dynamodb.get_item(TableName=USERS_TABLE, Key={c.USERS_PK: {"S": "u1"}})["Item"]
    assert raw[c.USER_RECENT_IDS] == {"S": '["e1","e2"]'}
    assert raw[c.USER_LAST_EVENT_AT] == {"N": "0"}
    assert store.read([user_key("u1")])[user_key("u1")][c.USER_AFFINITY] == {"x": 1e-300}
