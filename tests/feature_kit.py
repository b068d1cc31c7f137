"""Test helpers for the feature pipeline (process, serve, redrive tests): tables, Kinesis events, faults."""

from __future__ import annotations

import base64
import io
import json
import math
import zipfile
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from botocore.exceptions import ClientError
from streamrec_core import constants as c
from streamrec_core.feature_store import from_item, to_item
from streamrec_core.features import FeatureConfig, MemoryFeatures, merge_trending

from local_emulator.tables import create_feature_tables

USERS_TABLE = "streamrec-users"
ITEMS_TABLE = "streamrec-items"
STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/events"
SHARD = "shardId-000000000000"


def create_tables(dynamodb: Any, users: str = USERS_TABLE, items: str = ITEMS_TABLE) -> None:
    """The two feature tables with the keys the synthesized template gives them."""
    create_feature_tables(dynamodb, users=users, items=items)


def scan_all(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = dynamodb.scan(**kwargs)
        rows.extend(from_item(item) for item in page.get("Items", []))
        if not page.get("LastEvaluatedKey"):
            return rows
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def table_state(
    dynamodb: Any, users: str = USERS_TABLE, items: str = ITEMS_TABLE
) -> dict[tuple[str, ...], dict]:
    """Both tables as {key: row}; versions removed (they count writes, which faults legitimately change)."""
    state: dict[tuple[str, ...], dict] = {}
    for row in scan_all(dynamodb, users):
        state[("users", row[c.USERS_PK])] = {k: v for k, v in row.items() if k != c.ATTR_VERSION}
    for row in scan_all(dynamodb, items):
        state[("items", row[c.ITEMS_PK], row[c.ITEMS_SK])] = {
            k: v for k, v in row.items() if k != c.ATTR_VERSION
        }
    return state


def readers_view(rows: Mapping[tuple, Any], half_life_hours: float) -> dict[tuple, Any]:
    """Rows as readers see them: each trending list's slot rows replaced by their merged sum.

    Which slot a batch adds to is free (the process function picks one per batch and moves after a
    version conflict; the in-memory fold uses the shard's): serve only ever reads a list's slots summed
    (`merge_trending`), so that sum, the newest hour and the expiry are what must be equal. Works on
    `table_state` keys ("items", pk, sk) and on store keys (table, pk, sk) alike; versions are kept
    as they are.
    """
    view: dict[tuple, Any] = {}
    slots: dict[tuple, list[Mapping[str, Any]]] = {}
    for key, row in rows.items():
        if row and len(key) == 3 and key[2].startswith(c.TRENDING_SLOT_SK_PREFIX):
            slots.setdefault(key[:2], []).append(row)
        else:
            view[key] = row
    for list_key, slot_rows in slots.items():
        merged = merge_trending(slot_rows, half_life_hours)
        view[(*list_key, "merged slots")] = {
            c.TRENDING_ENTRIES: {item: [score, category] for item, score, category in merged},
            c.ITEM_MAX_HOUR: max(int(row[c.ITEM_MAX_HOUR]) for row in slot_rows),
            c.TTL_ATTRIBUTE: max(int(row[c.TTL_ATTRIBUTE]) for row in slot_rows),
        }
    return view


def reference_state(cfg: FeatureConfig, records: Iterable[tuple[Mapping[str, Any], str]]) -> dict:
    """The tables after applying each (event, sequence number) of one shard once, in order, as
    `table_state` shows them."""
    memory = MemoryFeatures(cfg)
    for body, sequence_number in records:
        memory.apply(body, SHARD, sequence_number, arrival_ms=0)
    state = {}
    for (table, pk, sk), row in memory.rows.items():
        stored = from_item(to_item(row))
        stored.pop(c.ATTR_VERSION, None)
        state[("users", pk) if table == "users" else ("items", pk, sk)] = stored
    return state


def comparable(state: Mapping[tuple, Any], cfg: FeatureConfig) -> dict:
    """`table_state` as readers see it, without watermark arrival times (the stream's clock) and with
    floats rounded (sums in another order differ in the last bits)."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, float):
            return round(value, 9)
        return value

    out = {}
    for key, row in readers_view(state, cfg.trending_half_life_hours).items():
        row = dict(row)
        if c.USER_WATERMARKS in row:
            row[c.USER_WATERMARKS] = {shard: mark[0] for shard, mark in row[c.USER_WATERMARKS].items()}
        out[key] = clean(row)
    return out


def process_env(cfg: FeatureConfig, dead_letter_queue_url: str) -> dict[str, str]:
    """The environment CDK gives the process function, for `cfg` and the two test tables."""
    return {
        c.ENV_USERS_TABLE: USERS_TABLE,
        c.ENV_ITEMS_TABLE: ITEMS_TABLE,
        c.ENV_DLQ_URL: dead_letter_queue_url,
        c.ENV_USER_TTL_SECONDS: str(cfg.user_ttl_seconds),
        c.ENV_ITEM_TTL_SECONDS: str(cfg.item_ttl_seconds),
        c.ENV_ALLOWED_LATENESS_SECONDS: str(cfg.allowed_lateness_ms // 1000),
        c.ENV_TRENDING_SLOTS: str(cfg.trending_slots),
        c.ENV_EXPERIMENTS: "[]",
    }


def create_process_function(lam: Any, iam: Any, env: Mapping[str, str], name: str = "process") -> str:
    """A process function in moto's Lambda with `env` (its code never runs there); returns its ARN."""
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    return lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="process.handler.handler",
        Code={"ZipFile": code.getvalue()},
        Environment={"Variables": dict(env)},
    )["FunctionArn"]


