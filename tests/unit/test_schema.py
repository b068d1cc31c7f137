"""Event schema v1: each rule, normalization, the Kinesis record format (examples; properties elsewhere)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from streamrec_core.constants import MAX_EVENT_BYTES, RECORD_RECEIVED_AT
from streamrec_core.schema import (
    PoisonRecord,
    Violation,
    decode_record,
    encode_record,
    validate_event,
)

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
MAX_AGE = timedelta(days=7)
MAX_FUTURE = timedelta(minutes=5)


def check(raw: object, *, now: datetime | None = NOW) -> tuple[dict | None, list[Violation]]:
    return validate_event(
        raw, now=now, max_age=MAX_AGE, max_future=MAX_FUTURE, assign_id=lambda: "assigned-1"
    )


def fields_of(violations: list[Violation]) -> list[str]:
    return [v.field for v in violations]


def view(**extra: object) -> dict:
    return {"event_type": "view", "user_id": "u-1", "item_id": "i-1", **extra}


# --- Accepting and normalizing -------------------------------------------------------------------------
def test_minimal_event_is_normalized_with_id_time_and_version() -> None:
    # Given a view with only the required fields
    # When it is validated at receipt time NOW
    event, violations = check(view())
    # Then it gets the assigned id, the receipt time in canonical form and schema_version 1
    assert violations == []
    assert event == {
        "event_type": "view",
        "user_id": "u-1",
        "item_id": "i-1",
        "event_id": "assigned-1",
        "timestamp": "2025-03-01T12:00:00.000Z",
        "schema_version": 1,
    }


def test_client_event_id_is_kept() -> None:
    event, _ = check(view(event_id="5b9c1f3e-2a4d-4e8f-9a1b-7c6d5e4f3a21"))
    assert event is not None and event["event_id"] == "5b9c1f3e-2a4d-4e8f-9a1b-7c6d5e4f3a21"


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("2025-03-01T11:59:00Z", "2025-03-01T11:59:00.000Z"),
        ("2025-03-01T13:59:00.123456+02:00", "2025-03-01T11:59:00.123Z"),
        ("2025-03-01t11:59:00.5z", "2025-03-01T11:59:00.500Z"),
        ("2025-03-01 06:29:00.999999999-05:30", "2025-03-01T11:59:00.999Z"),
        ("2025-03-01T11:59:00.000Z", "2025-03-01T11:59:00.000Z"),
    ],
)
def test_timestamps_are_normalized_to_utc_milliseconds(given: str, normalized: str) -> None:
    event, violations = check(view(timestamp=given))
    assert violations == []
    assert event is not None and event["timestamp"] == normalized


def test_every_optional_field_is_accepted_and_kept() -> None:
    raw = view(
        session_id="s-1",
        category="shoes",
        page_url="https://shop.example/p/1",
        element_id="rec-carousel-3",
        referrer="",
        query="",
        price=19.99,
        quantity=2,
        attribution={"request_id": "r-1", "variant": "B", "position": 3, "experiment_id": "exp-1"},
        properties={"color": "red", "size": 42, "gift": False, "note": None},
        schema_version=1,
    )
    event, violations = check(raw)
    assert violations == []
    assert event is not None
    assert {k: event[k] for k in raw} == raw


def test_item_id_is_optional_for_click_search_and_impression() -> None:
    for event_type in ("click", "search", "impression"):
        event, violations = check({"event_type": event_type, "user_id": "u-1"})
        assert violations == [] and event is not None


# --- Rejecting, with field and rule ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "field", "rule_part"),
    [
        ({"user_id": "u-1"}, "event_type", "is required"),
        ({"event_type": "view", "item_id": "i"}, "user_id", "is required"),
        (view(event_type="like"), "event_type", "must be one of view, click"),
        (view(user_id="a b"), "user_id", "must match [A-Za-z0-9._:@-]{1,128}"),
        (view(user_id=""), "user_id", "must match"),
        (view(user_id="u" * 129), "user_id", "{1,128}"),
        (view(user_id=42), "user_id", "must match"),
        (
            {"event_type": "purchase", "user_id": "u"},
            "item_id",
            "is required for event_type view, add_to_cart",
        ),
        (view(item_id="i/1"), "item_id", "must match"),
        (view(event_id=""), "event_id", "{1,64}"),
        (view(event_id="e" * 65), "event_id", "{1,64}"),
        (view(timestamp="2025-03-01"), "timestamp", "RFC 3339"),
        (view(timestamp="2025-03-01T11:59:00"), "timestamp", "RFC 3339"),
        (view(timestamp="2025-02-30T11:59:00Z"), "timestamp", "RFC 3339"),
        (view(timestamp="2025-02-28T25:00:00.000Z"), "timestamp", "RFC 3339"),
        (view(timestamp=1740830340), "timestamp", "RFC 3339"),
        (view(timestamp="2025-02-22T11:59:59Z"), "timestamp", "older than 604800 seconds"),
        (view(timestamp="2025-03-01T12:05:01Z"), "timestamp", "more than 300 seconds ahead"),
        (view(session_id=""), "session_id", "1-128 characters"),
        (view(category="c" * 129), "category", "1-128 characters"),
        (view(page_url="p" * 2049), "page_url", "at most 2048"),
        (view(query=["a"]), "query", "at most 512"),
        (view(referrer="\ud800"), "referrer", "at most 2048"),
        (view(price=-0.01), "price", "finite number between 0 and"),
        (view(price=True), "price", "finite number"),
        (view(price=float("nan")), "price", "finite number"),
        (view(price=float("inf")), "price", "finite number"),
        (view(price="9.99"), "price", "finite number"),
        (view(quantity=1e10), "quantity", "between 0 and 1000000000"),
        (view(attribution="r-1"), "attribution", "must be an object"),
        (view(attribution={"variant": "A"}), "attribution.request_id", "is required"),
        (
            view(attribution={"request_id": "r", "variant": "A", "position": -1}),
            "attribution.position",
            "integer",
        ),
        (
            view(attribution={"request_id": "r", "variant": "A", "position": True}),
            "attribution.position",
            "integer",
        ),
        (
            view(attribution={"request_id": "r", "variant": "A", "slot": 1}),
            "attribution.slot",
            "unknown field",
        ),
        (view(properties=[1]), "properties", "must be an object"),
        (view(properties={f"k{i}": i for i in range(21)}), "properties", "at most 20 keys"),
        (view(properties={"color": {"r": 1}}), "properties.color", "must be a string of at most 256"),
        (view(properties={"color": "x" * 257}), "properties.color", "must be a string of at most 256"),
        (view(properties={"n": float("nan")}), "properties.n", "number between"),
        (view(properties={"k" * 65: 1}), "properties", "keys must be 1-64"),
        (view(colour="red"), "colour", "unknown field"),
        (view(schema_version=2), "schema_version", "unsupported schema_version 2; supported: 1"),
        (view(schema_version="1"), "schema_version", "must be the integer 1"),
        (view(schema_version=True), "schema_version", "must be the integer 1"),
        ([view()], "event", "must be a JSON object"),
        (None, "event", "must be a JSON object"),
    ],
)
def test_invalid_event_is_rejected_naming_field_and_rule(raw: object, field: str, rule_part: str) -> None:
    # Given an event breaking exactly one rule / When validated
    event, violations = check(raw)
    # Then it is rejected and the violation names the field and the rule
    assert event is None
    matching = [v for v in violations if v.field == field]
    assert matching, violations
    assert rule_part in matching[0].rule
    assert matching[0].message() == f"{field}: {matching[0].rule}"


def test_every_broken_rule_is_reported_not_only_the_first() -> None:
    _, violations = check({"event_type": "view", "user_id": "a b", "price": -1, "x": 1})
    assert sorted(fields_of(violations)) == ["item_id", "price", "user_id", "x"]


def test_unknown_field_names_are_truncated_in_violations() -> None:
    _, violations = check(view(**{"z" * 10_000: 1}))
    assert len(violations[0].field) < 100


def test_event_over_8kb_serialized_is_rejected_as_a_whole() -> None:
    # Given an event whose fields are each within bounds but whose total exceeds 8 KB
    raw = view(page_url="p" * 2048, referrer="r" * 2048, query="q" * 512)
    raw["properties"] = {f"k{i}": "v" * 256 for i in range(20)}
    event, violations = check(raw)
    # Then the event is rejected with the size rule
    assert event is None
    assert violations == [Violation("event", f"serialized event must be at most {MAX_EVENT_BYTES} bytes")]


def test_escaped_characters_count_towards_the_size_limit() -> None:
    # Control characters serialize as \u00XX (6 bytes each): 1400 of them exceed 8 KB.
    event, violations = check(view(page_url="\x01" * 1400))
    assert event is None and violations[0].field == "event"


def test_event_just_under_8kb_is_accepted() -> None:
    raw = view(properties={f"k{i}": "v" * 256 for i in range(20)}, page_url="p" * 2048)
    event, violations = check(raw)
    assert violations == [] and event is not None
    assert len(encode_record(event, "2025-03-01T12:00:00.000Z")) < MAX_EVENT_BYTES + 64


# --- Record mode (process re-validation) ----------------------------------------------------------------
def test_record_mode_skips_the_time_window_and_accepts_received_at() -> None:
    # Given a record accepted long ago, as decoded from Kinesis
    stored, _ = check(view(event_id="e-1", timestamp="2025-03-01T11:00:00Z"))
    assert stored is not None
    record = decode_record(encode_record(stored, "2025-03-01T12:00:00.000Z"))
    # When the process function re-validates it without a receipt time
    event, violations = check(record, now=None)
    # Then it validates unchanged, received_at included
    assert violations == []
    assert event == {**stored, RECORD_RECEIVED_AT: "2025-03-01T12:00:00.000Z"}


def test_received_at_from_a_client_is_an_unknown_field() -> None:
    _, violations = check(view(received_at="2025-03-01T12:00:00.000Z"))
    assert fields_of(violations) == ["received_at"]


def test_record_mode_still_rejects_invalid_records() -> None:
    event, violations = check(
        {"event_type": "view", "user_id": "u", "item_id": "i", "received_at": "x"}, now=None
    )
    assert event is None and fields_of(violations) == ["received_at"]


# --- Kinesis record format ------------------------------------------------------------------------------
def test_encode_record_is_compact_utf8_json_with_received_at() -> None:
    event, _ = check(view(event_id="e-1", category="chaussures été"))
    assert event is not None
    data = encode_record(event, "2025-03-01T12:00:00.000Z")
    assert b" " not in data.replace("chaussures été".encode(), b"")
    assert json.loads(data.decode("utf-8")) == {**event, "received_at": "2025-03-01T12:00:00.000Z"}


@pytest.mark.parametrize("data", [b"\xff\xfe", b"not json", b"[1, 2]", b'"event"', b"", b"[" * 100_000])
def test_decode_record_raises_poison_record_for_undecodable_data(data: bytes) -> None:
    with pytest.raises(PoisonRecord):
        decode_record(data)


@pytest.mark.parametrize(
    ("data", "reason"), [(b"\xff\xfe", "not UTF-8 JSON"), (b"[1, 2]", "JSON list, not an object")]
)
def test_an_undecodable_record_raises_a_value_error_that_says_why(data: bytes, reason: str) -> None:
    # decode_record's documented contract: a caller that handles ValueError handles poison records too
    with pytest.raises(ValueError, match=reason):
        decode_record(data)
