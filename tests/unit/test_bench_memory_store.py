"""The in-memory store bills as DynamoDB does: the scale benchmark's units per event rest on these rules
(DynamoDB Developer Guide: "DynamoDB read and write operations", "Condition expressions")."""

from __future__ import annotations

from streamrec_core.ddb_size import item_size
from streamrec_core.features.codec import to_item
from streamrec_core.features.keys import item_key, user_key
from streamrec_core.features.memory_store import MemoryStore
from streamrec_core.features.store import CONFLICT, WRITTEN
from streamrec_core.features.user_fold import HistoryEntry, UserRow


def _user(user_id: str, history: int) -> UserRow:
    row = UserRow(user_id, expires_at=1_800_000_000, last_event_ms=1_700_000_000_000)
    row.history = [
        HistoryEntry(f"item-{n:06d}", "view", 1_700_000_000_000 - n, f"c{n}") for n in range(history)
    ]
    return row


def test_a_failed_conditional_write_bills_the_larger_of_the_stored_and_the_new_item():
    # Given a small stored row (1 KB) and a writer holding a stale version of it that grew past 2 KB
    store = MemoryStore()
    assert store.put_many([_user("u1", 2)]) == {user_key("u1"): WRITTEN}
    stale = _user("u1", 120)
    stale.version = 0
    assert item_size(to_item(stale)) > 2048
    before = store.bill.write_units
    # When its conditional write fails
    assert store.put_many([stale]) == {user_key("u1"): CONFLICT}
    # Then it is billed like the write it attempted: 3 units for the new item's 2-3 KB, not the stored 1 KB
    assert store.bill.write_units - before == 3
    assert store.bill.failed_puts == 1


def test_a_write_bills_per_started_kb_of_the_larger_item_and_reads_per_4_kb():
    store = MemoryStore()
    big = _user("u2", 120)
    store.put_many([big])
    size = item_size(store.items[user_key("u2")])
    assert 2048 < size <= 3072
    # Shrinking the row still bills the stored (larger) size: 3 units
    small = _user("u2", 1)
    small.version = 1
    before = store.bill.write_units
    store.put_many([small])
    assert store.bill.write_units - before == 3
    # Reads: the now small row and a missing key, strongly consistent = 1 unit each, eventually half
    before = store.bill.read_units
    store.get_many([user_key("u2"), item_key("nothing")], consistent=True)
    assert store.bill.read_units - before == 2.0
    before = store.bill.read_units
    store.get_many([user_key("u2"), item_key("nothing")], consistent=False)
    assert store.bill.read_units - before == 1.0
