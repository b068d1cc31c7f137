"""The Python producer client: batching, idempotent ids, retries with backoff, and the API's answers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from ingest import handler as ingest_handler
from streamrec_core import constants as c
from streamrec_core import routes
from streamrec_core.schema import decode_record

from local_emulator.worker_main import LambdaContext
from streamrec_client import Producer, StreamrecClient, StreamrecError, TransportError, client
from tests.unit.ingest_fakes import (
    FakeClock,
    FakeKinesis,
    fail_all,
    fail_positions,
    ingest_config,
    proxy_event,
)

BASE = "https://api.example/prod"


def events(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"event_type": "view", "user_id": f"u{i % 7}", "item_id": f"i{i}", **extra} for i in range(n)]


Answer = Callable[[list[dict[str, Any]]], tuple[int, dict[str, str], dict[str, Any]]]


def all_accepted(batch: list[dict[str, Any]]) -> tuple[int, dict[str, str], dict[str, Any]]:
    return (
        200,
        {},
        {
            "accepted": [{"index": i, "event_id": e["event_id"]} for i, e in enumerate(batch)],
            "rejected": [],
            "failed": [],
        },
    )


@dataclass
class ScriptedApi:
    """A transport answering request by request from `answers` (then accepting everything)."""

    answers: list[Answer | Exception] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, url: str, headers: Mapping[str, str], body: bytes, timeout: float):
        batch = json.loads(body)["events"]
        self.requests.append({"url": url, "headers": dict(headers), "events": batch})
        answer = (
            self.answers[len(self.requests) - 1] if len(self.requests) <= len(self.answers) else all_accepted
        )
        if isinstance(answer, Exception):
            raise answer
        status, headers_out, payload = answer(batch)
        return status, headers_out, json.dumps(payload).encode()


def status_only(status: int, headers: dict[str, str] | None = None, code: str = "x") -> Answer:
    return lambda batch: (status, headers or {}, {"error": {"code": code, "message": code}})


def client_for(api: Any, sleeps: list[float] | None = None, **options: Any) -> StreamrecClient:
    record = sleeps if sleeps is not None else []
    return StreamrecClient(BASE, "key-1", transport=api, sleep=record.append, rand=lambda: 1.0, **options)


# --- batching and ids ---------------------------------------------------------------------------------
def test_events_are_sent_in_batches_of_at_most_500() -> None:
    api = ScriptedApi()
    result = client_for(api).send(events(1200))
    assert [len(r["events"]) for r in api.requests] == [500, 500, 200]
    assert len(result.accepted) == 1200 and result.ok and result.requests == 3


def test_batches_also_respect_the_byte_limit() -> None:
    api = ScriptedApi()
    client_for(api, max_batch_bytes=10_000).send(events(20, page_url="p" * 1000))
    sizes = [len(json.dumps({"events": r["events"]}, separators=(",", ":"))) for r in api.requests]
    assert len(api.requests) > 1 and all(size <= 10_000 for size in sizes)
    assert sum(len(r["events"]) for r in api.requests) == 20


def test_every_event_gets_a_uuid_event_id_and_the_callers_dicts_are_untouched() -> None:
    api = ScriptedApi()
    given = events(3) + [{"event_type": "click", "user_id": "u", "event_id": "mine"}]
    client_for(api).send(given)
    ids = [e["event_id"] for e in api.requests[0]["events"]]
    assert ids[3] == "mine" and len(set(ids)) == 4 and all(len(i) == 36 for i in ids[:3])
    assert "event_id" not in given[0]


def test_requests_carry_the_api_key_and_json_content_type() -> None:
    api = ScriptedApi()
    client_for(api).send(events(1))
    request = api.requests[0]
    assert request["url"] == "https://api.example/prod/v1/events"
    assert request["headers"]["x-api-key"] == "key-1"
    assert request["headers"]["Content-Type"] == "application/json"


def test_the_client_speaks_the_route_table_s_events_route() -> None:
    # The client is standard library only, so it spells the contract itself: the same as the API's.
    assert (client.EVENTS_METHOD, client.EVENTS_PATH) == (routes.EVENTS.method, routes.EVENTS.path)
    assert routes.EVENTS.url(BASE) == StreamrecClient(BASE, "k").url
    assert client.API_KEY_HEADER == c.API_KEY_HEADER
    assert client.DEFAULT_MAX_BATCH_EVENTS == c.MAX_EVENTS_PER_REQUEST


# --- retries --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "failure", [status_only(503), status_only(429), status_only(502), TransportError("timed out")]
)
def test_retryable_answers_resend_the_same_events_with_the_same_ids(failure: Any) -> None:
    api = ScriptedApi([failure, failure])
    sleeps: list[float] = []
    result = client_for(api, sleeps).send(events(5))
    assert result.ok and len(api.requests) == 3
    first, last = api.requests[0]["events"], api.requests[2]["events"]
    assert first == last  # identical ids: the API counts a resent event once
    assert sleeps == [0.2, 0.4]  # exponential backoff (jitter pinned at its maximum)
    assert (result.requests, result.retries) == (3, 2)


def test_backoff_honours_retry_after_and_is_capped() -> None:
    answers: list[Answer | Exception] = [status_only(503, {"Retry-After": "3"}), *[status_only(503)] * 8]
    api = ScriptedApi(answers)
    sleeps: list[float] = []
    client_for(api, sleeps, max_attempts=10, max_delay=5.0).send(events(1))
    assert sleeps[0] == 3.0
    assert max(sleeps) == 5.0 and sleeps[-1] == 5.0


def test_jitter_spreads_the_delay_below_the_exponential_bound() -> None:
    api = ScriptedApi([status_only(503)])
    sleeps: list[float] = []
    StreamrecClient(BASE, "k", transport=api, sleep=sleeps.append, rand=lambda: 0.25).send(events(1))
    assert sleeps == [0.05]


def test_only_failed_events_are_resent_and_rejected_ones_are_reported_not_resent() -> None:
    def partial(batch):
        return (
            200,
            {},
            {
                "accepted": [{"index": 0, "event_id": batch[0]["event_id"]}],
                "rejected": [
                    {"index": 1, "errors": [{"field": "user_id", "rule": "r", "message": "user_id: r"}]}
                ],
                "failed": [
                    {"index": 2, "event_id": batch[2]["event_id"], "reason": "throttled", "retryable": True}
                ],
            },
        )

    api = ScriptedApi([partial])
    result = client_for(api).send(events(3))
    assert [e["event_id"] for e in api.requests[1]["events"]] == [api.requests[0]["events"][2]["event_id"]]
    assert len(result.accepted) == 2
    assert [r.event["item_id"] for r in result.rejected] == ["i1"] and result.rejected[0].errors[0][
        "field"
    ] == "user_id"
    assert not result.ok


def test_all_rejected_batch_reports_each_event() -> None:
    def invalid(batch):
        rejected = [
            {"index": i, "errors": [{"field": "x", "rule": "unknown field", "message": "x: unknown field"}]}
            for i in range(len(batch))
        ]
        return (
            400,
            {},
            {
                "accepted": [],
                "rejected": rejected,
                "failed": [],
                "error": {"code": "validation_failed", "message": "m"},
            },
        )

    result = client_for(ScriptedApi([invalid])).send(events(2))
    assert len(result.rejected) == 2 and result.accepted == [] and result.requests == 1


def test_too_large_batches_are_split_in_half() -> None:
    api = ScriptedApi([status_only(413, code="payload_too_large")])
    result = client_for(api).send(events(8))
    assert [len(r["events"]) for r in api.requests] == [8, 4, 4]
    assert len(result.accepted) == 8


def test_events_still_failing_after_every_attempt_are_returned_as_failed() -> None:
    api = ScriptedApi([status_only(503)] * 10)
    result = client_for(api, max_attempts=3).send(events(2))
    assert len(api.requests) == 3
    assert [f.reason for f in result.failed] == ["HTTP 503", "HTTP 503"]
    with pytest.raises(StreamrecError):
        result.raise_for_failures()


@pytest.mark.parametrize("status", [403, 401, 404, 415])
def test_errors_resending_cannot_fix_raise(status: int) -> None:
    api = ScriptedApi([status_only(status, code="forbidden")])
    with pytest.raises(StreamrecError) as info:
        client_for(api).send(events(1))
    assert info.value.status == status and len(api.requests) == 1


# --- against the real ingest handler, in process ---------------------------------------------------------
@pytest.fixture
def stream() -> Iterator[FakeKinesis]:
    fake = FakeKinesis()
    clock = FakeClock()
    ingest_handler.configure(
        ingest_config(put_retry_budget_seconds=0.2), fake, sleep=clock.sleep, clock=clock
    )
    yield fake
    ingest_handler.reset()


def handler_transport(lose_responses: int = 0) -> Callable[..., tuple[int, Mapping[str, str], bytes]]:
    """Calls the ingest handler; the first `lose_responses` answers are lost after the work was done."""
    lost = [lose_responses]

    def transport(url: str, headers: Mapping[str, str], body: bytes, timeout: float):
        event = proxy_event(body.decode("utf-8"))
        event["headers"].update(headers)
        response = ingest_handler.handler(event, LambdaContext("ingest"))
        if lost[0]:
            lost[0] -= 1
            raise TransportError("read timed out")
        return response["statusCode"], response["headers"], response["body"].encode()

    return transport


def test_client_against_the_handler_gets_every_event_stored_despite_throttling(stream: FakeKinesis) -> None:
    # Given a stream that throttles some entries on the first calls and everything on the next
    stream.script = [fail_positions(0, 3, 5)] + [fail_all()] * 6
    # When the client sends a batch
    result = StreamrecClient(BASE, "k", transport=handler_transport(), sleep=lambda s: None).send(events(10))
    # Then every event ends up stored exactly once, with the ids the client chose
    assert result.ok and len(result.accepted) == 10
    stored = [decode_record(r["Data"])["event_id"] for r in stream.stored]
    assert sorted(stored) == sorted(result.accepted) and len(set(stored)) == 10


def test_resend_after_a_lost_response_reuses_the_event_ids(stream: FakeKinesis) -> None:
    # Given the first answer is lost after the events were stored
    result = StreamrecClient(
        BASE, "k", transport=handler_transport(lose_responses=1), sleep=lambda s: None
    ).send(events(4))
    # Then the resend stores the same event ids again, which downstream deduplication counts once
    stored = [decode_record(r["Data"])["event_id"] for r in stream.stored]
    assert result.ok and len(stored) == 8 and len(set(stored)) == 4


# --- Producer ---------------------------------------------------------------------------------------------
def test_producer_flushes_at_the_threshold_and_on_exit() -> None:
    api = ScriptedApi()
    with Producer(client_for(api), flush_at=3) as producer:
        ids = [producer.add(e) for e in events(7)]
        assert [len(r["events"]) for r in api.requests] == [3, 3]
    assert [len(r["events"]) for r in api.requests] == [3, 3, 1]
    assert producer.result.accepted == ids
