"""covisit-v1 ranking (streamrec_core.ranking) on small hand-built typed rows: no AWS."""

from __future__ import annotations

import pytest
from streamrec_core.features.item_aggregates import ItemRow, Neighbour
from streamrec_core.features.trending import Trend
from streamrec_core.features.user_fold import HistoryEntry, UserRow
from streamrec_core.ranking import (
    REASON_CATEGORY,
    REASON_COVISIT,
    REASON_TRENDING,
    ModelParams,
    categories_to_fill,
    recommend,
    seed_items,
    seen_items,
    similar_items,
)

NO_SEEN = ModelParams(seen_weight=0.0, affinity_boost=0.0, context_boost=0.0)


def user(history, bought=(), affinity=None) -> UserRow:
    """A user row from (item, event type, event time ms, category) history entries, oldest first."""
    return UserRow(
        "u",
        history=[HistoryEntry(*entry) for entry in history],
        bought=list(bought),
        affinity=dict(affinity or {}),
    )


def profile(neighbours, category="") -> ItemRow:
    """An item's co-visitation row from {neighbour: (score, category)}."""
    return ItemRow("seed", category=category, neighbours={k: Neighbour(*v) for k, v in neighbours.items()})


def trends(*entries) -> list[Trend]:
    """A merged trending list from (item, score, category) entries, best first."""
    return [Trend(*entry) for entry in entries]


def ids(recs):
    return [r.item_id for r in recs]


def test_cold_start_user_gets_trending_and_the_fallback_flag():
    recs, fallback = recommend(
        None, {}, {}, trends(("t1", 5.0, "x"), ("t2", 3.0, "y")), k=5, params=ModelParams()
    )
    assert fallback and ids(recs) == ["t1", "t2"]
    assert {r.reason for r in recs} == {REASON_TRENDING}


def test_neighbours_of_more_recent_items_rank_higher():
    u = user([("old", "view", 1, "c"), ("new", "view", 2, "c")])
    profiles = {"old": profile({"x": (10, "c")}), "new": profile({"y": (10, "c")})}
    recs, fallback = recommend(u, profiles, {}, [], k=2, params=NO_SEEN)
    assert not fallback and ids(recs) == ["y", "x"] and recs[0].reason == REASON_COVISIT


def test_stronger_interest_outweighs_a_little_recency():
    u = user([("bought-ish", "add_to_cart", 1, "c"), ("glanced", "view", 2, "c")])
    profiles = {"bought-ish": profile({"x": (1, "c")}), "glanced": profile({"y": (1, "c")})}
    recs, _ = recommend(u, profiles, {}, [], k=2, params=NO_SEEN)
    assert ids(recs) == ["x", "y"]  # cart (3) x 0.79 recency > view (1) x 1.0


def test_neighbour_scores_are_shares_of_the_seed_best_neighbour():
    u = user([("a", "view", 1, "c")])
    recs, _ = recommend(u, {"a": profile({"x": (8, "c"), "y": (2, "c")})}, {}, [], k=5, params=NO_SEEN)
    assert [(r.item_id, r.score) for r in recs] == [("x", 1.0), ("y", 0.25)]


def test_purchased_and_excluded_items_never_come_back():
    u = user([("a", "view", 1, "c")], bought=["x"])
    recs, _ = recommend(
        u,
        {"a": profile({"x": (9, "c"), "y": (5, "c"), "z": (1, "c")})},
        {},
        trends(("x", 1.0, "c"), ("w", 1.0, "c")),
        k=5,
        params=NO_SEEN,
        exclude=["y"],
    )
    assert ids(recs) == ["z", "w"]


def test_purchased_items_may_be_allowed_by_a_parameter():
    u = user([("a", "view", 1, "c")], bought=["x"])
    recs, _ = recommend(
        u,
        {"a": profile({"x": (9, "c")})},
        {},
        [],
        k=5,
        params=ModelParams(exclude_purchased=False, seen_weight=0),
    )
    assert "x" in ids(recs)


def test_category_parameter_keeps_only_that_category_everywhere():
    u = user([("a", "view", 1, "books")])
    recs, _ = recommend(
        u,
        {"a": profile({"x": (9, "toys"), "y": (5, "books")})},
        {"books": trends(("b1", 2.0, "books"))},
        trends(("t-toy", 9.0, "toys"), ("t-book", 1.0, "books")),
        k=5,
        params=NO_SEEN,
        category="books",
    )
    assert ids(recs) == ["y", "b1", "t-book"]


