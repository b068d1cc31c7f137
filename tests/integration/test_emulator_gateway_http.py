"""The local REST API gateway over real sockets: how request bodies are framed, what a lying or slow
client gets, and what many clients at once get when the function's workers are all busy.

Every client socket has a timeout: a gateway that hangs fails the test with socket.timeout instead of
hanging the suite.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from http.client import HTTPConnection, HTTPResponse

import pytest
from streamrec_core.http import GATEWAY_ERRORS, gateway_response

from local_emulator.gateway import ApiGateway, ApiKey, GatewayResponse, Method, RestApiModel, UsagePlan
from local_emulator.workers import Throttled

API_ID = "api123"
KEY = "k" * 40
CLIENT_TIMEOUT_S = 20.0


def _model() -> RestApiModel:
    plan = UsagePlan("plan", {(API_ID, "dev")}, None, None, {}, None, None)
    method = Method("r1", "/v1/events", "POST", True, "AWS_PROXY", "ingest")
    responses = {}
    for response_type in GATEWAY_ERRORS:  # as the streamrec stack deploys them
        status, template, headers = gateway_response(response_type)
        responses[response_type] = GatewayResponse(status, headers, {"application/json": template})
    return RestApiModel(
        API_ID,
        "api",
        {"dev": {}},
        {"/v1/events": {"POST": method}},
        {KEY: ApiKey("id1", KEY, "producer", True, [plan])},
        [],
        responses,
    )


class EchoFunction:
    """A function with `workers` workers; each invocation answers its event's body and headers.

    `hold` blocks every invocation until released (workers stay busy); like the runtime, a call waits at
    most `wait_s` for a free worker and then raises Throttled.
    """

    def __init__(self, workers: int = 2) -> None:
        self.events: list[dict] = []
        self.hold = threading.Event()
        self.hold.set()
        self._slots = threading.Semaphore(workers)

    def __call__(self, name: str, event: dict, wait_s: float | None = None) -> tuple[dict, None]:
        if not self._slots.acquire(timeout=wait_s):
            raise Throttled(f"function {name} is at its concurrency")
        try:
            self.events.append(event)
            self.hold.wait()
            body = json.dumps({"body": event["body"], "headers": sorted(event["headers"] or {})})
            return {"statusCode": 200, "body": body}, None
        finally:
            self._slots.release()


@pytest.fixture
def function() -> EchoFunction:
    return EchoFunction()


@pytest.fixture
def gateway(function: EchoFunction) -> Iterator[ApiGateway]:
    running = ApiGateway(_model(), function, invoke_wait_s=0.2, body_timeout_s=1.0)
    running.start()
    yield running
    function.hold.set()
    running.stop()


def _raw(gateway: ApiGateway, request: bytes) -> bytes:
    """Send raw bytes, then read until the server closes or a complete response arrived."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=CLIENT_TIMEOUT_S) as conn:
        conn.sendall(request)
        conn.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
        return received


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def _post_head(extra: str) -> bytes:
    return (
        f"POST /dev/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {KEY}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


def test_chunked_body_is_decoded_and_the_framing_header_dropped(gateway, function):
    # Given a body sent in two chunks (and a trailer), as HTTP clients do when they stream
    body = b'{"event_type": "view", "user_id": "u1", "item_id": "i1"}'
    request = _post_head("Transfer-Encoding: chunked\r\nConnection: close\r\n")
    request += b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\nX-Trailer: t\r\n\r\n" % (
        10,
        body[:10],
        len(body) - 10,
        body[10:],
    )
    # When it is posted
    raw = _raw(gateway, request)
    # Then the function gets the whole body, and no Transfer-Encoding header (API Gateway drops it)
    assert _status(raw) == 200
    answer = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    assert answer["body"] == body.decode()
    assert "transfer-encoding" not in [h.lower() for h in answer["headers"]]


@pytest.mark.parametrize(
    "framing",
    [
        "Content-Length: -1\r\n",
        "Content-Length: abc\r\n",
        "Content-Length: +5\r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: gzip\r\n",
    ],
    ids=["negative", "garbage", "signed", "two-lengths", "length-and-chunked", "unknown-coding"],
)
def test_bad_framing_is_answered_400_at_once_and_never_reaches_the_function(gateway, function, framing):
    # Given a request whose body length cannot be trusted (the client does not even close its side)
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=CLIENT_TIMEOUT_S) as conn:
        conn.sendall(_post_head(framing) + b"hello")
        # Then the answer comes without waiting for more bytes, and says what is wrong
        raw = b""
        while b"\r\n\r\n" not in raw or not raw.endswith(b"}"):
            chunk = conn.recv(65536)
            assert chunk, f"connection closed without an answer: {raw!r}"
            raw += chunk
    assert _status(raw) == 400 and b"Connection: close" in raw
    assert json.loads(raw.split(b"\r\n\r\n", 1)[1])["message"]
    assert function.events == []


def test_a_body_shorter_than_its_content_length_gets_408_not_a_hung_connection(gateway, function):
    # Given a client promising 100 bytes and sending 5, then waiting
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=CLIENT_TIMEOUT_S) as conn:
        conn.sendall(_post_head("Content-Length: 100\r\n") + b"hello")
        raw = b""
        while chunk := conn.recv(65536):
            raw += chunk
    # Then after the gateway's body timeout it answers 408 and closes (the client sees a clean close)
    assert _status(raw) == 408
    assert function.events == []


def test_keep_alive_connections_serve_several_requests(gateway, function):
    connection = HTTPConnection("127.0.0.1", gateway.port, timeout=CLIENT_TIMEOUT_S)
    try:
        for n in range(3):
            body = json.dumps({"n": n})
            connection.request("POST", "/dev/v1/events", body=body, headers={"x-api-key": KEY})
            response = connection.getresponse()
            assert response.status == 200 and json.loads(response.read())["body"] == body
    finally:
        connection.close()


def test_many_clients_on_busy_workers_get_503_with_retry_after_and_nobody_hangs(gateway, function):
    # Given both workers of the function busy with slow requests
    function.hold.clear()
    clients = 50

    def post(n: int) -> tuple[int, dict[str, str], bytes] | BaseException:
        connection = HTTPConnection("127.0.0.1", gateway.port, timeout=CLIENT_TIMEOUT_S)
        try:
            connection.request("POST", "/dev/v1/events", body=b"{}", headers={"x-api-key": KEY})
            response: HTTPResponse = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        except BaseException as error:  # a reset or a timeout is what this test looks for
            return error
        finally:
            connection.close()

    # When 50 clients post at once
    with ThreadPoolExecutor(max_workers=clients) as pool:
        futures = [pool.submit(post, n) for n in range(clients)]
        # Then all but the two in progress are answered while the workers are still busy: 503 with
        # Retry-After in the shared error shape; no reset, no client timeout (as_completed would raise)
        done = as_completed(futures, timeout=CLIENT_TIMEOUT_S)
        early = [next(done).result() for _ in range(clients - 2)]
        function.hold.set()
        results = [f.result() for f in futures]
    answers = [a for a in results if not isinstance(a, BaseException)]
    assert len(answers) == clients, results
    assert sorted(status for status, _, _ in answers) == [200, 200] + [503] * (clients - 2)
    for answer in early:
        assert not isinstance(answer, BaseException), answer
        status, headers, body = answer
        assert status == 503 and headers["Retry-After"] == "1"
        assert json.loads(body)["error"]["code"] == "service_unavailable"
