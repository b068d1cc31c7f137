"""`make up`'s options (tools/up.py): bad values are refused before the pipeline starts, naming the option."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools import up
from tools.storefront import DEMO_SHOP, Storefront


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--events", "-1"], "--events"),
        (["--events", "many"], "--events"),
        (["--limit", "0"], "--limit"),
        (["--speed", "-2"], "--speed"),
        (
            ["--events-file", "/nonexistent/events.jsonl"],
            "--events-file: no file at /nonexistent/events.jsonl",
        ),
    ],
)
def test_a_bad_option_is_refused_naming_it(argv, named, capsys):
    with pytest.raises(SystemExit) as exited:
        up.parse_args(argv)
    assert exited.value.code == 2 and named in capsys.readouterr().err


def test_by_default_the_warm_up_replays_the_demo_shop_the_storefront_shows():
    source = up.source_for(up.parse_args([]))
    assert source.events == DEMO_SHOP.generate() and list(source.catalog()) == source.events


def test_n_sets_the_generated_count_and_n_0_keeps_the_demo_shop_as_catalog():
    events = up.source_for(up.parse_args(["--events", "300"])).events
    assert isinstance(events, list) and len(events) == 300
    assert up.source_for(up.parse_args(["--events", "0"])).events == DEMO_SHOP.generate()


def test_an_events_file_is_both_the_catalog_and_what_is_replayed(tmp_path: Path):
    events = tmp_path / "events.jsonl"
    events.write_text('{"user_id": "u1", "item_id": "i1", "category": "c"}\n{"user_id": "u2"}\n')
    source = up.source_for(up.parse_args(["--events-file", str(events), "--limit", "1"]))
    assert source.events == events and source.limit == 1
    assert list(source.catalog()) == [{"user_id": "u1", "item_id": "i1", "category": "c"}]


@pytest.mark.parametrize(
    ("line", "said"),
    [
        (b"[1, 2]\n", "events.jsonl:2: not a JSON object"),
        (b'"view"\n', "events.jsonl:2: not a JSON object"),
        (b"[" * 100_000 + b"\n", "events.jsonl:2: not JSON"),
        (b'{"user_id": "\xff"}\n', "events.jsonl:2: not UTF-8"),
    ],
)
def test_an_events_file_line_that_is_not_an_event_object_is_said_with_its_line(
    tmp_path: Path, line, said, capsys
):
    """Such a line was an AttributeError (RecursionError, UnicodeDecodeError) traceback once the
    pipeline was up; it is refused with the options, before anything starts, naming the file and line."""
    events = tmp_path / "events.jsonl"
    events.write_bytes(b'{"user_id": "u1", "item_id": "i1", "category": "c"}\n' + line)
    with pytest.raises(SystemExit) as exit_:
        up.parse_args(["--events-file", str(events)])
    assert exit_.value.code == 2 and said in capsys.readouterr().err
    # a LIMIT that ends before the bad line reads only what it replays
    source = up.source_for(up.parse_args(["--events-file", str(events), "--limit", "1"]))
    assert [e["user_id"] for e in source.catalog()] == ["u1"]


def test_the_storefront_shows_only_string_ids_of_an_events_file(tmp_path: Path):
    """An id that is a number or an object was a TypeError building the catalog (never a valid event)."""
    events = tmp_path / "events.jsonl"
    lines = [
        {"user_id": "u1", "item_id": "i1", "category": "c"},
        {"user_id": 7, "item_id": 5, "category": "c"},
        {"user_id": {"a": 1}, "item_id": ["i2"], "category": "c"},
    ]
    events.write_text("".join(json.dumps(line) + "\n" for line in lines))
    source = up.source_for(up.parse_args(["--events-file", str(events)]))
    shop = Storefront("http://127.0.0.1:1/dev", {"producer": "p", "reader": "r"}, source.catalog())
    assert [item["item_id"] for item in shop.catalog] == ["i1"] and shop.users == ["u1"]
