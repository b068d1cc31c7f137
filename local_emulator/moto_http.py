"""Serving moto over HTTP with kept-alive connections (moto server process only).

Werkzeug's development server, which moto's server uses, closes every connection: it sends
``Connection: close`` because Python's ``http.server`` cannot tell where a request body ends. So every
SDK call opened a new TCP connection, the server started a new thread for it, and lingered 10 ms after
the answer reading what the client might still send. `KeepAliveHandler` keeps HTTP/1.1 connections
open when the request's framing is known (a ``Content-Length``, or no body), reads exactly that body
(discarding what the application left unread) and answers with a ``Content-Length``. Anything else
(chunked or ``Expect: 100-continue`` requests) goes through Werkzeug's own handling, which closes.
Measured with one client (conditional PutItem, 2-core machine): moto's CPU per request 2.28 -> 1.26 ms
together with the lookup cache of `moto_speed`, the client's 1.33 -> 0.91 ms.
"""

from __future__ import annotations

import io
import json
import threading
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from local_emulator import service_metrics
from local_emulator.loopback import is_loopback_host

# Statuses whose responses have no body (RFC 9110).
_NO_BODY = frozenset({204, 304})


class _Body(io.RawIOBase):
    """The request body: exactly `length` bytes of the connection, never a byte of the next request."""

    def __init__(self, stream: Any, length: int) -> None:
        self._stream = stream
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            return 0
        data = self._stream.read(min(len(buffer), self._left))
        self._left -= len(data)
        buffer[: len(data)] = data
        if not data:
            self._left = 0
        return len(data)

    def discard_rest(self) -> None:
        while self._left > 0 and self.read(min(self._left, 65536)):
            pass


class KeepAliveHandler(MotoRequestHandler):
    """moto's request handler, with HTTP/1.1 keep-alive for requests of known length."""

    # Headers and body are two writes: with Nagle's algorithm on a kept-alive connection the body would
    # wait for the client's delayed ACK of the headers (40 ms on Linux).
    disable_nagle_algorithm = True

    def run_wsgi(self) -> None:
        length = self.headers.get("Content-Length")
        if (
            self.request_version != "HTTP/1.1"
            or "Transfer-Encoding" in self.headers
            or "Expect" in self.headers
            or (length is not None and not length.isdigit())
        ):
            super().run_wsgi()  # closes the connection after the response
            return
        environ = self.make_environ()
        body = _Body(self.rfile, int(length or 0))
        environ["wsgi.input"] = io.BufferedReader(body)
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started[:] = [status, headers]
            return lambda data: chunks.append(data)

        chunks: list[bytes] = []
        try:
            result = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            status, headers = started
        except Exception as error:  # what Werkzeug does too: log it, answer 500, end the connection
            self.server.log("error", f"error on request {self.command} {self.path}: {error!r}")
            status, headers, chunks = "500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")], []
            self.close_connection = True
        body.discard_rest()
        code_text, _, reason = status.partition(" ")
        code = int(code_text)
        payload = b"" if code in _NO_BODY or self.command == "HEAD" else b"".join(chunks)
        self.send_response(code, reason)
        for key, value in headers:
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        if code not in _NO_BODY:
            self.send_header("Content-Length", str(len(b"".join(chunks))))
        # Headers and body in one write: one segment, one wake-up of the client (end_headers + a
        # second write cost a fifth of a PutItem's server time).
        self._headers_buffer.append(b"\r\n" + payload)
        self.flush_headers()


def local_app(app: Any) -> Any:
    """moto's app for this machine's SDK clients only, plus ``GET service_metrics.ROUTE?acknowledged=N``:
    the metered datapoints the reader has not acknowledged (`service_metrics.Meter.read`).

    moto answers any caller, with CORS open to every origin, and checks no credentials: a web page the
    developer visits could read and write the local tables and stream. Refused with 403:
    - what a browser sends: an ``Origin`` header (every cross-origin request but a simple GET) or a
      ``Sec-Fetch-*`` header (every request of current browsers, image and script loads and navigations
      included); the SDKs send neither;
    - a Host that is not loopback (a page rebinding its DNS name to 127.0.0.1 still sends its own name);
    - moto's own ``/moto-api/`` routes, some of which change state on a GET (start recording every
      request to a file, replay it, seed), except ``POST /moto-api/reset``."""

    def routed(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if (
            any(name in environ for name in BROWSER_HEADERS)
            or not is_loopback_host(environ.get("HTTP_HOST", ""))
            or (path.startswith("/moto-api/") and (environ.get("REQUEST_METHOD"), path) != MOTO_RESET)
        ):
            return _answer(start_response, "403 FORBIDDEN", REFUSED)
        if path != service_metrics.ROUTE:
            return app(environ, start_response)
        status, body = service_metrics.METER.read_json(environ.get("QUERY_STRING", ""))
        return _answer(start_response, "200 OK" if status == 200 else "400 BAD REQUEST", body)

    return routed


# WSGI names of the headers only browsers send.
BROWSER_HEADERS = ("HTTP_ORIGIN", "HTTP_SEC_FETCH_SITE", "HTTP_SEC_FETCH_MODE", "HTTP_SEC_FETCH_DEST")
MOTO_RESET = ("POST", "/moto-api/reset")
REFUSED = json.dumps(
    {
        "message": "the local AWS answers SDK requests to a loopback Host only (no browser: no Origin or "
        "Sec-Fetch-* header; of moto's own routes, POST /moto-api/reset only)"
    }
).encode()


def _answer(start_response: Any, status: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def serve(host: str, port: int) -> BaseWSGIServer:
    """moto's server app on (host, port), one thread per connection, in a daemon thread; `shutdown()`
    stops it. What `moto.server.ThreadedMotoServer` does, with `KeepAliveHandler`."""
    server = make_server(
        host,
        port,
        local_app(DomainDispatcherApplication(create_backend_app)),
        threaded=True,
        request_handler=KeepAliveHandler,
    )
    threading.Thread(target=server.serve_forever, name="moto-server", daemon=True).start()
    return server
