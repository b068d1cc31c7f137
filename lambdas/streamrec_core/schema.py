"""Event schema version 1: the one place the schema lives.

`FIELDS` is the field table. `validate_event` (the fast path run by ingest at the door and by process on
every record) and `json_schema` (published as docs/event.schema.json and inside the OpenAPI document) are
both derived from it, so the rules and the published schema cannot drift apart.

Bounds chosen here (DESIGN leaves them to us):

| field | rule |
|---|---|
| event_id | 1-64 chars of `[A-Za-z0-9._:@-]` (a UUID, ULID or hex id fits) |
| user_id, item_id | 1-128 chars of `[A-Za-z0-9._:@-]` |
| session_id, category | 1-128 chars |
| element_id | 1-256 chars |
| query | 0-512 chars |
| page_url, referrer | 0-2048 chars (a browser's `document.referrer` is "" when there is none) |
| price | number, 0 <= price <= 1e12 (DynamoDB keeps it exactly) |
| quantity | number, 0 <= quantity <= 1e9 |
| attribution | `{request_id, variant, position?, experiment_id?}`: id charset, request_id <= 128 chars, |
|  | variant and experiment_id <= 64 chars; position an integer 0-1000 |
| properties | <= 20 keys of 1-64 chars; values: string <= 256 chars, number in [-1e15, 1e15], bool, null |
| timestamp | RFC 3339 date-time with a zone (`Z` or `+hh:mm`); normalized to UTC `YYYY-MM-DDTHH:MM:SS.mmmZ` |
| whole event | <= constants.MAX_EVENT_BYTES as compact UTF-8 JSON after normalization |

Booleans are never numbers, NaN and infinities are never numbers, and free-text strings must be valid
Unicode (no lone surrogates), so every accepted event can be encoded as UTF-8 JSON.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from streamrec_core.constants import (
    EVENT_TYPES,
    ITEM_REQUIRED_TYPES,
    MAX_EVENT_BYTES,
    RECORD_RECEIVED_AT,
    SCHEMA_VERSION,
)

# --- Field names (the schema's own vocabulary; import these rather than spelling them) --------------
F_EVENT_ID: Final = "event_id"
F_EVENT_TYPE: Final = "event_type"
F_USER_ID: Final = "user_id"
F_ITEM_ID: Final = "item_id"
F_TIMESTAMP: Final = "timestamp"
F_SESSION_ID: Final = "session_id"
F_CATEGORY: Final = "category"
F_PAGE_URL: Final = "page_url"
F_ELEMENT_ID: Final = "element_id"
F_REFERRER: Final = "referrer"
F_QUERY: Final = "query"
F_PRICE: Final = "price"
F_QUANTITY: Final = "quantity"
F_ATTRIBUTION: Final = "attribution"
F_PROPERTIES: Final = "properties"
F_SCHEMA_VERSION: Final = "schema_version"
A_REQUEST_ID: Final = "request_id"
A_VARIANT: Final = "variant"
A_POSITION: Final = "position"
A_EXPERIMENT_ID: Final = "experiment_id"
# Violations about the event as a whole (not a JSON object, too large) name this pseudo-field.
WHOLE_EVENT: Final = "event"

ID_CHARSET: Final = "[A-Za-z0-9._:@-]"
EVENT_ID_MAX = 64
USER_ID_MAX = 128
ITEM_ID_MAX = 128
REQUEST_ID_MAX = 128
VARIANT_MAX = 64
POSITION_MAX = 1000
PRICE_MAX = 1e12
QUANTITY_MAX = 1e9
PROPERTIES_MAX_KEYS = 20
PROPERTY_KEY_MAX = 64
PROPERTY_VALUE_MAX = 256
PROPERTY_NUMBER_MAX = 1e15  # integers stay exact in JavaScript (2**53) and DynamoDB
# A violation echoes at most this much of a client-chosen key (unknown field, property name).
_ECHO_MAX = 64

# --- Kinds of field -----------------------------------------------------------------------------------
_ID, _ENUM, _TEXT, _NUMBER, _TIMESTAMP, _ATTRIBUTION, _PROPERTIES, _VERSION = range(8)


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: `field` names the field within one event (`properties.color` when nested)."""

    field: str
    rule: str

    def message(self) -> str:
        return f"{self.field}: {self.rule}"

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": f"{self.field}: {self.rule}"}


