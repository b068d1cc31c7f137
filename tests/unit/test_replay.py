"""The replay tool: schema mapping, deterministic ids, re-timing, batching, retries and the summary.

Most tests inject a fake transport and a fake clock (``sleep`` advances it), so nothing here waits or
depends on timing; one test goes through a real HTTP server on 127.0.0.1 to cover the urllib path.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ingest.logic import Limits, build_response, parse_request, validate_batch
from streamrec_core.http import encode_json
from streamrec_core.schema import validate_event

from streamrec_client import TransportError
from tools.generate_clickstream import generate_events, write_jsonl
from tools.replay import Retimer, event_id_for, load_endpoint, main, replay, to_schema_event

BASE_URL = "http://api.test/prod/"
KEY = "producer-key"
NOW = datetime.fromisoformat("2026-06-01T12:00:00+00:00").timestamp()
TAOBAO_LINE = {
    "user_id": "1002166",
    "item_id": "4274395",
    "event_type": "view",
    "timestamp": "2017-11-24T16:00:17Z",
    "category": "1615537",
    "raw_event_type": "pv",
    "unix_ts": 1511539217,
    "source_line": 50118,
}


class FakeClock:
    """Unix time that only moves when the code under test sleeps."""

    def __init__(self, start: float = NOW) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeApi:
    """Answers POST /v1/events like ingest: accepted, rejected and failed by index. Scripted statuses
    (answered without a per-index document) come first."""

    def __init__(
        self,
        *,
        statuses: list[int] | None = None,
        fail_first_try: set[str] | None = None,
        reject: dict[str, str] | None = None,
        clock: FakeClock | None = None,
    ) -> None:
        self.statuses = list(statuses or [])
        self.fail_first_try = set(fail_first_try or ())
        self.reject = reject or {}
        self.clock = clock
        self.requests: list[dict] = []  # url, headers, events, time

    def __call__(self, url: str, headers: dict[str, str], body: bytes, timeout: float):
        events = json.loads(body)["events"]
        self.requests.append(
            {"url": url, "headers": headers, "events": events, "time": self.clock() if self.clock else None}
        )
        if self.statuses:
            status = self.statuses.pop(0)
            return status, {"Retry-After": "1"}, b'{"error": {"code": "busy", "message": "busy"}}'
        answer: dict[str, list] = {"accepted": [], "rejected": [], "failed": []}
        for index, event in enumerate(events):
            if event["user_id"] in self.reject:
                errors = [{"field": self.reject[event["user_id"]], "rule": "is invalid"}]
                answer["rejected"].append({"index": index, "errors": errors})
            elif event["event_id"] in self.fail_first_try:
                self.fail_first_try.discard(event["event_id"])
                answer["failed"].append(
                    {"index": index, "event_id": event["event_id"], "reason": "throttled"}
                )
            else:
                answer["accepted"].append({"index": index, "event_id": event["event_id"]})
        return 200, {}, json.dumps(answer).encode()

    @property
    def posted(self) -> list[dict]:
        return [event for request in self.requests for event in request["events"]]


def run(events, api, clock=None, **kwargs):
    clock = clock or FakeClock()
    return replay(
        events, base_url=BASE_URL, api_key=KEY, transport=api, clock=clock, sleep=clock.sleep, **kwargs
    )


# --- Mapping to schema v1 -----------------------------------------------------------------------------


def test_source_line_maps_to_schema_v1_without_unknown_fields():
    event = to_schema_event(TAOBAO_LINE, "2026-06-01T11:00:00.000Z")
    assert event == {
        "event_id": event_id_for(TAOBAO_LINE),
        "event_type": "view",
        "user_id": "1002166",
        "item_id": "4274395",
        "category": "1615537",
        "timestamp": "2026-06-01T11:00:00.000Z",
    }


def test_event_id_is_stable_per_line_and_differs_between_lines_and_salts():
    twin = dict(TAOBAO_LINE)
    other = dict(TAOBAO_LINE, source_line=50119)
    assert event_id_for(TAOBAO_LINE) == event_id_for(twin)
    assert event_id_for(TAOBAO_LINE) != event_id_for(other)
    assert event_id_for(TAOBAO_LINE) != event_id_for(TAOBAO_LINE, salt="run-2")
    assert len(event_id_for(TAOBAO_LINE)) <= 64


def test_every_replayed_event_passes_ingest_validation_at_replay_time():
    # Given a generated day of events replayed at speed 0 / Then ingest's own validator accepts each one
    api = FakeApi()
    run(generate_events(300, users=20, items=60, seed=4), api, speed=0)
    receipt = datetime.fromtimestamp(NOW, UTC)
    for event in api.posted:
        normalized, violations = validate_event(
            event, now=receipt, max_age=timedelta(days=7), max_future=timedelta(minutes=5)
        )
        assert violations == [] and normalized is not None
        assert normalized["event_id"] == event["event_id"]


def test_an_event_id_in_the_source_is_kept():
    assert (
        to_schema_event(dict(TAOBAO_LINE, event_id="client-1"), "2026-06-01T11:00:00.000Z")["event_id"]
        == "client-1"
    )


def test_a_second_replay_of_the_same_file_sends_the_same_ids_with_new_times(tmp_path):
    # Given a file replayed twice, an hour apart / Then the ids repeat (so the pipeline dedupes them)
    path = tmp_path / "events.jsonl"
    write_jsonl(generate_events(50, users=5, items=20, seed=2), path)
    first, second = FakeApi(), FakeApi()
    run(path, first)
    run(path, second, clock=FakeClock(NOW + 3600))
    assert [e["event_id"] for e in first.posted] == [e["event_id"] for e in second.posted]
    assert first.posted[-1]["timestamp"] != second.posted[-1]["timestamp"]


# --- Re-timing ----------------------------------------------------------------------------------------


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def test_fast_replay_keeps_order_and_gaps_and_ends_at_the_start_time():
    # Given events 0 s, 10 s and 70 s apart in 2017, replayed at speed 0 with a wide span
    source = [
        dict(TAOBAO_LINE, timestamp=t, source_line=i)
        for i, t in enumerate(["2017-11-24T16:00:00Z", "2017-11-24T16:00:10Z", "2017-11-24T16:01:10Z"])
    ]
    api = FakeApi()
    run(source, api, speed=0, span_seconds=3600)
    times = [_seconds(e["timestamp"]) for e in api.posted]
    # Then the gaps are unchanged (the source is shorter than the span) and the last event is "now"
    assert [t - times[0] for t in times] == [0, 10, 70]
    assert times[-1] == NOW


def test_fast_replay_squeezes_a_long_source_into_the_span_keeping_proportions():
    # Given the real data's shape: 8 days of events, squeezed into one hour
    source = [
        dict(TAOBAO_LINE, timestamp=t, source_line=i)
        for i, t in enumerate(["2017-11-24T16:00:00Z", "2017-11-26T16:00:00Z", "2017-12-02T16:00:00Z"])
    ]
    api = FakeApi()
    run(source, api, speed=0, span_seconds=3600)
    times = [_seconds(e["timestamp"]) for e in api.posted]
    # 8 days = 691,200 s -> 3,600 s, scale 192: 2 days (172,800 s) -> 900 s, 6 days -> 2,700 s
    assert [t - times[0] for t in times] == [0, 900, 3600]
    assert NOW - 7 * 86400 < times[0] and times[-1] <= NOW


def test_paced_replay_scales_gaps_by_speed_and_sends_each_event_when_due():
    # Given events 0, 3600 and 7200 source seconds apart at --speed 3600
    source = [
        dict(TAOBAO_LINE, timestamp=t, source_line=i)
        for i, t in enumerate(["2017-11-24T16:00:00Z", "2017-11-24T17:00:00Z", "2017-11-24T18:00:00Z"])
    ]
    clock = FakeClock()
    api = FakeApi(clock=clock)
    summary = run(source, api, clock=clock, speed=3600)
    # Then they are stamped 1 s apart from the replay start, and no request goes out before its events' time
    assert [_seconds(e["timestamp"]) - NOW for e in api.posted] == [0, 1, 2]
    for request in api.requests:
        assert all(_seconds(e["timestamp"]) <= request["time"] for e in request["events"])
    assert summary.elapsed_seconds == 2


def test_paced_replay_batches_events_due_close_together():
    # Given 100 events one source second apart at --speed 100 (0.01 s apart), linger 0.2 s
    source = generate_events(100, users=3, items=10, seed=1)
    for i, event in enumerate(source):
        event["timestamp"] = f"2017-11-24T16:{i // 60:02d}:{i % 60:02d}Z"
    clock = FakeClock()
    api = FakeApi(clock=clock)
    run(source, api, clock=clock, speed=100, linger_seconds=0.2)
    sizes = [len(r["events"]) for r in api.requests]
    # Then about 21 events share a request (0.2 s of events, both ends included), not one per request
    assert sum(sizes) == 100
    assert max(sizes) == 21 and len(sizes) == 5


def test_retimer_rejects_a_span_beyond_ingest_max_age():
    with pytest.raises(ValueError):
        Retimer.for_speed(0, 0.0, 10.0, now=NOW, span_seconds=7 * 86400)


def test_real_data_replays_within_ingest_window():
    # Given the shared Taobao file's first and last times (README) / When squeezed at speed 0
    first = datetime.fromisoformat("2017-11-24T16:00:17Z").timestamp()
    last = datetime.fromisoformat("2017-12-02T09:05:51Z").timestamp()
    retimer = Retimer.for_speed(0, first, last, now=NOW, span_seconds=3600)
    # Then every event lands in the last hour: nothing is too old, nothing is in the future
    assert retimer(first) == NOW - 3600 and retimer(last) == NOW


# --- Batching, summary and retries ---------------------------------------------------------------------


def test_batches_are_at_most_the_batch_size_and_carry_the_api_key():
    api = FakeApi()
    summary = run(generate_events(1234, users=20, items=50, seed=5), api, batch_size=500)
    assert [len(r["events"]) for r in api.requests] == [500, 500, 234]
    assert all(r["url"] == "http://api.test/prod/v1/events" for r in api.requests)
    assert all(r["headers"]["x-api-key"] == KEY for r in api.requests)
    assert (summary.sent, summary.accepted, summary.requests, summary.failed) == (1234, 1234, 3, 0)


def test_batch_size_above_the_api_limit_is_refused():
    with pytest.raises(ValueError):
        run([TAOBAO_LINE], FakeApi(), batch_size=501)


def test_summary_counts_rejections_by_reason():
    # Given two users whose events the API rejects for different fields
    source = [
        dict(TAOBAO_LINE, user_id=u, source_line=i) for i, u in enumerate(["a", "bad1", "bad2", "bad1", "b"])
    ]
    api = FakeApi(reject={"bad1": "item_id", "bad2": "category"})
    summary = run(source, api)
    assert summary.accepted == 2
    assert summary.rejected == {"item_id: is invalid": 2, "category: is invalid": 1}
    assert summary.to_dict()["rejected"] == 3
    assert summary.failed == 0 and summary.retries == 0


def test_failed_events_are_retried_alone_until_stored():
    source = generate_events(10, users=3, items=10, seed=1)
    flaky = {event_id_for(source[3]), event_id_for(source[7])}
    clock = FakeClock()
    api = FakeApi(fail_first_try=flaky, clock=clock)
    summary = run(source, api, clock=clock)
    # Then the second request carries only the two failed events, and all ten end up accepted
    assert [len(r["events"]) for r in api.requests] == [10, 2]
    assert {e["event_id"] for e in api.requests[1]["events"]} == flaky
    assert (summary.accepted, summary.failed, summary.retries, summary.requests) == (10, 0, 1, 2)
    assert len(clock.sleeps) == 1


def test_throttling_and_unavailability_are_retried_with_backoff():
    clock = FakeClock()
    api = FakeApi(statuses=[429, 503], clock=clock)
    summary = run(generate_events(5, users=2, items=5, seed=1), api, clock=clock)
    assert summary.accepted == 5 and summary.requests == 3 and summary.retries == 2
    assert clock.sleeps == [1.0, 1.0]  # the API's Retry-After


def test_events_still_failing_after_the_last_attempt_are_counted_failed():
    api = FakeApi(statuses=[503] * 3)
    summary = run(generate_events(4, users=2, items=5, seed=1), api, max_attempts=3)
    assert (summary.accepted, summary.failed, summary.requests) == (0, 4, 3)


def test_network_errors_are_retried():
    calls = []

    def flaky(url, headers, body, timeout):
        calls.append(url)
        if len(calls) == 1:
            raise TransportError("connection reset")
        return FakeApi()(url, headers, body, timeout)

    summary = run(generate_events(3, users=2, items=5, seed=1), flaky)
    assert summary.accepted == 3 and summary.requests == 2


def test_a_request_too_large_is_halved_and_each_half_sent():
    # Given an API that refuses the first request as too large (413)
    api = FakeApi(statuses=[413])
    summary = run(generate_events(3, users=2, items=5, seed=1), api)
    # Then the events go again in two smaller requests, and all are stored
    assert [len(r["events"]) for r in api.requests] == [3, 1, 2]
    assert (summary.accepted, summary.rejected_total, summary.requests) == (3, 0, 3)


def test_a_single_event_too_large_is_rejected_without_retry():
    api = FakeApi(statuses=[413])
    summary = run(generate_events(1, users=1, items=5, seed=1), api)
    assert summary.requests == 1 and summary.rejected == {"event: busy": 1}


def test_a_refused_api_key_stops_the_replay():
    with pytest.raises(Exception, match="API key refused"):
        run([TAOBAO_LINE], FakeApi(statuses=[403]))


def test_an_event_the_answer_does_not_mention_is_not_counted_stored_but_resent():
    # Given an answer that mentions indexes 0 and 2 only
    def silent_on_one(url, headers, body, timeout):
        events = json.loads(body)["events"]
        if len(events) == 1:
            return FakeApi()(url, headers, body, timeout)
        answer = {
            "accepted": [{"index": 0, "event_id": events[0]["event_id"]}],
            "rejected": [{"index": 2, "errors": [{"field": "user_id", "rule": "x"}]}],
            "failed": [],
        }
        return 200, {}, json.dumps(answer).encode()

    summary = run(generate_events(3, users=2, items=5, seed=1), silent_on_one)
    # Then index 1 is sent again, alone, and stored
    assert (summary.accepted, summary.rejected, summary.requests) == (2, {"user_id: x": 1}, 2)


class IngestLogicApi:
    """A transport that answers with ingest's own logic; the stream refuses chosen event ids once."""

    def __init__(self, clock: FakeClock, refuse_once: Collection[str] = frozenset()) -> None:
        self.clock = clock
        self.refuse_once = set(refuse_once)
        self.limits = Limits(
            max_body_bytes=1 << 20, max_events=500, max_age=timedelta(days=7), max_future=timedelta(minutes=5)
        )
        self.bodies: list[list[dict]] = []

    def __call__(self, url: str, headers: dict[str, str], body: bytes, timeout: float):
        raw = parse_request(body, "application/json", self.limits)
        self.bodies.append(raw)
        batch = validate_batch(raw, now=datetime.fromtimestamp(self.clock(), UTC), limits=self.limits)
        failures = {
            pos: "throttled" for pos, e in enumerate(batch.events) if e["event_id"] in self.refuse_once
        }
        self.refuse_once -= {batch.events[pos]["event_id"] for pos in failures}
        status, document, extra = build_response(batch, failures, "req-1")
        return status, extra, encode_json(document).encode()


