"""moto's server over kept-alive HTTP/1.1 connections (`local_emulator.moto_http`): one connection carries
many requests, a body is never mistaken for the next request, whatever the application reads of it, and
requests of unknown length (chunked) or failures still end with the connection closed, as before."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from local_emulator.moto_http import KeepAliveHandler
from local_emulator.moto_server import MotoServer

LIST_TABLES = {
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "Content-Type": "application/x-amz-json-1.0",
    "Authorization": "AWS4-HMAC-SHA256 Credential=x/20240101/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host, Signature=x",
}


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answers with the path and, for /read, the body; never reads the body otherwise; /fail raises."""
    path = environ["PATH_INFO"]
    if path == "/fail":
        raise RuntimeError("boom")
    body = environ["wsgi.input"].read() if path == "/read" else b""
    if path == "/empty":
        start_response("204 No Content", [])
        return []
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"path": path, "body": body.decode()}).encode()]


@pytest.fixture
def server() -> Iterator[str]:
    httpd = make_server("127.0.0.1", 0, _app, threaded=True, request_handler=KeepAliveHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _get(connection: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None) -> Any:
    connection.request(method, path, body=body)
    response = connection.getresponse()
    return response, response.read()


def test_one_connection_carries_many_requests_and_a_body_never_leaks_into_the_next_one(server: str) -> None:
    connection = http.client.HTTPConnection(server, timeout=10)
    # Given a request whose body the application does not read at all
    response, raw = _get(connection, "POST", "/ignore", b"GET /stolen HTTP/1.1\r\n\r\n")
    assert response.status == 200 and response.getheader("Connection") is None
    first_socket = connection.sock
    # When the next requests follow on the same connection
    response, raw = _get(connection, "POST", "/read", b"abc")
    # Then each is answered for itself, on the kept-alive connection
    assert json.loads(raw) == {"path": "/read", "body": "abc"}
    response, raw = _get(connection, "GET", "/third")
    assert json.loads(raw) == {"path": "/third", "body": ""}
    assert connection.sock is first_socket


def test_no_content_and_head_answers_carry_no_body_and_keep_the_connection(server: str) -> None:
    connection = http.client.HTTPConnection(server, timeout=10)
    response, raw = _get(connection, "GET", "/empty")
    assert (response.status, raw, response.getheader("Content-Length")) == (204, b"", None)
    response, raw = _get(connection, "HEAD", "/head")
    assert response.status == 200 and raw == b""
    assert int(response.getheader("Content-Length")) == len(json.dumps({"path": "/head", "body": ""}))
    response, raw = _get(connection, "GET", "/after")
    assert json.loads(raw)["path"] == "/after"


def test_a_chunked_request_is_answered_and_closes_the_connection(server: str) -> None:
    connection = http.client.HTTPConnection(server, timeout=10)
    connection.putrequest("POST", "/read")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    connection.send(b"3\r\nabc\r\n0\r\n\r\n")
    response = connection.getresponse()
    assert json.loads(response.read()) == {"path": "/read", "body": "abc"}
    assert response.getheader("Connection") == "close"


def test_an_application_failure_is_a_500_and_ends_the_connection(server: str) -> None:
    host, port = server.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := raw.recv(4096):  # the server closes: recv returns b"" instead of blocking
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 500")


def test_the_moto_server_answers_sdk_calls_on_one_kept_alive_connection() -> None:
    moto = MotoServer()
    endpoint = moto.start()
    try:
        connection = http.client.HTTPConnection(endpoint.split("//")[1], timeout=10)
        for _ in range(3):
            connection.request("POST", "/", body="{}", headers=LIST_TABLES)
            response = connection.getresponse()
            assert json.loads(response.read()) == {"TableNames": []}
            assert response.getheader("Connection") is None
        first = connection.sock
        connection.request("POST", "/", body="{}", headers=LIST_TABLES)
        connection.getresponse().read()
        assert connection.sock is first
    finally:
        moto.stop()


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    moto = MotoServer()
    try:
        yield moto.start()
    finally:
        moto.stop()


def _call(
    endpoint: str, headers: dict[str, str], method: str = "POST", path: str = "/"
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(endpoint.split("//")[1], timeout=10)
    try:
        connection.request(method, path, body="{}" if method == "POST" else None, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1:4566", "[::1]:4566"])
def test_the_local_aws_answers_this_machines_sdk_calls(moto_endpoint: str, host: str) -> None:
    status, _, body = _call(moto_endpoint, {**LIST_TABLES, "Host": host})
    assert status == 200 and "TableNames" in json.loads(body)


@pytest.mark.parametrize(
    ("headers", "method"),
    [
        ({"Origin": "https://evil.example"}, "POST"),  # a page's cross-origin fetch
        ({"Origin": "null"}, "POST"),  # a sandboxed frame or a file:// page
        ({"Origin": "http://127.0.0.1:8000"}, "POST"),  # another local page: still a browser
        ({"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}, "OPTIONS"),
        # an <img> or <script> load or a no-cors fetch: a GET without Origin, with Sec-Fetch-* headers
        ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}, "GET"),
        ({"Sec-Fetch-Mode": "navigate"}, "GET"),
        ({"Host": "evil.example"}, "POST"),  # DNS rebinding: the page's own name
        ({"Host": "127.0.0.1.evil.example:4566"}, "POST"),
    ],
)
def test_the_local_aws_refuses_browser_pages_and_other_hosts(
    moto_endpoint: str, headers: dict[str, str], method: str
) -> None:
    """moto checks no credentials and opens CORS to every origin: a page the developer visits could
    otherwise read and write the local tables and stream."""
    status, answer_headers, body = _call(moto_endpoint, {**LIST_TABLES, **headers}, method)
    assert status == 403 and "loopback Host" in json.loads(body)["message"]
    assert not any(name.startswith("access-control-") for name in answer_headers)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/moto-api/recorder/start-recording"),
        ("GET", "/moto-api/data.json"),
        ("POST", "/moto-api/seed"),
    ],
)
def test_motos_own_routes_are_refused_but_reset(moto_endpoint: str, method: str, path: str) -> None:
    """Some of them change state on a plain GET (an old browser's image load carries no Sec-Fetch-*):
    recording every later request, bodies included, to a file in the working directory."""
    status, _, body = _call(moto_endpoint, {"Host": "127.0.0.1"}, method, path)
    assert status == 403 and "POST /moto-api/reset only" in json.loads(body)["message"]
    status, _, _ = _call(moto_endpoint, {"Host": "127.0.0.1"}, "POST", "/moto-api/reset")
    assert status == 200