class PoisonRecord(ValueError):
    """A Kinesis record that can never be decoded into an event object."""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    kind: int
    description: str
    required: bool = False
    min_length: int = 0
    max_length: int = 0
    maximum: float = 0.0
    regex: re.Pattern[str] | None = None
    rule: str = ""


def _id_regex(max_length: int) -> re.Pattern[str]:
    return re.compile(f"{ID_CHARSET}{{1,{max_length}}}")


def _id_rule(max_length: int) -> str:
    return f"must match {ID_CHARSET}{{1,{max_length}}}"


def _text_rule(min_length: int, max_length: int) -> str:
    if min_length == 0:
        return f"must be a string of at most {max_length} characters"
    return f"must be a string of {min_length}-{max_length} characters"


def _number_rule(maximum: float) -> str:
    return f"must be a finite number between 0 and {maximum:.0f}"


def _id_field(name: str, max_length: int, description: str, *, required: bool = False) -> FieldSpec:
    return FieldSpec(
        name,
        _ID,
        description,
        required=required,
        min_length=1,
        max_length=max_length,
        regex=_id_regex(max_length),
        rule=_id_rule(max_length),
    )


def _text_field(name: str, min_length: int, max_length: int, description: str) -> FieldSpec:
    return FieldSpec(
        name,
        _TEXT,
        description,
        min_length=min_length,
        max_length=max_length,
        rule=_text_rule(min_length, max_length),
    )


def _number_field(name: str, maximum: float, description: str) -> FieldSpec:
    return FieldSpec(name, _NUMBER, description, maximum=maximum, rule=_number_rule(maximum))


_ITEM_REQUIRED_ORDERED = tuple(t for t in EVENT_TYPES if t in ITEM_REQUIRED_TYPES)

FIELDS: Final[tuple[FieldSpec, ...]] = (
    _id_field(
        F_EVENT_ID,
        EVENT_ID_MAX,
        "Client-chosen id (a UUID is advised) so that resending the same event is counted once; "
        "assigned by ingest when absent and returned in the response.",
    ),
    FieldSpec(
        F_EVENT_TYPE,
        _ENUM,
        "What the user did.",
        required=True,
        rule="must be one of " + ", ".join(EVENT_TYPES),
    ),
    _id_field(F_USER_ID, USER_ID_MAX, "The user (also the Kinesis partition key).", required=True),
    _id_field(
        F_ITEM_ID,
        ITEM_ID_MAX,
        "The item; required for event types " + ", ".join(_ITEM_REQUIRED_ORDERED) + ".",
    ),
    FieldSpec(
        F_TIMESTAMP,
        _TIMESTAMP,
        "Event time, RFC 3339 with a zone; defaults to receipt time; normalized to UTC with milliseconds.",
        rule="must be an RFC 3339 date-time with a time zone, e.g. 2024-05-01T12:00:00.000Z",
    ),
    _text_field(F_SESSION_ID, 1, 128, "Client session id."),
    _text_field(F_CATEGORY, 1, 128, "Item category."),
    _text_field(F_PAGE_URL, 0, 2048, "Page the event happened on."),
    _text_field(F_ELEMENT_ID, 1, 256, "UI element that was clicked or shown."),
    _text_field(F_REFERRER, 0, 2048, "Referrer of the page."),
    _text_field(F_QUERY, 0, 512, "Search query (event_type search)."),
    _number_field(F_PRICE, PRICE_MAX, "Unit price."),
    _number_field(F_QUANTITY, QUANTITY_MAX, "Quantity."),
    FieldSpec(
        F_ATTRIBUTION,
        _ATTRIBUTION,
        "Ties a click or purchase to the recommendation response that showed the item.",
        rule="must be an object {request_id, variant, position?, experiment_id?}",
    ),
    FieldSpec(
        F_PROPERTIES,
        _PROPERTIES,
        f"Flat map of at most {PROPERTIES_MAX_KEYS} scalar values.",
        rule=f"must be an object of at most {PROPERTIES_MAX_KEYS} scalar values",
    ),
    FieldSpec(
        F_SCHEMA_VERSION,
        _VERSION,
        f"Schema version; default {SCHEMA_VERSION}.",
        rule=f"must be the integer {SCHEMA_VERSION}",
    ),
)
_SPECS: Final[dict[str, FieldSpec]] = {f.name: f for f in FIELDS}
FIELD_NAMES: Final[frozenset[str]] = frozenset(_SPECS)
_EVENT_TYPE_SET: Final = frozenset(EVENT_TYPES)