def test_category_affinity_boosts_matching_candidates():
    u = user([("a", "view", 1, "books")], affinity={"toys": 10.0, "books": 1.0})
    profiles = {"a": profile({"book": (10, "books"), "toy": (9, "toys")})}
    plain, _ = recommend(u, profiles, {}, [], k=2, params=NO_SEEN)
    affinity_only = ModelParams(seen_weight=0, affinity_boost=0.5, context_boost=0)
    boosted, _ = recommend(u, profiles, {}, [], k=2, params=affinity_only)
    assert ids(plain) == ["book", "toy"] and ids(boosted) == ["toy", "book"]


def test_the_list_is_filled_from_category_trending_then_global_without_duplicates():
    u = user([("a", "view", 1, "c")], affinity={"c": 1.0})
    recs, fallback = recommend(
        u,
        {"a": profile({"x": (1, "c")})},
        {"c": trends(("x", 9.0, "c"), ("c1", 5.0, "c"))},
        trends(("c1", 9.0, "c"), ("g1", 4.0, "d")),
        k=4,
        params=NO_SEEN,
    )
    assert not fallback
    assert [(r.item_id, r.reason) for r in recs] == [
        ("x", REASON_COVISIT),
        ("c1", REASON_CATEGORY),
        ("g1", REASON_TRENDING),
    ]
    scores = [r.score for r in recs]
    assert scores == sorted(scores, reverse=True)


def test_recently_seen_items_can_come_back_with_seen_weight():
    u = user([("a", "view", 1, "c"), ("b", "view", 2, "c")])
    params = ModelParams(seen_weight=1.0, affinity_boost=0, skip_latest=0)
    recs, _ = recommend(u, {}, {}, [], k=5, params=params)
    assert ids(recs) == ["b", "a"]
    none, fallback = recommend(u, {}, {}, [], k=5, params=NO_SEEN)
    assert none == [] and fallback


def test_ranking_is_deterministic_with_ties_broken_by_item_id():
    u = user([("a", "view", 1, "c")])
    profiles = {"a": profile({"z": (5, "c"), "m": (5, "c"), "b": (5, "c")})}
    runs = {tuple(ids(recommend(u, profiles, {}, [], k=3, params=NO_SEEN)[0])) for _ in range(5)}
    assert runs == {("b", "m", "z")}


def test_k_is_bounded_and_respected():
    u = user([("a", "view", 1, "c")])
    profiles = {"a": profile({f"n{i}": (i + 1, "c") for i in range(30)})}
    recs, _ = recommend(u, profiles, {}, [], k=7, params=NO_SEEN)
    assert len(recs) == 7
    with pytest.raises(ValueError):
        recommend(u, profiles, {}, [], k=0, params=NO_SEEN)
    with pytest.raises(ValueError):
        recommend(u, profiles, {}, [], k=101, params=NO_SEEN)


def test_seeds_are_distinct_newest_first_and_capped():
    history = [(f"i{n % 4}", "view", n, "c") for n in range(10)] + [("i0", "purchase", 11, "c")]
    seeds = seed_items(user(history), ModelParams(seed_items=3, recency_half_life=1.0))
    assert [s.item_id for s in seeds] == ["i0", "i1", "i3"]
    assert [s.weight for s in seeds] == [4.0, 0.5, 0.25]


def test_fill_categories_are_the_requested_one_or_the_user_top_ones():
    u = user([], affinity={"a": 1.0, "b": 3.0, "c": 2.0, "d": 0.5})
    assert categories_to_fill(u, ModelParams(fill_categories=2), None) == ["b", "c"]
    assert categories_to_fill(u, ModelParams(), "zzz") == ["zzz"]
    assert categories_to_fill(None, ModelParams(), None) == []


def test_model_params_come_from_variant_params_and_are_validated():
    params = ModelParams.from_params(
        {"recency_half_life": 6, "seed_items": 20, "exclude_purchased": False, "other": 1}
    )
    assert (params.recency_half_life, params.seed_items, params.exclude_purchased) == (6.0, 20, False)
    for bad in (
        {"seed_items": 2.5},
        {"seen_weight": -1},
        {"exclude_purchased": "no"},
        {"affinity_boost": True},
    ):
        with pytest.raises(ValueError):
            ModelParams.from_params(bad)


