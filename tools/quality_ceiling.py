"""How high can HitRate@10 go on a clickstream? Reachability and a learned-ranker ceiling.

    pip install -r tools/requirements-quality-ceiling.txt    # numpy + lightgbm, analysis only
    python -m tools.quality_ceiling [--events PATH] [--train-fraction 0.8] [--k 10]

Same protocol and queries as ``tools.evaluate offline`` (time split by count; every held-out event of a
known user is a query asked just before it; purchased items and the item being looked at now are never
candidates). It prints:

- **reachability**: the share of queries whose target the user touched before (any time, and within the
  stored history), bought before, that someone else touched before, or that nobody had touched yet. No
  recommender of known items can hit the last kind.
- **a learned ranker**: LightGBM LambdaRank over 19 signals of every candidate (the user's own history:
  recency in positions and time, counts, strongest event type, category of now, category share; 24-hour
  co-visitation from the newest items; global and last-hour popularity; category top lists; the user's
  own item-to-item transitions). It is trained on the validation split (inside the training part) and
  scored on the test split, next to the ``recent`` baseline on the same queries. A gradient-boosted
  ranker over these signals is a generous stand-in for the best hand-written model over the same data.

Not part of the pipeline or of CI (lightgbm is not a runtime dependency); the pure-Python candidate and
scoring code is unit-tested.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter, defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamrec_core.features.events import TYPE_WEIGHTS

from tools.evaluate import (
    DEFAULT_EVENTS,
    DEFAULT_K,
    DEFAULT_TRAIN_FRACTION,
    OFFLINE_CONFIG,
    load_events,
    split_events,
)
from tools.replay import source_time

FEATURES = (
    "in_history",
    "distinct_position",
    "log_age_s",
    "count",
    "strongest_type",
    "same_category_as_now",
    "category_share_last_10",
    "decayed_weight",
    "first_position",
    "items_in_category",
    "covisit_newest",
    "covisit_recent",
    "covisit_seeds",
    "global_count",
    "category_rank",
    "in_category_top",
    "count_last_hour",
    "count_last_6_hours",
    "own_transitions",
)
ABSENT = 999.0  # position-like signals of candidates outside the user's history
COVISIT_WINDOW_S = 86_400
COVISIT_PARTNERS = 5
SEEDS = 5
CATEGORY_TOP = 20
STORED_HISTORY = OFFLINE_CONFIG.history_cap  # what the user row keeps


@dataclass
class Reach:
    """Where the targets of the queries come from."""

    queries: int = 0
    in_history: int = 0
    in_stored_history: int = 0
    bought_before: int = 0
    seen_by_others_only: int = 0
    never_seen: int = 0

    def shares(self) -> dict[str, float]:
        n = self.queries or 1
        return {
            "target touched by the user before": self.in_history / n,
            f"  of which in the newest {STORED_HISTORY} history entries": self.in_stored_history / n,
            "  of which bought before (never recommended)": self.bought_before / n,
            "target touched only by other users before": self.seen_by_others_only / n,
            "target touched by nobody before (unreachable)": self.never_seen / n,
        }


@dataclass
class Candidates:
    """One row per (query, candidate item): features, label, query id."""

    rows: list[list[float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    queries: int = 0
    recall: int = 0  # queries whose target is among their candidates
    recent_hits: int = 0
    recent_rr: float = 0.0


class _State:
    """Everything folded so far: per-user histories, co-visitation, popularity, transitions."""

    def __init__(self) -> None:
        self.history: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        self.covisit: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.count: Counter[str] = Counter()
        self.by_category: dict[str, Counter[str]] = defaultdict(Counter)
        # span in seconds -> ((second, item) in the span, item counts in the span)
        self.windows: dict[int, tuple[deque[tuple[int, str]], Counter[str]]] = {
            3600: (deque(), Counter()),
            6 * 3600: (deque(), Counter()),
        }
        self.transitions: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)

    def fold(self, event: Mapping[str, Any]) -> None:
        user, item, now = event["user_id"], event["item_id"], _seconds(event)
        history = self.history[user]
        partners: list[str] = []
        for earlier in reversed(history):
            if now - _seconds(earlier) > COVISIT_WINDOW_S or len(partners) >= COVISIT_PARTNERS:
                break
            if earlier["item_id"] != item and earlier["item_id"] not in partners:
                partners.append(earlier["item_id"])
        for distance, partner in enumerate(partners):
            self.covisit[partner][item] += 1.0 / (distance + 1)
            self.covisit[item][partner] += 1.0 / (distance + 1)
        if history and history[-1]["item_id"] != item:
            self.transitions[(user, history[-1]["item_id"])][item] += 1
        history.append(event)
        self.count[item] += 1
        self.by_category[event.get("category", "")][item] += 1
        for span, (queue, counts) in self.windows.items():
            queue.append((now, item))
            counts[item] += 1
            while queue and queue[0][0] < now - span:
                counts[queue.popleft()[1]] -= 1


def _seconds(event: Mapping[str, Any]) -> int:
    if "unix_ts" in event:
        return int(event["unix_ts"])
    return int(source_time(dict(event)))


def build_candidates(
    events: Sequence[Mapping[str, Any]], cut: int, k: int = DEFAULT_K
) -> tuple[Candidates, Reach]:
    """Fold events[:cut], then walk the rest: one candidate set per query of a known user."""
    state = _State()
    for event in events[:cut]:
        state.fold(event)
    known = {event["user_id"] for event in events[:cut]}
    out, reach = Candidates(), Reach()
    for event in events[cut:]:
        history = state.history.get(event["user_id"])
        if event["user_id"] in known and history:
            _add_query(state, history, event, out, reach, k)
        state.fold(event)
    return out, reach


def _add_query(
    state: _State,
    history: list[Mapping[str, Any]],
    event: Mapping[str, Any],
    out: Candidates,
    reach: Reach,
    k: int,
) -> None:
    target, now, category_now = event["item_id"], _seconds(history[-1]), history[-1].get("category", "")
    recent_categories = Counter(e.get("category", "") for e in history[-10:])
    bought = {e["item_id"] for e in history if e["event_type"] == "purchase"}
    items_in_category: dict[str, set[str]] = defaultdict(set)
    for e in history:
        items_in_category[e.get("category", "")].add(e["item_id"])
    seen: dict[str, dict[str, float]] = {}
    distinct: list[str] = []
    for position, e in enumerate(reversed(history)):
        item = e["item_id"]
        signals = seen.get(item)
        if signals is None:
            category = e.get("category", "")
            signals = seen[item] = {
                "distinct_position": len(distinct),
                "log_age_s": math.log1p(now - _seconds(e)),
                "count": 0,
                "strongest_type": 0,
                "same_category_as_now": float(category == category_now),
                "category_share_last_10": recent_categories[category] / min(10, len(history)),
                "decayed_weight": 0.0,
                "items_in_category": len(items_in_category[category]),
            }
            distinct.append(item)
        weight = TYPE_WEIGHTS.get(e["event_type"], 1)
        signals["count"] += 1
        signals["strongest_type"] = max(signals["strongest_type"], weight)
        signals["decayed_weight"] += weight * 0.5 ** (position / 20)
        signals["first_position"] = position
    _count_reach(state, history, event, seen, bought, reach)

    covisit: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for distance, seed in enumerate(distinct[:SEEDS]):
        for other, score in state.covisit.get(seed, {}).items():
            entry = covisit[other]
            entry[0] += score if distance == 0 else 0.0
            entry[1] += score * 0.5 ** (distance / 2)
            entry[2] += 1
    top = [item for item, _ in state.by_category[category_now].most_common(CATEGORY_TOP)]
    category_rank = {item: rank for rank, item in enumerate(top)}
    own = state.transitions.get((event["user_id"], distinct[0]), Counter())
    query = out.queries
    out.queries += 1
    candidates = (set(seen) | set(covisit) | set(top)) - bought - {distinct[0]}
    out.recall += target in candidates
    for item in sorted(candidates):
        signals = seen.get(item)
        c = covisit.get(item, (0.0, 0.0, 0.0))
        row = [
            float(signals is not None),
            *(
                (
                    signals["distinct_position"],
                    signals["log_age_s"],
                    signals["count"],
                    signals["strongest_type"],
                    signals["same_category_as_now"],
                    signals["category_share_last_10"],
                    signals["decayed_weight"],
                    signals["first_position"],
                    signals["items_in_category"],
                )
                if signals
                else (ABSENT, 20.0, 0.0, 0.0, -1.0, -1.0, 0.0, ABSENT, -1.0)
            ),
            c[0],
            c[1],
            c[2],
            state.count[item],
            category_rank.get(item, ABSENT),
            float(item in category_rank),
            state.windows[3600][1][item],
            state.windows[6 * 3600][1][item],
            own.get(item, 0),
        ]
        out.rows.append([float(v) for v in row])
        out.labels.append(int(item == target))
        out.groups.append(query)
    recent = distinct[:k]  # the `recent` baseline: latest distinct items, newest first
    if target in recent:
        out.recent_hits += 1
        out.recent_rr += 1.0 / (recent.index(target) + 1)


def _count_reach(
    state: _State,
    history: list[Mapping[str, Any]],
    event: Mapping[str, Any],
    seen: Mapping[str, Any],
    bought: set[str],
    reach: Reach,
) -> None:
    target = event["item_id"]
    reach.queries += 1
    if target in seen:
        reach.in_history += 1
        reach.in_stored_history += any(e["item_id"] == target for e in history[-STORED_HISTORY:])
        reach.bought_before += target in bought
    elif state.count[target] > 0:
        reach.seen_by_others_only += 1
    else:
        reach.never_seen += 1


def hit_rate_and_mrr(
    scores: Sequence[float], labels: Sequence[int], groups: Sequence[int], queries: int, k: int
) -> tuple[float, float]:
    """HitRate@k and MRR@k of per-candidate scores (higher first; ties by candidate order)."""
    by_query: dict[int, list[tuple[float, int, int]]] = defaultdict(list)
    for index, (score, label, group) in enumerate(zip(scores, labels, groups, strict=True)):
        by_query[group].append((-score, index, label))
    hits, rr = 0, 0.0
    for rows in by_query.values():
        rows.sort()
        for rank, (_score, _index, label) in enumerate(rows[:k]):
            if label:
                hits += 1
                rr += 1.0 / (rank + 1)
                break
    return (hits / queries, rr / queries) if queries else (0.0, 0.0)


def fit_and_score(train: Candidates, test: Candidates) -> list[float]:
    """LightGBM LambdaRank fitted on `train`, scores for `test` (imported here: analysis-only deps)."""
    import lightgbm
    import numpy

    sizes = list(Counter(train.groups).values())  # groups are contiguous and in order
    data = lightgbm.Dataset(numpy.array(train.rows), numpy.array(train.labels), group=sizes)
    params = {
        "objective": "lambdarank",
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_data_in_leaf": 50,
        "deterministic": True,
        "seed": 0,
        "num_threads": 2,
        "verbose": -1,
    }
    model = lightgbm.train(params, data, num_boost_round=300)
    return [float(v) for v in model.predict(numpy.array(test.rows))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=Path, default=DEFAULT_EVENTS)
    parser.add_argument("--train-fraction", type=float, default=DEFAULT_TRAIN_FRACTION)
    parser.add_argument("--k", type=int, default=DEFAULT_K)
    args = parser.parse_args(argv)
    events = load_events(args.events)
    train_part, _ = split_events(events, args.train_fraction)
    validation, _ = build_candidates(train_part, int(len(train_part) * args.train_fraction), args.k)
    test, reach = build_candidates(events, len(train_part), args.k)
    print(f"test queries: {test.queries}")
    for name, share in reach.shares().items():
        print(f"{name:<58} {share:6.1%}")
    print(f"{'target among the ranker candidates':<58} {test.recall / test.queries:6.1%}")
    hit, mrr = hit_rate_and_mrr(
        fit_and_score(validation, test), test.labels, test.groups, test.queries, args.k
    )
    recent_hit, recent_mrr = test.recent_hits / test.queries, test.recent_rr / test.queries
    print(f"| model | HitRate@{args.k} | MRR@{args.k} |\n|---|---|---|")
    print(f"| recent (baseline) | {recent_hit:.3f} | {recent_mrr:.3f} |")
    print(f"| learned ranker (LightGBM, tuned on validation) | {hit:.3f} | {mrr:.3f} |")
    print(f"| goal: 1.2 x recent | {1.2 * recent_hit:.3f} | {1.2 * recent_mrr:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