# Attribution sub-fields.
_REQUEST_ID_RE = _id_regex(REQUEST_ID_MAX)
_VARIANT_RE = _id_regex(VARIANT_MAX)
_ATTRIBUTION_RULES: Final = {
    A_REQUEST_ID: _id_rule(REQUEST_ID_MAX),
    A_VARIANT: _id_rule(VARIANT_MAX),
    A_POSITION: f"must be an integer between 0 and {POSITION_MAX}",
    A_EXPERIMENT_ID: _id_rule(VARIANT_MAX),
}
_ATTRIBUTION_REQUIRED: Final = (A_REQUEST_ID, A_VARIANT)

# Timestamps: RFC 3339 shape first (fromisoformat alone also accepts ISO 8601 forms RFC 3339 does not).
_RFC3339_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(?:\.[0-9]{1,9})?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)

_RULE_REQUIRED: Final = "is required"
_RULE_UNKNOWN: Final = "unknown field"
RULE_UNKNOWN_FIELD: Final = _RULE_UNKNOWN
_RULE_ITEM_REQUIRED: Final = "is required for event_type " + ", ".join(_ITEM_REQUIRED_ORDERED)
_RULE_NOT_OBJECT: Final = "must be a JSON object"
_RULE_TOO_LARGE: Final = f"serialized event must be at most {MAX_EVENT_BYTES} bytes"
_RULE_PROPERTY_VALUE: Final = (
    f"must be a string of at most {PROPERTY_VALUE_MAX} characters, a number between -1e15 and 1e15, "
    "a boolean or null"
)
_RULE_PROPERTY_KEYS: Final = f"keys must be 1-{PROPERTY_KEY_MAX} characters"
_RULE_PROPERTY_COUNT: Final = f"must have at most {PROPERTIES_MAX_KEYS} keys"
_RULE_UNICODE: Final = "must be valid Unicode (no lone surrogates)"

# Worst-case serialized bytes per character of a string (a control character becomes \u00XX) and per
# key/value pair apart from string contents (quotes, colon, comma, key name, a number's digits). An event
# whose strings hold at most _CHARS_ALWAYS_SMALL characters cannot exceed MAX_EVENT_BYTES.
_BYTES_PER_CHAR = 6
_BYTES_PER_PAIR = 48
_MAX_PAIRS = len(FIELDS) + 1 + PROPERTIES_MAX_KEYS + len(_ATTRIBUTION_RULES)
_CHARS_ALWAYS_SMALL = (MAX_EVENT_BYTES - _MAX_PAIRS * _BYTES_PER_PAIR) // _BYTES_PER_CHAR


def new_event_id() -> str:
    """The id ingest assigns to an event sent without one."""
    return uuid.uuid4().hex


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds and 'Z', the one normalized form of every timestamp we store."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def parse_timestamp(value: str) -> datetime:
    """Parse a normalized (or any RFC 3339) timestamp to an aware datetime; ValueError when invalid."""
    moment = _parse_rfc3339(value)
    if moment is None:
        raise ValueError(f"not an RFC 3339 date-time with a zone: {value[:40]!r}")
    return moment