def assert_same_rows(actual: Any, expected: Any, path: str = "") -> None:
    """Deep equality of rows, floats within 1e-9 relative (shards, lanes and slots add in other orders)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), (
            f"{path}: keys {set(actual) ^ set(expected)}"
        )
        for key in expected:
            assert_same_rows(actual[key], expected[key], f"{path}/{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: {actual} != {expected}"
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same_rows(a, e, f"{path}[{index}]")
    elif isinstance(expected, float) or isinstance(actual, float):
        assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12), f"{path}: {actual} != {expected}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def event(
    n: int,
    *,
    user: str = "u1",
    item: str | None = "i1",
    etype: str = "view",
    ts: str = "2024-05-01T12:00:00.000Z",
    category: str | None = "c1",
    event_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A normalized event as the Kinesis record carries it (plus received_at)."""
    body: dict[str, Any] = {
        "event_id": event_id or f"e{n}",
        "event_type": etype,
        "user_id": user,
        "timestamp": ts,
        "schema_version": 1,
        c.RECORD_RECEIVED_AT: ts,
    }
    if item is not None:
        body["item_id"] = item
    if category is not None:
        body["category"] = category
    body.update(extra)
    return body


def kinesis_record(
    payload: Mapping[str, Any] | bytes,
    sequence_number: int | str,
    *,
    shard: str = SHARD,
    partition_key: str | None = None,
    arrival: float = 1_714_564_800.0,
) -> dict[str, Any]:
    """One record of a Lambda Kinesis event, exactly as the event source mapping builds it."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
    key = partition_key
    if key is None:
        key = payload.get("user_id", "x") if isinstance(payload, Mapping) else "x"
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": key,
            "sequenceNumber": str(sequence_number),
            "data": base64.b64encode(data).decode("ascii"),
            "approximateArrivalTimestamp": arrival,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard}:{sequence_number}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/process",
        "awsRegion": "us-east-1",
        "eventSourceARN": STREAM_ARN,
    }


def kinesis_event(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": list(records)}


def client_error(code: str, operation: str, **extra: Any) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": f"injected {code}"}}
    response.update(extra)
    return ClientError(response, operation)  # type: ignore[arg-type]


class CrashAfterWrites(RuntimeError):
    """Injected: the function dies after some writes (timeout, out of memory, a bug)."""


class FaultyDynamoDB:
    """Wraps a boto3 DynamoDB client and injects faults into TransactWriteItems by call number.

    `plan(n)` returns None (pass through), "throttle" (raise a throttling error, nothing written),
    "conflict" (a concurrent writer: bump nothing, raise TransactionCanceled/TransactionConflict) or
    "crash" (raise CrashAfterWrites before the call: the calls so far stay written).
    """

    def __init__(self, client: Any, plan: Callable[[int], str | None] | None = None) -> None:
        self._client = client
        self.plan = plan or (lambda n: None)
        self.transact_calls = 0
        self.batch_get_calls = 0
        self.get_calls = 0
        self.query_calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_get_item(self, **kwargs: Any) -> Any:
        self.batch_get_calls += 1
        return self._client.batch_get_item(**kwargs)

    def get_item(self, **kwargs: Any) -> Any:
        self.get_calls += 1
        return self._client.get_item(**kwargs)

    def query(self, **kwargs: Any) -> Any:
        self.query_calls += 1
        return self._client.query(**kwargs)

    def transact_write_items(self, **kwargs: Any) -> Any:
        self.transact_calls += 1
        fault = self.plan(self.transact_calls)
        if fault == "throttle":
            raise client_error(
                "TransactionCanceledException",
                "TransactWriteItems",
                CancellationReasons=[{"Code": "ThrottlingError"}] * len(kwargs["TransactItems"]),
            )
        if fault == "throttle-top":
            raise client_error("ProvisionedThroughputExceededException", "TransactWriteItems")
        if fault == "conflict":
            raise client_error(
                "TransactionCanceledException",
                "TransactWriteItems",
                CancellationReasons=[{"Code": "TransactionConflict"}]
                + [{"Code": "None"}] * (len(kwargs["TransactItems"]) - 1),
            )
        if fault == "crash":
            raise CrashAfterWrites(f"injected crash before write call {self.transact_calls}")
        return self._client.transact_write_items(**kwargs)


class MemoryStore:
    """An in-memory feature store with DynamoDB's semantics that matter here (the StorePort).

    Rows go through the typed-JSON serializer, so what is stored is what DynamoDB would store.
    Conditions on versions are checked, 100-row and 4 MB transactions enforced (as FeatureStore does),
    calls counted; `plan(n)` injects
    faults into the n-th commit: "throttle", "conflict" (a concurrent writer bumped a row) or "crash".
    """

    def __init__(self, plan: Callable[[int], str | None] | None = None) -> None:
        from streamrec_core.feature_store import to_item

        self._to_item = to_item
        self.items: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.plan = plan or (lambda n: None)
        self.read_calls = 0
        self.commit_calls = 0
        self.committed = 0
        self.largest_commit = 0

    def rows(self) -> dict[tuple[str, str, str], dict[str, Any]]:
        return {key: from_item(item) for key, item in self.items.items()}

    def read(self, keys: Iterable[tuple[str, str, str]], *, consistent: bool = True) -> dict:
        wanted = list(dict.fromkeys(keys))
        self.read_calls += (len(wanted) + 99) // 100
        return {key: (from_item(self.items[key]) if key in self.items else None) for key in wanted}

    def commit(self, writes: Any) -> None:
        from streamrec_core.feature_store import Throttled, WriteConflict, check_transaction_size

        self.commit_calls += 1
        if len(writes) > c.DDB_TRANSACT_MAX_ITEMS:
            raise ValueError("more than 100 rows in one transaction")
        if len({key for key, _, _ in writes}) != len(writes):
            raise ValueError("a transaction may not touch one row twice")
        check_transaction_size(
            self._to_item({**row, c.ATTR_VERSION: expected + 1}) for _key, row, expected in writes
        )
        fault = self.plan(self.commit_calls)
        if fault == "throttle":
            raise Throttled("injected")
        if fault == "crash":
            raise CrashAfterWrites(f"injected crash before commit {self.commit_calls}")
        if fault == "conflict":
            key = writes[0][0]
            if key in self.items:  # a concurrent writer rewrote the row unchanged: only the version moved
                current = from_item(self.items[key])
                current[c.ATTR_VERSION] += 1
                self.items[key] = self._to_item(current)
            else:  # ... or created it empty
                from streamrec_core.features import new_row

                self.items[key] = self._to_item({**new_row(key), c.ATTR_VERSION: 1})
        for key, _row, expected in writes:
            stored = self.items.get(key)
            version = 0 if stored is None else int(stored[c.ATTR_VERSION]["N"])
            if version != expected:
                raise WriteConflict(f"{key}: version {version}, expected {expected}")
        for key, row, expected in writes:
            self.items[key] = self._to_item({**row, c.ATTR_VERSION: expected + 1})
        self.committed += 1
        self.largest_commit = max(self.largest_commit, len(writes))


class ListDeadLetters:
    """A dead-letter port that keeps the letters (and can fail to send some)."""

    def __init__(self, fail: Callable[[Any], bool] | None = None) -> None:
        self.sent: list[Any] = []
        self.fail = fail or (lambda letter: False)

    def send(self, letters: Any) -> list[Any]:
        failed = [letter for letter in letters if self.fail(letter)]
        self.sent.extend(letter for letter in letters if letter not in failed)
        return failed
