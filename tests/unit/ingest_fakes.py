"""Test doubles for the ingest function: a scripted Kinesis client, proxy events (the Lambda context is
`local_emulator.worker_main.LambdaContext`)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ingest"


def throttled_entry() -> dict[str, str]:
    return {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard"}


def internal_failure_entry() -> dict[str, str]:
    return {"ErrorCode": "InternalFailure", "ErrorMessage": "Internal service failure."}


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "PutRecords")


# A script step decides the outcome of one PutRecords call from its entries: it returns, per entry,
# either None (stored) or an error entry dict, or raises (a whole-call error).
Step = Callable[[list[dict[str, Any]]], list[dict[str, str] | None]]


def store_all(entries: list[dict[str, Any]]) -> list[dict[str, str] | None]:
    return [None] * len(entries)


def fail_positions(*positions: int, entry: Callable[[], dict[str, str]] = throttled_entry) -> Step:
    def step(entries: list[dict[str, Any]]) -> list[dict[str, str] | None]:
        return [entry() if i in positions else None for i in range(len(entries))]

    return step


def fail_all(entry: Callable[[], dict[str, str]] = throttled_entry) -> Step:
    return lambda entries: [entry() for _ in entries]


def raise_error(code: str) -> Step:
    def step(entries: list[dict[str, Any]]) -> list[dict[str, str] | None]:
        raise client_error(code)

    return step


@dataclass
class FakeKinesis:
    """PutRecords only. Follows `script` call by call (then stores everything); keeps what was stored."""

    script: list[Step] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    stored: list[dict[str, Any]] = field(default_factory=list)  # {"Data": bytes, "PartitionKey": str}

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append({"StreamName": StreamName, "Records": list(Records)})
        step = self.script[len(self.calls) - 1] if len(self.calls) <= len(self.script) else store_all
        outcomes = step(Records)
        results: list[dict[str, str]] = []
        for seq, (record, error) in enumerate(zip(Records, outcomes, strict=True)):
            if error is None:
                self.stored.append(record)
                results.append(
                    {"SequenceNumber": str(len(self.stored) + seq), "ShardId": "shardId-000000000000"}
                )
            else:
                results.append(error)
        return {"FailedRecordCount": sum(1 for o in outcomes if o), "Records": results}


@dataclass
class FakeClock:
    """Monotonic clock advanced only by `sleep`, so retry budgets are exact and tests never wait."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


PRODUCER_KEY_ID = "a1b2c3"  # requestContext.identity.apiKeyId of tests/fixtures/ingest


def load_fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def proxy_event(
    body: Any, *, content_type: str | None = "application/json", **overrides: Any
) -> dict[str, Any]:
    """The base API Gateway proxy event with a new body (a str is sent as is, anything else as JSON)."""
    event = copy.deepcopy(load_fixture("post_events_base.json"))
    event["body"] = body if isinstance(body, str) or body is None else json.dumps(body)
    headers = {k: v for k, v in event["headers"].items() if k.lower() != "content-type"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    event["headers"] = headers
    event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    event.update(overrides)
    return event


def ingest_config(**overrides: Any) -> Any:
    """An IngestConfig as CDK's dev profile would give it, with overrides."""
    from datetime import timedelta

    from ingest.config import IngestConfig
    from streamrec_core.routes import KeyRole

    values: dict[str, Any] = {
        "stream_name": "streamrec-events",
        "max_event_age": timedelta(days=7),
        "max_future_skew": timedelta(minutes=5),
        "max_body_bytes": 1_048_576,
        "max_events_per_request": 500,
        "put_retry_budget_seconds": 5.0,
        "cors_allowed_origins": (),
        # The fixtures' requestContext.identity.apiKeyId: the producer key.
        "key_ids": {KeyRole.PRODUCER: PRODUCER_KEY_ID},
    }
    values.update(overrides)
    return IngestConfig(**values)


def emf_metrics(stdout: str) -> list[dict[str, Any]]:
    """The EMF documents Powertools printed: [{"dimensions": {...}, "metrics": {name: value}}]."""
    found = []
    for line in stdout.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        doc = json.loads(line)
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            dims = {d: doc[d] for group in directive["Dimensions"] for d in group}
            values = {
                m["Name"]: sum(doc[m["Name"]]) if isinstance(doc[m["Name"]], list) else doc[m["Name"]]
                for m in directive["Metrics"]
            }
            found.append({"namespace": directive["Namespace"], "dimensions": dims, "metrics": values})
    return found
