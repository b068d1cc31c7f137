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
again is deduplicated by the pipeline (``--id-salt`` gives a fresh set of ids). Throttling (429), an
unavailable stream (503) and events the API reports as failed-retryable are retried with backoff.

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
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streamrec_core import routes
from streamrec_core.constants import API_KEY_HEADER, MAX_EVENTS_PER_REQUEST
from streamrec_core.schema import F_EVENT_ID, F_TIMESTAMP, FIELD_NAMES
from streamrec_core.schema import format_timestamp as schema_timestamp

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
    """Yield the JSON objects of a JSON Lines file, skipping blank lines."""
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise ReplayError(f"{path}:{number}: not JSON ({error})") from None


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


# --- HTTP ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpResponse:
    """What a transport got back: status, headers and raw body."""

    status: int
    headers: dict[str, str]
    body: bytes


class TransportError(RuntimeError):
    """The request did not get an HTTP answer (connection refused, reset, timeout)."""


Transport = Callable[[str, bytes, dict[str, str]], HttpResponse]


def urllib_transport(timeout: float = 30.0) -> Transport:
    """POST with urllib; HTTP error statuses come back as responses, network failures raise TransportError."""

    def post(url: str, body: bytes, headers: dict[str, str]) -> HttpResponse:
        request = urllib.request.Request(url, data=body, headers=headers, method=routes.EVENTS.method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return HttpResponse(response.status, dict(response.headers.items()), response.read())
        except urllib.error.HTTPError as error:
            return HttpResponse(error.code, dict(error.headers.items()), error.read())
        except (urllib.error.URLError, OSError) as error:
            raise TransportError(str(error)) from error

    return post


@dataclass
class BatchOutcome:
    """What the API said about one request, by index into the posted batch."""

    accepted: list[int] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)  # index -> reason
    failed: list[int] = field(default_factory=list)  # valid but not stored; worth retrying


def _reason(entry: dict[str, Any]) -> str:
    """A short 'field: rule' reason from one rejected entry, whatever its exact error shape."""
    errors = entry.get("errors") or entry.get("error") or entry.get("reason") or "rejected"
    first = errors[0] if isinstance(errors, list) and errors else errors
    if isinstance(first, dict):
        where = first.get("field") or first.get("path") or ""
        rule = first.get("rule") or first.get("code") or first.get("message") or "invalid"
        return f"{where}: {rule}" if where else str(rule)
    return str(first)


def parse_outcome(payload: Any, batch_size: int) -> BatchOutcome:
    """Read the per-index answer of ``POST /v1/events``.

    Accepts both a ``results`` list (one entry per index with a ``status``) and ``accepted`` /
    ``rejected`` / ``failed`` lists of entries with an ``index``. Indexes the answer does not mention are
    counted as failed, so nothing is silently assumed stored.
    """
    outcome = BatchOutcome()
    if not isinstance(payload, dict):
        outcome.failed = list(range(batch_size))
        return outcome
    entries: list[tuple[str, dict[str, Any]]] = []
    if isinstance(payload.get("results"), list):
        for position, entry in enumerate(payload["results"]):
            entry = entry if isinstance(entry, dict) else {"status": str(entry)}
            entry.setdefault("index", position)
            entries.append((str(entry.get("status", "")).lower(), entry))
    else:
        for status in ("accepted", "rejected", "failed"):
            listed = payload.get(status)
            if isinstance(listed, list):
                entries += [(status, e if isinstance(e, dict) else {"index": e}) for e in listed]
    seen: set[int] = set()
    for status, entry in entries:
        index = entry.get("index")
        if not isinstance(index, int) or not 0 <= index < batch_size or index in seen:
            continue
        seen.add(index)
        if status in ("accepted", "stored", "ok", "duplicate"):
            outcome.accepted.append(index)
        elif status in ("rejected", "invalid"):
            outcome.rejected[index] = _reason(entry)
        else:
            outcome.failed.append(index)
    outcome.failed += [i for i in range(batch_size) if i not in seen]
    return outcome


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


