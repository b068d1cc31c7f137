"""Property tests of schema v1: valid events pass, every broken rule is named, the published JSON Schema
agrees with the validator, records round-trip."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jsonschema
from hypothesis import given
from hypothesis import strategies as st
from streamrec_core.constants import EVENT_TYPES, ITEM_REQUIRED_TYPES
from streamrec_core.schema import (
    decode_record,
    encode_record,
    json_schema,
    parse_timestamp,
    validate_event,
)

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
MAX_AGE = timedelta(days=7)
MAX_FUTURE = timedelta(minutes=5)
ID_ALPHABET = string.ascii_letters + string.digits + "._:@-"
VALIDATOR = jsonschema.Draft202012Validator(json_schema())


def ids(max_size: int) -> st.SearchStrategy[str]:
    return st.text(ID_ALPHABET, min_size=1, max_size=max_size)


def texts(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    # Any Unicode but lone surrogates (which cannot be encoded as UTF-8).
    return st.text(st.characters(exclude_categories=("Cs",)), min_size=min_size, max_size=max_size)


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """RFC 3339 strings inside the accepted window, in assorted offsets and precisions."""
    moment = NOW - timedelta(seconds=draw(st.integers(-299, 7 * 86400 - 1)))
    offset_minutes = draw(st.sampled_from([0, 60, -300, 330, 840, -720]))
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    fraction = draw(st.sampled_from(["", ".5", ".123", ".123456"]))
    zone = "Z" if offset_minutes == 0 and draw(st.booleans()) else local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:]
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
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    event_type = draw(st.sampled_from(EVENT_TYPES))
    event: dict[str, Any] = {"event_type": event_type, "user_id": draw(ids(128))}
    if event_type in ITEM_REQUIRED_TYPES or draw(st.booleans()):
        event["item_id"] = draw(ids(128))
    optional = {
        "event_id": ids(64),
        "timestamp": timestamps(),
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


def check(raw: object, now: datetime | None = NOW) -> tuple[dict[str, Any] | None, list[Any]]:
    return validate_event(raw, now=now, max_age=MAX_AGE, max_future=MAX_FUTURE)


@given(valid_events())
def test_every_valid_event_is_accepted_with_its_fields_normalized(raw: dict[str, Any]) -> None:
    event, violations = check(raw)
    assert violations == []
    assert event is not None
    for name, value in raw.items():
        if name == "timestamp":
            assert parse_timestamp(event[name]) == parse_timestamp(value).replace(
                microsecond=parse_timestamp(value).microsecond // 1000 * 1000
            )
        else:
            assert event[name] == value
    assert set(event) == set(raw) | {"event_id", "timestamp", "schema_version"}
    assert event["schema_version"] == 1
    assert len(event["timestamp"]) == 24 and event["timestamp"].endswith("Z")


@given(valid_events())
def test_published_json_schema_accepts_every_valid_event(raw: dict[str, Any]) -> None:
    assert list(VALIDATOR.iter_errors(raw)) == []


@given(valid_events())
def test_normalized_event_is_a_fixed_point_and_round_trips_through_a_record(raw: dict[str, Any]) -> None:
    event, _ = check(raw)
    assert event is not None
    again, violations = check(event)
    assert violations == [] and again == event
    record = decode_record(encode_record(event, "2025-03-01T12:00:00.000Z"))
    revalidated, violations = check(record, now=None)
    assert violations == [] and revalidated == record


# Each mutation breaks exactly one rule and names the field that must be reported.
MUTATIONS: list[tuple[str, Any]] = [
    ("user_id", lambda e, d: e.update(user_id=d(st.sampled_from(["", "a b", "é", "u" * 129, 7, None])))),
    ("user_id", lambda e, d: e.pop("user_id")),
    ("event_type", lambda e, d: e.update(event_type=d(st.sampled_from(["", "View", "like", 1, None])))),
    ("event_type", lambda e, d: e.pop("event_type")),
    ("item_id", lambda e, d: e.update(item_id=d(st.sampled_from(["", "i/1", "x" * 129, 3])))),
    ("event_id", lambda e, d: e.update(event_id=d(st.sampled_from(["", "e" * 65, "e 1", 5])))),
    ("timestamp", lambda e, d: e.update(timestamp=d(st.sampled_from(["", "yesterday", "2025-03-01T12:00:00", 0])))),
    ("timestamp", lambda e, d: e.update(timestamp="2025-02-20T00:00:00Z")),
    ("timestamp", lambda e, d: e.update(timestamp="2025-03-01T12:30:00Z")),
    ("price", lambda e, d: e.update(price=d(st.sampled_from([-1, float("nan"), float("inf"), True, "1", 1e13])))),
    ("quantity", lambda e, d: e.update(quantity=d(st.sampled_from([-0.5, False, None, [1]])))),
    ("category", lambda e, d: e.update(category=d(st.sampled_from(["", "c" * 129, 5, "\udc80"])))),
    ("page_url", lambda e, d: e.update(page_url="u" * 2049)),
    ("attribution", lambda e, d: e.update(attribution=d(st.sampled_from(["r", [], None, 1])))),
    ("attribution.variant", lambda e, d: e.update(attribution={"request_id": "r-1"})),
    ("attribution.position", lambda e, d: e.update(attribution={"request_id": "r", "variant": "A", "position": 1.5})),
    ("properties", lambda e, d: e.update(properties={f"p{i}": i for i in range(21)})),
    ("properties.p", lambda e, d: e.update(properties={"p": d(st.sampled_from([[], {}, "v" * 257]))})),
    ("schema_version", lambda e, d: e.update(schema_version=d(st.sampled_from([0, 2, 99, "1", 1.0])))),
    ("extra", lambda e, d: e.update(extra=d(scalars))),
]


@given(valid_events(), st.sampled_from(MUTATIONS), st.data())
def test_every_invalid_event_is_rejected_naming_the_broken_field(
    raw: dict[str, Any], mutation: tuple[str, Any], data: st.DataObject
) -> None:
    field, mutate = mutation
    if field == "item_id" and "item_id" not in raw:
        raw["item_id"] = "i-1"
    mutate(raw, data.draw)
    event, violations = check(raw)
    assert event is None
    assert field in [v.field for v in violations], violations
    assert all(v.field and v.rule for v in violations)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts(0, 20)),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts(0, 12), children, max_size=4),
    max_leaves=12,
)
event_like = st.dictionaries(
    st.sampled_from(["event_type", "user_id", "item_id", "timestamp", "price", "properties", "attribution", "x"]),
    json_values,
)


@given(st.one_of(json_values, event_like, valid_events().flatmap(lambda e: st.just(e))))
def test_validator_never_raises_and_never_accepts_what_the_published_schema_rejects(raw: Any) -> None:
    event, violations = check(raw, now=None)
    assert (event is None) == bool(violations)
    if event is not None:
        assert VALIDATOR.is_valid(raw)
