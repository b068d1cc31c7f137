"""streamrec_core.ddb_size: DynamoDB item sizes and capacity units by AWS's published rules (no timings)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from streamrec_core.ddb_size import item_size, number_size, read_units, value_size, write_units


@pytest.mark.parametrize(
    ("text", "size"),
    [("0", 1), ("7", 2), ("12", 2), ("123", 3), ("1000", 2), ("-12.50", 3), ("0.125", 3), ("1.5e10", 2)],
)
def test_numbers_cost_one_byte_per_two_significant_digits_plus_one(text, size):
    assert number_size(text) == size


def test_strings_count_utf8_bytes():
    assert value_size({"S": "abc"}) == 3
    assert value_size({"S": "é"}) == 2


def test_lists_and_maps_cost_three_bytes_plus_one_per_element():
    assert value_size({"L": []}) == 3
    assert value_size({"L": [{"S": "ab"}, {"N": "5"}]}) == 3 + (2 + 1) + (2 + 1)
    # a map element also counts its key's bytes
    assert value_size({"M": {"k": {"S": "v"}}}) == 3 + (1 + 1 + 1)


def test_an_item_is_its_attribute_names_plus_values():
    item: dict[str, dict[str, Any]] = {"pk": {"S": "user-1"}, "n": {"N": "42"}, "ok": {"BOOL": True}}
    assert item_size(item) == (2 + 6) + (1 + 2) + (2 + 1)


def test_write_units_per_started_kilobyte_doubled_in_transactions():
    assert write_units(1) == 1
    assert write_units(1024) == 1
    assert write_units(1025) == 2
    assert write_units(1025, transactional=True) == 4


def test_read_units_per_started_4kb_halved_when_eventually_consistent():
    assert read_units(4096) == 1.0
    assert read_units(4097) == 2.0
    assert read_units(100, consistent=False) == 0.5
    assert read_units(100, transactional=True) == 2.0


@pytest.mark.parametrize("raw", [b"", b"a", b"ab", b"abc", b"\x00" * 1025])
def test_a_binary_counts_its_bytes_whether_given_as_bytes_or_as_the_json_apis_base64(raw):
    text = base64.b64encode(raw).decode()
    assert value_size({"B": raw}) == value_size({"B": text}) == len(raw)
