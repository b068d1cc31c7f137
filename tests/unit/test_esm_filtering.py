"""Event source mapping rule: Lambda event filtering on a Kinesis record's JSON data (filter rule syntax)."""

from __future__ import annotations

import json

import pytest

from local_emulator.filtering import parse_patterns, record_matches

EVENT = {
    "event_type": "click",
    "price": 12.5,
    "tags": ["a", "b"],
    "attribution": {"variant": "control"},
    "ref": None,
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"data": {"event_type": ["click", "view"]}}, True),
        ({"data": {"event_type": ["view"]}}, False),
        ({"data": {"event_type": [{"prefix": "cl"}]}}, True),
        ({"data": {"event_type": [{"suffix": "ick"}]}}, True),
        ({"data": {"event_type": [{"equals-ignore-case": "CLICK"}]}}, True),
        ({"data": {"event_type": [{"anything-but": ["click"]}]}}, False),
        ({"data": {"event_type": [{"anything-but": {"prefix": "vi"}}]}}, True),
        ({"data": {"price": [{"numeric": [">", 10, "<=", 20]}]}}, True),
        ({"data": {"price": [{"numeric": ["<", 10]}]}}, False),
        ({"data": {"price": [12.5]}}, True),
        ({"data": {"tags": ["b"]}}, True),
        ({"data": {"attribution": {"variant": ["control"]}}}, True),
        ({"data": {"attribution": {"position": [{"exists": True}]}}}, False),
        ({"data": {"missing": [{"exists": False}]}}, True),
        ({"data": {"ref": [None]}}, True),
        ({"data": {"$or": [{"event_type": ["view"]}, {"price": [{"numeric": [">=", 12]}]}]}}, True),
    ],
)
def test_filter_rule_syntax(pattern, expected):
    """Rule: each filter rule (values, prefix, suffix, anything-but, numeric, exists, $or) as in AWS."""
    assert record_matches([pattern], json.dumps(EVENT).encode()) is expected


def test_patterns_are_ored_and_non_json_data_matches_no_data_pattern():
    patterns = parse_patterns(
        {
            "Filters": [
                {"Pattern": json.dumps({"data": {"event_type": ["view"]}})},
                {"Pattern": '{"data": {"price": [12.5]}}'},
            ]
        }
    )
    assert record_matches(patterns, json.dumps(EVENT).encode()) is True
    assert record_matches(patterns, b"\xff not json") is False
    assert record_matches([], b"\xff not json") is True
