"""The unit suite's network guard (tests/unit/conftest.py) refuses the network and keeps loopback open."""

from __future__ import annotations

import socket
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import boto3
import pytest
from botocore.exceptions import HTTPClientError

BLOCKED = "unit tests must not reach the network"


def test_a_unit_test_cannot_reach_an_aws_endpoint_by_mistake() -> None:
    # A client used outside moto's mock would call AWS: the guard stops it at the name lookup.
    client = boto3.client("sts", region_name="us-east-1")
    with pytest.raises(HTTPClientError, match=BLOCKED):
        client.get_caller_identity()


@pytest.mark.parametrize("address", [("192.0.2.1", 80), ("2001:db8::1", 443)])
def test_connections_beyond_loopback_are_refused(address: tuple[str, int]) -> None:
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock, pytest.raises(RuntimeError, match=BLOCKED):
        sock.connect(address)
    with socket.socket(family, socket.SOCK_STREAM) as sock, pytest.raises(RuntimeError, match=BLOCKED):
        sock.connect_ex(address)


def test_loopback_stays_open() -> None:
    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        for host in ("127.0.0.1", "localhost"):
            with urllib.request.urlopen(f"http://{host}:{server.server_port}/", timeout=5) as response:
                assert response.status == 204
    finally:
        server.shutdown()
        server.server_close()
