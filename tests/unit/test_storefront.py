"""The demo storefront's server-side routes (tools/storefront.py), without a pipeline."""

from __future__ import annotations

import json

from tools.storefront import Storefront, readable

KEYS = {"producer": "public-producer-key", "reader": "secret-reader-key"}
EVENTS = [
    {"user_id": "u1", "item_id": "i1", "category": "c0"},
    {"user_id": "u1", "item_id": "i2", "category": "c1"},
    {"user_id": "u2", "item_id": "i1", "category": "c0"},
]


def _shop() -> Storefront:
    return Storefront("http://127.0.0.1:1/dev", KEYS, EVENTS)


def test_config_gives_the_producer_key_and_never_the_reader_key():
    status, _, body = _shop().handle("GET", "config.json", "", b"")
    config = json.loads(body)
    assert status == 200 and config["producer_key"] == KEYS["producer"]
    assert KEYS["reader"].encode() not in body
    # the catalog is the events' items, most viewed first, with readable names; users most active first
    assert [item["item_id"] for item in config["catalog"]] == ["i1", "i2"]
    assert config["users"] == ["u1", "u2"]
    assert config["catalog"][0] == readable("i1", "c0") and config["catalog"][0]["name"]


def test_page_has_no_reader_key():
    status, headers, body = _shop().handle("GET", "", "", b"")
    assert status == 200 and ("Content-Type", "text/html; charset=utf-8") in headers
    assert KEYS["reader"].encode() not in body


def test_recommendations_need_a_user_id():
    status, _, body = _shop().handle("GET", "recommendations", "k=3", b"")
    assert status == 400 and b"user_id" in body


def test_only_get_and_known_routes():
    assert _shop().handle("POST", "config.json", "", b"{}")[0] == 405
    assert _shop().handle("GET", "nothing", "", b"")[0] == 404


def test_an_unreachable_api_is_a_502_naming_it():
    status, _, body = Storefront("http://127.0.0.1:9/dev", KEYS, EVENTS).handle(
        "GET", "recommendations", "user_id=u1", b""
    )
    assert status == 502 and b"could not be reached" in body


def test_names_are_stable_and_readable():
    assert readable("i1", "c0") == readable("i1", "c0")
    assert readable("i1", "c0")["name"] != "i1"
