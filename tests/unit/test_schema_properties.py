"""Property tests of schema v1: valid events pass, every broken rule is named, the published JSON Schema
agrees with the validator, records round-trip."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import jsonschema
from hypothesis import given
from hypothesis import strategies as st
from streamrec_core.schema import (
    decode_record,
    encode_record,
    json_schema,
    parse_timestamp,
    validate_event,
)

from tests.unit.event_strategies import MUTATIONS, NOW, event_like, json_values, valid_events

VALIDATOR = jsonschema.Draft202012Validator(json_schema())
MAX_AGE = timedelta(days=7)
MAX_FUTURE = timedelta(minutes=5)


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


@given(st.one_of(json_values, event_like, valid_events().flatmap(lambda e: st.just(e))))
def test_validator_never_raises_and_never_accepts_what_the_published_schema_rejects(raw: Any) -> None:
    event, violations = check(raw, now=None)
    assert (event is None) == bool(violations)
    if event is not None:
        assert VALIDATOR.is_valid(raw)