def test_replay_reads_ingests_own_answers_and_retries_only_the_refused_events():
    # Given ingest's logic, one invalid event and a stream that refuses two valid events once
    clock = FakeClock()
    source = generate_events(20, users=4, items=10, seed=8)
    source[5]["user_id"] = "not valid!"
    refused = {event_id_for(source[2]), event_id_for(source[11])}
    api = IngestLogicApi(clock, refused)
    summary = run(source, api, clock=clock)
    # Then the invalid one is rejected by field, the two are resent alone, and the rest is stored once
    assert summary.accepted == 19 and summary.failed == 0
    (reason,) = summary.rejected
    assert reason.startswith("user_id: ") and summary.rejected[reason] == 1
    assert [len(b) for b in api.bodies] == [20, 2]
    assert {e["event_id"] for e in api.bodies[1]} == refused


def test_a_batch_ingest_rejects_entirely_is_counted_by_reason_not_resent():
    # Given events ingest rejects (400 validation_failed still answers by index)
    clock = FakeClock()
    source = [dict(TAOBAO_LINE, event_type="teleport", source_line=i) for i in range(3)]
    api = IngestLogicApi(clock)
    summary = run(source, api, clock=clock)
    assert summary.requests == 1 and summary.accepted == 0
    assert sum(summary.rejected.values()) == 3
    assert all(reason.startswith("event_type: ") for reason in summary.rejected)