class Replayer:
    """Posts batches of schema v1 events and retries what the API says is worth retrying."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        transport: Transport | None = None,
        max_attempts: int = 6,
        backoff_seconds: float = 0.2,
        max_backoff_seconds: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.url = routes.EVENTS.url(base_url)
        self.api_key = api_key
        self.transport = transport or urllib_transport()
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.sleep = sleep
        self.rng = rng or random.Random()

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), self.max_backoff_seconds * 4)
            except ValueError:
                pass
        # Exponential backoff with jitter, so many replayers do not retry in lockstep.
        ceiling = min(self.backoff_seconds * 2**attempt, self.max_backoff_seconds)
        return ceiling * (0.5 + self.rng.random() / 2)

    def send(self, events: Sequence[dict[str, Any]], summary: ReplaySummary) -> BatchOutcome:
        """POST ``events`` (one request, plus retries) and add the result to ``summary``."""
        pending = list(range(len(events)))  # indexes into `events` still to store
        final = BatchOutcome()
        for attempt in range(self.max_attempts):
            if attempt:
                summary.retries += 1
            body = json.dumps({"events": [events[i] for i in pending]}, separators=(",", ":")).encode()
            headers = {"content-type": "application/json", API_KEY_HEADER: self.api_key}
            summary.requests += 1
            try:
                response = self.transport(self.url, body, headers)
            except TransportError:
                response = None
            if response is not None and response.status in (401, 403):
                raise ReplayError(f"API key refused by {self.url} (HTTP {response.status})")
            retry_after = _header(response, "retry-after") if response is not None else None
            payload = _per_index_document(response)
            if payload is not None:
                # Ingest answers by index even on 400 (all rejected) and 503 (nothing stored).
                outcome = parse_outcome(payload, len(pending))
                final.accepted += [pending[i] for i in outcome.accepted]
                final.rejected.update({pending[i]: reason for i, reason in outcome.rejected.items()})
                pending = [pending[i] for i in sorted(outcome.failed)]
            elif response is not None and 400 <= response.status < 500 and response.status != 429:
                # The whole request was refused (too large, malformed): no retry can fix it.
                reason = f"request: HTTP {response.status} {_error_message(response.body)}"
                final.rejected.update({i: reason for i in pending})
                pending = []
            # Otherwise (no answer, 429, 5xx without a per-index document) the whole request is retried.
            if not pending:
                break
            if attempt + 1 < self.max_attempts:
                self.sleep(self._delay(attempt, retry_after))
        final.failed = pending
        summary.accepted += len(final.accepted)
        summary.rejected.update(final.rejected.values())
        summary.failed += len(final.failed)
        return final


def _per_index_document(response: HttpResponse | None) -> dict[str, Any] | None:
    """The response body when it is ingest's per-index answer, else None."""
    if response is None or not response.body:
        return None
    try:
        payload = json.loads(response.body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("results"), list) or any(
        isinstance(payload.get(key), list) for key in ("accepted", "rejected", "failed")
    ):
        return payload
    return None


def _header(response: HttpResponse, name: str) -> str | None:
    return next((v for k, v in response.headers.items() if k.lower() == name), None)


def _error_message(body: bytes) -> str:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return body[:200].decode("utf-8", "replace")
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, dict):
            return str(error.get("message") or error)
        return str(payload.get("message") or error)
    return str(payload)


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
    linger_seconds: float = 0.2,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress | None = None,
    on_batch: Callable[[list[dict[str, Any]], BatchOutcome], None] | None = None,
) -> ReplaySummary:
    """Replay source events (a JSON Lines path or an iterable of dicts) through ``POST /v1/events``.

    Returns the totals. ``clock`` (Unix seconds) and ``sleep`` pace the replay and can be faked in tests;
    ``on_batch`` sees each posted batch with the API's per-index outcome (the demo uses it to measure
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
    sender = Replayer(base_url, api_key, transport=transport, max_attempts=max_attempts, sleep=sleep)
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
            transport=urllib_transport(args.timeout),
            max_attempts=args.max_attempts,
            progress=progress,
        )
    except (ReplayError, ValueError) as error:
        print(f"replay: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary.to_dict(), indent=2) if args.json else summary.describe())
    return 1 if summary.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
