"""`make up`'s start (tools/up.py, before it waits for Ctrl-C) on the e2e pipeline: the storefront is
served at once and, in the background, the demo shop's events fill the pipeline (none with N=0)."""

from __future__ import annotations

import io
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from streamrec_core.ranking import REASON_CATEGORY, REASON_COVISIT

from tools import up
from tools.storefront import ROUTE, TOKEN_HEADER

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.embedded_only("make up's storefront and warm-up run on the embedded emulator's runtime"),
]
# Enough of the demo shop for its busiest users to have co-visited items, and quick to replay.
WARM_EVENTS = 300
WARM_UP_TIMEOUT_S = 300.0


def _storefront(pipeline: Any, path: str) -> Any:
    url = f"{pipeline.endpoint_document()['admin_url']}{ROUTE}/{path}"
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.loads(answer.read())


def _recommendations(pipeline: Any, user_id: str) -> dict[str, Any]:
    return _storefront(pipeline, "recommendations?" + urllib.parse.urlencode({"user_id": user_id}))


def test_make_up_fills_the_storefront_with_the_demo_shop_in_the_background_and_n_0_starts_empty(
    local_pipeline,
):
    pipeline = local_pipeline.pipeline
    # Given `N=0 make up`: the storefront is served and nothing is replayed
    out = io.StringIO()
    storefront, warm_up = up.start(pipeline, up.parse_args(["--events", "0"]), threading.Event(), out)
    assert warm_up is None
    assert re.search(r"^warm-up +none \(N=0\): the pipeline starts empty$", out.getvalue(), re.M)
    pipeline.wait_until_idle()
    cold = [user for user in storefront.users if _recommendations(pipeline, user)["features_as_of"] is None]
    assert cold == storefront.users and len(cold) > 0  # the shop's users are unknown to the pipeline

    # When `N=300 make up` starts
    out = io.StringIO()
    storefront, warm_up = up.start(
        pipeline, up.parse_args(["--events", str(WARM_EVENTS)]), threading.Event(), out
    )
    # Then the storefront answers at once, with the shop's catalog, while the replay runs
    assert warm_up is not None
    assert [item["item_id"] for item in _storefront(pipeline, "config.json")["catalog"]] == [
        item["item_id"] for item in storefront.catalog
    ]
    assert warm_up.join(WARM_UP_TIMEOUT_S), "the warm-up did not finish"
    text = out.getvalue()
    # And it said what it replayed and when that was done
    assert re.search(
        rf"^storefront +http://127\.0\.0\.1:\d+/_local/{ROUTE}  \(catalog: the demo shop's", text, re.M
    )
    assert re.search(rf"^warm-up +replaying the demo shop's {WARM_EVENTS} generated events", text, re.M), text
    done = rf"^warm-up +done: {WARM_EVENTS} of {WARM_EVENTS} events accepted in [\d.]+ s, processed [\d.]+ s"
    assert re.search(done, text, re.M), text
    assert warm_up.error is None and warm_up.summary is not None
    # And the shop's busiest user gets recommendations from co-visitation or its categories
    reasons = {item["reason"] for item in _recommendations(pipeline, storefront.users[0])["items"]}
    assert {REASON_COVISIT, REASON_CATEGORY} & reasons, reasons


def test_a_failed_warm_up_says_why_and_the_pipeline_keeps_running(local_pipeline, tmp_path: Path, unique_id):
    pipeline = local_pipeline.pipeline
    # Given an events file the storefront can show but the replay cannot re-time (no timestamps)
    events = tmp_path / "no-timestamps.jsonl"
    lines = [
        {"event_type": "view", "user_id": f"{unique_id}-u", "item_id": f"{unique_id}-i", "category": "c"}
    ]
    events.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = io.StringIO()
    # When `make up EVENTS=that-file` starts
    storefront, warm_up = up.start(
        pipeline, up.parse_args(["--events-file", str(events)]), threading.Event(), out
    )
    assert warm_up is not None and warm_up.join(WARM_UP_TIMEOUT_S)
    # Then it says the warm-up failed and why, and that the pipeline keeps running
    failed = (
        r"^warm-up +FAILED after 0 events accepted: ReplayError: source event without a valid ISO timestamp"
    )
    assert re.search(failed, out.getvalue(), re.M), out.getvalue()
    assert "The pipeline keeps running" in out.getvalue()
    # And it does: the storefront shows the file's items and the API takes events
    assert [item["item_id"] for item in _storefront(pipeline, "config.json")["catalog"]] == [f"{unique_id}-i"]
    response = local_pipeline.post_events([{**lines[0], "event_id": f"{unique_id}-e"}])
    assert response.status == 200 and response.json()["counts"]["accepted"] == 1


def test_another_origin_can_neither_read_the_storefronts_token_nor_post_freshness(local_pipeline):
    """A page of another site open in the same browser reaches 127.0.0.1 too (no DNS rebinding needed)."""
    pipeline = local_pipeline.pipeline
    storefront, _ = up.start(pipeline, up.parse_args(["--events", "0"]), threading.Event(), io.StringIO())
    url = f"{pipeline.endpoint_document()['admin_url']}{ROUTE}/"
    evil = {"Origin": "https://evil.example"}

    def send(
        method: str, path: str, headers: dict[str, str], body: bytes | None = None
    ) -> tuple[int, Any, bytes]:
        request = urllib.request.Request(url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    def cors(headers: Any) -> list[str]:
        return [name for name in headers if name.lower().startswith("access-control")]

    # config.json (with the token) carries no CORS header: the browser keeps it from another origin's script
    status, headers, body = send("GET", "config.json", evil)
    assert status == 200 and json.loads(body)["token"] == storefront.token and cors(headers) == []
    # the "simple" cross-origin POST a browser sends without asking is refused: it has no token
    status, _, body = send("POST", "freshness", {**evil, "Content-Type": "text/plain"}, b'{"ms": 1}')
    assert status == 403 and TOKEN_HEADER.encode() in body
    # and the preflight a POST with the token header needs is not granted
    preflight = {
        **evil,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": TOKEN_HEADER,
    }
    status, headers, _ = send("OPTIONS", "freshness", preflight)
    assert status >= 400 and cors(headers) == []
    # while the page itself (same origin, token from config.json) is heard
    status, _, _ = send("POST", "freshness", {TOKEN_HEADER: storefront.token}, b'{"ms": 1}')
    assert status == 200
