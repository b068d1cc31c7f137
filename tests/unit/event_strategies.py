"""Hypothesis strategies for schema v1 events, shared by the schema and ingest property tests."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st
from streamrec_core.constants import EVENT_TYPES, ITEM_REQUIRED_TYPES

# Receipt time of the schema tests; `valid_events(now=None)` draws around the real clock instead.
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
# Generated timestamps keep this far inside the accepted window, so a slow test run cannot push them out.
WINDOW_MARGIN_SECONDS = 60


ID_ALPHABET = string.ascii_letters + string.digits + "._:@-"


def ids(max_size: int) -> st.SearchStrategy[str]:
    return st.text(ID_ALPHABET, min_size=1, max_size=max_size)


def texts(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    # Any Unicode but lone surrogates (which cannot be encoded as UTF-8).
    return st.text(st.characters(exclude_categories=["Cs"]), min_size=min_size, max_size=max_size)


@st.composite
def timestamps(draw: st.DrawFn, now: datetime | None = NOW) -> str:
    """RFC 3339 strings inside the default window (7 days back, 5 minutes ahead), assorted offsets."""
    base = now or datetime.now(UTC)
    margin = WINDOW_MARGIN_SECONDS
    moment = base - timedelta(seconds=draw(st.integers(-300 + margin, 7 * 86400 - margin)))
    offset_minutes = draw(st.sampled_from([0, 60, -300, 330, 840, -720]))
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    fraction = draw(st.sampled_from(["", ".5", ".123", ".123456"]))
    zone = (
        "Z"
        if offset_minutes == 0 and draw(st.booleans())
        else local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:]
    )
    return local.strftime("%Y-%m-%dT%H:%M:%S") + fraction + zone


numbers_ok = st.one_of(st.integers(0, 10**9), st.floats(0, 1e9, allow_nan=False, allow_infinity=False))
scalars = st.one_of(
    texts(0, 256),
    st.integers(-(10**15), 10**15),
    st.floats(-1e15, 1e15, allow_nan=False),
    st.booleans(),
    st.none(),
)


@st.composite
def valid_events(
    draw: st.DrawFn, now: datetime | None = NOW, event_ids: st.SearchStrategy[str] | None = None
) -> dict[str, Any]:
    event_type = draw(st.sampled_from(EVENT_TYPES))
    event: dict[str, Any] = {"event_type": event_type, "user_id": draw(ids(128))}
    if event_type in ITEM_REQUIRED_TYPES or draw(st.booleans()):
        event["item_id"] = draw(ids(128))
    optional = {
        "event_id": ids(64) if event_ids is None else event_ids,
        "timestamp": timestamps(now),
        "session_id": texts(1, 128),
        "category": texts(1, 128),
        "page_url": texts(0, 300),
        "element_id": texts(1, 256),
        "referrer": texts(0, 300),
        "query": texts(0, 512),
        "price": numbers_ok,
        "quantity": numbers_ok,
        "attribution": st.fixed_dictionaries(
            {"request_id": ids(128), "variant": ids(64)},
            optional={"position": st.integers(0, 1000), "experiment_id": ids(64)},
        ),
        "properties": st.dictionaries(texts(1, 64), scalars, max_size=8),
        "schema_version": st.just(1),
    }
    for name in draw(st.lists(st.sampled_from(sorted(optional)), unique=True)):
        event[name] = draw(optional[name])
    return event


# Each mutation breaks exactly one rule and names the field that must be reported.
MUTATIONS: list[tuple[str, Any]] = [
    ("user_id", lambda e, d: e.update(user_id=d(st.sampled_from(["", "a b", "é", "u" * 129, 7, None])))),
    ("user_id", lambda e, d: e.pop("user_id")),
    ("event_type", lambda e, d: e.update(event_type=d(st.sampled_from(["", "View", "like", 1, None])))),
    ("event_type", lambda e, d: e.pop("event_type")),
    ("item_id", lambda e, d: e.update(item_id=d(st.sampled_from(["", "i/1", "x" * 129, 3])))),
    ("event_id", lambda e, d: e.update(event_id=d(st.sampled_from(["", "e" * 65, "e 1", 5])))),
    (
        "timestamp",
        lambda e, d: e.update(timestamp=d(st.sampled_from(["", "yesterday", "2025-03-01T12:00:00", 0]))),
    ),
    ("timestamp", lambda e, d: e.update(timestamp="2025-02-20T00:00:00Z")),
    ("timestamp", lambda e, d: e.update(timestamp="2025-03-01T12:30:00Z")),
    (
        "price",
        lambda e, d: e.update(price=d(st.sampled_from([-1, float("nan"), float("inf"), True, "1", 1e13]))),
    ),
    ("quantity", lambda e, d: e.update(quantity=d(st.sampled_from([-0.5, False, None, [1]])))),
    ("category", lambda e, d: e.update(category=d(st.sampled_from(["", "c" * 129, 5, "\udc80"])))),
    ("page_url", lambda e, d: e.update(page_url="u" * 2049)),
    ("attribution", lambda e, d: e.update(attribution=d(st.sampled_from(["r", [], None, 1])))),
    ("attribution.variant", lambda e, d: e.update(attribution={"request_id": "r-1"})),
    (
        "attribution.position",
        lambda e, d: e.update(attribution={"request_id": "r", "variant": "A", "position": 1.5}),
    ),
    ("properties", lambda e, d: e.update(properties={f"p{i}": i for i in range(21)})),
    ("properties.p", lambda e, d: e.update(properties={"p": d(st.sampled_from([[], {}, "v" * 257]))})),
    ("schema_version", lambda e, d: e.update(schema_version=d(st.sampled_from([0, 2, 99, "1", 1.0])))),
    ("extra", lambda e, d: e.update(extra=d(scalars))),
]


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts(0, 20)),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts(0, 12), children, max_size=4),
    max_leaves=12,
)
event_like = st.dictionaries(
    st.sampled_from(
        ["event_type", "user_id", "item_id", "timestamp", "price", "properties", "attribution", "x"]
    ),
    json_values,
)
