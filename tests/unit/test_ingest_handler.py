"""The ingest handler end to end with API Gateway proxy events (tests/fixtures/ingest) and a fake stream."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from ingest import handler as ingest_handler
from streamrec_core import constants as c
from streamrec_core.env import ConfigError
from streamrec_core.schema import decode_record

from local_emulator.worker_main import LambdaContext
from tests.unit.ingest_fakes import (
    FakeClock,
    FakeKinesis,
    emf_metrics,
    fail_all,
    fail_positions,
    ingest_config,
    load_fixture,
    proxy_event,
    raise_error,
)

REQUEST_ID = "77375676-xmpl-4b79-853a-f982474efe18"  # requestContext.requestId of the fixtures


@pytest.fixture
def stream() -> Iterator[FakeKinesis]:
    fake = FakeKinesis()
    clock = FakeClock()
    ingest_handler.configure(ingest_config(), fake, sleep=clock.sleep, clock=clock, rand=lambda: 0.5)
    yield fake
    ingest_handler.reset()


def invoke(event: dict) -> tuple[int, dict, dict]:
    response = ingest_handler.handler(event, LambdaContext("ingest"))
    assert response["headers"]["Content-Type"] == "application/json"
    assert response["isBase64Encoded"] is False
    return response["statusCode"], json.loads(response["body"]), response["headers"]


def stored_events(fake: FakeKinesis) -> list[dict]:
    return [decode_record(r["Data"]) for r in fake.stored]


# --- 2xx ------------------------------------------------------------------------------------------------
def test_single_event_is_stored_and_its_id_returned(stream: FakeKinesis) -> None:
    status, body, _ = invoke(load_fixture("single_event.json"))
    assert status == 200
    assert body["accepted"] == [{"index": 0, "event_id": "5b9c1f3e-2a4d-4e8f-9a1b-7c6d5e4f3a21"}]
    assert body["request_id"] == REQUEST_ID
    [record] = stream.stored
    assert record["PartitionKey"] == "u-1"
    event = decode_record(record["Data"])
    assert event["event_id"] == "5b9c1f3e-2a4d-4e8f-9a1b-7c6d5e4f3a21" and event["category"] == "shoes"
    assert event["received_at"].endswith("Z") and event["schema_version"] == 1


def test_mixed_batch_stores_the_valid_events_once_and_answers_by_index(stream: FakeKinesis) -> None:
    # Given a batch: valid, invalid user_id, valid purchase, a repeat of index 0
    status, body, _ = invoke(load_fixture("batch_mixed.json"))
    # Then one PutRecords call stores the two distinct valid events
    assert status == 200
    assert len(stream.calls) == 1
    assert [e["event_id"] for e in stored_events(stream)] == ["e-0", "e-2"]
    assert body["counts"] == {"received": 4, "accepted": 3, "rejected": 1, "failed": 0, "duplicates": 1}
    assert body["accepted"][-1] == {"index": 3, "event_id": "e-0", "duplicate_of": 0}
    assert body["rejected"][0]["index"] == 1
    assert body["rejected"][0]["errors"][0]["field"] == "user_id"


def test_event_without_id_gets_one_assigned_and_returned(stream: FakeKinesis) -> None:
    status, body, _ = invoke(load_fixture("base64_body.json"))
    assert status == 200
    assigned = body["accepted"][0]["event_id"]
    assert stored_events(stream)[0]["event_id"] == assigned


def test_json_with_utf8_charset_parameter_is_accepted(stream: FakeKinesis) -> None:
    status, _, _ = invoke(load_fixture("charset_utf8.json"))
    assert status == 200 and len(stream.stored) == 1


# --- 4xx, each with the shared error shape ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("fixture", "status", "code"),
    [
        ("malformed_json.json", 400, "malformed_json"),
        ("nan_price.json", 400, "malformed_json"),
        ("empty_body.json", 400, "malformed_json"),
        ("empty_batch.json", 400, "empty_batch"),
        ("unknown_envelope_key.json", 400, "invalid_envelope"),
        ("events_not_array.json", 400, "invalid_envelope"),
        ("array_body.json", 400, "invalid_envelope"),
        ("unknown_schema_version.json", 400, "validation_failed"),
        ("unknown_field.json", 400, "validation_failed"),
        ("wrong_content_type.json", 415, "unsupported_media_type"),
        ("missing_content_type.json", 415, "unsupported_media_type"),
    ],
)
def test_client_errors_get_a_4xx_in_the_shared_error_shape(
    stream: FakeKinesis, fixture: str, status: int, code: str
) -> None:
    got_status, body, _ = invoke(load_fixture(fixture))
    assert got_status == status
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["error"]["request_id"] == REQUEST_ID
    assert stream.calls == []


def test_unknown_schema_version_is_named_in_the_answer(stream: FakeKinesis) -> None:
    _, body, _ = invoke(load_fixture("unknown_schema_version.json"))
    assert body["error"]["details"] == [
        {
            "index": 0,
            "field": "schema_version",
            "rule": "unsupported schema_version 2; supported: 1",
            "message": "schema_version: unsupported schema_version 2; supported: 1",
        }
    ]


def test_body_over_the_configured_limit_gets_413(stream: FakeKinesis) -> None:
    ingest_handler.configure(ingest_config(max_body_bytes=20_000), stream)
    event = proxy_event(
        {"events": [{"event_type": "view", "user_id": "u", "item_id": "i", "page_url": "p" * 2000}] * 11}
    )
    status, body, _ = invoke(event)
    assert status == 413 and body["error"]["code"] == "payload_too_large"


def test_more_events_than_configured_gets_413(stream: FakeKinesis) -> None:
    ingest_handler.configure(ingest_config(max_events_per_request=3), stream)
    status, body, _ = invoke(proxy_event({"events": [{"event_type": "click", "user_id": "u"}] * 4}))
    assert status == 413 and body["error"]["code"] == "too_many_events"


def test_501_events_get_413_with_the_default_limit(stream: FakeKinesis) -> None:
    status, body, _ = invoke(proxy_event({"events": [{"event_type": "click", "user_id": "u"}] * 501}))
    assert status == 413 and body["error"]["code"] == "too_many_events"


def test_500_events_take_one_putrecords_call(stream: FakeKinesis) -> None:
    events = [{"event_type": "click", "user_id": f"u{i}", "event_id": f"e{i}"} for i in range(500)]
    status, body, _ = invoke(proxy_event({"events": events}))
    assert status == 200 and body["counts"]["accepted"] == 500
    assert len(stream.calls) == 1 and len(stream.stored) == 500


def test_invalid_base64_body_gets_400(stream: FakeKinesis) -> None:
    status, body, _ = invoke(proxy_event("not base64!", isBase64Encoded=True))
    assert status == 400 and body["error"]["code"] == "bad_request"


def test_other_methods_get_405(stream: FakeKinesis) -> None:
    status, body, headers = invoke(proxy_event({"event_type": "click", "user_id": "u"}, httpMethod="GET"))
    assert status == 405 and headers["Allow"] == "POST" and body["error"]["code"] == "method_not_allowed"


# --- the stream failing -------------------------------------------------------------------------------------
def test_partially_failed_put_is_retried_and_answer_is_exact(stream: FakeKinesis) -> None:
    stream.script = [
        fail_positions(0, 2),
        fail_positions(1),
        fail_positions(0),
    ]  # e-2 keeps failing for a while
    events = [{"event_type": "click", "user_id": "u", "event_id": f"e-{i}"} for i in range(4)]
    status, body, _ = invoke(proxy_event({"events": events}))
    assert status == 200
    assert [len(call["Records"]) for call in stream.calls] == [4, 2, 1, 1]
    assert body["counts"]["accepted"] == 4 and body["failed"] == []
    assert sorted(e["event_id"] for e in stored_events(stream)) == ["e-0", "e-1", "e-2", "e-3"]


def test_entries_failing_past_the_budget_are_reported_retryable_not_dropped(stream: FakeKinesis) -> None:
    stream.script = [fail_positions(1)] + [fail_all()] * 1000
    events = [{"event_type": "click", "user_id": "u", "event_id": f"e-{i}"} for i in range(3)]
    status, body, _ = invoke(proxy_event({"events": events}))
    assert status == 200
    assert body["failed"] == [{"index": 1, "event_id": "e-1", "reason": "throttled", "retryable": True}]
    assert [a["index"] for a in body["accepted"]] == [0, 2]


def test_stream_refusing_everything_answers_503_with_retry_after(stream: FakeKinesis) -> None:
    stream.script = [raise_error("ProvisionedThroughputExceededException")] * 1000
    status, body, headers = invoke(load_fixture("batch_mixed.json"))
    assert status == 503
    assert headers["Retry-After"] == "1"
    assert body["error"]["code"] == "stream_unavailable"
    assert [(f["index"], f["reason"]) for f in body["failed"]] == [
        (0, "throttled"),
        (2, "throttled"),
        (3, "throttled"),
    ]
    assert stream.stored == []


def test_missing_stream_answers_503_not_500(stream: FakeKinesis) -> None:
    stream.script = [raise_error("ResourceNotFoundException")]
    status, body, _ = invoke(load_fixture("single_event.json"))
    assert status == 503 and body["failed"][0]["reason"] == "stream_unavailable"


# --- observability ------------------------------------------------------------------------------------------
def test_metrics_count_accepted_rejected_by_field_retried_and_failed(
    stream: FakeKinesis, capsys: pytest.CaptureFixture[str]
) -> None:
    stream.script = [fail_positions(0), fail_all()] + [fail_all()] * 1000
    events = [
        {"event_type": "click", "user_id": "u", "event_id": "e-0"},
        {"event_type": "click", "user_id": "u", "event_id": "e-1"},
        {"event_type": "click", "user_id": "bad id"},
        {"event_type": "view", "user_id": "u"},
    ]
    invoke(proxy_event({"events": events}))
    metrics = emf_metrics(capsys.readouterr().out)
    totals = next(m for m in metrics if m["dimensions"] == {"service": c.INGEST_SERVICE})
    assert totals["namespace"] == c.METRICS_NAMESPACE
    assert totals["metrics"][c.METRIC_EVENTS_ACCEPTED] == 1
    assert totals["metrics"][c.METRIC_EVENTS_REJECTED] == 2
    assert totals["metrics"][c.METRIC_EVENTS_FAILED] == 1
    assert totals["metrics"][c.METRIC_EVENTS_RETRIED] >= 1
    by_field = {
        m["dimensions"][c.METRIC_DIMENSION_FIELD]: m["metrics"][c.METRIC_EVENTS_REJECTED]
        for m in metrics
        if c.METRIC_DIMENSION_FIELD in m["dimensions"]
    }
    assert by_field == {"user_id": 1, "item_id": 1}


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    handler = ingest_handler.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def test_logs_carry_the_request_id_and_no_personal_data(stream: FakeKinesis, log_lines: io.StringIO) -> None:
    invoke(
        proxy_event(
            {
                "events": [
                    {
                        "event_type": "view",
                        "user_id": "alice@example.com",
                        "item_id": "secret-item",
                        "query": "private words",
                    },
                    {"event_type": "view", "user_id": "bob smith"},
                ]
            }
        )
    )
    invoke(proxy_event('{"user_id": "carol", '))
    logs = log_lines.getvalue()
    records = [json.loads(line) for line in logs.splitlines()]
    assert len(records) == 2
    assert all(r["correlation_id"] == REQUEST_ID for r in records)
    assert records[0]["events_accepted"] == 1 and records[1]["error_code"] == "malformed_json"
    for personal in ("alice@example.com", "secret-item", "private words", "bob smith", "carol"):
        assert personal not in logs


def test_cors_origin_is_echoed_only_for_allowed_origins(stream: FakeKinesis) -> None:
    ingest_handler.configure(ingest_config(cors_allowed_origins=("https://shop.example",)), stream)
    allowed = proxy_event({"event_type": "click", "user_id": "u"})
    allowed["headers"]["Origin"] = "https://shop.example"
    _, _, headers = invoke(allowed)
    assert headers["Access-Control-Allow-Origin"] == "https://shop.example"
    # the browser snippet reads Retry-After: only exposed headers reach a page's script
    assert "Retry-After" in headers["Access-Control-Expose-Headers"]
    other = proxy_event({"event_type": "click", "user_id": "u"})
    other["headers"]["origin"] = "https://evil.example"
    _, _, headers = invoke(other)
    assert "Access-Control-Allow-Origin" not in headers


def test_cors_preflight_is_answered_for_allowed_origins_only(stream: FakeKinesis) -> None:
    ingest_handler.configure(ingest_config(cors_allowed_origins=("https://shop.example",)), stream)
    preflight = proxy_event(None, httpMethod="OPTIONS")
    preflight["headers"]["Origin"] = "https://shop.example"
    response = ingest_handler.handler(preflight, LambdaContext("ingest"))
    assert response["statusCode"] == 204
    assert response["headers"]["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "POST" in response["headers"]["Access-Control-Allow-Methods"]
    assert "x-api-key" in response["headers"]["Access-Control-Allow-Headers"].lower()
    preflight["headers"]["Origin"] = "https://evil.example"
    refused = ingest_handler.handler(preflight, LambdaContext("ingest"))
    assert refused["statusCode"] == 204 and "Access-Control-Allow-Origin" not in refused["headers"]
    assert stream.calls == []


# --- API key bound to the route ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "identity",
    [
        {"apiKey": "reader-key-value", "apiKeyId": "r9d8e7"},  # the reader key: accepted by API Gateway
        {"apiKey": None, "apiKeyId": None},  # no key at all (a direct invocation, a misconfigured method)
    ],
    ids=["reader-key", "no-key"],
)
def test_events_need_the_producer_key_and_any_other_gets_403(stream: FakeKinesis, identity: dict) -> None:
    # Given a valid event sent with another key than the producer key
    event = load_fixture("single_event.json")
    event["requestContext"]["identity"].update(identity)
    # When it is posted
    status, body, _ = invoke(event)
    # Then it is refused in the shared error shape, naming the key the route needs, and nothing is stored
    assert status == 403
    assert body["error"]["code"] == "forbidden" and "producer" in body["error"]["message"]
    assert body["error"]["request_id"] == REQUEST_ID
    assert stream.calls == []


def test_the_producer_key_id_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from ingest.config import IngestConfig
    from streamrec_core.routes import KeyRole

    env = {
        c.ENV_STREAM_NAME: "s",
        c.ENV_MAX_EVENT_AGE_SECONDS: "604800",
        c.ENV_MAX_FUTURE_SKEW_SECONDS: "300",
        c.ENV_MAX_BODY_BYTES: "1048576",
        c.ENV_MAX_EVENTS_PER_REQUEST: "500",
        c.ENV_PUT_RETRY_BUDGET_SECONDS: "5",
    }
    with pytest.raises(ConfigError, match=c.ENV_PRODUCER_API_KEY_ID):
        IngestConfig.from_env(env)
    config = IngestConfig.from_env({**env, c.ENV_PRODUCER_API_KEY_ID: "p1"})
    assert config.key_ids == {KeyRole.PRODUCER: "p1"}


# --- configuration ----------------------------------------------------------------------------------------
def test_missing_setting_fails_the_cold_start_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    ingest_handler.reset()
    for name in (
        c.ENV_STREAM_NAME,
        c.ENV_MAX_EVENT_AGE_SECONDS,
        c.ENV_MAX_FUTURE_SKEW_SECONDS,
        c.ENV_MAX_BODY_BYTES,
        c.ENV_MAX_EVENTS_PER_REQUEST,
        c.ENV_PUT_RETRY_BUDGET_SECONDS,
    ):
        monkeypatch.setenv(name, "1000000")
    monkeypatch.setenv(c.ENV_MAX_EVENTS_PER_REQUEST, "500")
    monkeypatch.setenv(c.ENV_PUT_RETRY_BUDGET_SECONDS, "5")
    monkeypatch.delenv(c.ENV_STREAM_NAME)
    with pytest.raises(ConfigError, match=c.ENV_STREAM_NAME):
        ingest_handler.handler(load_fixture("single_event.json"), LambdaContext("ingest"))


def test_retry_budget_beyond_api_gateways_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from ingest.config import IngestConfig

    env = {
        c.ENV_STREAM_NAME: "s",
        c.ENV_MAX_EVENT_AGE_SECONDS: "604800",
        c.ENV_MAX_FUTURE_SKEW_SECONDS: "300",
        c.ENV_MAX_BODY_BYTES: "1048576",
        c.ENV_MAX_EVENTS_PER_REQUEST: "500",
        c.ENV_PUT_RETRY_BUDGET_SECONDS: "30",
    }
    with pytest.raises(ConfigError, match=c.ENV_PUT_RETRY_BUDGET_SECONDS):
        IngestConfig.from_env(env)
    config = IngestConfig.from_env(
        {
            **env,
            c.ENV_PUT_RETRY_BUDGET_SECONDS: "8.5",
            c.ENV_CORS_ALLOWED_ORIGINS: "*",
            c.ENV_PRODUCER_API_KEY_ID: "p1",
        }
    )
    assert config.put_retry_budget_seconds == 8.5 and config.cors_allowed_origins == ("*",)
    with pytest.raises(ConfigError, match=c.ENV_MAX_EVENTS_PER_REQUEST):
        IngestConfig.from_env(
            {**env, c.ENV_PUT_RETRY_BUDGET_SECONDS: "5", c.ENV_MAX_EVENTS_PER_REQUEST: "501"}
        )
