"""Rows in their DynamoDB form (features.codec) and records decoded for the folds (features.events)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest.logic import Limits, kinesis_records, validate_batch
from streamrec_core import constants as c
from streamrec_core.ddb_size import item_size
from streamrec_core.features.codec import from_item, key_of, to_item
from streamrec_core.features.counters import CounterRow
from streamrec_core.features.events import InvalidRecord, decode_event, record_event_id
from streamrec_core.features.item_aggregates import ItemRow, Neighbour
from streamrec_core.features.trending import PartialRow, Trend, TrendEntry, TrendingList
from streamrec_core.features.user_fold import (
    AFFINITY_STEPS,
    HistoryEntry,
    OutboxEntry,
    RecentId,
    UserRow,
    Watermark,
    whole_second,
)

from tests.unit.event_strategies import NOW, valid_events

AWS_SEQUENCE = "49590338271490256608559692538361571095921575989136588898"
ids = st.one_of(
    st.text("abcdefghij0123456789._:@-", min_size=1, max_size=20),
    st.integers(0, 10**17).map(str),
    st.sampled_from(["0", "007", "12345678901234567890123"]),
)
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
times = st.integers(1_600_000_000_000, 1_800_000_000_000)
marks = st.dictionaries(
    st.sampled_from(["shardId-000000000000", "shardId-000000000123", "other-shard"]),
    st.builds(Watermark, st.sampled_from(["1", "42", AWS_SEQUENCE, str(2**64)]), times),
    max_size=3,
)


@st.composite
def user_rows(draw: st.DrawFn) -> UserRow:
    last = draw(times)
    return UserRow(
        user_id=draw(ids),
        version=draw(st.integers(0, 10**6)),
        expires_at=draw(st.integers(0, 2**31)),
        last_event_ms=last,
        counts=draw(st.dictionaries(st.sampled_from(c.EVENT_TYPES), st.integers(1, 10**6))),
        history=draw(
            st.lists(
                st.builds(
                    HistoryEntry,
                    ids,
                    st.sampled_from(c.EVENT_TYPES),
                    st.integers(last - 10**9, last).map(whole_second),  # rows keep seconds
                    texts,
                ),
                max_size=50,
            )
        ),
        affinity=draw(st.dictionaries(texts, st.integers(0, 10**6).map(lambda n: n / AFFINITY_STEPS))),
        affinity_at=draw(times),
        bought=draw(st.lists(ids, max_size=5)),
        recent=draw(
            st.lists(
                st.builds(RecentId, st.binary(min_size=6, max_size=6), times.map(whole_second)), max_size=8
            )
        ),
        watermarks=draw(marks),
        outbox=draw(
            st.lists(
                st.builds(
                    OutboxEntry,
                    st.sampled_from(["shardId-000000000000", "x"]),
                    st.integers(0, 2**32 - 1),
                    times,
                    texts,
                    ids,
                    texts,
                    st.integers(0, 3),
                ),
                max_size=5,
            )
        ),
        outbox_floor_ms=draw(times),
    )


rows = st.one_of(
    user_rows(),
    st.builds(
        ItemRow,
        ids,
        st.integers(0, 99),
        st.integers(0, 2**31),
        texts,
        st.dictionaries(ids, st.builds(Neighbour, st.integers(1, 10**6), texts), max_size=10),
        marks,
    ),
    st.builds(
        PartialRow,
        st.sampled_from(["shardId-000000000007", "x"]),
        st.integers(0, 9),
        st.integers(0, 2**31),
        st.dictionaries(
            ids,
            st.builds(TrendEntry, st.floats(0, 1e6), st.integers(400_000, 500_000), texts),
            max_size=10,
        ).map(lambda d: d),
        st.just(500_000),
        st.one_of(st.none(), st.builds(Watermark, st.just(AWS_SEQUENCE), times)),
    ),
    st.builds(
        TrendingList,
        st.one_of(st.none(), texts.filter(bool)),
        st.integers(0, 9),
        st.integers(0, 2**31),
        st.lists(st.builds(Trend, ids, st.floats(0, 1e6), texts), max_size=10),
        times,
    ),
    st.builds(
        CounterRow,
        ids,
        ids,
        st.integers(0, 9),
        st.just(0),
        st.integers(0, 99),
        st.integers(0, 9),
        st.integers(0, 9),
        marks,
    ),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(row=rows)
def test_every_row_comes_back_from_its_dynamodb_item_unchanged(row) -> None:
    if isinstance(row, PartialRow):  # the codec stores hours relative to the partial's newest hour
        row.max_hour = max([row.max_hour, *(e.hour for e in row.entries.values())])
    assert from_item(key_of(row), to_item(row)) == row


def test_decimal_ids_are_stored_compactly_and_leading_zeros_survive() -> None:
    history = [HistoryEntry(item, "view", 1_700_000_000_000, "4145813") for item in ("2333346", "007", "0")]
    row = UserRow("1", last_event_ms=1_700_000_000_000, history=history)
    decoded = from_item(key_of(row), to_item(row))
    assert isinstance(decoded, UserRow) and decoded.history == history

    def size(item: str) -> int:
        entry = HistoryEntry(item, "view", 1_700_000_000_000, "")
        return item_size(to_item(UserRow("1", last_event_ms=1_700_000_000_000, history=[entry])))

    assert size("2333346") < size("a333346")


def test_a_typical_user_row_of_the_real_clickstream_fits_one_write_unit() -> None:
    # 50 events on 35 distinct items in 12 categories (the median Taobao user at the history cap),
    # 16 recent ids, one shard watermark, a few outbox entries, 20 affinity categories.
    last = 1_511_700_000_000
    history = [
        HistoryEntry(str(2_000_000 + n % 35 * 977), "view", last - 60_000 * (50 - n), str(4_000_000 + n % 12))
        for n in range(50)
    ]
    row = UserRow(
        "1000234",
        version=120,
        expires_at=1_520_000_000,
        last_event_ms=last,
        counts={"view": 120, "add_to_cart": 6, "purchase": 2},
        history=history,
        affinity={str(4_000_000 + n): (n + 1) * 0.75 for n in range(20)},
        affinity_at=last,
        recent=[RecentId(bytes(range(n, n + 6)), last - n) for n in range(16)],
        watermarks={"shardId-000000000017": Watermark(AWS_SEQUENCE, last)},
        outbox=[
            OutboxEntry("shardId-000000000017", n, last, "4000001", "2000977", "4000002", 1) for n in range(3)
        ],
        outbox_floor_ms=last - 600_000,
    )
    assert item_size(to_item(row)) <= 1024


# --- records -------------------------------------------------------------------------------------------
LIMITS = Limits(
    max_body_bytes=1 << 20, max_events=500, max_age=timedelta(days=7), max_future=timedelta(minutes=5)
)


@settings(max_examples=200, deadline=None)
@given(raw=valid_events())
def test_every_event_ingest_accepts_decodes_to_the_same_event_for_the_folds(raw) -> None:
    batch = validate_batch([raw], now=NOW, limits=LIMITS)
    assert batch.events, batch.rejected
    data, _key = kinesis_records(batch, NOW)[0]
    event = decode_event(data, shard_id="s", sequence_number="7", arrival_ms=1)
    stored = batch.events[0]
    assert (event.event_id, event.event_type, event.user_id, event.item_id) == (
        stored["event_id"],
        stored["event_type"],
        stored["user_id"],
        stored.get("item_id"),
    )
    assert event.category == stored.get("category", "")
    assert event.variant == stored.get("attribution", {}).get("variant")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not json", "undecodable"),
        (b"[1, 2]", "invalid"),
        (
            b'{"event_type": "view", "user_id": "u1", "timestamp": "2024-05-01T12:00:00.000Z"}',
            "invalid: item_id",
        ),
        (
            b'{"event_type": "dance", "user_id": "u1", "timestamp": "2024-05-01T12:00:00.000Z"}',
            "$.event_type",
        ),
        (
            b'{"event_type": "search", "user_id": "no spaces", "timestamp": "2024-05-01T12:00:00.000Z"}',
            "$.user_id",
        ),
        (b'{"event_type": "search", "user_id": "u1", "timestamp": "yesterday"}', "timestamp"),
        (
            b'{"event_type": "search", "user_id": "u1", "category": "\\ud800", '
            b'"timestamp": "2024-05-01T12:00:00.000Z"}',
            "undecodable",
        ),
        (
            b'{"event_type": "search", "user_id": "u1", "timestamp": "2024-05-01T12:00:00.000Z", "x": "'
            + b"y" * 9000
            + b'"}',
            "oversized",
        ),
    ],
)
def test_a_record_that_can_never_be_applied_says_why(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        decode_event(data, shard_id="s", sequence_number="1", arrival_ms=0)
    assert reason in str(info.value)


def test_a_record_without_event_id_gets_one_from_its_place_in_the_stream() -> None:
    data = json.dumps(
        {"event_type": "search", "user_id": "u1", "timestamp": "2024-05-01T12:00:00.000Z"}
    ).encode()
    first = decode_event(data, shard_id="s", sequence_number="9", arrival_ms=0)
    again = decode_event(data, shard_id="s", sequence_number="9", arrival_ms=5)
    other = decode_event(data, shard_id="s", sequence_number="10", arrival_ms=0)
    assert first.event_id == again.event_id == record_event_id("s", "9") != other.event_id
