"""Test helpers for the feature pipeline (process, aggregate, serve, redrive tests): tables, Kinesis
events, faults, and comparing stored rows with the reference fold."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import math
import zipfile
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from botocore.exceptions import ClientError
from streamrec_core import constants as c
from streamrec_core.features.codec import Row, from_item, new_row, to_item
from streamrec_core.features.config import FeatureConfig
from streamrec_core.features.keys import ITEMS, USERS, Key, kind_of, trending_key
from streamrec_core.features.reference import ReferenceFold
from streamrec_core.features.trending import TrendingList, merge
from streamrec_core.features.user_fold import UserRow

from local_emulator.tables import create_feature_tables

USERS_TABLE = "streamrec-users"
ITEMS_TABLE = "streamrec-items"
STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/events"
SHARD = "shardId-000000000000"


def create_tables(dynamodb: Any, users: str = USERS_TABLE, items: str = ITEMS_TABLE) -> None:
    """The two feature tables with the keys the synthesized template gives them."""
    create_feature_tables(dynamodb, users=users, items=items)


def scan_rows(dynamodb: Any, users: str = USERS_TABLE, items: str = ITEMS_TABLE) -> dict[Key, Row]:
    """Every row of both tables, decoded."""
    rows: dict[Key, Row] = {}
    for table, name in ((USERS, users), (ITEMS, items)):
        kwargs: dict[str, Any] = {"TableName": name, "ConsistentRead": True}
        while True:
            page = dynamodb.scan(**kwargs)
            for item in page.get("Items", []):
                if table == USERS:
                    key = Key(USERS, item[c.USERS_PK]["S"])
                else:
                    key = Key(ITEMS, item[c.ITEMS_PK]["S"], item[c.ITEMS_SK]["S"])
                rows[key] = from_item(key, item)
            if not page.get("LastEvaluatedKey"):
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return rows


def comparable(rows: Mapping[Key, Row]) -> dict[Key, dict[str, Any]]:
    """Rows as what readers rely on: versions (they count writes, which faults change), watermark arrival
    times and the outbox (stream clocks, branch progress), trending partials (which shard holds which
    share is free; the merged lists are what serve reads) and branch progress rows left out."""
    out: dict[Key, dict[str, Any]] = {}
    for key, row in rows.items():
        kind = kind_of(key)
        if kind in ("partial", "progress"):
            continue
        fields = dataclasses.asdict(row)
        for name in ("version", "watermarks", "watermark", "merged_ms"):
            fields.pop(name, None)
        if isinstance(row, UserRow):
            fields["watermarks"] = {shard: mark.sequence_number for shard, mark in row.watermarks.items()}
            fields.pop("outbox", None)  # handed to the branches and released as they consume it
            fields.pop("outbox_floor_ms", None)
        elif isinstance(row, TrendingList):
            # Which of near-equal scores sorts first, and when the list was merged, are free.
            fields = {"items": {t.item: (t.score, t.category) for t in row.items}}
        out[key] = fields
    return out


def reference_rows(cfg: FeatureConfig, events: Iterable[Any]) -> ReferenceFold:
    """The reference fold of events (features.events.Event), each applied once in the given order."""
    fold = ReferenceFold(cfg)
    for event in events:
        fold.apply(event)
    return fold


def expected_rows(fold: ReferenceFold) -> dict[Key, Row]:
    """The reference's rows as the tables key them, with its merged trending lists."""
    rows = dict(fold.rows())
    overall, by_category = merge([fold.partial], fold.cfg)
    if overall:
        rows[trending_key()] = TrendingList(None, items=overall)
    for category, items in by_category.items():
        rows[trending_key(category)] = TrendingList(category, items=items)
    return rows


def assert_same(actual: Any, expected: Any, path: str = "") -> None:
    """Deep equality, floats within 1e-9 relative (shares of one score are summed in other orders)."""
    if dataclasses.is_dataclass(expected) and not isinstance(expected, type):
        row = dataclasses.is_dataclass(actual) and not isinstance(actual, type)
        assert row, f"{path}: {actual!r} is not a row"
        assert_same(dataclasses.asdict(actual), dataclasses.asdict(expected), path)
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), (
            f"{path}: keys differ by {set(actual) ^ set(expected)}"
        )
        for key in expected:
            assert_same(actual[key], expected[key], f"{path}/{key}")
    elif isinstance(expected, list | tuple):
        assert isinstance(actual, list | tuple) and len(actual) == len(expected), (
            f"{path}: {actual!r} != {expected!r}"
        )
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{path}[{index}]")
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


