"""Seeded synthetic clickstream with the skew of a real shop, in the shared events.jsonl format.

Real clickstreams are far from uniform, and the pipeline's interesting behaviour (hot keys, co-visitation,
trending, coalesced writes) only shows up with that skew. The generator therefore models:

- item popularity that follows a Zipf-like law (a few items get most of the traffic),
- items grouped into categories of uneven size,
- users with a few preferred categories and log-normal activity, plus a handful of heavy users,
- sessions: several events close in time, mostly views, with view -> add_to_cart -> purchase funnels,
  favourites and re-views of items seen earlier in the session.

Each line has the fields of ``../shared/data/taobao-userbehavior/events.jsonl`` (user_id, item_id,
event_type, timestamp, category, raw_event_type, unix_ts, source_line), sorted by time, so the replay tool,
benchmarks and tests treat generated and real data alike. The same arguments always give the same bytes.

Three options serve the scale benchmark (bench/scale.py) and change nothing when left at their defaults:

- ``lead_in_seconds``: a window of a stream that has been running: sessions also start up to this long
  before ``start`` and only events inside the window are kept, so the rate is steady from the first
  second (users arrive mid-session) instead of ramping up while the first sessions fill in;
- ``attributed_share``: this share of sessions comes from a recommendation: it opens with an
  ``impression`` of its first item and that first view is a ``click``, both carrying ``attribution``
  (request id, the user's variant of experiment ``EXPERIMENT_ID``, position), as a client reports them;
- ``session_seed``: draws the sessions from their own seed, so the same shop (users, items, categories,
  preferences: fixed by ``seed``) can be given an earlier, different history (the benchmark's warm-up).

Usage:
    python -m tools.generate_clickstream --events 20000 --users 500 --items 2000 --seed 7 --out events.jsonl
    python -m tools.generate_clickstream --events 240000 --users 25000 --items 78000 --days 0.0034722 \
        --lead-in-seconds 1800 --attributed-share 0.1 --out scale.jsonl     # bench.scale's stream
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The raw Taobao behaviour names, kept so generated lines match the shared format field for field.
RAW_EVENT_TYPES = {"view": "pv", "add_to_cart": "cart", "favorite": "fav", "purchase": "buy"}
# Recommendation feedback has no Taobao name: its raw type is its own.
RAW_EVENT_TYPES.update({"impression": "impression", "click": "click"})
# The experiment attributed sessions report, and its variants (a user's is fixed by the user's index).
EXPERIMENT_ID = "bench"
VARIANTS = ("control", "treatment")

DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ShopShape:
    """Knobs of the synthetic shop. The defaults give funnel rates close to the Taobao sample
    (about 90% views, 5% carts, 3% favourites, 2% purchases)."""

    zipf_exponent: float = 0.9  # item popularity ~ 1 / rank**s
    items_per_category: int = 40  # average; category sizes are uneven
    preferred_categories: tuple[int, int] = (1, 4)  # each user likes between 1 and 4 categories
    preference_share: float = 0.8  # share of a user's views inside their preferred categories
    mean_session_events: float = 8.0
    mean_gap_seconds: float = 40.0  # between two events of one session
    revisit_share: float = 0.1  # a view goes back to an item already seen in the session
    cart_rate: float = 0.06  # a view leads to add_to_cart
    purchase_rate: float = 0.35  # an add_to_cart leads to purchase
    favorite_rate: float = 0.035  # a view leads to favorite
    heavy_user_share: float = 0.01  # these users are several times more active than the median user
    heavy_user_factor: float = 6.0


def _cumulative(weights: list[float]) -> list[float]:
    return list(itertools.accumulate(weights))


class _Shop:
    """Items, categories and users drawn once from the seeded generator."""

    def __init__(self, rng: random.Random, users: int, items: int, shape: ShopShape) -> None:
        self.rng = rng
        self.shape = shape
        n_categories = max(1, round(items / shape.items_per_category))
        self.categories = [f"c{k}" for k in range(n_categories)]

        # Popularity rank is shuffled so it is unrelated to the id (as in real catalogues).
        ranks = list(range(1, items + 1))
        rng.shuffle(ranks)
        self.item_ids = [f"i{j}" for j in range(items)]
        popularity = [1.0 / rank**shape.zipf_exponent for rank in ranks]

        # Uneven category sizes: each item joins a category drawn with Zipf-like weights too.
        category_weights = _cumulative([1.0 / (k + 1) ** 0.5 for k in range(n_categories)])
        self.item_category = [
            self.categories[c]
            for c in rng.choices(range(n_categories), cum_weights=category_weights, k=items)
        ]
        members: dict[str, list[int]] = {c: [] for c in self.categories}
        for j, category in enumerate(self.item_category):
            members[category].append(j)
        self.categories = [c for c in self.categories if members[c]]
        self.members = {c: members[c] for c in self.categories}
        self.member_weights = {c: _cumulative([popularity[j] for j in members[c]]) for c in self.categories}
        self.global_weights = _cumulative(popularity)
        # Users prefer big categories more often, but not as sharply as item popularity (that would
        # compound the two skews far beyond what the Taobao sample shows).
        self.category_weights = _cumulative([float(len(members[c])) for c in self.categories])

        # Users: log-normal activity, a few heavy users, preferred categories drawn by popularity.
        self.user_ids = [f"u{i}" for i in range(users)]
        activity = [rng.lognormvariate(0.0, 0.6) for _ in range(users)]
        heavy = max(1, round(users * shape.heavy_user_share)) if users >= 20 else 0
        for i in rng.sample(range(users), heavy):
            activity[i] *= shape.heavy_user_factor
        self.user_weights = _cumulative(activity)
        low, high = shape.preferred_categories
        self.preferences = [
            rng.choices(self.categories, cum_weights=self.category_weights, k=rng.randint(low, high))
            for _ in range(users)
        ]

    def pick_user(self) -> int:
        return self.rng.choices(range(len(self.user_ids)), cum_weights=self.user_weights)[0]

    def pick_item(self, user: int) -> int:
        if self.rng.random() < self.shape.preference_share:
            category = self.rng.choice(self.preferences[user])
            return self.rng.choices(self.members[category], cum_weights=self.member_weights[category])[0]
        return self.rng.choices(range(len(self.item_ids)), cum_weights=self.global_weights)[0]


def _session(shop: _Shop, user: int, start: float) -> Iterator[tuple[float, int, str]]:
    """One user's session as (unix time, item index, event type), in time order."""
    rng, shape = shop.rng, shop.shape
    length = 1 + int(rng.expovariate(1.0 / (shape.mean_session_events - 1)))
    seen: list[int] = []
    t = start
    emitted = 0
    while emitted < length:
        if seen and rng.random() < shape.revisit_share:
            item = rng.choice(seen)
        else:
            item = shop.pick_item(user)
            seen.append(item)
        yield t, item, "view"
        emitted += 1
        if rng.random() < shape.favorite_rate:
            t += rng.expovariate(1.0 / 10.0)
            yield t, item, "favorite"
            emitted += 1
        if rng.random() < shape.cart_rate:
            t += rng.expovariate(1.0 / 20.0)
            yield t, item, "add_to_cart"
            emitted += 1
            if rng.random() < shape.purchase_rate:
                t += rng.expovariate(1.0 / 60.0)
                yield t, item, "purchase"
                emitted += 1
        t += rng.expovariate(1.0 / shape.mean_gap_seconds)


