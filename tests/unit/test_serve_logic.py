"""Serve logic (serve.logic, serve.experiments, streamrec_core.experiments) over an in-memory store:
round trips, the trending cache, A/B, statistics."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from serve.experiments import wilson
from serve.logic import TRENDING_CACHE_SECONDS, Recommender, ServeSettings
from streamrec_core import constants as c
from streamrec_core.experiments import Experiment, Variant
from streamrec_core.features.config import FeatureConfig
from streamrec_core.features.keys import Key, item_key, kind_of, trending_key, user_key
from streamrec_core.features.memory_store import MemoryStore
from streamrec_core.features.reference import ReferenceFold
from streamrec_core.features.trending import Trend, TrendingList, merge
from streamrec_core.http import HttpError

CFG = FeatureConfig(user_ttl_seconds=86_400, item_ttl_seconds=3_600, allowed_lateness_ms=600_000)
NO_EXPERIMENTS = ServeSettings(experiments=())


class CountingReader:
    """Serve's RowReader port over a MemoryStore, keeping the keys of every round trip (one get_many is
    one BatchGetItem when it holds at most 100 keys, which is asserted)."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.round_trips: list[list[Key]] = []
        self.queries = 0

    def get_many(self, keys, *, consistent):
        keys = list(keys)
        assert len(keys) <= c.DDB_BATCH_GET_MAX_KEYS, "one BatchGetItem holds at most 100 keys"
        self.round_trips.append(keys)
        return self.store.get_many(keys, consistent=consistent)

    def query_counters(self, experiment_id):
        self.queries += 1
        return self.store.query_counters(experiment_id)

    def lists_read(self) -> list[Key]:
        return [key for keys in self.round_trips for key in keys if kind_of(key) == "list"]


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ts(second: int) -> str:
    return f"2024-05-01T12:{second // 60:02d}:{second % 60:02d}.000Z"


def store_of(fold: ReferenceFold) -> MemoryStore:
    """The rows of a reference fold as the tables hold them, merged trending lists included."""
    store = MemoryStore()
    overall, by_category = merge([fold.partial], fold.cfg)
    rows = list(fold.rows().values())
    rows.append(TrendingList(None, items=overall))
    rows += [TrendingList(category, items=items) for category, items in by_category.items()]
    store.put_many(rows)
    return store


def world() -> MemoryStore:
    """alice viewed a, b, c; bob a, b, d; carol b, c, e (one category, one session each)."""
    fold = ReferenceFold(CFG)
    n = 0
    for user, items in {"alice": ["a", "b", "c"], "bob": ["a", "b", "d"], "carol": ["b", "c", "e"]}.items():
        for item in items:
            n += 1
            fold.apply_dict(
                {
                    "event_id": f"e{n}",
                    "event_type": "view",
                    "user_id": user,
                    "item_id": item,
                    "category": "cat",
                    "timestamp": ts(n),
                },
                shard_id=f"shard-{user}",
                sequence_number=n,
            )
    return store_of(fold)


def set_trending(store: MemoryStore, items: list[str], category: str | None = None) -> None:
    """A merge rewrote a trending list (unconditionally, as the aggregator does)."""
    listed = [Trend(item, float(len(items) - rank), category or "cat") for rank, item in enumerate(items)]
    store.put_many([TrendingList(category, items=listed)], conditional=False)


def recommended(recommender: Recommender, user: str, k: int = 10) -> list[str]:
    return [entry.item_id for entry in recommender.recommendations(user, k=k).body.items]


def test_recommendations_take_exactly_two_round_trips():
    reader = CountingReader(world())
    result = Recommender(reader, NO_EXPERIMENTS).recommendations("alice", k=5)
    # The user row and the global list, then the seeds' co-visitation rows and the category's list.
    first, second = reader.round_trips
    assert set(first) == {user_key("alice"), trending_key()}
    assert set(second) == {item_key("a"), item_key("b"), item_key("c"), trending_key("cat")}
    assert reader.queries == 0
    body = result.body
    assert body.model == c.MODEL_NAME and body.variant == c.DEFAULT_VARIANT and body.request_id
    # Neighbours alice never saw (d via bob, e via carol) are candidates beside her own viewed items.
    assert {"d", "e"} <= {item.item_id for item in body.items}


def test_recommendations_state_how_fresh_the_features_are():
    """features_as_of is the newest event time in the user's features (what freshness probes poll)."""
    recommender = Recommender(CountingReader(world()), NO_EXPERIMENTS)
    assert recommender.recommendations("alice").body.features_as_of == 1714564803000  # ts(3), ms
    assert recommender.recommendations("nobody").body.features_as_of is None


