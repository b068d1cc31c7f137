"""Ingest logic: pure Python, no AWS.

parse_request   body + content type -> list of raw events (or an HttpError for the whole request)
validate_batch  raw events -> distinct valid events to store, duplicates and rejections by index
build_response  batch + what the stream refused -> status and the per-index response document

Response of POST /v1/events (also the body of its 400 validation_failed and 503 responses, which add the
shared `error` object):

    {"request_id": "...",
     "counts": {"received": 4, "accepted": 2, "rejected": 1, "failed": 1, "duplicates": 1},
     "accepted": [{"index": 0, "event_id": "e1"}, {"index": 3, "event_id": "e1", "duplicate_of": 0}],
     "rejected": [{"index": 1, "errors": [{"field": "user_id", "rule": "...", "message": "user_id: ..."}]}],
     "failed":   [{"index": 2, "event_id": "e2", "reason": "throttled", "retryable": true}]}

Every index of the request appears in exactly one of accepted, rejected and failed. Status: 200 when at
least one event was stored; 400 `validation_failed` when every event was rejected; 503
`stream_unavailable` (with Retry-After) when valid events existed but the stream stored none of them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec
from streamrec_core import responses
from streamrec_core.http import (
    ERROR_EMPTY_BATCH,
    ERROR_INVALID_ENVELOPE,
    ERROR_MALFORMED_JSON,
    ERROR_PAYLOAD_TOO_LARGE,
    ERROR_STREAM_UNAVAILABLE,
    ERROR_TOO_MANY_EVENTS,
    ERROR_UNSUPPORTED_MEDIA_TYPE,
    ERROR_VALIDATION_FAILED,
    RETRY_AFTER_SECONDS,
    STATUS_BY_CODE,
    HttpError,
    error_body,
    media_type_is_json,
)
from streamrec_core.responses import Accepted, Counts, Failed, IngestRefusal, IngestResult, Rejected
from streamrec_core.schema import (
    F_EVENT_ID,
    F_USER_ID,
    FIELD_NAMES,
    RULE_UNKNOWN_FIELD,
    WHOLE_EVENT,
    Violation,
    encode_record,
    format_timestamp,
    new_event_id,
    validate_event,
)

ENVELOPE_EVENTS = "events"
_JSON_TYPE_NAMES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}
# A rejected event reports at most this many violations (the response must stay far below Lambda's 6 MB).
MAX_VIOLATIONS_PER_EVENT = 10
# Metric dimension for violations of fields the schema does not know (keeps the dimension bounded).
UNKNOWN_FIELD_DIMENSION = "unknown_field"


@dataclass(frozen=True, slots=True)
class Limits:
    max_body_bytes: int
    max_events: int
    max_age: timedelta
    max_future: timedelta


@dataclass(slots=True)
class Batch:
    """One request's events after validation, by index in the request."""

    size: int
    events: list[dict[str, Any]] = field(default_factory=list)  # distinct valid events, first-seen order
    indexes: list[int] = field(default_factory=list)  # request index of each of `events`
    duplicates: list[tuple[int, int]] = field(default_factory=list)  # (index, position in `events`)
    rejected: list[tuple[int, list[Violation]]] = field(default_factory=list)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_request(body: bytes, content_type: str | None, limits: Limits) -> list[Any]:
    """The raw events of a request: one event object, or {"events": [...]} with 1..max_events."""
    if not media_type_is_json(content_type):
        raise HttpError(ERROR_UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/json (UTF-8)")
    if len(body) > limits.max_body_bytes:
        raise HttpError(
            ERROR_PAYLOAD_TOO_LARGE, f"body is {len(body)} bytes; the limit is {limits.max_body_bytes} bytes"
        )
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise HttpError(ERROR_MALFORMED_JSON, "body is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise HttpError(
            ERROR_MALFORMED_JSON, f"body is not valid JSON: {exc.msg} at char {exc.pos}"
        ) from None
    except (ValueError, RecursionError) as exc:
        # NaN/Infinity, integers beyond Python's digit limit, nesting deeper than the parser allows.
        reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise HttpError(ERROR_MALFORMED_JSON, f"body is not valid JSON: {reason[:120]}") from None
    if type(document) is not dict:
        kind = _JSON_TYPE_NAMES.get(type(document), "value")
        raise HttpError(
            ERROR_INVALID_ENVELOPE, f'body must be one event object or {{"events": [...]}}, not {kind}'
        )
    if ENVELOPE_EVENTS not in document:
        return [document]
    extra = sorted(key for key in document if key != ENVELOPE_EVENTS)
    if extra:
        shown = ", ".join(repr(key[:64]) for key in extra[:5])
        raise HttpError(ERROR_INVALID_ENVELOPE, f'the envelope allows only "events"; unknown keys: {shown}')
    events = document[ENVELOPE_EVENTS]
    if type(events) is not list:
        raise HttpError(ERROR_INVALID_ENVELOPE, '"events" must be an array of event objects')
    if not events:
        raise HttpError(ERROR_EMPTY_BATCH, '"events" must hold at least one event')
    if len(events) > limits.max_events:
        raise HttpError(
            ERROR_TOO_MANY_EVENTS, f"{len(events)} events in one request; the limit is {limits.max_events}"
        )
    return events


def validate_batch(
    raw_events: Sequence[Any],
    *,
    now: datetime,
    limits: Limits,
    assign_id: Callable[[], str] = new_event_id,
) -> Batch:
    """Validate every event; keep the first of each (user_id, event_id) and note later ones as duplicates.

    An event id identifies a resend of one user's event (the process function dedupes per user too), so
    the same id sent for two users is two events.
    """
    batch = Batch(size=len(raw_events))
    first_position: dict[tuple[str, str], int] = {}
    for index, raw in enumerate(raw_events):
        event, violations = validate_event(
            raw, now=now, max_age=limits.max_age, max_future=limits.max_future, assign_id=assign_id
        )
        if event is None:
            batch.rejected.append((index, _capped(violations)))
            continue
        identity = (event[F_USER_ID], event[F_EVENT_ID])
        position = first_position.get(identity)
        if position is not None:
            batch.duplicates.append((index, position))
            continue
        first_position[identity] = len(batch.events)
        batch.events.append(event)
        batch.indexes.append(index)
    return batch


def _capped(violations: list[Violation]) -> list[Violation]:
    if len(violations) <= MAX_VIOLATIONS_PER_EVENT:
        return violations
    hidden = len(violations) - (MAX_VIOLATIONS_PER_EVENT - 1)
    return violations[: MAX_VIOLATIONS_PER_EVENT - 1] + [
        Violation(WHOLE_EVENT, f"{hidden} more violations not shown")
    ]


def kinesis_records(batch: Batch, received_at: datetime) -> list[tuple[bytes, str]]:
    """(data, partition key) per distinct valid event: one user's events stay in order on one shard."""
    stamp = format_timestamp(received_at)
    return [(encode_record(event, stamp), event[F_USER_ID]) for event in batch.events]


def build_response(
    batch: Batch, failures: Mapping[int, str], request_id: str | None
) -> tuple[int, IngestResult, dict[str, str]]:
    """Status, body and extra headers for a processed request.

    `failures` maps positions in `batch.events` to the reason the stream still refused them.
    """
    accepted: list[Accepted] = []
    failed: list[Failed] = []
    # (index, event_id, failure reason or None, index of the first of a duplicate or UNSET)
    outcomes: list[tuple[int, str, str | None, int | msgspec.UnsetType]] = [
        (index, batch.events[position][F_EVENT_ID], failures.get(position), msgspec.UNSET)
        for position, index in enumerate(batch.indexes)
    ]
    outcomes += [
        (index, batch.events[position][F_EVENT_ID], failures.get(position), batch.indexes[position])
        for index, position in batch.duplicates
    ]
    for index, event_id, reason, duplicate_of in sorted(outcomes, key=lambda outcome: outcome[0]):
        if reason is None:
            accepted.append(Accepted(index, event_id, duplicate_of))
        else:
            failed.append(Failed(index, event_id, duplicate_of, reason=reason, retryable=True))
    rejected = [
        Rejected(index, [responses.Violation.of(v) for v in violations])
        for index, violations in batch.rejected
    ]
    counts = Counts(batch.size, len(accepted), len(rejected), len(failed), len(batch.duplicates))
    if not batch.events:
        details: list[dict[str, Any]] = [
            {"index": index, **v.as_dict()} for index, violations in batch.rejected for v in violations
        ]
        noun = "the event was" if batch.size == 1 else f"all {batch.size} events were"
        message = f"{noun} rejected; " + "; ".join(d["message"] for d in details[:3])
        error = error_body(ERROR_VALIDATION_FAILED, message, request_id=request_id, details=details).error
        refusal = IngestRefusal(request_id, counts, accepted, rejected, failed, error)
        return STATUS_BY_CODE[ERROR_VALIDATION_FAILED], refusal, {}
    if not accepted:
        error = error_body(
            ERROR_STREAM_UNAVAILABLE,
            "the event stream stored none of the valid events; resend them after Retry-After seconds",
            request_id=request_id,
        ).error
        refusal = IngestRefusal(request_id, counts, accepted, rejected, failed, error)
        return STATUS_BY_CODE[ERROR_STREAM_UNAVAILABLE], refusal, {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return 200, IngestResult(request_id, counts, accepted, rejected, failed), {}


def rejection_dimensions(batch: Batch) -> Counter[str]:
    """Rejected events per field that broke a rule, with a bounded set of dimension values."""
    counts: Counter[str] = Counter()
    for _, violations in batch.rejected:
        counts.update({_dimension(v) for v in violations})
    return counts


def _dimension(violation: Violation) -> str:
    if violation.rule == RULE_UNKNOWN_FIELD:
        return UNKNOWN_FIELD_DIMENSION
    top = violation.field.partition(".")[0]  # properties.color -> properties
    return top if top in FIELD_NAMES or top == WHOLE_EVENT else UNKNOWN_FIELD_DIMENSION
