"""Producer client: batching, idempotent event ids, retries with exponential backoff and full jitter.

How it treats the API's answers (see docs/producers.md and docs/openapi.json):

| answer | what the client does |
|---|---|
| 200 | accepted events are done; rejected ones are reported (never resent); `failed` ones are resent |
| 400 `validation_failed` | every event of the batch is reported rejected with its errors |
| 413 | the batch is split in half and each half sent again (a single event: reported rejected) |
| 429, 500, 502, 503, 504, network error, timeout | the whole pending batch is resent after a backoff |
|  | (never shorter than Retry-After) |
| any other 4xx (bad key, wrong route, ...) | StreamrecError: a usage bug that resending cannot fix |

Every event gets a client-chosen UUID `event_id` before its first send, so a resend after a timeout
(where the first attempt may have been stored) is counted once downstream.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# The API's contract as this client needs it. Defined in streamrec_core (routes.EVENTS,
# constants.API_KEY_HEADER, constants.MAX_EVENTS_PER_REQUEST) and spelled here so that the client stays
# standard library only (streamrec_core needs msgspec); tests/unit/test_client.py keeps them equal.
EVENTS_METHOD = "POST"
EVENTS_PATH = "/v1/events"
API_KEY_HEADER = "x-api-key"
DEFAULT_MAX_BATCH_EVENTS = 500
# The deployed body limit is 1 MiB by default; stay below it with room for the envelope.
DEFAULT_MAX_BATCH_BYTES = 1_000_000
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "streamrec-client/0.1"

# (url, headers, body, timeout) -> (status, headers, body); raises TransportError when no answer came.
Transport = Callable[[str, Mapping[str, str], bytes, float], tuple[int, Mapping[str, str], bytes]]


class TransportError(Exception):
    """No HTTP answer (connection refused, DNS, timeout): always worth a retry."""


class StreamrecError(Exception):
    """The API refused the request in a way that resending cannot fix (wrong key, route, content type)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RejectedEvent:
    event: dict[str, Any]
    errors: list[dict[str, Any]]  # [{"field", "rule", "message"}]


@dataclass(frozen=True)
class FailedEvent:
    event: dict[str, Any]
    reason: str  # the API's reason, or the last HTTP status / transport error


@dataclass
class SendResult:
    accepted: list[str] = field(default_factory=list)  # event ids stored (duplicates included)
    rejected: list[RejectedEvent] = field(default_factory=list)
    failed: list[FailedEvent] = field(default_factory=list)  # still not stored after every attempt
    requests: int = 0
    retries: int = 0  # requests that resent a batch (or what of it was not stored) after an attempt

    @property
    def ok(self) -> bool:
        return not self.rejected and not self.failed

    def merge(self, other: SendResult) -> None:
        self.accepted += other.accepted
        self.rejected += other.rejected
        self.failed += other.failed
        self.requests += other.requests
        self.retries += other.retries

    def raise_for_failures(self) -> None:
        """Raise when any event was rejected or could not be stored."""
        if not self.ok:
            first = (
                self.rejected[0].errors[0].get("message", "rejected")
                if self.rejected
                else self.failed[0].reason
            )
            raise StreamrecError(
                0,
                "events_not_stored",
                f"{len(self.rejected)} rejected, {len(self.failed)} failed; first: {first}",
            )


def new_event_id() -> str:
    """A fresh client-chosen event id (UUID4)."""
    return str(uuid.uuid4())


