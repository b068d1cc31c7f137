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


def _data_matches(pattern: str, data: str) -> bool:
    return record_matches(parse_patterns({"Filters": [{"Pattern": pattern}]}), data.encode())


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('{"attribution": {"variant": "control"}}', True),
        ('{"attribution": {"variant": ""}}', True),
        ('{"attribution": {"variant": null}}', True),  # null is a value: the leaf exists
        ('{"attribution": {"request_id": "r1"}}', False),
        ('{"attribution": {"variant": {"name": "control"}}}', False),  # an object is not a leaf
        ('{"attribution": null}', False),
        ('{"event_type": "click"}', False),
        ('["attribution"]', False),
    ],
)
def test_streamrecs_experiments_filter_lets_through_records_with_an_attribution_variant(data, expected):
    pattern = '{"data": {"attribution": {"variant": [{"exists": true}]}}}'
    assert _data_matches(pattern, data) is expected


@pytest.mark.parametrize("exists", [True, False])
def test_exists_matches_leaves_only_so_an_object_under_the_key_counts_as_absent(exists):
    """Rule (EventBridge / event-ruler, "Exists matching"): exists only works on leaf nodes; event-ruler's
    own example: exists false matches an event whose field holds an object."""
    pattern = json.dumps({"data": {"attribution": [{"exists": exists}]}})
    assert _data_matches(pattern, '{"attribution": {"variant": "a"}}') is not exists
    assert _data_matches(pattern, '{"attribution": "a"}') is exists
    assert _data_matches(pattern, '{"other": 1}') is not exists


@pytest.mark.parametrize(
    ("data", "expected"),
    [('{"n": 300}', True), ('{"n": 300.0}', False), ('{"n": 3.0e2}', False), ('{"n": "300"}', False)],
)
def test_an_exact_number_matches_by_its_json_text_and_never_a_string(data, expected):
    """Rule: "for numbers, Lambda also uses string representation: 300, 300.0 and 3.0e2 are not equal"."""
    assert _data_matches('{"data": {"n": [300]}}', data) is expected


@pytest.mark.parametrize("data", ['{"n": 300}', '{"n": 300.0}', '{"n": 3.0e2}'])
def test_numeric_matching_compares_values(data):
    assert _data_matches('{"data": {"n": [{"numeric": ["=", 300]}]}}', data) is True
    assert _data_matches('{"data": {"n": [{"numeric": [">", 299.5, "<", 300.5]}]}}', data) is True


def test_a_string_that_looks_like_a_number_takes_no_numeric_or_exact_number_match():
    assert _data_matches('{"data": {"n": [{"numeric": [">", 0]}]}}', '{"n": "5"}') is False
    assert _data_matches('{"data": {"n": ["5"]}}', '{"n": 5}') is False
    assert _data_matches('{"data": {"n": [{"prefix": "5"}]}}', '{"n": 5}') is False


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('{"event_type": "click"}', True),  # no attribution at all: attribution.variant is absent
        ('{"attribution": null}', True),
        ('{"attribution": {"request_id": "r"}}', True),
        ('{"attribution": {"variant": "a"}}', False),
    ],
)
def test_exists_false_on_a_nested_field_matches_when_any_parent_is_missing(data, expected):
    """Rule: patterns match flattened paths, so a.b is absent when a is missing or not an object."""
    assert _data_matches('{"data": {"attribution": {"variant": [{"exists": false}]}}}', data) is expected


def test_a_nested_pattern_matches_one_element_of_an_array_of_objects():
    data = '{"items": [{"id": "a", "qty": 1}, {"id": "b", "qty": 2}]}'
    assert _data_matches('{"data": {"items": {"id": ["b"]}}}', data) is True
    assert _data_matches('{"data": {"items": {"id": ["b"], "qty": [2]}}}', data) is True
    # fields from two different elements never combine
    assert _data_matches('{"data": {"items": {"id": ["a"], "qty": [2]}}}', data) is False


def test_data_that_is_not_json_is_dropped_even_by_a_pattern_that_only_asks_for_absence():
    assert _data_matches('{"data": {"attribution": [{"exists": false}]}}', "not json") is False
