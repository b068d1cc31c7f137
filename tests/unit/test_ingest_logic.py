"""Ingest logic without AWS: request parsing, batch validation with duplicates, the per-index answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from ingest.logic import (
    MAX_VIOLATIONS_PER_EVENT,
    UNKNOWN_FIELD_DIMENSION,
    Batch,
    Limits,
    build_response,
    kinesis_records,
    parse_request,
    rejection_dimensions,
    validate_batch,
)
from streamrec_core.http import HttpError, encode_json
from streamrec_core.schema import decode_record

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LIMITS = Limits(
    max_body_bytes=64 * 1024, max_events=10, max_age=timedelta(days=7), max_future=timedelta(minutes=5)
)
JSON = "application/json"


def ok(i: int, **extra: object) -> dict:
    return {"event_id": f"e-{i}", "event_type": "view", "user_id": f"u-{i}", "item_id": f"i-{i}", **extra}


def bad(i: int) -> dict:
    return {"event_id": f"e-{i}", "event_type": "view", "user_id": "no spaces allowed", "item_id": f"i-{i}"}


def body(obj: object) -> bytes:
    return json.dumps(obj).encode()


def refused(raw: bytes, content_type: str | None = JSON, limits: Limits = LIMITS) -> HttpError:
    with pytest.raises(HttpError) as info:
        parse_request(raw, content_type, limits)
    return info.value


# --- parse_request ----------------------------------------------------------------------------------------
def test_a_single_event_object_is_a_batch_of_one() -> None:
    assert parse_request(body(ok(1)), JSON, LIMITS) == [ok(1)]


def test_an_envelope_yields_its_events_in_order() -> None:
    assert parse_request(body({"events": [ok(1), ok(2)]}), "Application/JSON; charset=utf-8", LIMITS) == [
        ok(1),
        ok(2),
    ]


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
        "application/jsonx",
    ],
)
def test_other_content_types_get_415(content_type: str | None) -> None:
    error = refused(body(ok(1)), content_type)
    assert (error.status, error.code) == (415, "unsupported_media_type")


def test_body_over_the_limit_gets_413_naming_both_sizes() -> None:
    raw = body({"events": [ok(1, page_url="x" * 2000)] * 40})
    error = refused(raw)
    assert (error.status, error.code) == (413, "payload_too_large")
    assert str(len(raw)) in error.message and str(LIMITS.max_body_bytes) in error.message


def test_more_events_than_allowed_gets_413() -> None:
    error = refused(body({"events": [ok(i) for i in range(11)]}))
    assert (error.status, error.code) == (413, "too_many_events")
    assert "11" in error.message and "10" in error.message


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"event_type": ', "malformed_json"),
        (b"", "malformed_json"),
        (b"\xff\xfe{}", "malformed_json"),
        (b'{"price": NaN}', "malformed_json"),
        (b'{"price": -Infinity}', "malformed_json"),
        (b"[" * 5_000 + b"]" * 5_000, "malformed_json"),
        (b'{"n": ' + b"9" * 5000 + b"}", "malformed_json"),
        (b'{"events": []}', "empty_batch"),
        (b'{"events": {}}', "invalid_envelope"),
        (b'{"events": [{}], "source": "web"}', "invalid_envelope"),
        (b"[]", "invalid_envelope"),
        (b'"view"', "invalid_envelope"),
        (b"null", "invalid_envelope"),
    ],
)
def test_unusable_bodies_get_400_with_a_code(raw: bytes, code: str) -> None:
    error = refused(raw)
    assert (error.status, error.code) == (400, code)
    assert error.message


# --- validate_batch ---------------------------------------------------------------------------------------
def test_invalid_events_do_not_cost_their_valid_neighbours() -> None:
    batch = validate_batch([ok(0), bad(1), ok(2)], now=NOW, limits=LIMITS)
    assert [e["event_id"] for e in batch.events] == ["e-0", "e-2"]
    assert batch.indexes == [0, 2]
    assert [(i, [v.field for v in vs]) for i, vs in batch.rejected] == [(1, ["user_id"])]


def test_repeated_event_ids_in_one_request_are_stored_once() -> None:
    batch = validate_batch([ok(0), ok(1), ok(0), ok(0)], now=NOW, limits=LIMITS)
    assert [e["event_id"] for e in batch.events] == ["e-0", "e-1"]
    assert batch.duplicates == [(2, 0), (3, 0)]


def test_one_event_id_from_two_users_is_two_events() -> None:
    # A resend is the same user's event again: the process function dedupes per user, so must the door.
    first, second = ok(0, user_id="alice"), ok(0, user_id="bob")
    batch = validate_batch([first, second, ok(0, user_id="bob")], now=NOW, limits=LIMITS)
    assert [(e["user_id"], e["event_id"]) for e in batch.events] == [("alice", "e-0"), ("bob", "e-0")]
    assert batch.duplicates == [(2, 1)]
    assert [partition_key for _, partition_key in kinesis_records(batch, NOW)] == ["alice", "bob"]


def test_events_without_id_get_distinct_assigned_ids() -> None:
    raw = [{k: v for k, v in ok(i).items() if k != "event_id"} for i in range(3)]
    batch = validate_batch(raw, now=NOW, limits=LIMITS)
    assert len({e["event_id"] for e in batch.events}) == 3


def test_violations_per_event_are_capped() -> None:
    raw = ok(0, **{f"x{i}": i for i in range(50)})
    [(_, violations)] = validate_batch([raw], now=NOW, limits=LIMITS).rejected
    assert len(violations) == MAX_VIOLATIONS_PER_EVENT
    assert violations[-1].field == "event" and "41 more violations" in violations[-1].rule


def test_records_carry_the_event_and_receipt_time_keyed_by_user() -> None:
    batch = validate_batch([ok(0), ok(1)], now=NOW, limits=LIMITS)
    records = kinesis_records(batch, NOW)
    assert [key for _, key in records] == ["u-0", "u-1"]
    assert decode_record(records[0][0]) == {**batch.events[0], "received_at": "2025-03-01T12:00:00.000Z"}


# --- build_response ---------------------------------------------------------------------------------------
def answer(batch: Batch, failures: dict[int, str], request_id: str | None) -> tuple[int, dict, dict]:
    """build_response with its body as the client receives it (JSON)."""
    status, body, headers = build_response(batch, failures, request_id)
    return status, json.loads(encode_json(body)), headers


def test_mixed_batch_answers_200_with_every_index_once() -> None:
    # Given accepted, rejected, duplicate and failed events
    batch = validate_batch([ok(0), bad(1), ok(2), ok(0), ok(4)], now=NOW, limits=LIMITS)
    # When the stream refused the event at position 1 (request index 2)
    status, body, headers = answer(batch, {1: "throttled"}, "req-1")
    # Then
    assert status == 200 and headers == {}
    assert body == {
        "request_id": "req-1",
        "counts": {"received": 5, "accepted": 3, "rejected": 1, "failed": 1, "duplicates": 1},
        "accepted": [
            {"index": 0, "event_id": "e-0"},
            {"index": 3, "event_id": "e-0", "duplicate_of": 0},
            {"index": 4, "event_id": "e-4"},
        ],
        "rejected": [
            {
                "index": 1,
                "errors": [
                    {
                        "field": "user_id",
                        "rule": "must match [A-Za-z0-9._:@-]{1,128}",
                        "message": "user_id: must match [A-Za-z0-9._:@-]{1,128}",
                    }
                ],
            }
        ],
        "failed": [{"index": 2, "event_id": "e-2", "reason": "throttled", "retryable": True}],
    }


def test_duplicates_of_a_failed_event_are_failed_too() -> None:
    batch = validate_batch([ok(0), ok(1), ok(1)], now=NOW, limits=LIMITS)
    _, body, _ = answer(batch, {1: "throttled"}, None)
    assert [f["index"] for f in body["failed"]] == [1, 2]
    assert body["failed"][1]["duplicate_of"] == 1


def test_every_event_rejected_answers_400_validation_failed_with_details() -> None:
    batch = validate_batch([bad(0), bad(1)], now=NOW, limits=LIMITS)
    status, body, _ = answer(batch, {}, "req-2")
    assert status == 400
    assert body["error"]["code"] == "validation_failed"
    assert body["error"]["request_id"] == "req-2"
    assert [(d["index"], d["field"]) for d in body["error"]["details"]] == [(0, "user_id"), (1, "user_id")]
    assert "user_id: must match" in body["error"]["message"]
    assert [r["index"] for r in body["rejected"]] == [0, 1]


def test_stream_storing_nothing_answers_503_with_retry_after() -> None:
    batch = validate_batch([ok(0), bad(1), ok(2)], now=NOW, limits=LIMITS)
    status, body, headers = answer(batch, {0: "throttled", 1: "stream_unavailable"}, "req-3")
    assert status == 503 and headers == {"Retry-After": "1"}
    assert body["error"]["code"] == "stream_unavailable"
    assert [(f["index"], f["event_id"]) for f in body["failed"]] == [(0, "e-0"), (2, "e-2")]
    assert [r["index"] for r in body["rejected"]] == [1]


def test_rejection_dimensions_are_bounded_field_names() -> None:
    raw = [
        bad(0),
        ok(1, properties={"colour": []}),
        ok(2, **{"anything-a-client-invents": 1}),
        ok(3, price=-1),
    ]
    batch = validate_batch(raw, now=NOW, limits=LIMITS)
    assert rejection_dimensions(batch) == {
        "user_id": 1,
        "properties": 1,
        UNKNOWN_FIELD_DIMENSION: 1,
        "price": 1,
    }