def _parse_rfc3339(value: object) -> datetime | None:
    if type(value) is not str or _RFC3339_RE.fullmatch(value) is None:
        return None
    if value[-1] == "z":
        value = value[:-1] + "Z"
    try:
        moment = datetime.fromisoformat(value)
        # Years near 1 or 9999 with an offset cannot be expressed in UTC.
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _looks_canonical(value: object) -> bool:
    """True for `YYYY-MM-DDTHH:MM:SS.mmmZ` shapes; cheaper than a regex on the hot path.

    Only the separators are checked: datetime.fromisoformat then rejects any non-digit in between.
    """
    return (
        type(value) is str
        and len(value) == 24
        and value[23] == "Z"
        and value[19] == "."
        and value[16] == ":"
        and value[13] == ":"
        and value[10] == "T"
        and value[7] == "-"
        and value[4] == "-"
        and value.isascii()
    )


def _is_unicode(value: str) -> bool:
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _echo(key: object) -> str:
    text = key if type(key) is str else repr(key)
    return text if len(text) <= _ECHO_MAX else text[:_ECHO_MAX] + "..."


def field_spec(name: str) -> FieldSpec:
    """The rule of one field (the process function builds its record decoder from these)."""
    return _SPECS[name]


def attribution_id_pattern(name: str) -> str:
    """The regular expression an attribution id (request_id, variant, experiment_id) must match."""
    return (_REQUEST_ID_RE if name == A_REQUEST_ID else _VARIANT_RE).pattern


def field_violation(name: str, value: object) -> Violation | None:
    """The violation of one top-level id or text field's rule by `value`, or None when it is valid.

    For other readers of the same facts (serve's path and query parameters name items, users and
    categories exactly as events do), so a rule is defined once.
    """
    spec = _SPECS[name]
    if spec.kind == _ID:
        ok = type(value) is str and spec.regex is not None and spec.regex.fullmatch(value) is not None
    elif spec.kind == _TEXT:
        ok = type(value) is str and spec.min_length <= len(value) <= spec.max_length and _is_unicode(value)
    else:
        raise ValueError(f"{name} is not an id or text field")
    return None if ok else Violation(name, spec.rule)


def experiment_id_violation(value: object) -> Violation | None:
    """The violation of the attribution's experiment id rule by `value`, or None when it is valid."""
    if type(value) is str and _VARIANT_RE.fullmatch(value) is not None:
        return None
    return Violation(A_EXPERIMENT_ID, _ATTRIBUTION_RULES[A_EXPERIMENT_ID])


def _check_attribution(value: object, bad: list[Violation]) -> tuple[dict[str, Any] | None, int]:
    """Return (normalized attribution, chars) or (None, 0) after appending violations to `bad`."""
    if type(value) is not dict:
        bad.append(Violation(F_ATTRIBUTION, _SPECS[F_ATTRIBUTION].rule))
        return None, 0
    before = len(bad)
    chars = 0
    for key, item in value.items():
        if key == A_REQUEST_ID:
            ok = type(item) is str and _REQUEST_ID_RE.fullmatch(item) is not None
        elif key == A_VARIANT or key == A_EXPERIMENT_ID:
            ok = type(item) is str and _VARIANT_RE.fullmatch(item) is not None
        elif key == A_POSITION:
            ok = type(item) is int and 0 <= item <= POSITION_MAX
        else:
            bad.append(Violation(f"{F_ATTRIBUTION}.{_echo(key)}", _RULE_UNKNOWN))
            continue
        if ok:
            if type(item) is str:
                chars += len(item)
        else:
            bad.append(Violation(f"{F_ATTRIBUTION}.{key}", _ATTRIBUTION_RULES[key]))
    for key in _ATTRIBUTION_REQUIRED:
        if key not in value:
            bad.append(Violation(f"{F_ATTRIBUTION}.{key}", _RULE_REQUIRED))
    if len(bad) != before:
        return None, 0
    return dict(value), chars


