"""The synthetic clickstream: the shared Taobao file's format, deterministic, realistically skewed."""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

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


# --- Options for the scale benchmark (bench/scale.py) --------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "sha256"),
    [
        # Recorded at 0db6564, before lead_in_seconds and attributed_share existed: the same arguments
        # must keep giving the same bytes (benchmarks and published figures were made from them).
        (
            {"events": 5000, "users": 300, "items": 2000, "seed": 7},
            "96260fc81c564e934115c5c6cd595bcba511d8388fd4fc16830f29a4e625d157",
        ),
        (
            {"events": 3000, "users": 25000, "items": 78000, "seed": 1, "days": 300 / 86400},
            "9b19300ae165e9f3bb233011dcca78b6289376acb873771eadc056afc8fe4d38",
        ),
        (
            {"events": 2000, "users": 50, "items": 100, "seed": 3, "days": 2.5, "zipf": 1.2},
            "de417af3108dc3399958b5812a2048eb585cc50fd74a2ed25de2eeb3afc169d9",
        ),
    ],
)
def test_existing_arguments_give_the_same_bytes_as_before_the_new_options(tmp_path, arguments, sha256):
    import hashlib

    from tools.generate_clickstream import ShopShape, write_jsonl

    options = dict(arguments)
    count = options.pop("events")
    zipf = options.pop("zipf", None)
    if zipf is not None:
        options["shape"] = ShopShape(zipf_exponent=zipf)
    out = tmp_path / "events.jsonl"
    write_jsonl(generate_events(count, **options), out)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == sha256


def _per_minute(stream: list[dict], first: int) -> list[int]:
    counts = Counter((e["unix_ts"] - first) // 60 for e in stream)
    return [counts[m] for m in range(5)]


def test_lead_in_gives_a_steady_rate_from_the_first_second():
    # Given 5 minutes of a stream of sessions that last minutes
    options: dict[str, Any] = {"users": 3000, "items": 5000, "seed": 5, "days": 300 / 86400}
    first = int(datetime.fromisoformat("2024-01-01T00:00:00+00:00").timestamp())
    ramp = generate_events(24_000, **options)
    steady = generate_events(24_000, lead_in_seconds=1800, **options)
    # Then without a lead-in the first minute is far quieter than the fifth (sessions still filling in)
    ramp_minutes = _per_minute([e for e in ramp if e["unix_ts"] < first + 300], first)
    assert ramp_minutes[0] < 0.6 * ramp_minutes[4]
    # and with one, every event lies inside the window and each minute holds a fifth of them (+-10%)
    assert all(first <= e["unix_ts"] < first + 300 for e in steady)
    assert len(steady) == 24_000
    assert all(abs(n - 4_800) < 480 for n in _per_minute(steady, first))
    # and the window starts mid-session: users already active before it show up in its first seconds
    assert len({e["user_id"] for e in steady if e["unix_ts"] < first + 10}) > 100


def test_attributed_sessions_open_with_an_impression_and_a_click_that_ingest_accepts():
    from datetime import UTC, timedelta

    from streamrec_core.schema import validate_event

    from tools.replay import to_schema_event

    stream = generate_events(20_000, users=500, items=2_000, seed=9, attributed_share=0.2)
    attributed = [e for e in stream if "attribution" in e]
    # Given a fifth of the sessions from a recommendation: about a fifth of ~2,500 sessions, two events each
    assert 600 < len(attributed) < 1400
    by_request: defaultdict[str, list[dict]] = defaultdict(list)
    for event in attributed:
        by_request[event["attribution"]["request_id"]].append(event)
    for pair in by_request.values():
        # Then each recommendation is one impression then one click, of the same user and item
        assert [e["event_type"] for e in pair] == ["impression", "click"]
        assert pair[0]["source_line"] + 1 == pair[1]["source_line"]
        assert {(e["user_id"], e["item_id"]) for e in pair} == {(pair[0]["user_id"], pair[0]["item_id"])}
    # and a user always sees the same variant of the one experiment
    variants: defaultdict[str, set[str]] = defaultdict(set)
    for event in attributed:
        assert event["attribution"]["experiment_id"] == "bench"
        variants[event["user_id"]].add(event["attribution"]["variant"])
    assert all(len(v) == 1 for v in variants.values())
    assert set().union(*variants.values()) == {"control", "treatment"}
    # and ingest accepts every attributed event as it is replayed
    for event in attributed[:200]:
        raw = to_schema_event(event, event["timestamp"].replace("Z", ".000Z"))
        now = datetime.fromisoformat(event["timestamp"]).astimezone(UTC) + timedelta(seconds=1)
        accepted, violations = validate_event(
            raw, now=now, max_age=timedelta(days=1), max_future=timedelta(minutes=5)
        )
        assert accepted is not None, violations
        assert accepted["attribution"]["variant"] == event["attribution"]["variant"]


def test_new_options_reject_bad_values():
    with pytest.raises(ValueError, match="lead_in_seconds"):
        generate_events(10, lead_in_seconds=-1)
    with pytest.raises(ValueError, match="attributed_share"):
        generate_events(10, attributed_share=1.5)


def test_a_session_seed_gives_the_same_shop_other_sessions():
    # Given the same shop seed with two session seeds
    base: dict[str, Any] = {"users": 300, "items": 1_000, "seed": 4}
    first = generate_events(3_000, session_seed=1, **base)
    second = generate_events(3_000, session_seed=2, **base)
    # Then the sessions differ ...
    assert [(e["user_id"], e["item_id"]) for e in first] != [(e["user_id"], e["item_id"]) for e in second]
    # ... but the shop is one: every item keeps its category, and the same seed repeats the same stream
    categories = {e["item_id"]: e["category"] for e in first}
    assert all(categories.get(e["item_id"], e["category"]) == e["category"] for e in second)
    assert generate_events(3_000, session_seed=1, **base) == first
