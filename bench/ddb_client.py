"""CPU the DynamoDB client spends per request inside a function, measured without a network.

`features.dynamodb.DynamoStore` over a real boto3 client whose HTTP layer is replaced by canned answers
(a botocore ``before-send`` hook): what is timed is what a function's CPU does per request (the store's
request building and the codec, botocore's validation, serialization, SigV4 signing, response parsing),
not DynamoDB's latency. The benchmarks add assumed latencies to it for the functions' durations.

Usage:
    python -m bench.ddb_client          # CPU per PutItem and per BatchGetItem of 100 user rows
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from streamrec_core.features.codec import to_item
from streamrec_core.features.dynamodb import DynamoStore
from streamrec_core.features.keys import user_key
from streamrec_core.features.user_fold import UserRow

USERS_TABLE, ITEMS_TABLE = "users", "items"


class _Body:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def stream(self, **_kwargs: Any) -> Any:
        yield self.payload


def _json_item(item: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A typed item as DynamoDB's JSON protocol carries it (binary values base64)."""
    return {
        name: {"B": base64.b64encode(value["B"]).decode()} if "B" in value else value
        for name, value in item.items()
    }


def faked_client(rows: dict[str, dict[str, Any]]) -> Any:
    """A boto3 DynamoDB client answering PutItem with {} and BatchGetItem from `rows` (user id -> item)."""
    import boto3
    from botocore.awsrequest import AWSResponse

    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        endpoint_url="https://dynamodb.us-east-1.amazonaws.com",
    )

    def answer(request: Any, **_kwargs: Any) -> AWSResponse:
        operation = request.headers.get("X-Amz-Target", b"")
        operation = operation.decode() if isinstance(operation, bytes) else operation
        body: dict[str, Any] = {}
        if operation.endswith("BatchGetItem"):
            wanted = json.loads(request.body)["RequestItems"][USERS_TABLE]["Keys"]
            found = [rows[key["user_id"]["S"]] for key in wanted if key["user_id"]["S"] in rows]
            body = {"Responses": {USERS_TABLE: found}, "UnprocessedKeys": {}}
        headers = {"x-amzn-RequestId": "bench", "Content-Type": "application/x-amz-json-1.0"}
        return AWSResponse(request.url, 200, headers, _Body(json.dumps(body).encode()))

    client.meta.events.register("before-send.dynamodb", answer)
    return client


def sample_rows(count: int, history: int = 20) -> list[UserRow]:
    """User rows of a typical size at real scale (bench.scale: p50 ~200 B, p90 ~370 B as stored)."""
    from streamrec_core.features.user_fold import HistoryEntry, RecentId

    rows = []
    for n in range(count):
        row = UserRow(f"u{n}", version=3, expires_at=1_800_000_000, last_event_ms=1_700_000_000_000)
        row.history = [
            HistoryEntry(f"i{n * 7 + j}", "view", 1_700_000_000_000 - j * 40_000, f"c{j % 4}")
            for j in range(history)
        ]
        row.counts = {"view": history}
        row.recent = [RecentId(bytes([j] * 6), 1_700_000_000_000 - j * 40_000) for j in range(8)]
        rows.append(row)
    return rows


def client_cpu(samples: int = 400) -> dict[str, float]:
    """CPU milliseconds per PutItem (one user row) and per BatchGetItem (100 user rows), best of 3."""
    rows = sample_rows(100)
    items = {row.user_id: _json_item(to_item(row)) for row in rows}
    store = DynamoStore(faked_client(items), USERS_TABLE, ITEMS_TABLE, writers=1)
    keys = [user_key(row.user_id) for row in rows]
    store.get_many(keys, consistent=True)  # warm up botocore's caches (models, signers)
    best_put = best_get = float("inf")
    for _ in range(3):
        started = time.process_time()
        for n in range(samples):
            row = rows[n % len(rows)]
            row.version = 0
            store.put_many([row])
        best_put = min(best_put, (time.process_time() - started) / samples)
        started = time.process_time()
        for _ in range(samples // 20):
            store.get_many(keys, consistent=True)
        best_get = min(best_get, (time.process_time() - started) / (samples // 20))
    return {"put_item_ms": round(best_put * 1000, 4), "batch_get_100_ms": round(best_get * 1000, 4)}


def main() -> int:
    figures = client_cpu()
    print(
        f"DynamoDB client CPU per request (no network): PutItem {figures['put_item_ms']:.3f} ms, "
        f"BatchGetItem of 100 user rows {figures['batch_get_100_ms']:.3f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