def feature_env(cfg: FeatureConfig) -> dict[str, str]:
    """The feature settings CDK gives the process and aggregate functions, for `cfg`."""
    return {
        c.ENV_USER_TTL_SECONDS: str(cfg.user_ttl_seconds),
        c.ENV_ITEM_TTL_SECONDS: str(cfg.item_ttl_seconds),
        c.ENV_ALLOWED_LATENESS_SECONDS: str(cfg.allowed_lateness_ms // 1000),
        c.ENV_OUTBOX_RETENTION_SECONDS: str(cfg.outbox_retention_ms // 1000),
    }


def process_env(cfg: FeatureConfig, dead_letter_queue_url: str) -> dict[str, str]:
    """The environment CDK gives the process function, for `cfg` and the two test tables."""
    return {
        c.ENV_USERS_TABLE: USERS_TABLE,
        c.ENV_ITEMS_TABLE: ITEMS_TABLE,
        c.ENV_DLQ_URL: dead_letter_queue_url,
        **feature_env(cfg),
    }


def aggregate_env(cfg: FeatureConfig, hot_path_max_record_age_s: int = 3600) -> dict[str, str]:
    """The environment CDK gives the aggregate functions, for `cfg` and the two test tables."""
    return {
        c.ENV_USERS_TABLE: USERS_TABLE,
        c.ENV_ITEMS_TABLE: ITEMS_TABLE,
        c.ENV_HOT_PATH_MAX_RECORD_AGE_SECONDS: str(hot_path_max_record_age_s),
        **feature_env(cfg),
    }


def create_function(
    lam: Any,
    iam: Any,
    env: Mapping[str, str],
    name: str = "process",
    handler: str = "process.handler.handler",
) -> str:
    """A function in moto's Lambda with `env` (its code never runs there); returns its ARN."""
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    return lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler=handler,
        Code={"ZipFile": code.getvalue()},
        Environment={"Variables": dict(env)},
    )["FunctionArn"]


def client_error(code: str, operation: str, **extra: Any) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": f"injected {code}"}}
    response.update(extra)
    return ClientError(response, operation)


class CrashAfterWrites(RuntimeError):
    """Injected: the function dies after some writes (timeout, out of memory, a bug)."""


class FaultyDynamoDB:
    """Wraps a boto3 DynamoDB client, counts calls, and injects faults into PutItem by call number.

    `plan(n)` returns None (pass through), "throttle" (a throttling error, nothing written), "conflict"
    (a concurrent writer bumped the row's version first: the condition fails) or "crash" (raise
    CrashAfterWrites before the call: the calls so far stay written).
    """

    def __init__(self, client: Any, plan: Callable[[int], str | None] | None = None) -> None:
        self._client = client
        self.plan = plan or (lambda n: None)
        self.put_calls = 0
        self.batch_get_calls = 0
        self.query_calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_get_item(self, **kwargs: Any) -> Any:
        self.batch_get_calls += 1
        return self._client.batch_get_item(**kwargs)

    def query(self, **kwargs: Any) -> Any:
        self.query_calls += 1
        return self._client.query(**kwargs)

    def put_item(self, **kwargs: Any) -> Any:
        self.put_calls += 1
        fault = self.plan(self.put_calls)
        if fault == "throttle":
            raise client_error("ProvisionedThroughputExceededException", "PutItem")
        if fault == "crash":
            raise CrashAfterWrites(f"injected crash before write call {self.put_calls}")
        if fault == "conflict":
            self._bump(kwargs)
        return self._client.put_item(**kwargs)

    def _bump(self, request: Mapping[str, Any]) -> None:
        """A concurrent writer rewrote the row unchanged (only its version moved), or created it."""
        item = request["Item"]
        key_names = (c.USERS_PK,) if c.USERS_PK in item else (c.ITEMS_PK, c.ITEMS_SK)
        key = {name: item[name] for name in key_names}
        stored = self._client.get_item(TableName=request["TableName"], Key=key, ConsistentRead=True).get(
            "Item"
        )
        if stored:
            bumped = {**stored, c.ATTR_VERSION: {"N": str(int(stored[c.ATTR_VERSION]["N"]) + 1)}}
        elif c.USERS_PK in item:
            bumped = to_item(new_row(Key(USERS, item[c.USERS_PK]["S"])), 1)
        else:
            bumped = to_item(new_row(Key(ITEMS, item[c.ITEMS_PK]["S"], item[c.ITEMS_SK]["S"])), 1)
        self._client.put_item(TableName=request["TableName"], Item=bumped)


class ListDeadLetters:
    """A dead-letter port that keeps the letters (and can fail to send some)."""

    def __init__(self, fail: Callable[[Any], bool] | None = None) -> None:
        self.sent: list[Any] = []
        self.fail = fail or (lambda letter: False)

    def send(self, letters: Any) -> list[Any]:
        failed = [letter for letter in letters if self.fail(letter)]
        self.sent.extend(letter for letter in letters if letter not in failed)
        return failed