def test_cold_start_takes_one_round_trip_and_returns_trending():
    reader = CountingReader(world())
    result = Recommender(reader, NO_EXPERIMENTS).recommendations("nobody", k=3)
    assert reader.round_trips == [[user_key("nobody"), trending_key()]]
    assert result.fallback and [i.reason for i in result.body.items] == ["trending"] * 3
    assert result.body.items[0].item_id == "b"  # seen by all three users


def test_a_round_trip_holds_at_most_100_keys_with_as_many_seeds_and_categories_as_a_row_can_give():
    # GIVEN rows that keep 150 history entries and 150 categories, and a variant asking for all of them
    cfg = FeatureConfig(
        user_ttl_seconds=86_400,
        item_ttl_seconds=3_600,
        allowed_lateness_ms=600_000,
        history_cap=150,
        affinity_cap=150,
    )
    fold = ReferenceFold(cfg)
    for n in range(150):
        fold.apply_dict(
            {
                "event_id": f"e{n}",
                "event_type": "view",
                "user_id": "greedy",
                "item_id": f"i{n}",
                "category": f"c{n}",
                "timestamp": ts(n),
            },
            sequence_number=n + 1,
        )
    reader = CountingReader(store_of(fold))
    variant = Variant("all", 1.0, {"seed_items": 150, "fill_categories": 150})
    # WHEN recommending
    Recommender(reader, ServeSettings(experiments=(Experiment("big", (variant,)),))).recommendations("greedy")
    # THEN still two round trips, the second exactly full: half seeds, the rest category lists
    _first, second = reader.round_trips
    assert len(second) == c.DDB_BATCH_GET_MAX_KEYS
    assert sum(kind_of(key) == "item" for key in second) == c.DDB_BATCH_GET_MAX_KEYS // 2


def test_a_cached_trending_list_is_not_read_again_within_its_ttl_and_a_stale_one_is():
    # GIVEN a recommender that served a cold-start user the global list "b" first
    store, clock = world(), Clock()
    reader = CountingReader(store)
    recommender = Recommender(reader, ServeSettings(experiments=(), trending_cache_seconds=10.0), clock=clock)
    assert recommended(recommender, "nobody")[0] == "b"
    # WHEN a merge rewrites the list and requests come within the TTL
    set_trending(store, ["z", "y"])
    clock.now += 9.5
    reader.round_trips.clear()
    still = recommended(recommender, "stranger")
    # THEN the list is not read again (one key, the user row) and the cached one is served
    assert reader.round_trips == [[user_key("stranger")]]
    assert still[0] == "b"
    # WHEN the TTL has passed
    clock.now += 1.0
    reader.round_trips.clear()
    fresh = recommended(recommender, "stranger")
    # THEN the list is read again in the same round trip as the user row, and the new one is served
    assert reader.round_trips == [[user_key("stranger"), trending_key()]]
    assert fresh == ["z", "y"]


def test_category_lists_are_cached_too_and_a_warm_request_still_takes_at_most_two_round_trips():
    store, clock = world(), Clock()
    reader = CountingReader(store)
    recommender = Recommender(reader, NO_EXPERIMENTS, clock=clock)
    recommender.recommendations("alice")
    reader.round_trips.clear()
    # Within the TTL: the user row, then the seeds' rows only (both lists come from the cache)
    recommender.recommendations("bob")
    assert reader.lists_read() == [] and len(reader.round_trips) == 2
    assert set(reader.round_trips[1]) == {item_key("a"), item_key("b"), item_key("d")}
    # After it: the category list is read again beside the seeds, the global list beside the user row
    clock.now += TRENDING_CACHE_SECONDS + 1
    reader.round_trips.clear()
    recommender.recommendations("bob")
    assert len(reader.round_trips) == 2
    assert trending_key() in reader.round_trips[0] and trending_key("cat") in reader.round_trips[1]


def test_a_missing_trending_list_is_cached_as_empty_until_its_ttl_passes():
    # GIVEN a pipeline whose aggregator has not merged yet (no list rows)
    store = MemoryStore()
    clock = Clock()
    reader = CountingReader(store)
    recommender = Recommender(reader, NO_EXPERIMENTS, clock=clock)
    assert recommended(recommender, "nobody") == []
    # WHEN the first merge lands: not read within the TTL, served after it
    set_trending(store, ["t1"])
    clock.now += 1
    assert recommended(recommender, "nobody") == [] and reader.lists_read() == [trending_key()]
    clock.now += TRENDING_CACHE_SECONDS
    assert recommended(recommender, "nobody") == ["t1"]


