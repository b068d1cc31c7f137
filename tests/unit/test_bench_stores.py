"""bench.stores: the codec store keeps what the hot path wrote; the meter bills each consumer what the
shared in-memory store billed, by row kind, and counts writes per key and second."""

from __future__ import annotations

from streamrec_core.features.item_aggregates import ItemRow, Neighbour
from streamrec_core.features.keys import item_key, user_key
from streamrec_core.features.memory_store import MemoryStore
from streamrec_core.features.store import CONFLICT, WRITTEN
from streamrec_core.features.user_fold import HistoryEntry, UserRow

from bench.stores import Clock, CodecStore, KeyRates, Meter, Usage


def _user(user_id: str, entries: int = 3) -> UserRow:
    row = UserRow(user_id, expires_at=1_800_000_000, last_event_ms=1_700_000_000_000)
    row.history = [HistoryEntry(f"i{n}", "view", 1_700_000_000_000 - 1000 * n, "c1") for n in range(entries)]
    return row


def test_codec_store_returns_what_was_written_and_refuses_a_stale_version():
    store = CodecStore()
    row = _user("u1")
    assert store.put_many([row]) == {user_key("u1"): WRITTEN}
    assert row.version == 1
    assert store.get_many([user_key("u1"), user_key("u2")], consistent=True) == {
        user_key("u1"): row,
        user_key("u2"): None,
    }
    stale = _user("u1")
    assert store.put_many([stale]) == {user_key("u1"): CONFLICT}


def test_meters_split_the_stores_bill_between_consumers_by_row_kind():
    # Given two consumers metering one store
    store = MemoryStore()
    clock = Clock()
    rates = KeyRates(clock)
    hot, items = Usage(), Usage()
    hot_meter, items_meter = Meter(store, hot, rates), Meter(store, items, rates)
    # When one writes and reads user rows and the other item rows (one large enough for 2 units)
    hot_meter.put_many([_user("u1"), _user("u2")])
    big = ItemRow("i1", neighbours={f"other-item-{n:04d}": Neighbour(n, "category") for n in range(60)})
    items_meter.put_many([big])
    hot_meter.get_many([user_key("u1"), user_key("u2"), user_key("missing")], consistent=True)
    items_meter.get_many([item_key("i1")], consistent=False)
    # Then every unit the store billed is billed to exactly one consumer, under the right kind
    assert hot.write_units + items.write_units == store.bill.write_units
    assert hot.read_units + items.read_units == store.bill.read_units
    assert hot.write_units_by_kind == {"user": 2} and items.write_units_by_kind == {"item": 2}
    assert hot.read_units_by_kind == {"user": 3.0} and items.read_units_by_kind == {"item": 0.5}
    assert (hot.puts, hot.keys_read, hot.batch_gets) == (2, 3, 1)
    assert [len(v) for v in items.sizes_by_kind.values()] == [1]


def test_key_rates_count_writes_and_the_busiest_second():
    clock = Clock()
    rates = KeyRates(clock)
    store = MemoryStore()
    meter = Meter(store, Usage(), rates)
    row = _user("u1")
    for second in (1.0, 1.5, 1.9, 2.0):
        clock.now = second
        meter.put_many([row])
    assert rates.writes[user_key("u1")] == 4
    assert rates.busiest[user_key("u1")] == 3
    assert rates.units[user_key("u1")] == 4
