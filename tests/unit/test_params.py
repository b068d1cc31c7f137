"""The API's parameters (streamrec_core.params): each rule on both sides of its bounds, and the JSON Schema
the OpenAPI document publishes for a parameter accepts exactly what the handler accepts."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from streamrec_core import params as p
from streamrec_core.http import HttpError
from streamrec_core.schema import F_ITEM_ID, F_USER_ID, field_spec


def accepts(param: p.Parameter, raw: object) -> bool:
    try:
        param.parse(raw)
    except HttpError as error:
        assert error.code == "bad_request" and error.details and error.details[0]["field"] == param.name
        return False
    return True


def test_k_defaults_and_holds_both_bounds() -> None:
    assert p.K.parse(None) == p.K.parse("") == p.K_DEFAULT
    assert (p.K.parse("1"), p.K.parse(str(p.K_MAX))) == (1, p.K_MAX)
    for bad in ("0", str(p.K_MAX + 1), "-1", "ten", "1e2", "\u00b2", " 5"):
        assert not accepts(p.K, bad), bad


def test_exclude_takes_up_to_its_bound_of_valid_item_ids() -> None:
    at_limit = [f"i{n}" for n in range(p.EXCLUDE_MAX)]
    assert p.EXCLUDE.parse(at_limit) == at_limit and p.EXCLUDE.parse([]) == []
    assert not accepts(p.EXCLUDE, [*at_limit, "one-more"])
    assert not accepts(p.EXCLUDE, ["ok", "bad id"])
    assert not accepts(p.EXCLUDE, ["ok", ""])  # `exclude=a,` names an empty id


@pytest.mark.parametrize(("param", "field"), [(p.USER_ID, F_USER_ID), (p.ITEM_ID, F_ITEM_ID)])
def test_path_ids_follow_the_event_schemas_rule_for_the_same_field(param: p.Parameter, field: str) -> None:
    longest = field_spec(field).max_length
    assert param.parse("a" * longest) == "a" * longest
    for bad in ("a" * (longest + 1), "", "a b", "a/b", None):
        assert not accepts(param, bad), bad


# Values on both sides of every rule, as the client sends them (k as its integer, exclude as its list).
SAMPLES: dict[p.Parameter, list[Any]] = {
    p.K: [0, 1, p.K_MAX, p.K_MAX + 1],
    p.EXCLUDE: [[], ["a", "b"], ["a b"], [""], ["x"] * p.EXCLUDE_MAX, ["x"] * (p.EXCLUDE_MAX + 1)],
    p.USER_ID: ["u1", "", "a b", "u" * 128, "u" * 129, "user@example.com"],
    p.ITEM_ID: ["i1", "", "i:1", "i/1", "i" * 129],
    p.EXPERIMENT_ID: ["ranking", "", "e" * 64, "e" * 65, "a b"],
    p.CATEGORY: ["shoes", "c" * 64, "c" * 200],
}


@pytest.mark.parametrize("param", list(SAMPLES), ids=lambda param: param.name)
def test_the_published_schema_accepts_exactly_what_the_parameter_accepts(param: p.Parameter) -> None:
    for value in SAMPLES[param]:
        raw = value if isinstance(value, list) else str(value)
        published = jsonschema.Draft202012Validator(param.schema).is_valid(value)
        assert published == accepts(param, raw), (param.name, value)