def test_no_trending_cache_reads_the_lists_every_time():
    # The offline evaluation changes the features between queries: it turns the cache off.
    store = world()
    reader = CountingReader(store)
    recommender = Recommender(reader, ServeSettings(experiments=(), trending_cache_seconds=0), clock=Clock())
    recommended(recommender, "nobody")
    set_trending(store, ["z"])
    assert recommended(recommender, "nobody") == ["z"]
    assert reader.lists_read() == [trending_key(), trending_key()]


def test_similar_items_take_one_read_of_one_row_and_unknown_items_are_404():
    reader = CountingReader(world())
    recommender = Recommender(reader, NO_EXPERIMENTS)
    body = recommender.similar("b", k=3)
    assert reader.round_trips == [[item_key("b")]] and body.items[0].item_id in {"a", "c"}
    with pytest.raises(HttpError) as error:
        recommender.similar("nope")
    assert error.value.code == "not_found"


def test_variant_assignment_is_stable_and_close_to_the_weights():
    experiment = Experiment("exp", (Variant("control", 1.0), Variant("treatment", 3.0)))
    counts = Counter(experiment.assign(f"user-{n}").name for n in range(20_000))
    assert abs(counts["treatment"] / 20_000 - 0.75) < 0.015
    assert all(experiment.assign(f"user-{n}") == experiment.assign(f"user-{n}") for n in range(100))
    # a different experiment id reshuffles users independently
    other = Experiment("exp2", experiment.variants)
    moved = sum(experiment.assign(f"u{n}").name != other.assign(f"u{n}").name for n in range(2_000))
    assert 400 < moved < 1_100


def test_variant_params_tune_the_model():
    store = world()
    plain = Recommender(
        CountingReader(store), ServeSettings(experiments=(Experiment("e", (Variant("v", 1, {}),)),))
    )
    no_seen = Recommender(
        CountingReader(store),
        ServeSettings(experiments=(Experiment("e", (Variant("v", 1, {"seen_weight": 0}),)),)),
    )
    with_seen = plain.recommendations("alice", k=3).body.items
    without = no_seen.recommendations("alice", k=3).body.items
    # seen_weight adds the user's own recent items to their neighbours' scores
    score = lambda items, item: next(i.score for i in items if i.item_id == item)  # noqa: E731
    assert score(with_seen, "b") > score(without, "b")


def test_experiment_results_count_attributed_events_with_wilson_intervals():
    fold = ReferenceFold(CFG)
    n = 0
    for variant, impressions, clicks in (("control", 40, 4), ("treatment", 40, 10)):
        for i in range(impressions):
            n += 1
            kind = "click" if i < clicks else "impression"
            fold.apply_dict(
                {
                    "event_id": f"e{n}",
                    "event_type": kind,
                    "user_id": f"u{n}",
                    "item_id": "x",
                    "timestamp": ts(n % 3000),
                    "attribution": {"request_id": f"r{n}", "variant": variant, "experiment_id": "exp"},
                },
                sequence_number=n,
            )
            if kind == "click":  # the click's impression
                n += 1
                fold.apply_dict(
                    {
                        "event_id": f"e{n}",
                        "event_type": "impression",
                        "user_id": f"u{n}",
                        "timestamp": ts(n % 3000),
                        "attribution": {"request_id": f"r{n}", "variant": variant, "experiment_id": "exp"},
                    },
                    sequence_number=n,
                )
    experiments = (
        Experiment("exp", (Variant("control", 1.0), Variant("treatment", 1.0), Variant("idle", 1.0))),
    )
    reader = CountingReader(store_of(fold))
    body = Recommender(reader, ServeSettings(experiments=experiments)).experiment("exp")
    assert reader.queries == 1 and reader.round_trips == []
    by_name = {v.variant: v for v in body.variants}
    assert (by_name["control"].impressions, by_name["control"].clicks) == (40, 4)
    assert by_name["treatment"].ctr.value == pytest.approx(0.25)
    assert by_name["idle"].impressions == 0 and by_name["idle"].ctr.value is None
    low, high = by_name["treatment"].ctr.low, by_name["treatment"].ctr.high
    assert low is not None and high is not None and low < 0.25 < high
    with pytest.raises(HttpError):
        Recommender(reader, ServeSettings(experiments=experiments)).experiment("unknown")


def test_wilson_interval_matches_the_formula():
    rate = wilson(10, 40)
    z = 1.959963984540054
    p, n = 0.25, 40
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (rate.low, rate.high) == pytest.approx((centre - half, centre + half))
    assert rate.low == pytest.approx(0.1419, abs=1e-4) and rate.high == pytest.approx(0.4019, abs=1e-4)
    assert wilson(0, 10).low == 0.0 and wilson(10, 10).high == pytest.approx(1.0)
    assert wilson(0, 0).value is None
