"""The local gateway's HTTP server: one thread per connection on 127.0.0.1, request bodies framed as API
Gateway accepts them, every request handed to a `Handles` (the gateway's request pipeline).

It never resets or hangs a connection it accepted: a deep listen backlog, bodies framed by a strict
Content-Length or by chunked transfer coding (decoded, as API Gateway does, and the header dropped), 400
for any other framing, 408 when a body does not arrive within ``body_timeout_s``, idle keep-alive
connections closed after ``read_timeout_s``, and a lingering close after a refusal so that the client
reads the answer instead of a reset. A body over MAX_PAYLOAD_BYTES is read and discarded (the pipeline
gets None and answers 413).
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Protocol

log = logging.getLogger(__name__)

# (status, headers, body) of one answer.
Answer = tuple[int, list[tuple[str, str]], bytes]
JSON = ("Content-Type", "application/json")
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's limit
# Connections a burst may open before the accept loop takes them (Linux caps it at net.core.somaxconn,
# 4096 by default): with the old default of 5, a burst of 50 clients saw resets.
LISTEN_BACKLOG = 1024
# Seconds a connection may stay silent between requests or between reads of one; and the most a whole
# request body may take to arrive (a client promising more bytes than it sends gets 408, then the close).
READ_TIMEOUT_S = 30.0
BODY_TIMEOUT_S = 30.0
# After a refusal that leaves body bytes unread, how long and how much to keep reading before closing:
# closing a socket with unread input makes the kernel send a reset, and the client never sees the answer.
LINGER_S = 1.0
LINGER_MAX_BYTES = 1 << 20
MAX_CHUNK_LINE = 1024
MAX_TRAILERS = 64


class Handles(Protocol):
    """What the server hands every request to: the gateway's request pipeline."""

    def handle(
        self, verb: str, raw_path: str, headers: list[tuple[str, str]], body: bytes | None, source_ip: str
    ) -> Answer:
        """Answer one request; `body` None: it was over MAX_PAYLOAD_BYTES (read and discarded)."""
        ...