def _check_properties(value: object, bad: list[Violation]) -> tuple[dict[str, Any] | None, int]:
    if type(value) is not dict:
        bad.append(Violation(F_PROPERTIES, _SPECS[F_PROPERTIES].rule))
        return None, 0
    if len(value) > PROPERTIES_MAX_KEYS:
        bad.append(Violation(F_PROPERTIES, _RULE_PROPERTY_COUNT))
        return None, 0
    before = len(bad)
    chars = 0
    for key, item in value.items():
        if type(key) is not str or not 1 <= len(key) <= PROPERTY_KEY_MAX:
            bad.append(Violation(F_PROPERTIES, _RULE_PROPERTY_KEYS))
            continue
        if not _is_unicode(key):
            bad.append(Violation(F_PROPERTIES, _RULE_UNICODE))
            continue
        chars += len(key)
        kind = type(item)
        if kind is str:
            if len(item) > PROPERTY_VALUE_MAX or not _is_unicode(item):
                bad.append(Violation(f"{F_PROPERTIES}.{key}", _RULE_PROPERTY_VALUE))
            else:
                chars += len(item)
        elif kind is int or kind is float:
            # NaN compares false with everything and infinities exceed any finite bound.
            if not -PROPERTY_NUMBER_MAX <= item <= PROPERTY_NUMBER_MAX:
                bad.append(Violation(f"{F_PROPERTIES}.{key}", _RULE_PROPERTY_VALUE))
        elif not (kind is bool or item is None):
            bad.append(Violation(f"{F_PROPERTIES}.{key}", _RULE_PROPERTY_VALUE))
    if len(bad) != before:
        return None, 0
    return dict(value), chars


