"""Replay a clickstream file through streamrec's HTTP API, re-timed to the present.

Reads JSON Lines in the shared data format (``../shared/data/taobao-userbehavior/events.jsonl`` or the
output of ``tools.generate_clickstream``), turns each line into a schema v1 event and POSTs batches of
up to 500 to ``{base_url}/v1/events`` with the producer API key.

Why re-time: ingest rejects events older than its maximum age (7 days by default) or more than 5 minutes
ahead, and the source data is from the past. Two modes:

- ``--speed S`` (S > 0): keep the source's gaps divided by S and send each event when its new time comes,
  so ``--speed 3600`` plays one hour of source per second. Every event is stamped with its send time.
- ``--speed 0`` (default): send as fast as the API takes them. Timestamps keep their order and their
  relative gaps, squeezed (if needed) into the last ``--span-seconds`` before the replay started.

Each event gets a deterministic ``event_id`` derived from its source line, so replaying the same file
again is deduplicated by the pipeline (``--id-salt`` gives a fresh set of ids). Requests go through
``streamrec_client``: throttling (429), an unavailable stream (503), network errors and events the API
reports as failed are resent with backoff and jitter, never sooner than Retry-After.

Usage:
    python -m tools.replay events.jsonl                       # endpoint from .local/endpoint.json
    python -m tools.replay events.jsonl --speed 3600 --batch-size 100
    python -m tools.replay events.jsonl --base-url http://127.0.0.1:4510 --api-key KEY --json
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streamrec_core.constants import MAX_EVENTS_PER_REQUEST
from streamrec_core.schema import F_EVENT_ID, F_TIMESTAMP, FIELD_NAMES
from streamrec_core.schema import format_timestamp as schema_timestamp

from streamrec_client import RejectedEvent, SendResult, StreamrecClient, StreamrecError
from streamrec_client.client import Transport
from tools.progress import Progress

MAX_BATCH_SIZE = MAX_EVENTS_PER_REQUEST  # the API's limit per request (and the PutRecords limit behind it)
DEFAULT_ENDPOINT_FILE = Path(".local/endpoint.json")
# Half the default allowed lateness (1 h), so even the oldest replayed event still updates the windows.
DEFAULT_SPAN_SECONDS = 1800.0
# Ingest's default maximum event age (DESIGN.md); a replay squeezed into a longer span would be rejected.
MAX_EVENT_AGE_SECONDS = 7 * 24 * 3600

# Schema v1 fields a source line may carry through (event_id and timestamp are set here). Everything
# else (raw_event_type, unix_ts, source_line, ...) is dropped, because ingest rejects unknown fields.
PASS_THROUGH_FIELDS = tuple(sorted(FIELD_NAMES - {F_EVENT_ID, F_TIMESTAMP}))
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "streamrec/tools/replay")


class ReplayError(RuntimeError):
    """The replay cannot go on (no endpoint, API key refused, unreadable input)."""


# --- Source events ---------------------------------------------------------------------------------


def read_events(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of a JSON Lines file, skipping blank lines; ReplayError naming the line
    for one that is not UTF-8, not JSON or not an object."""
    with Path(path).open("rb") as handle:  # decoded per line, so that an error names its line
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                event = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as error:
                raise ReplayError(f"{path}:{number}: not UTF-8 ({error})") from None
            except (ValueError, RecursionError) as error:
                raise ReplayError(f"{path}:{number}: not JSON ({error})") from None
            if not isinstance(event, dict):
                raise ReplayError(f"{path}:{number}: not a JSON object (one event object per line)")
            yield event


