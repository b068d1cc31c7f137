"""Lambda event filtering (``FilterCriteria``) for Kinesis event source mappings.

Kinesis mappings filter on the ``data`` key only: a record whose data is JSON is kept when it matches
at least one pattern (patterns are ORed); a record matching none, or whose data is not JSON while a
pattern looks at ``data``, is discarded without invoking the function (and checkpointed).

Supported filter rule syntax (AWS "Filter rule syntax"): exact values (strings, numbers, null) in a
list, ``prefix``, ``suffix``, ``equals-ignore-case``, ``anything-but`` (value, list, or ``{"prefix"}``),
``numeric`` (``=``, ``<``, ``<=``, ``>``, ``>=`` pairs), ``exists``, nested objects, ``$or``, and arrays in
the data (any element may match).
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


def parse_patterns(filter_criteria: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The patterns of an ESM's ``FilterCriteria`` (``{"Filters": [{"Pattern": "<json>"}]}``)."""
    return [json.loads(f["Pattern"]) for f in (filter_criteria or {}).get("Filters", []) if f.get("Pattern")]


def record_matches(patterns: list[dict[str, Any]], data: bytes) -> bool:
    """True when a Kinesis record with this `data` passes the filters (always, without filters)."""
    if not patterns:
        return True
    try:
        document: Any = {"data": json.loads(data)}
    except (ValueError, UnicodeDecodeError):
        document = {}  # only patterns that do not look at data can match
    return any(_matches(pattern, document) for pattern in patterns)


def _matches(pattern: dict[str, Any], document: Any) -> bool:
    for key, rule in pattern.items():
        if key == "$or":
            if not any(_matches(option, document) for option in rule):
                return False
            continue
        value = document.get(key, _MISSING) if isinstance(document, dict) else _MISSING
        if isinstance(rule, dict):
            if value is _MISSING or not isinstance(value, dict) or not _matches(rule, value):
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
        if isinstance(rule, int | float) and isinstance(value, int | float):
            return float(rule) == float(value)
        return bool(rule == value)
    if "exists" in rule:
        return (value is not _MISSING) == bool(rule["exists"])
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
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        terms = rule["numeric"]
        return all(_NUMERIC[terms[i]](float(value), float(terms[i + 1])) for i in range(0, len(terms), 2))
    raise ValueError(f"unsupported filter rule {rule}")
