"""A headless Chromium driven over its DevTools protocol with the standard library only.

Finds the browser as ``$CHROMIUM`` or ``chromium`` / ``chromium-browser`` / ``google-chrome`` on PATH;
when none is there the test fails with how to install it (``apt-get install chromium`` on Debian and
Ubuntu): a browser test that silently skips would hide that the pages were never checked.

    with Browser.launch(tmp_path) as browser:
        browser.navigate("http://127.0.0.1:.../_local/console")
        browser.wait_for("document.body.dataset.loaded === 'true'")
        browser.screenshot(path)
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = (
    "the browser tests need Chromium: install it (Debian/Ubuntu: `sudo apt-get install -y chromium`) "
    "or point $CHROMIUM at a Chromium or Chrome binary"
)


def find_chromium() -> str:
    """The browser binary, or AssertionError saying how to get one."""
    named = os.environ.get("CHROMIUM")
    if named:
        if shutil.which(named) is None:
            raise AssertionError(f"$CHROMIUM={named} is not an executable; {INSTALL_HINT}")
        return named
    for candidate in CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise AssertionError(INSTALL_HINT)


class _WebSocket:
    """Just enough of RFC 6455 for DevTools: text frames, client-masked, one connection."""

    def __init__(self, url: str, timeout_s: float) -> None:
        parts = urlsplit(url)
        self._sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout_s)
        key = base64.b64encode(os.urandom(16)).decode()
        self._sock.sendall(
            (
                f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self._sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the WebSocket handshake")
            response += chunk
        if b" 101 " not in response.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"DevTools refused the WebSocket: {response[:200]!r}")
        self._buffer = response.split(b"\r\n\r\n", 1)[1]

    def send(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x81, 0x80 | length)
        elif length < 1 << 16:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._sock.sendall(header + mask + masked)

    def _read(self, count: int) -> bytes:
        while len(self._buffer) < count:
            chunk = self._sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("DevTools closed the WebSocket")
            self._buffer += chunk
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def receive(self) -> str:
        message = b""
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read(8))
            payload = self._read(length)
            opcode = first & 0x0F
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the WebSocket")
            if opcode in (0x0, 0x1, 0x2):
                message += payload
                if first & 0x80:
                    return message.decode()

    def close(self) -> None:
        self._sock.close()


class Browser:
    """One headless Chromium with one page."""

    def __init__(self, process: subprocess.Popen[bytes], socket_: _WebSocket, timeout_s: float) -> None:
        self._process = process
        self._ws = socket_
        self._timeout_s = timeout_s
        self._next_id = 0

    @classmethod
    def launch(cls, profile_dir: Path, *, timeout_s: float = 30.0, size: str = "1400,1100") -> Browser:
        """Start headless Chromium with a fresh profile in `profile_dir` and attach to its page."""
        binary = find_chromium()
        profile_dir.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            [
                binary,
                "--headless=new",
                "--no-sandbox",  # CI containers run as root, where Chromium's sandbox cannot start
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile_dir}",
                f"--window-size={size}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while not port_file.exists() or not port_file.read_text().strip():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"{binary} did not start its DevTools server; {INSTALL_HINT}")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout_s) as answer:
            pages = [t for t in json.loads(answer.read()) if t.get("type") == "page"]
        browser = cls(process, _WebSocket(pages[0]["webSocketDebuggerUrl"], timeout_s), timeout_s)
        browser.call("Page.enable")
        return browser

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result (events in between are ignored)."""
        self._next_id += 1
        self._ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.receive())
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def navigate(self, url: str) -> None:
        """Open `url` in the page."""
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float | None = None) -> Any:
        """Poll until `expression` is truthy in the page; its value, or AssertionError on timeout."""
        deadline = time.monotonic() + (timeout_s or self._timeout_s)
        while True:
            try:
                value = self.evaluate(expression)
            except RuntimeError:  # the page is still loading (no document yet)
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"not true within the timeout: {expression}")
            time.sleep(0.05)

    def screenshot(self, path: Path) -> Path:
        """Save a PNG of the whole page to `path`."""
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        """Stop the browser."""
        self._ws.close()
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()

    def __enter__(self) -> Browser:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