def urllib_transport(
    url: str, headers: Mapping[str, str], body: bytes, timeout: float
) -> tuple[int, Mapping[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method=EVENTS_METHOD)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (caller's URL)
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers.items()), exc.read()
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        raise TransportError(str(exc)) from exc


class StreamrecClient:
    """Sends events to `POST {base_url}/v1/events`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        max_batch_events: int = DEFAULT_MAX_BATCH_EVENTS,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        max_attempts: int = 6,
        base_delay: float = 0.2,
        max_delay: float = 10.0,
        timeout: float = 10.0,
        transport: Transport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not 1 <= max_batch_events <= DEFAULT_MAX_BATCH_EVENTS:
            raise ValueError(f"max_batch_events must be 1..{DEFAULT_MAX_BATCH_EVENTS}")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.url = base_url.rstrip("/") + EVENTS_PATH
        self._headers = {
            "Content-Type": "application/json",
            API_KEY_HEADER: api_key,
            "User-Agent": USER_AGENT,
        }
        self.max_batch_events = max_batch_events
        self.max_batch_bytes = max_batch_bytes
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self._transport = transport or urllib_transport
        self._sleep = sleep
        self._rand = rand

    # --- public ---------------------------------------------------------------------------------------
    def send(self, events: Iterable[Mapping[str, Any]]) -> SendResult:
        """Send events in batches; returns what was stored, rejected and (after every retry) not stored.

        Events without an `event_id` get one (the caller's mappings are not modified).
        """
        result = SendResult()
        for batch in self._batches(self._with_ids(events)):
            result.merge(self._send_batch(batch))
        return result

    def send_one(self, event: Mapping[str, Any]) -> SendResult:
        return self.send([event])

    # --- batching -------------------------------------------------------------------------------------
    @staticmethod
    def _with_ids(events: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
        for event in events:
            copy = dict(event)
            if "event_id" not in copy:
                copy["event_id"] = new_event_id()
            yield copy

    def _batches(self, events: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        envelope = len(b'{"events":[]}')
        batch: list[dict[str, Any]] = []
        size = envelope
        for event in events:
            event_size = len(_dumps(event)) + 1
            if batch and (len(batch) >= self.max_batch_events or size + event_size > self.max_batch_bytes):
                yield batch
                batch, size = [], envelope
            batch.append(event)
            size += event_size
        if batch:
            yield batch

    # --- sending with retries -------------------------------------------------------------------------
    def _send_batch(self, batch: list[dict[str, Any]]) -> SendResult:
        result = SendResult()
        pending = batch
        last_reason = "not sent"
        retry_after = 0.0
        for attempt in range(self.max_attempts):
            if attempt:
                self._sleep(self._delay(attempt - 1, retry_after))
                retry_after = 0.0
                result.retries += 1
            result.requests += 1
            try:
                status, headers, raw = self._transport(
                    self.url, self._headers, _envelope(pending), self.timeout
                )
            except TransportError as exc:
                last_reason = f"transport: {exc}"
                continue
            answer = _json_object(raw)
            if status == 413:
                return self._split(pending, result, answer)
            if status in RETRYABLE_STATUSES and not _has_results(answer):
                last_reason = f"HTTP {status}"
                retry_after = _retry_after(headers)
                continue
            if status == 200 or _has_results(answer):
                retry_after = _retry_after(headers)
                pending, last_reason = self._apply(pending, answer, result)
                if not pending:
                    return result
                continue
            error = found if isinstance(found := answer.get("error"), dict) else {}
            raise StreamrecError(
                status, str(error.get("code", "unknown")), str(error.get("message", raw[:200]))
            )
        result.failed += [FailedEvent(event, last_reason) for event in pending]
        return result

    def _apply(
        self, pending: list[dict[str, Any]], answer: Mapping[str, Any], result: SendResult
    ) -> tuple[list[dict[str, Any]], str]:
        """Record accepted and rejected events; return the events to resend and why."""
        answered: set[int] = set()
        for entry in answer.get("accepted", ()):
            result.accepted.append(str(entry["event_id"]))
            answered.add(int(entry["index"]))
        for entry in answer.get("rejected", ()):
            index = int(entry["index"])
            result.rejected.append(RejectedEvent(pending[index], list(entry.get("errors", ()))))
            answered.add(index)
        resend = []
        reason = "failed"
        for entry in answer.get("failed", ()):
            resend.append(pending[int(entry["index"])])
            reason = str(entry.get("reason", reason))
            answered.add(int(entry["index"]))
        # An index the answer does not mention is not known to be stored: resend it too.
        resend += [event for i, event in enumerate(pending) if i not in answered]
        return resend, reason

    def _split(
        self, pending: list[dict[str, Any]], result: SendResult, answer: Mapping[str, Any]
    ) -> SendResult:
        if len(pending) == 1:
            error = found if isinstance(found := answer.get("error"), dict) else {}
            message = str(error.get("message", "request too large"))
            result.rejected.append(
                RejectedEvent(
                    pending[0], [{"field": "event", "rule": message, "message": f"event: {message}"}]
                )
            )
            return result
        half = len(pending) // 2
        result.merge(self._send_batch(pending[:half]))
        result.merge(self._send_batch(pending[half:]))
        return result

    def _delay(self, attempt: int, retry_after: float) -> float:
        """Full jitter on a capped exponential, but never shorter than the server's Retry-After.

        The formula of `streamrec_core.backoff.backoff_delay(attempt + 1, ...)`, copied: producers import
        this package without the functions' code (tests/unit/test_backoff.py keeps the two equal).
        """
        return max(retry_after, self._rand() * min(self.max_delay, self.base_delay * (2**attempt)))


class Producer:
    """Buffers events and sends them in batches of `flush_at`; use as a context manager to flush on exit."""

    def __init__(self, client: StreamrecClient, *, flush_at: int = DEFAULT_MAX_BATCH_EVENTS) -> None:
        self.client = client
        self.flush_at = flush_at
        self.result = SendResult()
        self._buffer: list[dict[str, Any]] = []

    def add(self, event: Mapping[str, Any]) -> str:
        """Queue one event; returns its event_id (assigned now when absent)."""
        copy = dict(event)
        copy.setdefault("event_id", new_event_id())
        self._buffer.append(copy)
        if len(self._buffer) >= self.flush_at:
            self.flush()
        return str(copy["event_id"])

    def flush(self) -> SendResult:
        """Send everything buffered; returns the cumulative result."""
        buffered, self._buffer = self._buffer, []
        if buffered:
            self.result.merge(self.client.send(buffered))
        return self.result

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.flush()


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _envelope(events: list[dict[str, Any]]) -> bytes:
    return _dumps({"events": events})


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _has_results(answer: Mapping[str, Any]) -> bool:
    return all(isinstance(answer.get(key), list) for key in ("accepted", "rejected", "failed"))


def _retry_after(headers: Mapping[str, str]) -> float:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return 0.0
    return 0.0
