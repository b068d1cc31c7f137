"""The local REST API gateway's request pipeline, driven directly (no sockets): route matching as API
Gateway does it, usage-plan limits, the mapping of Lambda proxy responses, gateway responses, and the
local admin routes."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from streamrec_core.http import GATEWAY_ERRORS, gateway_response

from local_emulator.gateway import (
    ApiGateway,
    ApiKey,
    GatewayResponse,
    Method,
    RestApiModel,
    TokenBucket,
    UsagePlan,
)
from local_emulator.testing import FakeClock
from local_emulator.workers import Throttled

API_ID = "api123"


def _method(path, verb="GET", key_required=False):
    return Method(f"id-{path}", path, verb, key_required, "AWS_PROXY", "fn")


def _model(keys=()):
    paths = {
        "/v1/users/{user_id}/recommendations": ["GET"],
        "/v1/users/me/recommendations": ["GET"],
        "/v1/files/{proxy+}": ["ANY"],
        "/v1/events": ["POST"],
    }
    methods = {
        path: {verb: _method(path, verb, key_required=True) for verb in verbs}
        for path, verbs in paths.items()
    }
    return RestApiModel(API_ID, "api", {"dev": {}}, methods, {k.value: k for k in keys}, [])


def _plan(rate=None, burst=None, quota=None, stages=((API_ID, "dev"),), method_throttles=None):
    return UsagePlan(
        "plan", set(stages), rate, burst, method_throttles or {}, quota, 86_400.0 if quota else None
    )


class _Recorded(ApiGateway):
    calls: list[dict[str, Any]]


def _no_function(*args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    raise AssertionError("an admin route invoked a function")


def _gateway(model, responder=None, clock=None):
    calls: list[dict[str, Any]] = []

    def invoke(name, event, wait_s=None):
        calls.append(event)
        return (responder or (lambda e: ({"statusCode": 200, "body": "ok"}, None)))(event)

    gateway = _Recorded(model, invoke, clock=clock or FakeClock())
    gateway.calls = calls
    return gateway


@pytest.fixture
def key():
    return ApiKey("k1", "v" * 40, "producer", True, [_plan()])


def _get(gateway, path, key_value=None, verb="GET", body=b""):
    headers = [("x-api-key", key_value)] if key_value else []
    try:
        return gateway.handle(verb, path, headers, body, "127.0.0.1")
    finally:
        gateway.stop()


def test_literal_segment_wins_over_path_parameter(key):
    """API Gateway prefers /users/me over /users/{user_id} for the path /users/me."""
    gateway = _gateway(_model([key]))
    status, _, _ = _get(gateway, "/dev/v1/users/me/recommendations", key.value)
    assert status == 200
    assert gateway.calls[0]["resource"] == "/v1/users/me/recommendations"
    assert gateway.calls[0]["pathParameters"] is None


def test_greedy_proxy_parameter_takes_the_rest_of_the_path(key):
    gateway = _gateway(_model([key]))
    status, _, _ = _get(gateway, "/dev/v1/files/a/b/c.txt", key.value, verb="DELETE")
    assert status == 200
    assert gateway.calls[0]["pathParameters"] == {"proxy": "a/b/c.txt"}
    assert gateway.calls[0]["httpMethod"] == "DELETE"


def test_wrong_verb_on_a_known_resource_is_missing_authentication_token(key):
    gateway = _gateway(_model([key]))
    status, _, body = _get(gateway, "/dev/v1/events", key.value, verb="GET")
    assert (status, json.loads(body)) == (403, {"message": "Missing Authentication Token"})


def test_disabled_key_is_forbidden():
    disabled = ApiKey("k2", "d" * 40, "old", False, [_plan()])
    gateway = _gateway(_model([disabled]))
    status, _, _ = _get(gateway, "/dev/v1/events", disabled.value, verb="POST")
    assert status == 403
    assert gateway.calls == []


def test_quota_exhaustion_answers_limit_exceeded():
    """A usage plan quota refuses requests beyond its limit with 429 "Limit Exceeded"."""
    limited = ApiKey("k3", "q" * 40, "quota", True, [_plan(quota=2)])
    gateway = _gateway(_model([limited]))
    statuses = [
        gateway.handle("POST", "/dev/v1/events", [("x-api-key", limited.value)], b"", "ip")[0]
        for _ in range(3)
    ]
    gateway.stop()
    assert statuses == [200, 200, 429]


def test_method_throttle_overrides_the_plan_throttle():
    """Per-method throttles of a plan's API stage ("/path/VERB") apply instead of the plan's own."""
    plan = _plan(rate=1000, burst=1000, method_throttles={(API_ID, "/v1/events/POST"): (0.001, 1)})
    throttled = ApiKey("k4", "t" * 40, "t", True, [plan])
    gateway = _gateway(_model([throttled]))
    first = gateway.handle("POST", "/dev/v1/events", [("x-api-key", throttled.value)], b"", "ip")[0]
    second = gateway.handle("POST", "/dev/v1/events", [("x-api-key", throttled.value)], b"", "ip")[0]
    other = gateway.handle(
        "GET", "/dev/v1/users/u1/recommendations", [("x-api-key", throttled.value)], b"", "ip"
    )[0]
    gateway.stop()
    assert (first, second, other) == (200, 429, 200)


def test_token_bucket_refills_at_its_rate():
    """Throttling is a token bucket: `burst` requests at once, then `rate` per second."""
    clock = FakeClock()
    bucket = TokenBucket(rate=2, burst=2, clock=clock)
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.advance(0.5)
    assert [bucket.take(), bucket.take()] == [True, False]


def test_binary_body_is_base64_encoded_in_the_event(key):
    gateway = _gateway(_model([key]))
    _get(gateway, "/dev/v1/events", key.value, verb="POST", body=b"\xff\x00binary")
    event = gateway.calls[0]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\x00binary"


@pytest.mark.parametrize(
    "response",
    [
        {"statusCode": "abc"},
        {"body": "no status"},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "headers": ["not", "a", "map"]},
        {"statusCode": 200, "isBase64Encoded": True, "body": "***"},
        ["not", "an", "object"],
    ],
    ids=[
        "status-not-a-number",
        "no-status",
        "body-not-string",
        "headers-not-map",
        "bad-base64",
        "not-object",
    ],
)
def test_malformed_proxy_responses_are_502(key, response):
    """API Gateway answers 502 when the Lambda proxy response does not have the required shape."""
    gateway = _gateway(_model([key]), responder=lambda event: (response, None))
    status, _, body = _get(gateway, "/dev/v1/events", key.value, verb="POST")
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})


def test_base64_proxy_response_body_is_decoded(key):
    encoded = base64.b64encode(b"\x89PNG").decode()
    gateway = _gateway(
        _model([key]),
        responder=lambda e: ({"statusCode": 200, "body": encoded, "isBase64Encoded": True}, None),
    )
    status, _, body = _get(gateway, "/dev/v1/events", key.value, verb="POST")
    assert (status, body) == (200, b"\x89PNG")


# --- gateway responses: what the stack deploys, rendered as API Gateway renders them -------------------
def _stack_gateway_responses() -> dict[str, GatewayResponse]:
    """The gateway responses the streamrec stack installs (streamrec_core.http.GATEWAY_ERRORS)."""
    responses = {}
    for response_type in GATEWAY_ERRORS:
        status, template, headers = gateway_response(response_type)
        responses[response_type] = GatewayResponse(status, headers, {"application/json": template})
    return responses


def test_usage_plan_throttle_answers_in_the_shared_shape_with_retry_after():
    throttled = ApiKey("k5", "s" * 40, "slow", True, [_plan(rate=0.001, burst=1)])
    model = _model([throttled])
    model.gateway_responses = _stack_gateway_responses()
    gateway = _gateway(model)
    gateway.handle("POST", "/dev/v1/events", [("x-api-key", throttled.value)], b"", "ip")
    status, headers, body = _get(gateway, "/dev/v1/events", throttled.value, verb="POST")
    error = json.loads(body)["error"]
    assert status == 429 and dict(headers)["Retry-After"] == "1"
    assert error["code"] == "throttled" and error["request_id"] == dict(headers)["x-amzn-RequestId"]


def test_function_error_falls_back_to_the_default_5xx_response_and_keeps_its_status(key):
    """DEFAULT_5XX carries no status (setting one would change every 5xx): a function error stays 502."""
    model = _model([key])
    model.gateway_responses = _stack_gateway_responses()
    gateway = _gateway(model, responder=lambda e: ({"errorType": "Boom"}, "Unhandled"))
    status, _, body = _get(gateway, "/dev/v1/events", key.value, verb="POST")
    assert status == 502 and json.loads(body)["error"]["code"] == "internal_error"


def test_a_function_at_capacity_answers_503_with_retry_after(key):
    """No free worker within the wait: a throttled invocation, INTEGRATION_FAILURE (503 in the stack)."""
    model = _model([key])
    model.gateway_responses = _stack_gateway_responses()

    def at_capacity(event):
        raise Throttled("function fn is at its concurrency (2)")

    gateway = _gateway(model, responder=at_capacity)
    status, headers, body = _get(gateway, "/dev/v1/events", key.value, verb="POST")
    assert status == 503 and dict(headers)["Retry-After"] == "1"
    assert json.loads(body)["error"]["code"] == "service_unavailable"


# --- local admin routes ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "host", ["127.0.0.1:4566", "localhost:4566", "[::1]:4566", "localhost", "LOCALHOST", "[::1]"]
)
def test_admin_routes_answer_loopback_hosts(host):
    recorded = []

    def admin(verb, path, query, body, headers):
        document = {"path": path, "query": query, "token": headers.get("x-token")}
        return 200, [("Content-Type", "application/json")], json.dumps(document).encode()

    gateway = ApiGateway(_model(), _no_function, admin=admin, on_request=lambda *args: recorded.append(args))
    try:
        headers = [("Host", host), ("X-Token", "t")]
        status, _, body = gateway.handle("GET", "/_local/status?x=1", headers, b"", "127.0.0.1")
    finally:
        gateway.stop()
    # the route gets the request's headers by lower-cased name (a route may require one of its own)
    assert (status, json.loads(body)) == (200, {"path": "status", "query": "x=1", "token": "t"})
    assert recorded == []  # the runtime's own routes are not API traffic: no API Gateway metrics


@pytest.mark.parametrize(
    "host",
    [
        "evil.example", "evil.example:4566", "127.0.0.1.evil.example", None,
        # loopback names followed by something that is not a port
        "localhost:80@evil.example", "localhost:evil.example", "[::1]evil.example", "localhost:", "::1",
    ],
)  # fmt: skip
def test_admin_routes_refuse_other_host_headers(host):
    """A page on another site that rebinds its DNS name to 127.0.0.1 sends its own name as Host."""
    gateway = ApiGateway(_model(), _no_function, admin=lambda *a: (200, [], b"state"))
    headers = [("Host", host)] if host else []
    try:
        status, _, body = gateway.handle("GET", "/_local/status", headers, b"", "127.0.0.1")
    finally:
        gateway.stop()
    assert status == 403 and b"state" not in body


@pytest.mark.parametrize(
    ("target", "hosts"),
    [
        ("/_local/status", ["localhost", "evil.example"]),  # RFC 9112: more than one Host is refused
        ("/_local/status", ["evil.example", "localhost"]),
        ("http://evil.example/_local/status", ["localhost"]),  # the absolute target's authority counts
    ],
)
def test_admin_routes_refuse_a_second_host_or_an_absolute_target_elsewhere(target, hosts):
    gateway = ApiGateway(_model(), _no_function, admin=lambda *a: (200, [], b"state"))
    try:
        status, _, body = gateway.handle("GET", target, [("Host", h) for h in hosts], b"", "127.0.0.1")
    finally:
        gateway.stop()
    assert status == 403 and b"state" not in body