def test_a_stream_outage_answer_is_retried_after_its_retry_after():
    # Given a stream that refuses every event of the first request (ingest answers 503 by index)
    clock = FakeClock()
    source = generate_events(4, users=2, items=5, seed=3)
    api = IngestLogicApi(clock, {event_id_for(e) for e in source})
    summary = run(source, api, clock=clock)
    assert summary.accepted == 4 and summary.requests == 2
    assert clock.sleeps and clock.sleeps[0] >= 1


# --- Endpoint file, CLI and real HTTP ---------------------------------------------------------------------


def test_endpoint_file_gives_base_url_and_producer_key(tmp_path):
    path = tmp_path / "endpoint.json"
    path.write_text(
        json.dumps({"base_url": "http://127.0.0.1:1/", "api_keys": {"producer": "p", "reader": "r"}})
    )
    assert load_endpoint(path) == ("http://127.0.0.1:1/", "p")


class _IngestHandler(BaseHTTPRequestHandler):
    received: list[tuple[str, str, int]] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        events = json.loads(self.rfile.read(int(self.headers["content-length"])))["events"]
        type(self).received.append((self.path, self.headers["x-api-key"], len(events)))
        accepted = [{"index": i, "event_id": event["event_id"]} for i, event in enumerate(events)]
        body = json.dumps({"accepted": accepted, "rejected": [], "failed": []}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_cli_replays_a_file_over_http_with_the_endpoint_file(tmp_path, capsys):
    # Given a local HTTP server and an endpoint file pointing at it
    server = ThreadingHTTPServer(("127.0.0.1", 0), _IngestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = tmp_path / "endpoint.json"
        endpoint.write_text(
            json.dumps(
                {
                    "base_url": f"http://127.0.0.1:{server.server_port}",
                    "api_keys": {"producer": "k1", "reader": "k2"},
                }
            )
        )
        events = tmp_path / "events.jsonl"
        write_jsonl(generate_events(120, users=10, items=30, seed=9), events)
        # When the CLI replays it in batches of 50
        code = main(
            [str(events), "--endpoint-file", str(endpoint), "--batch-size", "50", "--json", "--no-progress"]
        )
    finally:
        server.shutdown()
        server.server_close()
    # Then three requests reached /v1/events with the key, and the JSON summary says so
    assert code == 0
    assert _IngestHandler.received == [
        ("/v1/events", "k1", 50),
        ("/v1/events", "k1", 50),
        ("/v1/events", "k1", 20),
    ]
    summary = json.loads(capsys.readouterr().out)
    assert (summary["sent"], summary["accepted"], summary["requests"], summary["failed"]) == (120, 120, 3, 0)
