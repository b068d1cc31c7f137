"""Figure 2: DynamoDB write requests per event on the real clickstream replay (batch 500), against moto.

The real Taobao sample is encoded by ingest's code, keyed onto shards like Kinesis, cut into batches of
``--batch-size`` and fed to the real process handler (``process.handler.handler``: Powertools, the
process logic, the feature store) with a moto-backed DynamoDB client (in-process ``mock_aws``) wrapped in
`bench.stores.CountingDynamoDB`, which counts every write API call (BatchWriteItem, TransactWriteItems,
PutItem, UpdateItem, DeleteItem), the items they write and their write units (by AWS's item-size rules;
transactional items cost double), and the reads with their read units. It also times each invocation
(moto's server-side work included: an upper bound of the function's own CPU).

Baselines on the same first ``--baseline-events`` events (moto answers ~1 ms per call, so a per-record
writer over all 67,402 events would take minutes):
- ``sample per-record writer``: Powertools BatchProcessor whose record handler does one PutItem of the
  event, as the common Kinesis -> Lambda -> DynamoDB samples do (no features at all);
- ``streamrec, one record per batch``: the same handler with batches of one record, i.e. the same
  features written per record (one TransactWriteItems per event).

Usage:
    python -m bench.dynamodb_writes                     # the whole real sample, batch 500
    python -m bench.dynamodb_writes --events 10000 --baseline-events 2000
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.common import (
    Batch,
    dataset,
    encode_events,
    fmt,
    kinesis_batches,
    print_header,
    summary_ms,
    write_result,
)
from bench.stores import CountingDynamoDB
from local_emulator import moto_patches

GOAL_WRITES_PER_EVENT = 0.15
REGION = "us-east-1"
USERS_TABLE = "bench-users"
ITEMS_TABLE = "bench-items"
EVENTS_TABLE = "bench-events"  # the sample writer's table of raw events


@dataclass
class FakeContext:
    """The Lambda context Powertools reads."""

    function_name: str = "process"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:process"
    aws_request_id: str = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _aws_env() -> None:
    # Dummy credentials: nothing here may reach a real account.
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_SESSION_TOKEN", "testing"),
        ("AWS_DEFAULT_REGION", REGION),
        ("POWERTOOLS_TRACE_DISABLED", "true"),
        ("POWERTOOLS_METRICS_NAMESPACE", "Streamrec"),
        ("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20"),
    ):
        os.environ.setdefault(name, value)


def create_tables(dynamodb: Any) -> None:
    """The feature tables with the template's key schema, plus the per-record baseline's events table."""
    from local_emulator.tables import create_feature_tables

    create_feature_tables(dynamodb, users=USERS_TABLE, items=ITEMS_TABLE)
    dynamodb.create_table(
        TableName=EVENTS_TABLE,
        KeySchema=[{"AttributeName": "event_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "event_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def process_config() -> Any:
    from process.config import ProcessConfig
    from streamrec_core import constants as c

    return ProcessConfig.from_env(
        {
            c.ENV_USERS_TABLE: USERS_TABLE,
            c.ENV_ITEMS_TABLE: ITEMS_TABLE,
            c.ENV_DLQ_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/bench-dlq",
            c.ENV_USER_TTL_SECONDS: str(30 * 86_400),  # the dev profile's settings (cdk.json)
            c.ENV_ITEM_TTL_SECONDS: str(14 * 86_400),
            c.ENV_ALLOWED_LATENESS_SECONDS: "3600",
            c.ENV_TRENDING_SLOTS: "4",
        }
    )


def run_streamrec(batches: Sequence[Batch], events: int) -> dict[str, Any]:
    """Feed the batches to the real process handler against moto; count requests, items, units, time."""
    import boto3
    from moto import mock_aws
    from process import handler as process_handler

    with mock_aws(), moto_patches.patched():
        client = boto3.client("dynamodb", region_name=REGION)
        create_tables(client)
        counting = CountingDynamoDB(client)
        sqs = boto3.client("sqs", region_name=REGION)
        process_handler.configure(process_config(), counting, sqs, sleep=lambda s: None)
        process_handler.logger.setLevel(logging.WARNING)  # one INFO line per batch is noise here
        durations: list[float] = []
        failures = 0
        sink = io.StringIO()
        try:
            for batch in batches:
                started = time.perf_counter()
                with contextlib.redirect_stdout(sink):  # Powertools' EMF and log lines
                    response = process_handler.handler(batch.event, FakeContext())
                durations.append((time.perf_counter() - started) * 1000)
                failures += bool(response["batchItemFailures"])
                sink.seek(0)
                sink.truncate()
        finally:
            process_handler.reset()
    return _tally(counting, events, durations, failures)


def run_sample_writer(batches: Sequence[Batch], events: int) -> dict[str, Any]:
    """The common sample: Powertools BatchProcessor, one PutItem of the raw event per record."""
    import boto3
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from moto import mock_aws
    from streamrec_core.feature_store import to_item

    with mock_aws(), moto_patches.patched():
        client = boto3.client("dynamodb", region_name=REGION)
        create_tables(client)
        counting = CountingDynamoDB(client)
        processor = BatchProcessor(event_type=EventType.KinesisDataStreams)

        def record_handler(record: Any) -> None:
            counting.put_item(TableName=EVENTS_TABLE, Item=to_item(record.kinesis.data_as_json()))

        durations: list[float] = []
        failures = 0
        for batch in batches:
            started = time.perf_counter()
            response = process_partial_response(
                event=batch.event, record_handler=record_handler, processor=processor
            )
            durations.append((time.perf_counter() - started) * 1000)
            failures += bool(response["batchItemFailures"])
    return _tally(counting, events, durations, failures)


def _tally(counting: CountingDynamoDB, events: int, durations: list[float], failures: int) -> dict[str, Any]:
    writes = counting.writes
    return {
        "events": events,
        "batches": len(durations),
        "batches_with_failures": failures,
        "write_requests": writes.requests,
        "write_requests_by_call": dict(writes.by_call),
        "items_written": writes.items,
        "write_units": writes.units,
        "bytes_written": writes.bytes,
        "largest_item_bytes": writes.largest_item_bytes,
        "write_requests_per_event": round(writes.requests / events, 4),
        "items_written_per_event": round(writes.items / events, 4),
        "write_units_per_event": round(writes.units / events, 4),
        "mean_item_bytes": round(writes.bytes / writes.items, 1) if writes.items else 0,
        "by_row_kind": {
            kind: {
                "items_per_event": round(n / events, 4),
                "write_units_per_event": round(u / events, 4),
                "mean_item_bytes": round(b / n, 1),
            }
            for kind, (n, u, b) in sorted(writes.by_kind.items(), key=lambda kv: -kv[1][1])
        },
        "read_requests": counting.read_requests,
        "read_requests_by_call": dict(counting.reads),
        "items_read": counting.items_read,
        "read_units_per_event": round(counting.read_units / events, 4),
        "handler_ms_per_batch_against_moto": summary_ms(durations),
    }


def print_row(label: str, figures: dict[str, Any]) -> None:
    print(
        f"   {label:<34} {figures['write_requests_per_event']:>7.4f} write requests/event   "
        f"{figures['items_written_per_event']:>6.3f} items/event   "
        f"{figures['write_units_per_event']:>6.3f} WRU/event   "
        f"({fmt(figures['write_requests'])} requests, {fmt(figures['items_written'])} items; "
        f"mean item {fmt(figures['mean_item_bytes'])} B, largest {fmt(figures['largest_item_bytes'])} B)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=None, help="first N real events (default: all 67,402)")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument(
        "--shards", type=int, default=2, help="shards the records are keyed onto (dev profile: 2)"
    )
    parser.add_argument(
        "--baseline-events", type=int, default=2_000, help="events for the per-record baselines"
    )
    parser.add_argument("--quick", action="store_true", help="10,000 events, baselines on 500")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.events = args.events or 10_000
        args.baseline_events = 500
    _aws_env()

    header = print_header("DynamoDB writes per event, real clickstream replay, process handler against moto")
    sources = dataset("real", limit=args.events)
    records = encode_events(sources)
    batches = kinesis_batches(records, batch_size=args.batch_size, shards=args.shards)
    print(
        f"   {fmt(len(records))} real events, {len(batches)} batches of <= {args.batch_size} "
        f"on {args.shards} shard(s); goal <= {GOAL_WRITES_PER_EVENT} write requests/event"
    )
    figures: dict[str, Any] = {
        "batch_size": args.batch_size,
        "shards": args.shards,
        "goal_write_requests_per_event": GOAL_WRITES_PER_EVENT,
    }

    full = run_streamrec(batches, len(records))
    figures["streamrec"] = full
    print_row(f"streamrec, batch {args.batch_size}", full)
    verdict = "meets" if full["write_requests_per_event"] <= GOAL_WRITES_PER_EVENT else "MISSES"
    print(
        f"   goal <= {GOAL_WRITES_PER_EVENT}: {verdict}; reads: {fmt(full['read_requests'])} requests "
        f"({full['read_requests'] / len(batches):.1f} per batch), "
        f"{full['read_units_per_event']:.3f} RRU/event"
    )
    print(
        "   where the write units go (items and WRU per event, by kind of row; transactional = 2 WRU per KB):"
    )
    for kind, tally in full["by_row_kind"].items():
        print(
            f"     {kind:<20} {tally['items_per_event']:6.3f} items/event  "
            f"{tally['write_units_per_event']:6.3f} WRU/event"
            f"  mean {fmt(tally['mean_item_bytes'])} B"
        )
    handler = full["handler_ms_per_batch_against_moto"]
    print(
        f"   handler duration per batch against moto in-process: p50 {handler['p50_ms']:.0f} ms, "
        f"p99 {handler['p99_ms']:.0f} ms (moto's own work included)"
    )

    subset = records[: args.baseline_events]
    print(f"\n   baselines on the first {fmt(len(subset))} events (same data, same process):")
    same = run_streamrec(kinesis_batches(subset, batch_size=args.batch_size, shards=args.shards), len(subset))
    per_record = run_streamrec(kinesis_batches(subset, batch_size=1, shards=args.shards), len(subset))
    sample = run_sample_writer(
        kinesis_batches(subset, batch_size=args.batch_size, shards=args.shards), len(subset)
    )
    print_row(f"streamrec, batch {args.batch_size}", same)
    print_row("streamrec, one record per batch", per_record)
    print_row("sample per-record PutItem writer", sample)
    figures["baseline_subset"] = {
        "events": len(subset),
        "streamrec": same,
        "streamrec_per_record": per_record,
        "sample_per_record_writer": sample,
        "ratios": {
            "write_requests_sample_over_streamrec": round(
                sample["write_requests_per_event"] / same["write_requests_per_event"], 1
            ),
            "write_requests_per_record_over_streamrec": round(
                per_record["write_requests_per_event"] / same["write_requests_per_event"], 1
            ),
            "write_units_per_record_over_streamrec": round(
                per_record["write_units_per_event"] / same["write_units_per_event"], 2
            ),
        },
    }
    ratios = figures["baseline_subset"]["ratios"]
    print(
        f"   the sample writer makes {ratios['write_requests_sample_over_streamrec']}x the write requests; "
        f"streamrec per record {ratios['write_requests_per_record_over_streamrec']}x the requests and "
        f"{ratios['write_units_per_record_over_streamrec']}x the write units of batch {args.batch_size}"
    )
    if not args.no_save and not args.quick:
        write_result("dynamodb_writes", header, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
