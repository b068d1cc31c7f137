"""Serve logic (serve.logic, serve.experiments) with an in-memory reader: round trips, A/B, statistics."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
from serve.experiments import Experiment, Variant, assign, parse_experiments, wilson
from serve.logic import Recommender, ServeSettings, parse_exclude, parse_k
from streamrec_core import constants as c
from streamrec_core.features import FeatureConfig, MemoryFeatures
from streamrec_core.http import HttpError

CFG = FeatureConfig(
    user_ttl_seconds=86_400, item_ttl_seconds=3_600, allowed_lateness_ms=600_000, trending_slots=4
)


class CountingReader:
    """The RowReader port over a MemoryFeatures table, counting DynamoDB-equivalent round trips."""

    def __init__(self, memory: MemoryFeatures) -> None:
        self.memory = memory
        self.batch_gets: list[int] = []
        self.gets = 0
        self.queries = 0

    def read(self, keys, *, consistent=True):
        keys = list(keys)
        assert len(keys) <= c.DDB_BATCH_GET_MAX_KEYS, "one BatchGetItem holds at most 100 keys"
        self.batch_gets.append(len(keys))
        return {key: self.memory.rows.get(key) for key in keys}

    def get(self, key, *, consistent=False):
        self.gets += 1
        return self.memory.rows.get(key)

    def query_items(self, pk, *, limit=1000):
        self.queries += 1
        return [
            row for (table, p, _), row in sorted(self.memory.rows.items()) if table == "items" and p == pk
        ]


def ts(second: int) -> str:
    return f"2024-05-01T12:{second // 60:02d}:{second % 60:02d}.000Z"


def world() -> MemoryFeatures:
    memory = MemoryFeatures(CFG)
    n = 0
    for user, items in {"alice": ["a", "b", "c"], "bob": ["a", "b", "d"], "carol": ["b", "c", "e"]}.items():
        for item in items:
            n += 1
            memory.apply(
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
    return memory


def test_recommendations_take_exactly_two_round_trips():
    reader = CountingReader(world())
    recommender = Recommender(reader, ServeSettings(trending_slots=4, experiments=()))
    result = recommender.recommendations("alice", k=5)
    assert len(reader.batch_gets) == 2 and reader.gets == 0 and reader.queries == 0
    body = result.body
    assert body["model"] == c.MODEL_NAME and body["variant"] == c.DEFAULT_VARIANT and body["request_id"]
    # Neighbours alice never saw (d via bob, e via carol) are candidates beside her own viewed items.
    assert {"d", "e"} <= {item["item_id"] for item in body["items"]}
    assert all(set(item) == {"item_id", "score", "reason"} for item in body["items"])


def test_recommendations_state_how_fresh_the_features_are():
    """features_as_of is the newest event time in the user's features (what freshness probes poll)."""
    reader = CountingReader(world())
    recommender = Recommender(reader, ServeSettings(trending_slots=4, experiments=()))
    assert recommender.recommendations("alice").body["features_as_of"] == 1714564803000  # ts(3), ms
    assert recommender.recommendations("nobody").body["features_as_of"] is None


def test_cold_start_takes_one_round_trip_and_returns_trending():
    reader = CountingReader(world())
    result = Recommender(reader, ServeSettings(trending_slots=4, experiments=())).recommendations(
        "nobody", k=3
    )
    assert len(reader.batch_gets) == 1
    assert result.fallback and [i["reason"] for i in result.body["items"]] == ["trending"] * 3
    assert result.body["items"][0]["item_id"] == "b"  # seen by all three users


def test_round_trips_stay_within_100_keys_with_many_slots_and_seeds():
    reader = CountingReader(world())
    experiments = (Experiment("big", (Variant("only", 1.0, {"seed_items": 80, "fill_categories": 10}),)),)
    Recommender(reader, ServeSettings(trending_slots=64, experiments=experiments)).recommendations("alice")
    assert len(reader.batch_gets) == 2 and max(reader.batch_gets) <= 100


def test_similar_items_take_one_get_and_unknown_items_are_404():
    reader = CountingReader(world())
    recommender = Recommender(reader, ServeSettings(trending_slots=4, experiments=()))
    body = recommender.similar("b", k=3)
    assert reader.gets == 1 and body["items"][0]["item_id"] in {"a", "c"}
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
    memory = world()
    plain = Recommender(CountingReader(memory), ServeSettings(4, (Experiment("e", (Variant("v", 1, {}),)),)))
    no_seen = Recommender(
        CountingReader(memory), ServeSettings(4, (Experiment("e", (Variant("v", 1, {"seen_weight": 0}),)),))
    )
    with_seen = plain.recommendations("alice", k=3).body["items"]
    without = no_seen.recommendations("alice", k=3).body["items"]
    # seen_weight adds the user's own recent items to their neighbours' scores
    score = lambda items, item: next(i["score"] for i in items if i["item_id"] == item)  # noqa: E731
    assert score(with_seen, "b") > score(without, "b")


def test_experiment_results_count_attributed_events_with_wilson_intervals():
    memory = MemoryFeatures(CFG)
    n = 0
    for variant, impressions, clicks in (("control", 40, 4), ("treatment", 40, 10)):
        for i in range(impressions):
            n += 1
            kind = "click" if i < clicks else "impression"
            memory.apply(
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
                memory.apply(
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
    reader = CountingReader(memory)
    body = Recommender(reader, ServeSettings(4, experiments)).experiment("exp")
    assert reader.queries == 1
    by_name = {v["variant"]: v for v in body["variants"]}
    assert (by_name["control"]["impressions"], by_name["control"]["clicks"]) == (40, 4)
    assert by_name["treatment"]["ctr"]["value"] == pytest.approx(0.25)
    assert by_name["idle"]["impressions"] == 0 and by_name["idle"]["ctr"]["value"] is None
    low, high = by_name["treatment"]["ctr"]["low"], by_name["treatment"]["ctr"]["high"]
    assert low < 0.25 < high
    with pytest.raises(HttpError):
        Recommender(reader, ServeSettings(4, experiments)).experiment("unknown")


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


def test_experiments_parse_from_the_settings_json_and_reject_bad_input():
    raw = json.dumps(
        [
            {
                "id": "e",
                "variants": [
                    {"name": "a", "weight": 1, "params": {"seen_weight": 2}},
                    {"name": "b", "weight": 2},
                ],
            }
        ]
    )
    (experiment,) = parse_experiments(raw)
    assert experiment.variants[0].params == {"seen_weight": 2}
    assert assign((experiment,), "u")[0] == "e"
    assert assign((), "u") == (None, Variant(c.DEFAULT_VARIANT, 1.0))
    for bad in (
        '{"id": 1}',
        '[{"id": "e", "variants": []}]',
        '[{"id": "e", "variants": [{"name": "a", "weight": 0}]}]',
    ):
        with pytest.raises(ValueError):
            parse_experiments(bad)


def test_query_parameters_are_validated():
    assert parse_k(None) == 10 and parse_k("100") == 100
    for bad in ("0", "101", "-1", "ten"):
        with pytest.raises(HttpError):
            parse_k(bad)
    assert parse_exclude(["a", "b"]) == ["a", "b"]
    with pytest.raises(HttpError):
        parse_exclude(["bad id"])