def validate_event(
    raw: object,
    *,
    now: datetime | None,
    max_age: timedelta,
    max_future: timedelta,
    assign_id: Callable[[], str] = new_event_id,
) -> tuple[dict[str, Any] | None, list[Violation]]:
    """Validate one event against schema v1.

    Return `(normalized_event, [])` or `(None, violations)`. The normalized event holds every given field
    (validated), `schema_version` = 1, an `event_id` (assigned with `assign_id` when absent) and a
    `timestamp` normalized to RFC 3339 UTC with 'Z' and milliseconds (receipt time `now` when absent).
    Unknown fields are violations.

    `now` is the receipt time (timezone-aware). `now=None` is record mode, for the process function
    re-validating a record already accepted at the door: the age/future window is not checked, and the
    `received_at` attribute that `encode_record` adds is allowed (validated and kept).
    """
    if type(raw) is not dict:
        return None, [Violation(WHOLE_EVENT, _RULE_NOT_OBJECT)]
    out: dict[str, Any] = {}
    bad: list[Violation] = []
    chars = 0
    moment: datetime | None = None
    specs = _SPECS
    for key, value in raw.items():
        spec = specs.get(key)
        if spec is None:
            if key == RECORD_RECEIVED_AT and now is None and _looks_canonical(value):
                out[key] = value
                chars += len(value)
            else:
                bad.append(Violation(_echo(key), _RULE_UNKNOWN))
            continue
        kind = spec.kind
        if kind == _ID:
            if type(value) is str and spec.regex is not None and spec.regex.fullmatch(value) is not None:
                out[key] = value
                chars += len(value)
                continue
        elif kind == _ENUM:
            if type(value) is str and value in _EVENT_TYPE_SET:
                out[key] = value
                continue
        elif kind == _TEXT:
            if type(value) is str and spec.min_length <= len(value) <= spec.max_length and _is_unicode(value):
                out[key] = value
                chars += len(value)
                continue
        elif kind == _NUMBER:
            kind_of = type(value)
            if (kind_of is int or kind_of is float) and 0 <= value <= spec.maximum:
                out[key] = value
                continue
        elif kind == _TIMESTAMP:
            if _looks_canonical(value):
                try:
                    moment = datetime.fromisoformat(value)
                    out[key] = value
                    continue
                except ValueError:
                    pass
            else:
                moment = _parse_rfc3339(value)
                if moment is not None:
                    out[key] = format_timestamp(moment)
                    continue
        elif kind == _ATTRIBUTION:
            nested, nested_chars = _check_attribution(value, bad)
            if nested is not None:
                out[key] = nested
                chars += nested_chars
            continue
        elif kind == _PROPERTIES:
            nested, nested_chars = _check_properties(value, bad)
            if nested is not None:
                out[key] = nested
                chars += nested_chars
            continue
        else:  # _VERSION
            if type(value) is int and value == SCHEMA_VERSION:
                continue
            if type(value) is int:
                bad.append(Violation(key, f"unsupported schema_version {value}; supported: {SCHEMA_VERSION}"))
                continue
        bad.append(Violation(key, spec.rule))

    if F_EVENT_TYPE not in raw:
        bad.append(Violation(F_EVENT_TYPE, _RULE_REQUIRED))
    if F_USER_ID not in raw:
        bad.append(Violation(F_USER_ID, _RULE_REQUIRED))
    if F_ITEM_ID not in raw and out.get(F_EVENT_TYPE) in ITEM_REQUIRED_TYPES:
        bad.append(Violation(F_ITEM_ID, _RULE_ITEM_REQUIRED))

    if now is not None:
        if moment is None:
            if F_TIMESTAMP not in raw:
                out[F_TIMESTAMP] = format_timestamp(now)
        elif moment < now - max_age:
            bad.append(
                Violation(F_TIMESTAMP, f"must not be older than {max_age.total_seconds():.0f} seconds")
            )
        elif moment > now + max_future:
            bad.append(
                Violation(
                    F_TIMESTAMP, f"must not be more than {max_future.total_seconds():.0f} seconds ahead"
                )
            )
    elif F_TIMESTAMP not in raw:
        out[F_TIMESTAMP] = format_timestamp(datetime.now(UTC))

    if bad:
        return None, bad

    if F_EVENT_ID not in out:
        event_id = assign_id()
        out[F_EVENT_ID] = event_id
        chars += len(event_id)
    out[F_SCHEMA_VERSION] = SCHEMA_VERSION

    # Serializing costs more than validating, so measure only when the worst case could exceed the
    # limit: each character escapes to at most 6 bytes, each key/value pair adds at most 48 more.
    # The limit is on the event as ingest accepted it: in record mode the `received_at` that ingest
    # added is not part of it (else events within a few bytes of the limit pass the door and are then
    # dead-lettered by the process function).
    if chars > _CHARS_ALWAYS_SMALL and _event_bytes(out) > MAX_EVENT_BYTES:
        return None, [Violation(WHOLE_EVENT, _RULE_TOO_LARGE)]
    return out, bad


def _event_bytes(event: dict[str, Any]) -> int:
    """Serialized size of an event as ingest measures it (without the record's `received_at`)."""
    if RECORD_RECEIVED_AT in event:
        event = {key: value for key, value in event.items() if key != RECORD_RECEIVED_AT}
    return len(_dumps(event))


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def encode_record(event: dict[str, Any], received_at: str) -> bytes:
    """Kinesis record data: the normalized event plus `received_at`, as compact UTF-8 JSON."""
    record = dict(event)
    record[RECORD_RECEIVED_AT] = received_at
    return _dumps(record)


def decode_record(data: bytes) -> dict[str, Any]:
    """Inverse of `encode_record`: the event dict including `received_at`.

    Raises PoisonRecord (a ValueError) when the data is not UTF-8 JSON holding an object; such a record
    can never succeed and belongs in the dead-letter queue. Pass the result to `validate_event` with
    `now=None` (record mode), which accepts the `received_at` attribute.
    """
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PoisonRecord(f"record is not UTF-8 JSON: {type(exc).__name__}") from None
    if type(obj) is not dict:
        raise PoisonRecord(f"record is JSON {type(obj).__name__}, not an object")
    return obj


# --- JSON Schema ----------------------------------------------------------------------------------------
JSON_SCHEMA_ID: Final = "https://streamrec.dev/schemas/event-v1.json"


