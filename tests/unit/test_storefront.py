"""The demo storefront's server-side routes (tools/storefront.py), without a pipeline."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tools.storefront import MAX_FRESHNESS_MS, Storefront, readable

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


def test_freshness_reports_are_drawn_per_click_within_the_window():
    shop = _shop()
    for ms in (120, 80.5):
        status, _, _ = shop.handle("POST", "freshness", "", json.dumps({"ms": ms}).encode())
        assert status == 200
    now = time.time()
    section = shop.freshness_section(now, 60.0)
    assert section["kind"] == "points" and "local only" in section["note"]
    assert [ms for _, ms in section["points"]] == [120.0, 80.5]
    # a window that ended before the clicks holds none of them
    assert shop.freshness_section(now - 120.0, 60.0)["points"] == []


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1]", b"{}", b'{"ms": "12"}', b'{"ms": true}', b'{"ms": -1}',
     json.dumps({"ms": MAX_FRESHNESS_MS + 1}).encode()],
)  # fmt: skip
def test_a_bad_freshness_report_is_a_400_naming_the_field(body):
    shop = _shop()
    status, _, answer = shop.handle("POST", "freshness", "", body)
    assert status == 400 and (b"ms" in answer)
    assert shop.freshness_section(time.time(), 60.0)["points"] == []


def test_freshness_keeps_both_sides_of_the_bound():
    shop = _shop()
    for ms in (0, MAX_FRESHNESS_MS):
        assert shop.handle("POST", "freshness", "", json.dumps({"ms": ms}).encode())[0] == 200


class _FakeApi(BaseHTTPRequestHandler):
    """GET /dev/v1/users/.../recommendations and /dev/v1/experiments/ranking, checking the reader key."""

    def do_GET(self) -> None:
        if self.headers.get("x-api-key") != KEYS["reader"]:
            body, status = {"message": "Forbidden"}, 403
        elif self.path.startswith("/dev/v1/users/"):
            body, status = {"items": [], "experiment_id": "ranking", "variant": "a"}, 200
        elif self.path == "/dev/v1/experiments/ranking":
            ctr = {"value": 0.25, "low": 0.1, "high": 0.5}
            none = {"value": None, "low": None, "high": None}
            variants = [
                {
                    "variant": "a",
                    "impressions": 8,
                    "clicks": 2,
                    "purchases": 0,
                    "ctr": ctr,
                    "conversion": ctr,
                },
                {
                    "variant": "b",
                    "impressions": 0,
                    "clicks": 0,
                    "purchases": 0,
                    "ctr": none,
                    "conversion": none,
                },
            ]
            body, status = {"experiment_id": "ranking", "variants": variants}, 200
        else:
            body, status = {"message": "not found"}, 404
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/dev"
    server.shutdown()
    server.server_close()


def test_the_experiment_section_is_the_answers_experiment_ctr_per_variant_read_with_the_reader_key(api):
    shop = Storefront(api, KEYS, EVENTS)
    before = shop.experiment_section(time.time(), 60.0)
    assert before["variants"] == [] and before["message"] == "no experiment answer yet"
    assert shop.handle("GET", "recommendations", "user_id=u1", b"")[0] == 200
    section = shop.experiment_section(time.time(), 60.0)
    assert section["kind"] == "intervals" and "ranking" in section["title"]
    assert section["variants"] == [
        {"variant": "a", "impressions": 8, "clicks": 2, "value": 0.25, "low": 0.1, "high": 0.5},
        {"variant": "b", "impressions": 0, "clicks": 0, "value": None, "low": None, "high": None},
    ]


def test_an_unreadable_experiments_api_is_said_in_the_section(api):
    shop = Storefront(api, KEYS, EVENTS)
    shop.experiment_id = "unknown"
    section = shop.experiment_section(time.time(), 60.0)
    assert section["variants"] == [] and "could not be read" in section["message"]