def _iso(unix_ts: int) -> str:
    return datetime.fromtimestamp(unix_ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_events(
    events: int,
    *,
    users: int = 1000,
    items: int = 5000,
    seed: int = 0,
    start: datetime = DEFAULT_START,
    days: float = 1.0,
    shape: ShopShape | None = None,
    lead_in_seconds: float = 0.0,
    attributed_share: float = 0.0,
    session_seed: int | None = None,
) -> list[dict]:
    """Return ``events`` synthetic events in the shared events.jsonl format, sorted by time.

    Sessions start uniformly over ``days`` days from ``start``; timestamps are whole seconds, as in the
    Taobao data. ``source_line`` numbers events in generation order, which breaks ties between equal
    timestamps and gives the replay tool a stable identity for each line. ``lead_in_seconds``,
    ``attributed_share`` and ``session_seed``: see the module docstring.
    """
    if events < 0 or users < 1 or items < 1 or days <= 0:
        raise ValueError("need events >= 0, users >= 1, items >= 1 and days > 0")
    if lead_in_seconds < 0 or not 0 <= attributed_share <= 1:
        raise ValueError("need lead_in_seconds >= 0 and 0 <= attributed_share <= 1")
    rng = random.Random(seed)
    shop = _Shop(rng, users, items, shape or ShopShape())
    if session_seed is not None:
        rng = shop.rng = random.Random(session_seed)
    origin = start.timestamp()
    span = days * 86400.0

    raw: list[tuple[int, int, int, int, str]] = []  # (unix_ts, line, user, item, event type)
    attributions: dict[int, dict] = {}  # line -> attribution
    while len(raw) < events:
        user = shop.pick_user()
        if lead_in_seconds:
            session_start = origin - lead_in_seconds + rng.random() * (span + lead_in_seconds)
        else:
            session_start = origin + rng.random() * span
        attribution = None
        if attributed_share and rng.random() < attributed_share:
            attribution = {
                "request_id": f"r{rng.getrandbits(48):012x}",
                "variant": VARIANTS[user % len(VARIANTS)],
                "experiment_id": EXPERIMENT_ID,
                "position": rng.randrange(10),
            }
        for t, item, event_type in _session(shop, user, session_start):
            if len(raw) == events:
                break
            if lead_in_seconds and not origin <= t < origin + span:
                attribution = None  # the session's opening fell outside the window
                continue
            if attribution is not None:  # the session's first event: the recommended item, clicked
                attributions[len(raw) + 1] = attribution
                raw.append((math.floor(t), len(raw) + 1, user, item, "impression"))
                if len(raw) == events:
                    break
                attributions[len(raw) + 1] = attribution
                event_type = "click"
                attribution = None
            raw.append((math.floor(t), len(raw) + 1, user, item, event_type))
    raw.sort()

    lines: list[dict[str, Any]] = [
        {
            "user_id": shop.user_ids[user],
            "item_id": shop.item_ids[item],
            "event_type": event_type,
            "timestamp": _iso(unix_ts),
            "category": shop.item_category[item],
            "raw_event_type": RAW_EVENT_TYPES[event_type],
            "unix_ts": unix_ts,
            "source_line": line,
        }
        for unix_ts, line, user, item, event_type in raw
    ]
    for line in lines:
        attribution = attributions.get(line["source_line"])
        if attribution is not None:
            line["attribution"] = attribution
    return lines


def write_jsonl(events: list[dict], out: Path) -> None:
    """Write events as JSON Lines with the compact separators of the shared data file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="\n") as handle:
        for event in events:
            handle.write(json.dumps(event, separators=(",", ":")))
            handle.write("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="number of events (default 20000)")
    parser.add_argument("--users", type=int, default=1_000, help="number of users (default 1000)")
    parser.add_argument("--items", type=int, default=5_000, help="number of items (default 5000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--days", type=float, default=1.0, help="time span of the stream in days (default 1)")
    parser.add_argument(
        "--start",
        default=DEFAULT_START.strftime("%Y-%m-%dT%H:%M:%SZ"),
        help="first possible event time, ISO 8601 UTC (default %(default)s)",
    )
    parser.add_argument(
        "--lead-in-seconds",
        type=float,
        default=0.0,
        help="sessions also start this long before --start; only events in the window are kept (default 0)",
    )
    parser.add_argument(
        "--attributed-share",
        type=float,
        default=0.0,
        help="share of sessions opened from a recommendation (attributed impression + click; default 0)",
    )
    parser.add_argument(
        "--session-seed", type=int, default=None, help="seed of the sessions (default: continue --seed's)"
    )
    parser.add_argument("--out", type=Path, required=True, help="output JSON Lines file")
    args = parser.parse_args(argv)

    start = datetime.fromisoformat(args.start)
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    events = generate_events(
        args.events,
        users=args.users,
        items=args.items,
        seed=args.seed,
        start=start,
        days=args.days,
        lead_in_seconds=args.lead_in_seconds,
        attributed_share=args.attributed_share,
        session_seed=args.session_seed,
    )
    write_jsonl(events, args.out)
    first = events[0]["timestamp"] if events else "-"
    last = events[-1]["timestamp"] if events else "-"
    print(f"wrote {len(events)} events to {args.out} ({first} .. {last})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
