"""`make up`: the local pipeline in the foreground, with the demo's storefront, warmed with the demo shop.

Starts the pipeline as ``python -m local_emulator up`` does (same options, same lines), serves the
demo's storefront at ``/_local/storefront`` and, in a background thread, replays the storefront's own
events through ``POST /v1/events`` (the demo shop's generated clickstream, or ``--events-file``), so that
within seconds the console shows traffic and the storefront's users have co-visitation and category
recommendations. Clicks work while it replays; a replay that fails says why and leaves the pipeline
running. ``python -m local_emulator up`` stays the bare emulator (no storefront, empty).

Usage (``make up`` runs this; ``N=``, ``EVENTS=``, ``LIMIT=`` and ``SPEED=`` as for ``make demo``):
    python -m tools.up                                     # replays the demo shop's 5,000 events
    python -m tools.up --events 0                          # starts empty (N=0)
    python -m tools.up --events-file events.jsonl --limit 20000
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from local_emulator import foreground
from local_emulator.pipeline import LocalPipeline
from streamrec_client import SendResult
from tools.replay import ReplayError, ReplaySummary, read_events, replay
from tools.storefront import DEMO_SHOP, ROUTE, Storefront

# How long the warm-up waits for the replayed events to be processed before it says they still are.
DRAIN_TIMEOUT_S = 600.0
WARM_UP = "warm-up"


@dataclass(frozen=True)
class Source:
    """The events the storefront shows and the warm-up replays: the demo shop's or a file's."""

    events: list[dict[str, Any]] | Path
    limit: int | None
    label: str

    def catalog(self) -> Iterable[dict[str, Any]]:
        if isinstance(self.events, Path):
            return itertools.islice(read_events(self.events), self.limit)
        return self.events


def source_for(args: argparse.Namespace) -> Source:
    """``--events-file`` (its first ``--limit``), else the demo shop with ``--events`` events (N=0: the
    catalog is still the demo shop's, nothing is replayed)."""
    if args.events_file:
        first = f", first {args.limit}" if args.limit else ""
        return Source(Path(args.events_file), args.limit, f"{args.events_file}{first}")
    shop = dataclasses.replace(DEMO_SHOP, events=args.events or DEMO_SHOP.events)
    return Source(shop.generate(), None, f"the demo shop's {shop.events} generated events, seed {shop.seed}")


class UpError(RuntimeError):
    """`make up` cannot serve the storefront on this pipeline."""


class _Stopped(Exception):
    """The pipeline is stopping: the warm-up ends without a word."""


class WarmUp:
    """Replays a source through the API in a background thread and says when it is done or why not."""

    def __init__(self, pipeline: LocalPipeline, source: Source, speed: float, out: TextIO) -> None:
        self._pipeline = pipeline
        self._source = source
        self._speed = speed
        self._out = out
        self.accepted = 0  # so far, for a failure's message
        self.summary: ReplaySummary | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name=WARM_UP, daemon=True)
        self._stop = threading.Event()

    def start(self, stop: threading.Event) -> None:
        """Start replaying; `stop` set: end quietly (the pipeline is being stopped)."""
        self._stop = stop
        self._say(f"replaying {self._source.label}, in the background: click away meanwhile")
        self._thread.start()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for the replay and its processing; True when it has finished."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _say(self, text: str) -> None:
        print(foreground.line(WARM_UP, text), file=self._out, flush=True)

    def _on_batch(self, batch: list[dict[str, Any]], outcome: SendResult) -> None:
        self.accepted += len(outcome.accepted)
        if self._stop.is_set():
            raise _Stopped

    def _run(self) -> None:
        started = time.monotonic()
        try:
            summary = replay(
                self._source.events,
                base_url=self._pipeline.base_url,
                api_key=self._pipeline.api_keys["producer"],
                speed=self._speed,
                limit=self._source.limit,
                on_batch=self._on_batch,
            )
            self.summary = summary
            accepted_s = time.monotonic() - started
            if self._stop.is_set():
                return
            done = f"{summary.accepted} of {summary.sent} events accepted in {accepted_s:.1f} s" + (
                f" ({summary.rejected_total} rejected, {summary.failed} failed)"
                if summary.accepted < summary.sent
                else ""
            )
            try:
                self._pipeline.wait_until_idle(timeout_s=DRAIN_TIMEOUT_S)
            except TimeoutError:
                self._say(f"{done}; still processing after {DRAIN_TIMEOUT_S:.0f} s (the console shows it)")
                return
            if not self._stop.is_set():
                self._say(f"done: {done}, processed {time.monotonic() - started:.1f} s after the start")
        except _Stopped:
            return
        except Exception as error:  # any failure: said, and the pipeline keeps running
            if self._stop.is_set():
                return
            self.error = f"{type(error).__name__}: {error}"
            self._say(
                f"FAILED after {self.accepted} events accepted: {self.error}. The pipeline keeps running; "
                "send events with python -m tools.replay FILE.jsonl"
            )