def test_similar_items_are_neighbours_best_first():
    recs = similar_items(profile({"x": (2, ""), "y": (8, ""), "z": (2, "")}), k=2)
    assert [(r.item_id, r.score) for r in recs] == [("y", 1.0), ("x", 0.25)]
    assert similar_items(None, k=3) == [] and similar_items(profile({}), k=3) == []


def test_seen_items_weigh_frequency_type_and_age():
    history = [("often", "view", 1, "c"), ("often", "view", 2, "c"), ("often", "view", 3, "c")]
    history.append(("once", "view", 4, "c"))
    weights = {item: w for item, w, _ in seen_items(user(history), ModelParams(seen_half_life=20.0))}
    assert weights["often"] > weights["once"]
    two = user([("x", "add_to_cart", 1, "c"), ("y", "view", 2, "c")])
    carted = {item: w for item, w, _ in seen_items(two, ModelParams())}
    assert carted["x"] > carted["y"]


def test_category_filter_also_applies_to_seen_items():
    u = user([("book", "view", 1, "books"), ("toy", "view", 2, "toys")])
    recs, _ = recommend(u, {}, {}, [], k=5, params=ModelParams(skip_latest=0), category="toys")
    assert ids(recs) == ["toy"]


def test_the_item_being_looked_at_now_is_left_out_by_default():
    # GIVEN a user whose newest item "b" is also a neighbour of an older seed and a trending item
    u = user([("a", "view", 1, "c"), ("b", "view", 2, "c"), ("a", "view", 3, "c"), ("b", "view", 4, "c")])
    profiles = {"a": profile({"b": (5, "c"), "x": (1, "c")}), "b": profile({"y": (1, "c")})}
    # WHEN ranking with the defaults (skip_latest=1)
    recs, _ = recommend(u, profiles, {}, trends(("b", 9.0, "c")), k=5, params=ModelParams())
    # THEN "b" comes back from nowhere, while the older history item "a" and neighbours still do
    assert "b" not in ids(recs) and {"a", "x", "y"} <= set(ids(recs))
    kept, _ = recommend(u, profiles, {}, [], k=5, params=ModelParams(skip_latest=0))
    assert "b" in ids(kept)


def test_items_of_the_category_the_user_is_in_now_rank_higher():
    # Newest event is in "shoes"; an older "books" item has the stronger history weight.
    u = user([("book", "add_to_cart", 1, "books"), ("shoe", "view", 2, "shoes"), ("now", "view", 3, "shoes")])
    plain = ModelParams(affinity_boost=0, context_boost=0)
    recs, _ = recommend(u, {}, {}, [], k=2, params=plain)
    assert ids(recs) == ["book", "shoe"]
    boosted, _ = recommend(u, {}, {}, [], k=2, params=ModelParams(affinity_boost=0, context_boost=2))
    assert ids(boosted) == ["shoe", "book"]
    assert boosted[0].score == pytest.approx(3 * next(r.score for r in recs if r.item_id == "shoe"))


def test_context_boost_also_lifts_co_visitation_candidates():
    u = user([("a", "view", 1, "toys")])
    profiles = {"a": profile({"book": (10, "books"), "toy": (6, "toys")})}
    plain, _ = recommend(u, profiles, {}, [], k=2, params=NO_SEEN)
    boosted, _ = recommend(u, profiles, {}, [], k=2, params=ModelParams(seen_weight=0, affinity_boost=0))
    assert ids(plain) == ["book", "toy"] and ids(boosted) == ["toy", "book"]


def test_seen_age_discounts_history_items_by_time_since_last_use():
    hour = 3_600_000
    # "old" was carted 10 hours ago, "recent" viewed twice in the last minutes; "now" is being looked at.
    u = user(
        [
            ("old", "add_to_cart", 0, "c"),
            ("recent", "view", 10 * hour - 120_000, "c"),
            ("recent", "view", 10 * hour - 60_000, "c"),
            ("now", "view", 10 * hour, "c"),
        ]
    )
    no_age = ModelParams(affinity_boost=0, context_boost=0)
    recs, _ = recommend(u, {}, {}, [], k=2, params=no_age)
    assert ids(recs) == ["old", "recent"]
    aged = ModelParams(affinity_boost=0, context_boost=0, seen_age_hours=0.5, seen_age_power=1.0)
    recs, _ = recommend(u, {}, {}, [], k=2, params=aged)
    assert ids(recs) == ["recent", "old"]
    weights = dict((item, w) for item, w, _ in seen_items(u, aged))
    assert weights["now"] == pytest.approx(1.0)  # no age: no discount