def id_json_schema(max_length: int) -> dict[str, Any]:
    """JSON Schema of an id of 1 to `max_length` characters of ID_CHARSET (the rule `_id_regex` checks);
    for every document that publishes an id: event fields, path and query parameters, configuration."""
    return {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": f"^{ID_CHARSET}+$"}


def field_json_schema(name: str) -> dict[str, Any]:
    """JSON Schema of one top-level event field (other documents describing the same value reuse it)."""
    return _field_schema(_SPECS[name])


def _field_schema(spec: FieldSpec) -> dict[str, Any]:
    kind = spec.kind
    schema: dict[str, Any]
    if kind == _ID:
        schema = id_json_schema(spec.max_length)
    elif kind == _ENUM:
        schema = {"type": "string", "enum": list(EVENT_TYPES)}
    elif kind == _TEXT:
        schema = {"type": "string", "minLength": spec.min_length, "maxLength": spec.max_length}
    elif kind == _NUMBER:
        schema = {"type": "number", "minimum": 0, "maximum": int(spec.maximum)}
    elif kind == _TIMESTAMP:
        schema = {
            "type": "string",
            "format": "date-time",
            "pattern": "^" + _RFC3339_RE.pattern + "$",
        }
    elif kind == _ATTRIBUTION:
        schema = {
            "type": "object",
            "properties": {
                A_REQUEST_ID: _field_schema(
                    FieldSpec(A_REQUEST_ID, _ID, "", min_length=1, max_length=REQUEST_ID_MAX)
                )
                | {"description": "request_id of the recommendation response that showed the item."},
                A_VARIANT: _field_schema(FieldSpec(A_VARIANT, _ID, "", min_length=1, max_length=VARIANT_MAX))
                | {"description": "A/B variant of that response."},
                A_POSITION: {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": POSITION_MAX,
                    "description": "Position of the item in that response.",
                },
                A_EXPERIMENT_ID: _field_schema(
                    FieldSpec(A_EXPERIMENT_ID, _ID, "", min_length=1, max_length=VARIANT_MAX)
                )
                | {"description": "Experiment of that variant."},
            },
            "required": list(_ATTRIBUTION_REQUIRED),
            "additionalProperties": False,
        }
    elif kind == _PROPERTIES:
        schema = {
            "type": "object",
            "maxProperties": PROPERTIES_MAX_KEYS,
            "propertyNames": {"minLength": 1, "maxLength": PROPERTY_KEY_MAX},
            "additionalProperties": {
                "anyOf": [
                    {"type": "string", "maxLength": PROPERTY_VALUE_MAX},
                    {
                        "type": "number",
                        "minimum": -int(PROPERTY_NUMBER_MAX),
                        "maximum": int(PROPERTY_NUMBER_MAX),
                    },
                    {"type": "boolean"},
                    {"type": "null"},
                ]
            },
        }
    else:
        schema = {"type": "integer", "const": SCHEMA_VERSION, "default": SCHEMA_VERSION}
    if spec.description:
        schema["description"] = spec.description
    return schema


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of one event, generated from `FIELDS`."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": JSON_SCHEMA_ID,
        "title": f"streamrec event, schema version {SCHEMA_VERSION}",
        "description": (
            f"One user interaction. Unknown fields are rejected. Serialized as compact UTF-8 JSON after "
            f"normalization, an event is at most {MAX_EVENT_BYTES} bytes. Timestamps are rejected when "
            "older than the configured maximum age or too far ahead of receipt time."
        ),
        "type": "object",
        "properties": {spec.name: _field_schema(spec) for spec in FIELDS},
        "required": [spec.name for spec in FIELDS if spec.required],
        "additionalProperties": False,
        "allOf": [
            {
                "if": {
                    "properties": {F_EVENT_TYPE: {"enum": list(_ITEM_REQUIRED_ORDERED)}},
                    "required": [F_EVENT_TYPE],
                },
                "then": {"required": [F_ITEM_ID]},
            }
        ],
    }