class HttpServer:
    """Serves `handler` on 127.0.0.1:`port` (0: any free port) in a background thread."""

    def __init__(
        self,
        handler: Handles,
        *,
        port: int = 0,
        read_timeout_s: float = READ_TIMEOUT_S,
        body_timeout_s: float = BODY_TIMEOUT_S,
    ) -> None:
        class Handler(_RequestHandler):
            owner = handler
            timeout = read_timeout_s
            body_timeout = body_timeout_s

        self._server = _Server(("127.0.0.1", port), Handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="api-gateway", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:  # shutdown() would wait forever for a loop that never ran
            self._server.shutdown()
            self._thread = None
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    """One thread per connection, a deep accept queue, and threads that never block shutdown."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


class _Refused(Exception):
    """A request the HTTP layer answers itself (bad framing, body too slow) before any routing."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _RequestHandler(BaseHTTPRequestHandler):
    # Set per server on a subclass (HttpServer): class attributes, as the stdlib's own settings are.
    owner: ClassVar[Handles]
    protocol_version = "HTTP/1.1"
    server_version = "streamrec-local-apigateway"
    timeout: ClassVar[float] = READ_TIMEOUT_S  # socket timeout: idle keep-alive and each read
    body_timeout: ClassVar[float] = BODY_TIMEOUT_S
    _linger = False

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.client_address[0], *args)

    def _serve(self) -> None:
        try:
            try:
                body = self._read_body(time.monotonic() + self.body_timeout)
            except TimeoutError:  # the client stalled mid-body (promised more bytes than it sends)
                self._refuse(_Refused(408, f"request body not received within {self.body_timeout:g} s"))
                return
            except _Refused as refusal:
                self._refuse(refusal)
                return
            except ConnectionError:
                self.close_connection = True  # the client closed mid-body: nobody to answer
                return
            # API Gateway drops the hop-by-hop framing header; the function sees the decoded body.
            headers = [(k, v) for k, v in self.headers.items() if k.lower() != "transfer-encoding"]
            try:
                status, out_headers, out_body = self.owner.handle(
                    self.command, self.path, headers, body, self.client_address[0]
                )
            except Exception:  # the gateway must answer, whatever happened behind it
                log.exception("gateway failure on %s %s", self.command, self.path)
                status, out_headers, out_body = 500, [JSON], _message("Internal server error")
            self._reply(status, out_headers, out_body)
        finally:
            self.connection.settimeout(self.timeout)

    # --- body framing -------------------------------------------------------------------------------
    def _read_body(self, deadline: float) -> bytes | None:
        """The request body (b"" when none); None when it was over MAX_PAYLOAD_BYTES (read, discarded).

        Raises _Refused for framing API Gateway would not accept, TimeoutError past the deadline.
        """
        encodings = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if encodings:
            if lengths:  # RFC 9112 6.3: both together is how requests get smuggled; refuse
                raise _Refused(400, "Content-Length and Transfer-Encoding must not both be sent")
            codings = [part.strip().lower() for value in encodings for part in value.split(",")]
            if codings != ["chunked"]:
                raise _Refused(400, f"unsupported Transfer-Encoding {', '.join(codings)!r}: use chunked")
            return self._read_chunked(deadline)
        if not lengths:
            return b""
        values = {value.strip() for value in lengths}
        text = values.pop()
        if values or not re.fullmatch(r"[0-9]{1,19}", text):
            raise _Refused(400, "Content-Length must be one non-negative integer")
        length = int(text)
        if length > MAX_PAYLOAD_BYTES:
            self._read_exact(length, deadline, keep=False)
            return None
        return self._read_exact(length, deadline)

    def _read_chunked(self, deadline: float) -> bytes | None:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self._read_line(deadline)
            size_text = line.split(b";", 1)[0].strip()
            if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", size_text):
                raise _Refused(400, "malformed chunked body: bad chunk size line")
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            keep = total <= MAX_PAYLOAD_BYTES
            data = self._read_exact(size, deadline, keep=keep)
            if keep:
                parts.append(data)
            if self._read_exact(2, deadline) != b"\r\n":
                raise _Refused(400, "malformed chunked body: chunk not followed by CRLF")
        for _ in range(MAX_TRAILERS):  # trailer fields, ignored, up to the empty line
            if self._read_line(deadline) in (b"\r\n", b"\n"):
                return b"".join(parts) if total <= MAX_PAYLOAD_BYTES else None
        raise _Refused(400, "malformed chunked body: too many trailer fields")

    def _read_line(self, deadline: float) -> bytes:
        self._set_deadline(deadline)
        line = self.rfile.readline(MAX_CHUNK_LINE + 1)
        if not line:
            raise ConnectionError("client closed the connection mid-body")
        if len(line) > MAX_CHUNK_LINE or not line.endswith(b"\n"):
            raise _Refused(400, "malformed chunked body: line too long or cut")
        return line

    def _read_exact(self, length: int, deadline: float, *, keep: bool = True) -> bytes:
        """Read exactly `length` bytes (kept, or discarded in pieces); the deadline bounds the whole."""
        parts: list[bytes] = []
        remaining = length
        while remaining > 0:
            self._set_deadline(deadline)
            piece = self.rfile.read1(min(remaining, 1 << 16))
            if not piece:
                raise ConnectionError("client closed the connection mid-body")
            remaining -= len(piece)
            if keep:
                parts.append(piece)
        return b"".join(parts)

    def _set_deadline(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Refused(408, f"request body not received within {self.body_timeout:g} s")
        self.connection.settimeout(min(remaining, self.timeout))

    # --- answering ----------------------------------------------------------------------------------
    def _refuse(self, refusal: _Refused) -> None:
        """Answer a framing problem and close: what follows on this connection cannot be trusted."""
        self.close_connection = self._linger = True
        self._reply(refusal.status, [JSON], _message(str(refusal)))

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def finish(self) -> None:
        super().finish()
        if not self._linger:
            return
        # Lingering close: stop writing, then read what the client still sends (a body we refused to
        # read) until it closes, so the kernel does not answer it with a reset that destroys our reply.
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(LINGER_S)
            drained = 0
            while drained < LINGER_MAX_BYTES:
                piece = self.connection.recv(1 << 16)
                if not piece:
                    break
                drained += len(piece)
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve


def json_answer(document: Any, status: int = 200) -> Answer:
    """`document` as a JSON answer."""
    return status, [JSON], json.dumps(document).encode("utf-8")


def _message(text: str) -> bytes:
    return json.dumps({"message": text}).encode("utf-8")
