"""tools.evaluate on tiny hand-built streams: arithmetic, split, known users, no leakage, baselines."""

from __future__ import annotations

import json

import pytest

from tools.evaluate import (
    MODEL_POPULARITY,
    MODEL_RECENT,
    TARGET_ALL,
    TARGET_NON_VIEW,
    Score,
    evaluate_offline,
    known_users,
    reciprocal_rank,
    split_events,
    variant_params,
)

COVISIT = "covisit-v1"


def ev(n: int, user: str, item: str, event_type: str = "view") -> dict[str, str]:
    return {
        "user_id": user,
        "item_id": item,
        "event_type": event_type,
        "category": "c",
        "timestamp": f"2017-11-25T00:{n // 60:02d}:{n % 60:02d}Z",
    }


def stream(*triples: tuple[str, str] | tuple[str, str, str]) -> list[dict[str, str]]:
    return [ev(n, *triple) for n, triple in enumerate(triples)]


def test_reciprocal_rank_and_score_arithmetic():
    assert reciprocal_rank(["a", "b", "c"], "a", 10) == 1.0
    assert reciprocal_rank(["a", "b", "c"], "c", 10) == pytest.approx(1 / 3)
    assert reciprocal_rank(["a", "b", "c"], "c", 2) == 0.0  # beyond k
    assert reciprocal_rank([], "a", 10) == 0.0
    score = Score()
    score.add(["x", "t"], "t", 10)  # rank 2
    score.add(["t"], "t", 10)  # rank 1
    score.add(["x"], "t", 10)  # miss
    score.add([], "t", 10)  # miss
    assert score.queries == 4 and score.hits == 2
    assert score.hit_rate == 0.5 and score.mrr == pytest.approx((0.5 + 1.0) / 4)


def test_split_is_a_time_prefix_and_validation_stays_inside_training():
    events = stream(*[("u", f"i{n}") for n in range(10)])
    train, test = split_events(events, 0.8)
    assert train == events[:8] and test == events[8:]
    val_train, val_test = split_events(events, 0.5, validation=True)
    assert val_train == events[:2] and val_test == events[2:5]  # never reaches the held-out part
    with pytest.raises(ValueError):
        split_events(events, 1.0)


def test_only_users_with_a_training_item_event_are_queried():
    # GIVEN "new" appears only after the split, "old" before and after
    events = stream(("old", "a"), ("old", "b"), ("old", "c"), ("new", "a"), ("old", "a"), ("new", "b"))
    assert known_users(events[:3]) == {"old"}
    # WHEN evaluating with the first half as training
    report = evaluate_offline(events, train_fraction=0.5)
    # THEN only old's held-out event is a query
    assert report.split["known_users"] == 1
    assert report.scores[TARGET_ALL][MODEL_RECENT].queries == 1


def test_recommendations_are_asked_before_the_event_is_folded_in():
    # GIVEN u saw a, b in training; then views a brand-new item z, then comes back to a
    events = stream(("u", "a"), ("u", "b"), ("u", "z"), ("u", "a"))
    report = evaluate_offline(events, train_fraction=0.5)
    recent = report.scores[TARGET_ALL][MODEL_RECENT]
    # THEN z (never seen before its own event) is a miss: no leakage of the target
    # AND the return to a is a hit at rank 3 (z, b, a), because z was folded in after its query
    assert recent.queries == 2 and recent.hits == 1
    assert recent.mrr == pytest.approx((0 + 1 / 3) / 2)
    covisit = report.scores[TARGET_ALL][COVISIT]
    assert covisit.queries == 2 and covisit.hits >= 1  # a comes back from history (z is skipped as newest)


def test_popularity_baseline_ranks_the_most_popular_items_so_far():
    # GIVEN "hot" is viewed by three users, "cold" by one, in training
    events = stream(("x", "hot"), ("y", "hot"), ("z", "hot"), ("x", "cold"), ("y", "hot"), ("x", "cold"))
    report = evaluate_offline(events, train_fraction=4 / 6)
    popularity = report.scores[TARGET_ALL][MODEL_POPULARITY]
    # THEN y's return to hot is a rank-1 hit and x's return to cold is a rank-2 hit
    assert popularity.queries == 2 and popularity.hits == 2
    assert popularity.mrr == pytest.approx((1 + 0.5) / 2)


def test_non_view_events_also_count_as_non_view_targets():
    events = stream(("u", "a"), ("u", "b"), ("u", "a", "add_to_cart"), ("u", "b"))
    report = evaluate_offline(events, train_fraction=0.5)
    assert report.scores[TARGET_ALL][MODEL_RECENT].queries == 2
    non_view = report.scores[TARGET_NON_VIEW][MODEL_RECENT]
    assert non_view.queries == 1 and non_view.hits == 1 and non_view.mrr == 0.5  # b, a
    assert report.as_dict()["targets"][TARGET_NON_VIEW][MODEL_RECENT]["queries"] == 1


def test_max_queries_bounds_the_walk():
    events = stream(*[("u", f"i{n % 3}") for n in range(20)])
    report = evaluate_offline(events, train_fraction=0.5, max_queries=4)
    assert all(score.queries == 4 for score in report.scores[TARGET_ALL].values())


def test_covisit_reads_the_trending_lists_as_folded_just_before_each_query():
    # GIVEN u, whose only candidates are category trending fill-ins, asks twice; between the two asks
    # three other users make "h" the category's top item
    events = stream(
        ("x", "old"),
        ("u", "a"),
        ("u", "old"),  # held out from here: query 1 (target "old")
        ("y", "h"),
        ("z", "h"),
        ("w", "h"),
        ("u", "h"),  # query 2 (target "h")
    )
    report = evaluate_offline(events, train_fraction=2 / 7)
    # THEN the second ask sees "h" (serve's per-container trending cache would still hold the first list)
    covisit = report.scores[TARGET_ALL][COVISIT]
    assert covisit.queries == 2 and covisit.hits == 2


def test_variant_params_are_the_profiles_first_experiment_and_a_broken_one_is_refused_by_serves_rules(
    tmp_path,
):
    def cdk_json(experiments):
        path = tmp_path / "cdk.json"
        path.write_text(json.dumps({"context": {"profiles": {"p": {"experiments": experiments}}}}))
        return path

    variants = [
        {"name": "control", "weight": 1, "params": {}},
        {"name": "fast", "weight": 1, "params": {"recency_half_life": 1}},
    ]
    assert variant_params("p", cdk_json([{"id": "e1", "variants": variants}])) == {
        "control": {},
        "fast": {"recency_half_life": 1},
    }
    assert variant_params("p", cdk_json([])) == {}
    # serve would refuse an unknown model parameter: so does the evaluation, naming where it is
    broken = [{"id": "e1", "variants": [variants[0], {**variants[1], "params": {"half_life": 1}}]}]
    with pytest.raises(SystemExit, match=r"profiles\.p\.experiments\[0\]\.variants\[1\]\.params"):
        variant_params("p", cdk_json(broken))
    with pytest.raises(SystemExit, match="no profile 'q'"):
        variant_params("q", cdk_json([]))
