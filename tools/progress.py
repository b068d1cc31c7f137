"""A tiny progress bar for command-line tools (stdlib only, writes to stderr).

On a terminal it redraws one line at most ten times a second; when stderr is a file or a pipe (CI logs)
it prints a plain line at every tenth of the total instead, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """Counts work done towards ``total`` and shows it with a rate and a short status text."""

    def __init__(
        self,
        total: int | None,
        *,
        label: str = "",
        stream: TextIO | None = None,
        width: int = 30,
        clock: Callable[[], float] = time.monotonic,
        interactive: bool | None = None,
    ) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.clock = clock
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.done = 0
        self.status = ""
        self._started = clock()
        self._last_draw = float("-inf")
        self._last_decile = -1
        self._last_line_done = -1  # `done` when a plain line was last written

    def update(self, advance: int, status: str = "") -> None:
        """Record ``advance`` more units of work; ``status`` replaces the text after the bar."""
        self.done += advance
        if status:
            self.status = status
        self._draw(final=False)

    def close(self) -> None:
        """Draw the final state and end the line."""
        self._draw(final=True)
        if self.interactive:
            self.stream.write("\n")
        self.stream.flush()

    def line(self) -> str:
        """The progress line as text (without carriage return)."""
        elapsed = max(self.clock() - self._started, 1e-9)
        rate = self.done / elapsed
        if self.total:
            share = min(self.done / self.total, 1.0)
            filled = int(share * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            counts = f"[{bar}] {self.done}/{self.total} {share:6.1%}"
        else:
            counts = f"{self.done}"
        parts = [p for p in (self.label, counts, f"{rate:,.0f}/s", self.status) if p]
        return " ".join(parts)

    def _draw(self, *, final: bool) -> None:
        now = self.clock()
        if self.interactive:
            if final or now - self._last_draw >= 0.1:
                self._last_draw = now
                self.stream.write("\r" + self.line() + "\x1b[K")
                self.stream.flush()
            return
        decile = int(10 * self.done / self.total) if self.total else -1
        if decile > self._last_decile or (final and self.done != self._last_line_done):
            self._last_decile = decile
            self._last_line_done = self.done
            self.stream.write(self.line() + "\n")
