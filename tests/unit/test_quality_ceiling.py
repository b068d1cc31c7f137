"""tools.quality_ceiling's pure-Python part on hand-built streams: reachability, candidates, scoring.

The LightGBM fit itself is analysis-only (its packages are not in requirements.txt) and is not run here.
"""

from __future__ import annotations

import pytest

from tools.quality_ceiling import FEATURES, build_candidates, hit_rate_and_mrr


def ev(n: int, user: str, item: str, event_type: str = "view", category: str = "c") -> dict[str, object]:
    return {"user_id": user, "item_id": item, "event_type": event_type, "category": category, "unix_ts": n}


def test_reachability_sorts_every_target_into_exactly_one_kind():
    events = [
        ev(0, "u", "a", "purchase"),
        ev(1, "u", "b"),
        ev(2, "v", "x"),
        # held out from here (cut = 3): four queries for known users u and v
        ev(3, "u", "b"),  # touched before by u
        ev(4, "u", "a"),  # bought before by u
        ev(5, "u", "x"),  # only v touched it
        ev(6, "v", "new"),  # nobody touched it
    ]
    _, reach = build_candidates(events, cut=3)
    assert (reach.queries, reach.in_history, reach.bought_before) == (4, 2, 1)
    assert (reach.seen_by_others_only, reach.never_seen) == (1, 1)
    assert reach.in_stored_history == 2


def test_candidates_exclude_bought_and_the_current_item_and_carry_one_row_per_feature():
    events = [ev(0, "u", "bought", "purchase"), ev(1, "u", "a"), ev(2, "u", "b"), ev(3, "u", "a")]
    cands, _ = build_candidates(events, cut=3)
    assert cands.queries == 1 and len(cands.rows) == 1  # only "a": "b" is being looked at, "bought" is out
    assert cands.labels == [1] and cands.recall == 1
    assert all(len(row) == len(FEATURES) for row in cands.rows)
    row = dict(zip(FEATURES, cands.rows[0], strict=True))
    assert row["in_history"] == 1 and row["distinct_position"] == 1 and row["count"] == 1


def test_co_visitation_of_other_users_brings_new_candidates():
    events = [ev(0, "v", "a"), ev(1, "v", "z"), ev(2, "u", "a"), ev(3, "u", "z")]
    cands, _ = build_candidates(events, cut=3)
    rows = {
        label: dict(zip(FEATURES, row, strict=True))
        for row, label in zip(cands.rows, cands.labels, strict=True)
    }
    assert cands.recall == 1 and rows[1]["in_history"] == 0 and rows[1]["covisit_newest"] == 1.0


def test_recent_baseline_counts_the_users_latest_distinct_items():
    events = [ev(0, "u", "a"), ev(1, "u", "b"), ev(2, "u", "c"), ev(3, "u", "a")]
    cands, _ = build_candidates(events, cut=3, k=10)
    assert cands.recent_hits == 1 and cands.recent_rr == pytest.approx(1 / 3)  # c, b, a


def test_hit_rate_and_mrr_rank_by_score_within_each_query():
    scores = [0.1, 0.9, 0.5, 0.2, 0.8]
    labels = [1, 0, 0, 1, 0]
    groups = [0, 0, 0, 1, 1]
    assert hit_rate_and_mrr(scores, labels, groups, queries=2, k=10) == pytest.approx(
        (1.0, (1 / 3 + 1 / 2) / 2)
    )
    assert hit_rate_and_mrr(scores, labels, groups, queries=2, k=2) == pytest.approx((0.5, 0.25))
    assert (
        hit_rate_and_mrr(scores, labels, groups, queries=4, k=10)[0] == 0.5
    )  # queries without candidates miss
