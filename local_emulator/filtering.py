"""Lambda event filtering (``FilterCriteria``) for Kinesis event source mappings.

Kinesis mappings filter on the ``data`` key only: a record whose data is JSON is kept when it matches
at least one pattern (patterns are ORed); a record matching none, or whose data is not JSON while a
pattern looks at ``data``, is discarded without invoking the function (and checkpointed).

Supported filter rule syntax (AWS "Filter rule syntax"): exact values (strings, numbers, null) in a
list, ``prefix``, ``suffix``, ``equals-ignore-case``, ``anything-but`` (value, list, or ``{"prefix"}``),
``numeric`` (``=``, ``<``, ``<=``, ``>``, ``>=`` pairs), ``exists``, nested objects, ``$or``, and arrays in
the data (any element may match). As in AWS: an exact number matches by its JSON text (300, 300.0 and
3.0e2 are three different values; ``numeric`` compares values), a number never equals a string, and
``exists`` looks at leaf values only (an object under the key counts as absent: ``false`` matches it).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from typing import Any

_MISSING = object()
_NUMERIC: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class Number:
    """A JSON number as written: exact matching compares the text, ``numeric`` the value."""

    __slots__ = ("text", "value")

    def __init__(self, text: str) -> None:
        self.text = text
        self.value = float(text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Number) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Number({self.text})"


def _loads(text: str | bytes) -> Any:
    return json.loads(text, parse_int=Number, parse_float=Number)


def parse_patterns(filter_criteria: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The patterns of an ESM's ``FilterCriteria`` (``{"Filters": [{"Pattern": "<json>"}]}``); numbers in
    them are `Number`s."""
    return [_loads(f["Pattern"]) for f in (filter_criteria or {}).get("Filters", []) if f.get("Pattern")]


def record_matches(patterns: list[dict[str, Any]], data: bytes) -> bool:
    """True when a Kinesis record with this `data` passes the filters (always, without filters)."""
    if not patterns:
        return True
    try:
        document: Any = {"data": _loads(data)}
    except (ValueError, UnicodeDecodeError):
        # Data that is not JSON drops the record for every pattern on data (AWS: "Non-JSON data with a
        # valid JSON filter pattern for data properties: Lambda drops the record").
        return any("data" not in pattern and _matches(pattern, {}) for pattern in patterns)
    return any(_matches(pattern, document) for pattern in patterns)


def _matches(pattern: dict[str, Any], document: Any) -> bool:
    for key, rule in pattern.items():
        if key == "$or":
            if not any(_matches(option, document) for option in rule):
                return False
            continue
        value = document.get(key, _MISSING) if isinstance(document, dict) else _MISSING
        if isinstance(rule, dict):
            # Nested fields are matched as flattened paths (a.b): an array of objects matches when one
            # element does, and a missing or scalar parent leaves every nested field absent.
            elements = value if isinstance(value, list) else [value]
            objects = [element for element in elements if isinstance(element, dict)] or [{}]
            if not any(_matches(rule, element) for element in objects):
                return False
        elif not _field_matches(rule, value):
            return False
    return True


def _field_matches(rules: list[Any], value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return any(_rule_matches(rule, v) for rule in rules for v in values)


def _rule_matches(rule: Any, value: Any) -> bool:
    if not isinstance(rule, dict):
        if value is _MISSING:
            return False
        if isinstance(rule, bool) or isinstance(value, bool):
            return rule is value
        if isinstance(rule, int | float):  # a pattern built in Python: its number as JSON writes it
            rule = Number(json.dumps(rule))
        return type(rule) is type(value) and bool(rule == value)
    if "exists" in rule:
        # Exists looks at leaves only: an object under the key counts as no value at all.
        present = value is not _MISSING and not isinstance(value, dict)
        return present == bool(rule["exists"])
    if value is _MISSING:
        return False
    if "prefix" in rule:
        return isinstance(value, str) and value.startswith(rule["prefix"])
    if "suffix" in rule:
        return isinstance(value, str) and value.endswith(rule["suffix"])
    if "equals-ignore-case" in rule:
        return isinstance(value, str) and value.lower() == str(rule["equals-ignore-case"]).lower()
    if "anything-but" in rule:
        excluded = rule["anything-but"]
        if isinstance(excluded, dict) and "prefix" in excluded:
            return not (isinstance(value, str) and value.startswith(excluded["prefix"]))
        excluded_values = excluded if isinstance(excluded, list) else [excluded]
        return not any(_rule_matches(e, value) for e in excluded_values)
    if "numeric" in rule:
        if not isinstance(value, Number):
            return False
        terms = rule["numeric"]
        return all(_NUMERIC[terms[i]](value.value, _value(terms[i + 1])) for i in range(0, len(terms), 2))
    raise ValueError(f"unsupported filter rule {rule}")


def _value(term: Any) -> float:
    return term.value if isinstance(term, Number) else float(term)