def source_time(event: dict[str, Any]) -> float:
    """Event time of a source line in Unix seconds (from its ISO ``timestamp``)."""
    try:
        parsed = datetime.fromisoformat(event["timestamp"])
    except (KeyError, TypeError, ValueError):
        raise ReplayError(f"source event without a valid ISO timestamp: {event!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def event_id_for(source: dict[str, Any], salt: str = "") -> str:
    """A UUID derived from the whole source line, so the same line always gets the same id.

    The source's own fields (including its original timestamp and line number) identify it; re-timing
    does not change the id, which is what lets the pipeline drop a second replay of the same file.
    """
    canonical = json.dumps(source, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(uuid.uuid5(_ID_NAMESPACE, salt + "\n" + canonical))


def to_schema_event(source: dict[str, Any], timestamp: str, *, id_salt: str = "") -> dict[str, Any]:
    """Map one source line to a schema v1 event stamped with ``timestamp``."""
    event = {name: source[name] for name in PASS_THROUGH_FIELDS if source.get(name) is not None}
    event[F_EVENT_ID] = source.get(F_EVENT_ID) or event_id_for(source, id_salt)
    event[F_TIMESTAMP] = timestamp
    return event


def format_timestamp(unix_seconds: float) -> str:
    """The schema's normalized form, RFC 3339 UTC with milliseconds: ``2026-01-02T03:04:05.678Z``."""
    return schema_timestamp(datetime.fromtimestamp(unix_seconds, UTC))


# --- Re-timing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retimer:
    """Maps a source time to a present time: ``anchor + (source - origin) / scale``.

    Build it with :meth:`for_speed`; both modes keep order and relative gaps.
    """

    origin: float  # source time that maps to the anchor
    anchor: float  # present time (Unix seconds)
    scale: float  # source seconds per present second
    paced: bool  # True: send each event when its new time comes

    @classmethod
    def for_speed(
        cls, speed: float, first: float, last: float, *, now: float, span_seconds: float
    ) -> Retimer:
        """``speed`` > 0: paced from ``now``; ``speed`` == 0: squeezed into ``span_seconds`` before now."""
        if speed < 0:
            raise ValueError("speed must be >= 0")
        if speed > 0:
            return cls(origin=first, anchor=now, scale=speed, paced=True)
        if not 0 <= span_seconds <= MAX_EVENT_AGE_SECONDS - 3600:
            raise ValueError(
                f"span_seconds must be between 0 and {MAX_EVENT_AGE_SECONDS - 3600} (ingest max age)"
            )
        source_span = max(last - first, 0.0)
        # Never stretch: a source shorter than the span keeps its real gaps.
        scale = max(source_span / span_seconds, 1.0) if span_seconds > 0 else float("inf")
        return cls(origin=last, anchor=now, scale=scale, paced=False)

    def __call__(self, source_seconds: float) -> float:
        if self.scale == float("inf"):
            return self.anchor
        return self.anchor + (source_seconds - self.origin) / self.scale


def time_bounds(events: Iterable[dict[str, Any]]) -> tuple[float, float, int]:
    """First and last source time and the number of events."""
    first, last, count = float("inf"), float("-inf"), 0
    for event in events:
        t = source_time(event)
        first, last, count = min(first, t), max(last, t), count + 1
    if count == 0:
        return 0.0, 0.0, 0
    return first, last, count


# --- Replay ----------------------------------------------------------------------------------------


@dataclass
class ReplaySummary:
    """Totals of one replay. ``sent`` counts distinct events, ``requests`` counts every POST."""

    sent: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    requests: int = 0
    retries: int = 0
    elapsed_seconds: float = 0.0
    first_timestamp: str | None = None
    last_timestamp: str | None = None

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def events_per_second(self) -> float:
        return self.sent / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "accepted": self.accepted,
            "rejected": self.rejected_total,
            "rejected_by_reason": dict(self.rejected.most_common()),
            "failed": self.failed,
            "requests": self.requests,
            "retries": self.retries,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "events_per_second": round(self.events_per_second, 1),
            "first_timestamp": self.first_timestamp,
            "last_timestamp": self.last_timestamp,
        }

    def describe(self) -> str:
        lines = [
            f"sent {self.sent} events in {self.requests} requests ({self.retries} retries), "
            f"{self.elapsed_seconds:.1f} s, {self.events_per_second:,.0f} events/s",
            f"accepted {self.accepted}, rejected {self.rejected_total}, failed {self.failed}",
        ]
        lines += [f"  rejected {count:>6}  {reason}" for reason, count in self.rejected.most_common()]
        if self.first_timestamp:
            lines.append(f"event times {self.first_timestamp} .. {self.last_timestamp}")
        return "\n".join(lines)


# --- Sending ---------------------------------------------------------------------------------------


class Replayer:
    """Sends batches with `streamrec_client` (batching, retries with jitter, never sooner than
    Retry-After, 413 answered by halving) and adds what the API said about them to a summary."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        transport: Transport | None = None,
        max_attempts: int = 6,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.client = StreamrecClient(
            base_url,
            api_key,
            max_attempts=max_attempts,
            timeout=timeout,
            transport=transport,
            sleep=sleep,
            rand=rand,
        )

    def send(self, events: Sequence[dict[str, Any]], summary: ReplaySummary) -> SendResult:
        """Send ``events`` (one request, plus retries) and add the result to ``summary``."""
        try:
            result = self.client.send(events)
        except StreamrecError as error:
            if error.status in (401, 403):
                raise ReplayError(f"API key refused by {self.client.url} (HTTP {error.status})") from None
            raise ReplayError(f"{self.client.url} refused the request: {error}") from None
        summary.requests += result.requests
        summary.retries += result.retries
        summary.accepted += len(result.accepted)
        summary.rejected.update(_reason(rejected) for rejected in result.rejected)
        summary.failed += len(result.failed)
        return result


def _reason(rejected: RejectedEvent) -> str:
    """A short 'field: rule' reason from the first error of a rejected event."""
    first = rejected.errors[0] if rejected.errors else {}
    where = first.get("field") or ""
    rule = first.get("rule") or first.get("message") or "invalid"
    return f"{where}: {rule}" if where else str(rule)


def replay(
    events: Iterable[dict[str, Any]] | str | Path,
    *,
    base_url: str,
    api_key: str,
    speed: float = 0.0,
    span_seconds: float = DEFAULT_SPAN_SECONDS,
    batch_size: int = MAX_BATCH_SIZE,
    limit: int | None = None,
    id_salt: str = "",
    transport: Transport | None = None,
    max_attempts: int = 6,
    timeout: float = 30.0,
    linger_seconds: float = 0.2,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress | None = None,
    on_batch: Callable[[list[dict[str, Any]], SendResult], None] | None = None,
) -> ReplaySummary:
    """Replay source events (a JSON Lines path or an iterable of dicts) through ``POST /v1/events``.

    Returns the totals. ``clock`` (Unix seconds) and ``sleep`` pace the replay and can be faked in tests;
    ``on_batch`` sees each posted batch with the client's result for it (the demo uses it to measure
    freshness). ``limit`` replays only the first N events. When paced (``speed`` > 0), a batch collects
    the events due within ``linger_seconds`` of its first one, so a busy stream still goes out in large
    requests while no event waits longer than that after its time.
    """
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_SIZE}")
    source = _open_source(events, limit)
    first, last, total = time_bounds(source())
    started = clock()
    retimer = Retimer.for_speed(speed, first, last, now=started, span_seconds=span_seconds)
    sender = Replayer(
        base_url, api_key, transport=transport, max_attempts=max_attempts, timeout=timeout, sleep=sleep
    )
    summary = ReplaySummary()
    if progress is not None:
        progress.total = total

    batch: list[dict[str, Any]] = []
    batch_opened = 0.0  # new time of the first event in `batch`

    def flush() -> None:
        if batch:
            outcome = sender.send(batch, summary)
            if on_batch is not None:
                on_batch(list(batch), outcome)
            if progress is not None:
                progress.update(
                    len(batch),
                    f"ok {summary.accepted} rej {summary.rejected_total} fail {summary.failed}",
                )
            batch.clear()

    for line in source():
        new_time = retimer(source_time(line))
        if retimer.paced:
            if batch and new_time - batch_opened > linger_seconds:
                flush()  # its events are due; do not hold them while waiting for this one
            wait = new_time - clock()
            if wait > 0:
                sleep(wait)
        if not batch:
            batch_opened = new_time
        stamp = format_timestamp(new_time)
        batch.append(to_schema_event(line, stamp, id_salt=id_salt))
        summary.sent += 1
        summary.first_timestamp = summary.first_timestamp or stamp
        summary.last_timestamp = stamp
        if len(batch) == batch_size:
            flush()
    flush()
    summary.elapsed_seconds = clock() - started
    if progress is not None:
        progress.close()
    return summary


def _open_source(
    events: Iterable[dict[str, Any]] | str | Path, limit: int | None
) -> Callable[[], Iterable[dict[str, Any]]]:
    """A function that yields the source events afresh, so bounds and replay can be two passes."""
    if isinstance(events, str | Path):
        path = Path(events)
        if not path.is_file():
            raise ReplayError(f"no events file at {path}")
        if limit is None:
            return lambda: read_events(path)
        head = list(itertools.islice(read_events(path), limit))
        return lambda: head
    materialised = list(events if limit is None else itertools.islice(events, limit))
    return lambda: materialised


def load_endpoint(path: Path = DEFAULT_ENDPOINT_FILE) -> tuple[str, str]:
    """Base URL and producer API key from the file ``python -m local_emulator up`` writes."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data["base_url"], data["api_keys"]["producer"]
    except FileNotFoundError:
        raise ReplayError(
            f"{path} not found: start the local pipeline or pass --base-url and --api-key"
        ) from None
    except (KeyError, TypeError, json.JSONDecodeError):
        raise ReplayError(f"{path} has no base_url and api_keys.producer") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Replay a JSON Lines clickstream through POST /v1/events, re-timed to the present."
    )
    parser.add_argument("events", type=Path, help="JSON Lines file in the shared events format")
    parser.add_argument("--base-url", help="API base URL (default: from --endpoint-file)")
    parser.add_argument("--api-key", help="producer API key (default: from --endpoint-file)")
    parser.add_argument("--endpoint-file", type=Path, default=DEFAULT_ENDPOINT_FILE)
    parser.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="source seconds per replay second, e.g. 3600; 0 = as fast as possible (default)",
    )
    parser.add_argument(
        "--span-seconds",
        type=float,
        default=DEFAULT_SPAN_SECONDS,
        help="with --speed 0, the time window before now the events are squeezed into (default 1800)",
    )
    parser.add_argument("--batch-size", type=int, default=MAX_BATCH_SIZE, help="events per request (max 500)")
    parser.add_argument("--limit", type=int, help="replay only the first N events")
    parser.add_argument("--id-salt", default="", help="change every derived event_id (replay as new events)")
    parser.add_argument("--max-attempts", type=int, default=6, help="attempts per request (default 6)")
    parser.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout in seconds")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    args = parser.parse_args(argv)

    try:
        if args.base_url and args.api_key:
            base_url, api_key = args.base_url, args.api_key
        else:
            file_url, file_key = load_endpoint(args.endpoint_file)
            base_url, api_key = args.base_url or file_url, args.api_key or file_key
        progress = None if args.no_progress else Progress(None, label="replay")
        summary = replay(
            args.events,
            base_url=base_url,
            api_key=api_key,
            speed=args.speed,
            span_seconds=args.span_seconds,
            batch_size=args.batch_size,
            limit=args.limit,
            id_salt=args.id_salt,
            max_attempts=args.max_attempts,
            timeout=args.timeout,
            progress=progress,
        )
    except (ReplayError, ValueError) as error:
        print(f"replay: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary.to_dict(), indent=2) if args.json else summary.describe())
    return 1 if summary.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