def start(
    pipeline: LocalPipeline, args: argparse.Namespace, stop: threading.Event, out: TextIO = sys.stdout
) -> tuple[Storefront, WarmUp | None]:
    """Serve the storefront on `pipeline`, print how to reach everything and start the warm-up
    (none with ``--events 0``); returns both. What `main` runs before it waits for Ctrl-C."""
    missing = {"producer", "reader"} - set(pipeline.api_keys)
    if missing:
        raise UpError(
            f"the stack has no {' and '.join(sorted(missing))} API key: the storefront and the warm-up need "
            "both (python -m local_emulator up runs without them)"
        )
    source = source_for(args)
    storefront = Storefront(pipeline.base_url, pipeline.api_keys, source.catalog())
    storefront.install(pipeline.runtime)
    page = f"{pipeline.endpoint_document()['admin_url']}{ROUTE}"
    foreground.print_endpoints(pipeline, [("storefront", f"{page}  (catalog: {source.label})")], out)
    if args.events == 0:
        print(foreground.line(WARM_UP, "none (N=0): the pipeline starts empty"), file=out, flush=True)
        return storefront, None
    warm_up = WarmUp(pipeline, source, args.speed, out)
    warm_up.start(stop)
    return storefront, warm_up


def _count(text: str, least: int = 0) -> int:
    value = int(text)
    if value < least:
        raise argparse.ArgumentTypeError(f"must be {least} or more, not {value}")
    return value


def _limit(text: str) -> int:
    return _count(text, least=1)


def _speed(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 (as fast as possible) or more, not {text}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (`foreground.add_arguments`' options and the warm-up's)."""
    parser = argparse.ArgumentParser(prog="python -m tools.up", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    foreground.add_arguments(parser)
    parser.add_argument(
        "--events",
        type=_count,
        default=DEMO_SHOP.events,
        help=f"demo shop events to replay at start (default {DEMO_SHOP.events}; 0: start empty, also "
        "with --events-file)",
    )
    parser.add_argument("--events-file", help="replay this JSONL file (shared data format) instead")
    parser.add_argument("--limit", type=_limit, help="replay and show only the file's first N events")
    parser.add_argument(
        "--speed", type=_speed, default=0.0, help="replay speed factor (0 = as fast as possible)"
    )
    args = parser.parse_args(argv)
    if args.events_file and not Path(args.events_file).is_file():
        parser.error(f"--events-file: no file at {args.events_file}")
    if args.events_file:  # a bad line is said now, not once the pipeline is up (one quick pass)
        try:
            for _ in source_for(args).catalog():
                pass
        except ReplayError as error:
            parser.error(f"--events-file: {error}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    foreground.configure_logging(args.verbose)
    pipeline = foreground.start(args)
    try:
        foreground.run_until_stopped(pipeline, lambda stop: start(pipeline, args, stop))
    except (ReplayError, UpError) as error:  # e.g. an unreadable --events-file (the storefront's catalog)
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
