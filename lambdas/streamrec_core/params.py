"""The request parameters of the API, defined once: the rule each value is held to, the typed value it
becomes, and the JSON Schema the OpenAPI document publishes for it. `streamrec_core.routes` says which
route takes which.

Ids follow the event schema's rule for the same field (a user id in a path is a user id in an event), so
`streamrec_core.schema` holds those rules and these only point at them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from streamrec_core import schema as s
from streamrec_core.http import ERROR_BAD_REQUEST, HttpError

PATH: Final = "path"
QUERY: Final = "query"

# Bounds of the GET routes' query parameters (also the most items a response holds).
K_DEFAULT: Final = 10
K_MAX: Final = 100
EXCLUDE_MAX: Final = 100

# At most three ASCII digits ([0-9], not \d, which matches every script's digits) before int().
_K_RE = re.compile(r"[0-9]{1,3}")
K_RULE: Final = f"must be an integer between 1 and {K_MAX} in ASCII digits"
_ITEM_ID_MAX = s.field_spec(s.F_ITEM_ID).max_length
EXCLUDE_RULE: Final = (
    f"must be at most {EXCLUDE_MAX} comma-separated item ids, each matching "
    f"{s.ID_CHARSET}{{1,{_ITEM_ID_MAX}}}"
)


@dataclass(frozen=True, slots=True, eq=False)  # compared and hashed by identity: each is defined once
class Parameter:
    """One path or query parameter.

    `parse` takes what API Gateway hands over (the text, None when absent; with `many`, the list of
    values, comma-separated parts split) and returns the value the logic takes, or raises
    HttpError(bad_request) naming the parameter and its rule.
    """

    name: str
    location: str  # PATH or QUERY
    description: str
    schema: Mapping[str, Any]  # JSON Schema of the value a client sends
    parse: Callable[[Any], Any]
    many: bool = False  # repeatable (?exclude=a&exclude=b) and comma-separated (?exclude=a,b)


def bad_parameter(violation: s.Violation) -> HttpError:
    """The 400 answer to a parameter breaking its rule; `details` carries field and rule."""
    return HttpError(ERROR_BAD_REQUEST, violation.message(), details=[violation.as_dict()])


def _k(raw: str | None) -> int:
    """ASCII decimal digits only (str.isdigit() also takes '²' and other scripts' digits, which int()
    then rejects or reads), at most three of them, between 1 and K_MAX; absent or empty: K_DEFAULT."""
    if raw is None or raw == "":
        return K_DEFAULT
    if _K_RE.fullmatch(raw) is None or not 1 <= int(raw) <= K_MAX:
        raise bad_parameter(s.Violation("k", K_RULE))
    return int(raw)


def _event_id_field(name: str) -> Callable[[str | None], str]:
    """A path id held to the event schema's rule for the same field."""

    def parse(raw: str | None) -> str:
        violation = s.field_violation(name, raw)
        if violation is not None:
            raise bad_parameter(violation)
        assert raw is not None  # field_violation rejects a missing value
        return raw

    return parse


def _experiment_id(raw: str | None) -> str:
    """An experiment id, held to the rule events carry it under (attribution.experiment_id)."""
    violation = s.experiment_id_violation(raw)
    if violation is not None:
        raise bad_parameter(violation)
    assert raw is not None  # experiment_id_violation rejects a missing value
    return raw


def _category(raw: str | None) -> str | None:
    """A category filter, held to the event field's rule; absent or empty: no filter (None)."""
    if raw is None or raw == "":
        return None
    violation = s.field_violation(s.F_CATEGORY, raw)
    if violation is not None:
        raise bad_parameter(violation)
    return raw


def _exclude(values: Sequence[str]) -> list[str]:
    """At most EXCLUDE_MAX item ids (an empty part counts, and breaks the id rule)."""
    if len(values) > EXCLUDE_MAX or any(s.field_violation(s.F_ITEM_ID, v) is not None for v in values):
        raise bad_parameter(s.Violation("exclude", EXCLUDE_RULE))
    return list(values)


def _field_schema(name: str) -> dict[str, Any]:
    """The event field's schema without its description (the parameter has its own)."""
    return {key: value for key, value in s.field_json_schema(name).items() if key != "description"}


USER_ID: Final = Parameter(
    "user_id", PATH, "The user.", _field_schema(s.F_USER_ID), _event_id_field(s.F_USER_ID)
)
ITEM_ID: Final = Parameter(
    "item_id", PATH, "The item.", _field_schema(s.F_ITEM_ID), _event_id_field(s.F_ITEM_ID)
)
EXPERIMENT_ID: Final = Parameter(
    "experiment_id", PATH, "The experiment.", s.id_json_schema(s.VARIANT_MAX), _experiment_id
)
K: Final = Parameter(
    "k",
    QUERY,
    "How many items to return.",
    {"type": "integer", "minimum": 1, "maximum": K_MAX, "default": K_DEFAULT},
    _k,
)
CATEGORY: Final = Parameter(
    "category",
    QUERY,
    "Only items of this category (empty: no filter).",
    {"type": "string", "maxLength": s.field_spec(s.F_CATEGORY).max_length},
    _category,
)
EXCLUDE: Final = Parameter(
    "exclude",
    QUERY,
    "Item ids not to return (repeat the parameter or separate with commas).",
    {"type": "array", "maxItems": EXCLUDE_MAX, "items": s.id_json_schema(_ITEM_ID_MAX)},
    _exclude,
    many=True,
)
