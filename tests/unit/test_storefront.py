"""The demo storefront's server-side routes (tools/storefront.py), without a pipeline."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tools.storefront import MAX_FRESHNESS_MS, PAGE, TOKEN_HEADER, Storefront, readable

KEYS = {"producer": "public-producer-key", "reader": "secret-reader-key"}
EVENTS = [
    {"user_id": "u1", "item_id": "i1", "category": "c0"},
    {"user_id": "u1", "item_id": "i2", "category": "c1"},
    {"user_id": "u2", "item_id": "i1", "category": "c0"},
]


def _shop() -> Storefront:
    return Storefront("http://127.0.0.1:1/dev", KEYS, EVENTS)


def _report(shop: Storefront, body: bytes, headers: dict[str, str] | None = None):
    """POST freshness as the page does: with its config.json's token unless `headers` says otherwise."""
    config = json.loads(shop.handle("GET", "config.json", "", b"")[2])
    sent = {config["token_header"]: config["token"]} if headers is None else headers
    return shop.handle("POST", "freshness", "", body, sent)


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
    assert _shop().handle("HEAD", "config.json", "", b"")[0] == 200  # as GET; the server drops the body
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
        status, _, _ = _report(shop, json.dumps({"ms": ms}).encode())
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
    status, _, answer = _report(shop, body)
    assert status == 400 and (b"ms" in answer)
    assert shop.freshness_section(time.time(), 60.0)["points"] == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[" * 100_000, 413),
        (b'{"a":' * 50_000, 413),
        (b'{"ms": 5}' + b" " * 5_000_000, 413),
        (b"[" * 256, 400),
    ],
)
def test_a_nested_or_oversized_freshness_body_is_refused_naming_the_rule(body, status):
    """Deeply nested JSON made the parser raise RecursionError (a 500 from a client's body); 5 MB of
    padding was read and parsed. 256 bytes of nesting is at the bound and below the parser's limit."""
    shop = _shop()
    code, _, answer = _report(shop, body)
    assert code == status and b'{\\"ms\\": N}' in answer and b"bytes" in answer
    assert shop.freshness_section(time.time(), 60.0)["points"] == []


def test_freshness_keeps_both_sides_of_the_bound():
    shop = _shop()
    for ms in (0, MAX_FRESHNESS_MS):
        assert _report(shop, json.dumps({"ms": ms}).encode())[0] == 200


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, b"the header is missing"),
        ({TOKEN_HEADER: ""}, b"the header is missing"),
        ({TOKEN_HEADER: "made-up"}, b"this one is not it"),
        ({TOKEN_HEADER: Storefront("http://127.0.0.1:1/dev", KEYS, EVENTS).token}, b"this one is not it"),
    ],
    ids=["missing", "empty", "wrong", "another-runs"],
)
def test_a_freshness_report_without_this_runs_token_is_a_403_naming_the_header(headers, why):
    """Another site's page open in the same browser can POST here, but cannot read config.json's token."""
    shop = _shop()
    status, _, answer = _report(shop, b'{"ms": 5}', headers)
    assert status == 403 and TOKEN_HEADER.encode() in answer and why in answer
    assert shop.freshness_section(time.time(), 60.0)["points"] == []


def test_the_token_is_one_per_run_given_only_by_config_json():
    shop, other = _shop(), _shop()
    config = json.loads(shop.handle("GET", "config.json", "", b"")[2])
    assert config["token"] == shop.token != other.token and len(shop.token) >= 32
    assert config["token_header"] == TOKEN_HEADER
    assert _report(shop, b'{"ms": 5}', {TOKEN_HEADER: config["token"]})[0] == 200
    assert shop.token.encode() not in shop.handle("GET", "", "", b"")[2]  # not in the page itself


def test_no_answer_lets_another_origin_read_it_or_send_the_token():
    shop = _shop()
    answers = [
        shop.handle("GET", "config.json", "", b"", {"origin": "https://evil.example"}),
        # the preflight a cross-origin POST with the token header needs first
        shop.handle(
            "OPTIONS",
            "freshness",
            "",
            b"",
            {
                "origin": "https://evil.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": TOKEN_HEADER,
            },
        ),
    ]
    assert [status for status, _, _ in answers] == [200, 405]
    assert [
        name for _, headers, _ in answers for name, _ in headers if name.lower().startswith("access-control")
    ] == []


def test_the_page_sends_config_jsons_token_with_each_freshness_report():
    page = PAGE.read_text()
    assert "[config.token_header]: config.token" in page
    (report,) = [line for line in page.splitlines() if 'fetch("/_local/storefront/freshness"' in line]
    assert "headers: REPORT_HEADERS" in report


class _FakeApi(BaseHTTPRequestHandler):
    """GET /dev/v1/users/.../recommendations and /dev/v1/experiments/ranking, checking the reader key."""

    experiment_reads = 0

    def do_GET(self) -> None:
        body: dict[str, Any]
        if self.headers.get("x-api-key") != KEYS["reader"]:
            body, status = {"message": "Forbidden"}, 403
        elif self.path.startswith("/dev/v1/users/"):
            body, status = {"items": [], "experiment_id": "ranking", "variant": "a"}, 200
        elif self.path == "/dev/v1/experiments/ranking":
            _FakeApi.experiment_reads += 1
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


def test_consoles_polling_at_once_read_the_experiment_from_the_api_at_most_once_per_interval(api):
    shop = Storefront(api, KEYS, EVENTS)
    assert shop.handle("GET", "recommendations", "user_id=u1", b"")[0] == 200
    before = _FakeApi.experiment_reads
    # Given eight consoles asking for the section at once, twice
    with ThreadPoolExecutor(max_workers=8) as pool:
        sections = list(pool.map(lambda _: shop.experiment_section(time.time(), 60.0), range(16)))
    # Then each got the counters, read from the API once (the reads are real traffic on the dashboard)
    assert all(s["variants"] and s["variants"][0]["clicks"] == 2 for s in sections)
    assert _FakeApi.experiment_reads - before == 1
