"""`make up`'s options (tools/up.py): bad values are refused before the pipeline starts, naming the option."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import up
from tools.storefront import DEMO_SHOP


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
