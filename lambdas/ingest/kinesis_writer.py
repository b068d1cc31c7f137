"""Data access: the only ingest code that talks to Kinesis.

One PutRecords call per request; then only the entries that failed are retried, with exponential backoff
and full jitter, until they succeed or the time budget runs out. botocore errors become the two failure
reasons of the HTTP contract (throttled, stream_unavailable) here, never further up.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from streamrec_core.backoff import backoff_delay
from streamrec_core.constants import MAX_EVENTS_PER_REQUEST
from streamrec_core.http import REASON_STREAM_UNAVAILABLE, REASON_THROTTLED

# Whole-call errors worth retrying; anything else (missing stream, access denied, disabled key) will not
# heal within one request.
_THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "KMSThrottlingException",
        "LimitExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    }
)
_TRANSIENT_CODES = frozenset({"InternalFailure", "InternalFailureException", "ServiceUnavailable"})

BASE_DELAY_SECONDS = 0.05
MAX_DELAY_SECONDS = 2.0


@dataclass(slots=True)
class PutResult:
    """Outcome of putting one request's records: `failures` maps record position -> reason."""

    failures: dict[int, str] = field(default_factory=dict)
    calls: int = 0
    retried: int = 0  # entries sent again after a failure (summed over retries)


class KinesisWriter:
    """Writes encoded events to one stream; the boto3 client is injected (moto or a fake in tests)."""

    def __init__(
        self,
        client: Any,
        stream_name: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        base_delay: float = BASE_DELAY_SECONDS,
        max_delay: float = MAX_DELAY_SECONDS,
    ) -> None:
        self._client = client
        self._stream_name = stream_name
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self._base_delay = base_delay
        self._max_delay = max_delay

    def put(self, records: Sequence[tuple[bytes, str]], *, budget_seconds: float) -> PutResult:
        """Put `(data, partition_key)` records; return which positions still failed, and why."""
        if len(records) > MAX_EVENTS_PER_REQUEST:
            raise ValueError(f"at most {MAX_EVENTS_PER_REQUEST} records per PutRecords call")
        result = PutResult()
        if not records:
            return result
        deadline = self._clock() + budget_seconds
        pending = list(range(len(records)))
        attempt = 0  # retries made so far; the next one is number attempt + 1
        while True:
            failures, retry_worthwhile = self._put_once(records, pending)
            result.calls += 1
            if not failures:
                result.failures = {}
                return result
            result.failures = failures
            if not retry_worthwhile:
                return result
            attempt += 1
            delay = backoff_delay(attempt, base=self._base_delay, cap=self._max_delay, jitter=self._rand())
            if self._clock() + delay >= deadline:
                return result
            self._sleep(delay)
            pending = sorted(failures)
            result.retried += len(pending)

    def _put_once(
        self, records: Sequence[tuple[bytes, str]], pending: list[int]
    ) -> tuple[dict[int, str], bool]:
        entries = [{"Data": records[i][0], "PartitionKey": records[i][1]} for i in pending]
        try:
            response = self._client.put_records(StreamName=self._stream_name, Records=entries)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _THROTTLING_CODES:
                return dict.fromkeys(pending, REASON_THROTTLED), True
            return dict.fromkeys(pending, REASON_STREAM_UNAVAILABLE), code in _TRANSIENT_CODES
        except BotoCoreError:
            # Connection errors and timeouts: the records may or may not have landed; resending is safe
            # because downstream deduplicates by event_id.
            return dict.fromkeys(pending, REASON_STREAM_UNAVAILABLE), True
        failures: dict[int, str] = {}
        for position, entry in zip(pending, response.get("Records", ()), strict=False):
            code = entry.get("ErrorCode")
            if code:
                failures[position] = (
                    REASON_THROTTLED
                    if code == "ProvisionedThroughputExceededException"
                    else REASON_STREAM_UNAVAILABLE
                )
        # A response shorter than the request would be a service bug; never count those entries as stored.
        for position in pending[len(response.get("Records", ())) :]:
            failures[position] = REASON_STREAM_UNAVAILABLE
        return failures, True
