"""bench.stores: the counting DynamoDB wrapper and the in-memory stores count what they should."""

from __future__ import annotations

from typing import Any

from streamrec_core import constants as c
from streamrec_core.ddb_size import item_size, write_units
from streamrec_core.feature_store import to_item

from bench.stores import CountingDynamoDB, DictStore, MarshallingStore, row_kind


class FakeClient:
    """Answers the calls the wrapper counts; records them."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def transact_write_items(self, **kwargs: Any) -> dict:
        self.calls.append("transact_write_items")
        return {}

    def put_item(self, **kwargs: Any) -> dict:
        self.calls.append("put_item")
        return {}

    def batch_write_item(self, **kwargs: Any) -> dict:
        self.calls.append("batch_write_item")
        return {"UnprocessedItems": {}}

    def batch_get_item(self, **kwargs: Any) -> dict:
        self.calls.append("batch_get_item")
        table, request = next(iter(kwargs["RequestItems"].items()))
        return {"Responses": {table: request["Keys"][:1]}}

    def describe_table(self, **kwargs: Any) -> dict:
        return {"Table": {}}


USER = to_item({c.USERS_PK: "u1", "history": [["i1", "view", 1, "c"]]})
ITEM = to_item({c.ITEMS_PK: c.ITEM_PK_PREFIX + "i1", c.ITEMS_SK: "profile", "score": 1.5})


def test_a_transaction_is_one_request_with_one_item_per_action_at_double_units():
    # GIVEN a counting wrapper around a client
    client = CountingDynamoDB(FakeClient())
    # WHEN one TransactWriteItems of two puts is made
    client.transact_write_items(
        TransactItems=[{"Put": {"TableName": "u", "Item": USER}}, {"Put": {"TableName": "i", "Item": ITEM}}]
    )
    # THEN one request, two items, transactional units, per kind of row
    assert client.writes.requests == 1
    assert client.writes.items == 2
    expected = write_units(item_size(USER), transactional=True) + write_units(
        item_size(ITEM), transactional=True
    )
    assert client.writes.units == expected
    assert set(client.writes.by_kind) == {"user", "item profile"}


def test_puts_and_batch_writes_count_standard_units_and_every_item():
    client = CountingDynamoDB(FakeClient())
    client.put_item(TableName="t", Item=USER)
    client.batch_write_item(
        RequestItems={"t": [{"PutRequest": {"Item": USER}}, {"PutRequest": {"Item": USER}}]}
    )
    assert client.writes.requests == 2
    assert client.writes.items == 3
    assert client.writes.units == 3 * write_units(item_size(USER))
    assert client.writes.by_call == {"put_item": 1, "batch_write_item": 1}


def test_reads_are_counted_and_missing_keys_cost_the_minimum_read():
    client = CountingDynamoDB(FakeClient())
    keys = [{c.USERS_PK: {"S": "u1"}}, {c.USERS_PK: {"S": "u2"}}]
    client.batch_get_item(RequestItems={"users": {"Keys": keys, "ConsistentRead": True}})
    assert client.read_requests == 1
    assert client.items_read == 1
    assert client.read_units == 2.0


def test_other_calls_pass_through_uncounted():
    client = CountingDynamoDB(FakeClient())
    assert client.describe_table(TableName="t") == {"Table": {}}
    assert client.writes.requests == 0 and client.read_requests == 0


def test_row_kinds_follow_the_key_prefixes():
    assert row_kind(USER) == "user"
    assert row_kind(ITEM) == "item profile"
    assert row_kind(to_item({c.ITEMS_PK: c.TRENDING_GLOBAL_PK, c.ITEMS_SK: "slot#0"})) == "trending, global"
    assert (
        row_kind(to_item({c.ITEMS_PK: c.TRENDING_CATEGORY_PK_PREFIX + "x", c.ITEMS_SK: "slot#0"}))
        == "trending, category"
    )
    assert (
        row_kind(to_item({c.ITEMS_PK: c.EXPERIMENT_PK_PREFIX + "e", c.ITEMS_SK: "variant#a"})) == "experiment"
    )


def test_marshalling_store_keeps_typed_items_and_counts_one_request_per_commit():
    store = MarshallingStore()
    key = ("users", "u1", "")
    store.commit([(key, {c.USERS_PK: "u1", c.ATTR_VERSION: 0, "n": 1}, 0)])
    assert store.writes.requests == 1 and store.writes.items == 1
    assert store.read([key]) == {key: {c.USERS_PK: "u1", c.ATTR_VERSION: 1, "n": 1}}
    assert store.reads == 1


def test_dict_store_returns_what_was_committed():
    store = DictStore()
    key = ("users", "u1", "")
    row = {c.USERS_PK: "u1", c.ATTR_VERSION: 0}
    store.commit([(key, row, 0)])
    assert store.read([key, ("users", "u2", "")]) == {key: row, ("users", "u2", ""): None}
    assert (store.commits, store.items_written) == (1, 1)
