"""The synthetic clickstream: the shared Taobao file's format, deterministic, realistically skewed."""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from datetime import datetime

import pytest

from tools.generate_clickstream import generate_events, main

# The fields of ../shared/data/taobao-userbehavior/events.jsonl (see its README).
SHARED_FORMAT = {
    "user_id": str,
    "item_id": str,
    "event_type": str,
    "timestamp": str,
    "category": str,
    "raw_event_type": str,
    "unix_ts": int,
    "source_line": int,
}
RAW_TYPES = {"view": "pv", "add_to_cart": "cart", "favorite": "fav", "purchase": "buy"}


@pytest.fixture(scope="module")
def stream() -> list[dict]:
    return generate_events(20_000, users=400, items=3_000, seed=11)


def test_lines_have_exactly_the_shared_format(stream):
    # Given a generated stream / Then every line has the shared file's fields, types and encodings
    for event in stream[:2000]:
        assert {name: type(value) for name, value in event.items()} == SHARED_FORMAT
        assert event["raw_event_type"] == RAW_TYPES[event["event_type"]]
        assert event["timestamp"].endswith("Z")
        assert datetime.fromisoformat(event["timestamp"]).timestamp() == event["unix_ts"]


def test_exact_count_sorted_by_time_with_unique_source_lines(stream):
    assert len(stream) == 20_000
    keys = [(e["unix_ts"], e["source_line"]) for e in stream]
    assert keys == sorted(keys)
    assert len({e["source_line"] for e in stream}) == len(stream)


def test_same_seed_gives_the_same_stream_and_another_seed_does_not():
    # Given the same arguments twice / Then the streams are identical; a new seed changes them
    first = generate_events(3_000, users=100, items=500, seed=3)
    again = generate_events(3_000, users=100, items=500, seed=3)
    other = generate_events(3_000, users=100, items=500, seed=4)
    assert first == again
    assert first != other


def test_item_popularity_is_skewed(stream):
    # A uniform catalogue would give the top 1% of items about 1% of the events.
    counts = Counter(e["item_id"] for e in stream)
    top = sum(count for _, count in counts.most_common(len(counts) // 100))
    assert top / len(stream) > 0.10


def test_each_item_belongs_to_one_category_and_categories_have_many_items(stream):
    categories: defaultdict[str, set[str]] = defaultdict(set)
    for event in stream:
        categories[event["item_id"]].add(event["category"])
    assert all(len(c) == 1 for c in categories.values())
    items_per_category = Counter(next(iter(c)) for c in categories.values())
    assert statistics.mean(items_per_category.values()) > 3


def test_users_concentrate_on_a_few_categories(stream):
    # Given users with category preferences / Then, for active users, their top 4 categories hold most views
    by_user: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for event in stream:
        by_user[event["user_id"]][event["category"]] += 1
    shares = [
        sum(n for _, n in counts.most_common(4)) / sum(counts.values())
        for counts in by_user.values()
        if sum(counts.values()) >= 30
    ]
    assert statistics.mean(shares) > 0.6


def test_funnel_mix_and_every_purchase_follows_an_add_to_cart(stream):
    mix = Counter(e["event_type"] for e in stream)
    assert mix["view"] / len(stream) > 0.8
    assert mix["add_to_cart"] > mix["purchase"] > 0
    assert mix["favorite"] > 0
    carted: set[tuple[str, str]] = set()
    for event in stream:
        pair = (event["user_id"], event["item_id"])
        if event["event_type"] == "add_to_cart":
            carted.add(pair)
        if event["event_type"] == "purchase":
            assert pair in carted


def test_there_are_heavy_users(stream):
    per_user = sorted(Counter(e["user_id"] for e in stream).values())
    assert per_user[-1] >= 5 * statistics.median(per_user)


def test_events_come_in_sessions(stream):
    # Given sessions of several events / Then a user's next event usually follows within minutes
    last_seen: dict[str, int] = {}
    gaps = []
    for event in stream:
        user = event["user_id"]
        if user in last_seen:
            gaps.append(event["unix_ts"] - last_seen[user])
        last_seen[user] = event["unix_ts"]
    assert statistics.median(gaps) < 300


def test_cli_writes_json_lines(tmp_path):
    out = tmp_path / "events.jsonl"
    assert main(["--events", "50", "--users", "5", "--items", "20", "--seed", "1", "--out", str(out)]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == generate_events(50, users=5, items=20, seed=1)
    assert lines[0].startswith('{"user_id":') and ", " not in lines[0]
