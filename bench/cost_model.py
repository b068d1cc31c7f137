"""Monthly AWS bill of a streamrec deployment for a traffic profile, and its cost per million events.

Prices are data (``bench/prices.json``: us-east-1, each price with its source and date). Traffic and the
pipeline's measured behaviour are a :class:`Profile`; the named profiles (1,000, 10,000 and 100,000
events/s) use defaults explained field by field below. The benchmarks feed measured figures through a
JSON file (``--measured``) whose keys are Profile fields, e.g.::

    {"ddb_write_requests_per_event": 0.11, "ddb_write_units_per_event": 0.4,
     "process": {"duration_ms": 180, "memory_mb": 1769}}

Kinesis and DynamoDB are priced both on-demand and provisioned, side by side; the totals are given for
the on-demand configuration (what the ``prod`` profile deploys) and the all-provisioned one.

The architecture priced is issue 12's: one stream read by three consumers (the hot path, the items
branch, the experiments branch: Kinesis bills data out per consumer, the experiments mapping's filter
notwithstanding), five functions (ingest, process, aggregate items, aggregate experiments, serve), and
DynamoDB units per event per consumer as ``bench.scale`` measures them. ``aggregate_branches: false``
with ``stream_consumers: 1`` prices the previous design (one process function did everything).
``--levers`` prints what each lever below would bring (:data:`LEVERS`).

Usage:
    python -m bench.cost_model                     # all named profiles
    python -m bench.cost_model --profile large-100k --measured bench/results/measured.json
    python -m bench.cost_model --events-per-second 2500 --reads-per-second 300 --json
    python -m bench.cost_model --profile large-100k --measured bench/results.json --levers
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRICES_FILE = Path(__file__).with_name("prices.json")
CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"
GB = 1024**3
KB = 1024
PUT_PAYLOAD_UNIT_BYTES = 25 * KB
SHARD_IN_BYTES_PER_SECOND = 1024**2  # 1 MB/s per shard
SHARD_IN_RECORDS_PER_SECOND = 1000
SHARD_OUT_BYTES_PER_SECOND = 2 * 1024**2  # shared by the shard's consumers
ESM_POLL_INTERVAL_SECONDS = 1.0  # Lambda polls each shard about once a second


# --- Prices -------------------------------------------------------------------------------------------


class Prices:
    """Unit prices read from prices.json; tiered prices are charged tier by tier."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.hours_per_month = float(data["hours_per_month"])
        self.seconds_per_month = self.hours_per_month * 3600
        self._prices = data["prices"]

    @classmethod
    def load(cls, path: Path = PRICES_FILE) -> Prices:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def unit(self, key: str) -> float:
        """The flat price of ``key``; a tiered price here is a mistake in the model."""
        entry = self._prices[key]
        if "price" not in entry:
            raise KeyError(f"{key} is tiered: use cost()")
        return float(entry["price"])

    def cost(self, key: str, quantity: float) -> float:
        """Price ``quantity`` units of ``key`` (flat or tiered, tiers' ``up_to`` being cumulative)."""
        entry = self._prices[key]
        if "price" in entry:
            return quantity * float(entry["price"])
        return tiered_cost(quantity, [(t["up_to"], float(t["price"])) for t in entry["tiers"]])


def tiered_cost(quantity: float, tiers: Sequence[tuple[float | None, float]]) -> float:
    """Cost of ``quantity`` with tiers ``(cumulative upper bound or None, unit price)``."""
    total, floor = 0.0, 0.0
    for up_to, price in tiers:
        ceiling = math.inf if up_to is None else float(up_to)
        if quantity <= floor:
            break
        total += (min(quantity, ceiling) - floor) * price
        floor = ceiling
    return total


# --- Traffic profile ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionProfile:
    """One Lambda function: billed duration per invocation, memory, and log bytes it writes per invocation."""

    duration_ms: float
    memory_mb: int
    log_bytes_per_invocation: float = 1500.0


@dataclass(frozen=True)
class Profile:
    """Traffic and measured behaviour. Defaults and where they come from:

    - memory sizes, architecture, the hot path's batch size and window, retention and log retention are
      the ``prod`` profile's in cdk.json: the named profiles read them from there
      (:func:`deployed_settings`); the class defaults below are the same values, for profiles built by hand;
    - DynamoDB units per event, per consumer, and per recommendation are ``bench.scale``'s on the
      generated real-scale stream over a warm table (2026-12-01: 240,000 events in 5 minutes on one shard,
      0.95 distinct users per event in a batch, users' rows with a week of history): hot path = one
      conditional PutItem of the user row per user per batch (0.99 WRU: 4% of user rows are over 1 KB)
      and an eventually consistent BatchGetItem of them (0.48 RRU); aggregate branches = the items
      branch (each record's user row read eventually consistent, co-visitation rows of both items of a
      pair read and written once per batch, the shard's trending partial, merges scaled to 100,000
      events/s) plus the experiments branch (1.04 WRU, 0.89 RRU); serve = user row + seed items' rows,
      the trending lists mostly from the container's 10 s cache (3.77 RRU per recommendation);
    - durations per invocation: ``bench.scale``'s CPU per batch plus the DynamoDB client's CPU per request
      (``bench.ddb_client``) and round trips at assumed latencies (8 ms per BatchGetItem, 5 ms per
      PutItem, 16 at a time): process 861 ms per ~800-record batch, items 10.1 s per ~7,700-record batch,
      experiments 52 ms, serve 17 ms (CPU measured on a shared 2-core machine);
    - log bytes per invocation: START/END/REPORT (~350 B), one EMF blob (~700 B), one INFO line (~450 B);
    - 48 custom metrics (the metric names of five functions, rejections by field, per-variant counters),
      20 alarms and one dashboard, as the monitoring construct creates them (with the two branches'
      iterator-age and error alarms);
    - X-Ray samples 5% of requests (the default rule's 5% beyond 1 request/s);
    - three stream consumers: the hot path and the two aggregate branches (Kinesis bills each consumer's
      reads, the experiments mapping's filter notwithstanding: the mapping reads every record);
    - aggregate branches (cdk.json's ``aggregate_source`` / ``experiments_source``): batches of up to
      10,000 / 1,000 records with a 10 s window (ParallelizationFactor 1); ``attributed_share`` of the
      records pass the experiments mapping's filter (bench.scale's stream: 10% of sessions opened from a
      recommendation).
    """

    name: str
    events_per_second: float
    reads_per_second: float
    event_bytes: float = 400.0  # compact JSON of a web event with session and page url
    record_overhead_bytes: float = 60.0  # received_at and schema_version added by ingest
    events_per_request: float = 100.0
    recommendation_response_bytes: float = 1500.0  # k=10 with scores, reasons, variant, request id
    ingest_response_bytes_per_event: float = 40.0  # per-index result
    ddb_write_requests_per_event: float = 2.0  # PutItem calls, all consumers; reported, not priced
    ddb_write_units_per_event: float = 0.99  # hot path (process)
    ddb_process_read_units_per_event: float = 0.48  # hot path (process), eventually consistent
    ddb_aggregate_write_units_per_event: float = 1.04  # items + experiments branches, merges
    ddb_aggregate_read_units_per_event: float = 0.89
    ddb_read_units_per_recommendation: float = 3.77
    ddb_storage_gb: float = 10.0
    ingest: FunctionProfile = FunctionProfile(duration_ms=30, memory_mb=1024)
    process: FunctionProfile = FunctionProfile(duration_ms=861, memory_mb=1769, log_bytes_per_invocation=2000)
    aggregate_items: FunctionProfile = FunctionProfile(
        duration_ms=10052, memory_mb=1769, log_bytes_per_invocation=2000
    )
    aggregate_experiments: FunctionProfile = FunctionProfile(duration_ms=52, memory_mb=512)
    serve: FunctionProfile = FunctionProfile(duration_ms=17, memory_mb=1024)
    architecture: str = "arm64"
    batch_size: int = 1000
    batching_window_seconds: float = 0.0
    aggregate_branches: bool = True
    aggregate_batch_size: int = 10_000
    aggregate_batching_window_seconds: float = 10.0
    experiments_batch_size: int = 1000
    experiments_batching_window_seconds: float = 10.0
    attributed_share: float = 0.026
    stream_consumers: int = 3
    stream_retention_hours: float = 168.0
    shard_target_utilization: float = 0.8  # provisioned: headroom for peaks within the hour
    ddb_target_utilization: float = 0.7  # provisioned with auto scaling at its default target
    custom_metrics: int = 48
    alarms: int = 20
    dashboards: int = 1
    log_retention_days: float = 90.0
    api_access_log_bytes_per_request: float = 300.0
    read_api: str = "rest"  # "http": recommendation reads on an HTTP API (no usage plans: an authorizer)
    xray_sampling: float = 0.05
    kms_keys: int = 1
    dead_letters_per_million_events: float = 10.0


# CloudWatch Logs retention names used in cdk.json (aws_logs.RetentionDays members) -> days.
RETENTION_DAYS = {
    "ONE_DAY": 1,
    "THREE_DAYS": 3,
    "FIVE_DAYS": 5,
    "ONE_WEEK": 7,
    "TWO_WEEKS": 14,
    "ONE_MONTH": 30,
    "TWO_MONTHS": 60,
    "THREE_MONTHS": 90,
    "FOUR_MONTHS": 120,
    "FIVE_MONTHS": 150,
    "SIX_MONTHS": 180,
    "ONE_YEAR": 365,
    "THIRTEEN_MONTHS": 400,
    "EIGHTEEN_MONTHS": 545,
    "TWO_YEARS": 731,
}


def deployed_settings(path: Path = CDK_JSON, env: str = "prod") -> dict[str, Any]:
    """Profile fields taken from a settings profile in cdk.json, so the bill follows what is deployed."""
    profile = json.loads(path.read_text(encoding="utf-8"))["context"]["profiles"][env]
    functions, source = profile["functions"], profile["event_source"]
    return {
        "batch_size": source["batch_size"],
        "batching_window_seconds": source["max_batching_window_seconds"],
        "stream_retention_hours": profile["stream"]["retention_hours"],
        "architecture": functions["architecture"],
        "log_retention_days": RETENTION_DAYS[functions["log_retention"]],
        **{name: {"memory_mb": functions[name]["memory_mb"]} for name in ("ingest", "process", "serve")},
        # The aggregate branches' functions and mappings (a profile may predate them).
        **{
            field: {"memory_mb": functions[name]["memory_mb"]}
            for field, name in (("aggregate_items", "aggregate"), ("aggregate_experiments", "experiments"))
            if isinstance(functions.get(name), dict) and "memory_mb" in functions[name]
        },
        **_mapping(profile.get("aggregate_source"), "aggregate"),
        **_mapping(profile.get("experiments_source"), "experiments"),
    }


def _mapping(source: dict[str, Any] | None, prefix: str) -> dict[str, Any]:
    if not isinstance(source, dict):
        return {}
    return {
        f"{prefix}_batch_size": source["batch_size"],
        f"{prefix}_batching_window_seconds": source["max_batching_window_seconds"],
    }


def _profile(name: str, events_per_second: float, storage_gb: float) -> Profile:
    # One recommendation request for every ten events.
    profile = Profile(name, events_per_second, events_per_second / 10, ddb_storage_gb=storage_gb)
    return apply_overrides(profile, deployed_settings())


def apply_overrides(profile: Profile, overrides: dict[str, Any]) -> Profile:
    """A copy of ``profile`` with measured values; unknown keys are an error, not silently ignored."""
    known = {f.name: f for f in dataclasses.fields(Profile)}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in known or key == "name":
            raise ValueError(f"unknown profile field {key!r}")
        current = getattr(profile, key)
        if isinstance(current, FunctionProfile):
            if not isinstance(value, dict):
                raise ValueError(f"{key} must be an object of FunctionProfile fields")
            allowed = {f.name for f in dataclasses.fields(FunctionProfile)}
            unknown = set(value) - allowed
            if unknown:
                raise ValueError(f"unknown {key} fields {sorted(unknown)}")
            changes[key] = dataclasses.replace(current, **value)
        else:
            changes[key] = type(current)(value)
    return dataclasses.replace(profile, **changes)


PROFILES = {
    p.name: p
    for p in (
        _profile("small-1k", 1_000, 5),
        _profile("medium-10k", 10_000, 50),
        _profile("large-100k", 100_000, 500),
    )
}


# --- The bill -----------------------------------------------------------------------------------------

COMMON, ON_DEMAND, PROVISIONED = "common", "on-demand", "provisioned"


@dataclass(frozen=True)
class Line:
    service: str
    item: str
    quantity: float
    unit: str
    cost: float
    option: str = COMMON  # on-demand / provisioned lines are alternatives


@dataclass
class Bill:
    profile: Profile
    events: float
    lines: list[Line] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    shards: int = 0

    def add(
        self, service: str, item: str, quantity: float, unit: str, cost: float, option: str = COMMON
    ) -> None:
        self.lines.append(Line(service, item, quantity, unit, cost, option))

    def total(self, option: str) -> float:
        """Monthly total with Kinesis and DynamoDB in ``option`` mode."""
        return sum(line.cost for line in self.lines if line.option in (COMMON, option))

    def per_million_events(self, option: str) -> float:
        return self.total(option) / (self.events / 1e6)

    def by_service(self, option: str) -> dict[str, float]:
        totals: dict[str, float] = {}
        for line in self.lines:
            if line.option in (COMMON, option):
                totals[line.service] = totals.get(line.service, 0.0) + line.cost
        return totals


def lambda_gb_seconds(invocations: float, function: FunctionProfile) -> float:
    """GB-s billed: duration rounded up to the next millisecond, memory in MB / 1024."""
    return invocations * math.ceil(function.duration_ms) / 1000 * function.memory_mb / 1024


def provisioned_shards(profile: Profile) -> int:
    """Shards a provisioned stream needs: the tightest of bytes in, records in, bytes out; with headroom."""
    record_bytes = profile.event_bytes + profile.record_overhead_bytes
    bytes_in = profile.events_per_second * record_bytes
    needed = max(
        bytes_in / SHARD_IN_BYTES_PER_SECOND,
        profile.events_per_second / SHARD_IN_RECORDS_PER_SECOND,
        bytes_in * profile.stream_consumers / SHARD_OUT_BYTES_PER_SECOND,
    )
    return max(1, math.ceil(needed / profile.shard_target_utilization))


def process_invocations_per_second(profile: Profile, shards: int) -> float:
    """Batches per second: each shard's batch fills up to batch_size or what arrives within the window."""
    return batches_per_second(
        profile.events_per_second, shards, profile.batch_size, profile.batching_window_seconds
    )


def batches_per_second(
    records_per_second: float, shards: int, batch_size: int, window_seconds: float
) -> float:
    """Invocations per second of a mapping: a shard's batch fills up to `batch_size` or with what arrives
    within the window (Lambda polls each shard about once a second, so at least a second's worth)."""
    if records_per_second <= 0:
        return 0.0
    per_shard = records_per_second / shards
    window = max(window_seconds, ESM_POLL_INTERVAL_SECONDS)
    fill = min(batch_size, max(1.0, per_shard * window))
    return records_per_second / fill


def function_invocations_per_second(profile: Profile, shards: int) -> dict[str, float]:
    """Invocations per second of every function."""
    invocations = {
        "ingest": profile.events_per_second / profile.events_per_request,
        "process": process_invocations_per_second(profile, shards),
        "serve": profile.reads_per_second,
    }
    if profile.aggregate_branches:
        invocations["aggregate_items"] = batches_per_second(
            profile.events_per_second,
            shards,
            profile.aggregate_batch_size,
            profile.aggregate_batching_window_seconds,
        )
        invocations["aggregate_experiments"] = batches_per_second(
            profile.events_per_second * profile.attributed_share,
            shards,
            profile.experiments_batch_size,
            profile.experiments_batching_window_seconds,
        )
    return invocations


def monthly_bill(profile: Profile, prices: Prices) -> Bill:
    """Price one month (prices.hours_per_month) of steady traffic at ``profile``."""
    seconds = prices.seconds_per_month
    hours = prices.hours_per_month
    events = profile.events_per_second * seconds
    bill = Bill(profile, events)
    record_bytes = profile.event_bytes + profile.record_overhead_bytes

    # API Gateway: every ingest request and every recommendation request (REST, with API keys and usage
    # plans; `read_api: "http"` prices the reads on an HTTP API instead).
    ingest_requests = events / profile.events_per_request
    serve_requests = profile.reads_per_second * seconds
    api_requests = ingest_requests + serve_requests
    rest_requests = api_requests if profile.read_api == "rest" else ingest_requests
    bill.add(
        "API Gateway",
        "REST requests (tiered)",
        rest_requests,
        "requests",
        prices.cost("apigw_rest_request", rest_requests),
    )
    if profile.read_api == "http":
        bill.add(
            "API Gateway",
            "HTTP API requests, reads (tiered)",
            serve_requests,
            "requests",
            prices.cost("apigw_http_request", serve_requests),
        )

    # Lambda.
    shards = provisioned_shards(profile)
    bill.shards = shards
    rates = function_invocations_per_second(profile, shards)
    invocations = {name: rate * seconds for name, rate in rates.items()}
    functions = {name: getattr(profile, name) for name in invocations}
    total_invocations = sum(invocations.values())
    bill.add(
        "Lambda",
        "requests",
        total_invocations,
        "invocations",
        prices.cost("lambda_request", total_invocations),
    )
    gb_seconds = sum(lambda_gb_seconds(invocations[n], functions[n]) for n in functions)
    other = "x86_64" if profile.architecture == "arm64" else "arm64"
    bill.add(
        "Lambda",
        f"duration {profile.architecture} (tiered)",
        gb_seconds,
        "GB-s",
        prices.cost(f"lambda_gb_second_{profile.architecture}", gb_seconds),
    )
    other_cost = prices.cost(f"lambda_gb_second_{other}", gb_seconds)
    bill.notes.append(
        f"Lambda duration on {other} at the same durations would cost {other_cost:,.2f} USD; arm64 is "
        f"about 20% cheaper per GB-s, and pure-Python work usually runs at similar speed on Graviton."
    )
    for name in functions:
        bill.notes.append(
            f"{name}: {invocations[name] / seconds:,.1f} invocations/s x {functions[name].duration_ms:g} ms "
            f"x {functions[name].memory_mb} MB = "
            f"{lambda_gb_seconds(invocations[name], functions[name]):,.0f} GB-s"
        )

    # Kinesis on-demand: per stream-hour, data in and out with records rounded up to 1 KB.
    billed_gb_in = events * math.ceil(record_bytes / KB) * KB / GB
    billed_gb_out = billed_gb_in * profile.stream_consumers
    bill.add(
        "Kinesis",
        "on-demand stream-hours",
        hours,
        "stream-hours",
        prices.cost("kinesis_on_demand_stream_hour", hours),
        ON_DEMAND,
    )
    bill.add(
        "Kinesis",
        "on-demand data in (1 KB/record)",
        billed_gb_in,
        "GB",
        prices.cost("kinesis_on_demand_ingest_gb", billed_gb_in),
        ON_DEMAND,
    )
    consumers = f"{profile.stream_consumers} consumer{'' if profile.stream_consumers == 1 else 's'}"
    bill.add(
        "Kinesis",
        f"on-demand data out ({consumers})",
        billed_gb_out,
        "GB",
        prices.cost("kinesis_on_demand_retrieval_gb", billed_gb_out),
        ON_DEMAND,
    )
    extended_hours = max(0.0, min(profile.stream_retention_hours, 168.0) - 24.0)
    if extended_hours:
        # Steady state: the data of the hours beyond 24 h is always stored.
        stored_gb = billed_gb_in / hours * extended_hours
        bill.add(
            "Kinesis",
            f"on-demand retention {profile.stream_retention_hours:g} h",
            stored_gb,
            "GB-months",
            prices.cost("kinesis_on_demand_extended_retention_gb_month", stored_gb),
            ON_DEMAND,
        )

    # Kinesis provisioned: shard-hours and 25 KB PUT payload units per record.
    shard_hours = shards * hours
    put_units = events * math.ceil(record_bytes / PUT_PAYLOAD_UNIT_BYTES)
    bill.add(
        "Kinesis",
        f"provisioned {shards} shards",
        shard_hours,
        "shard-hours",
        prices.cost("kinesis_shard_hour", shard_hours),
        PROVISIONED,
    )
    bill.add(
        "Kinesis",
        "provisioned PUT payload units (25 KB)",
        put_units,
        "units",
        prices.cost("kinesis_put_payload_unit", put_units),
        PROVISIONED,
    )
    if extended_hours:
        bill.add(
            "Kinesis",
            f"provisioned retention {profile.stream_retention_hours:g} h",
            shard_hours,
            "shard-hours",
            prices.cost("kinesis_extended_retention_shard_hour", shard_hours),
            PROVISIONED,
        )

    # DynamoDB: units per consumer (hot path, aggregate branches, serve).
    branches = 1.0 if profile.aggregate_branches else 0.0
    writes = {
        "process (hot path)": events * profile.ddb_write_units_per_event,
        "aggregate branches": events * profile.ddb_aggregate_write_units_per_event * branches,
    }
    reads = {
        "process (hot path)": events * profile.ddb_process_read_units_per_event,
        "aggregate branches": events * profile.ddb_aggregate_read_units_per_event * branches,
        "serve": serve_requests * profile.ddb_read_units_per_recommendation,
    }
    for consumer, units in writes.items():
        if units or consumer == "process (hot path)":
            bill.add(
                "DynamoDB",
                f"on-demand WRU, {consumer}",
                units,
                "WRU",
                prices.cost("dynamodb_on_demand_write_request_unit", units),
                ON_DEMAND,
            )
    for consumer, units in reads.items():
        if units or consumer != "aggregate branches":
            bill.add(
                "DynamoDB",
                f"on-demand RRU, {consumer}",
                units,
                "RRU",
                prices.cost("dynamodb_on_demand_read_request_unit", units),
                ON_DEMAND,
            )
    write_units = sum(writes.values())
    read_units = sum(reads.values())
    wcu = math.ceil(write_units / seconds / profile.ddb_target_utilization)
    rcu = math.ceil(read_units / seconds / profile.ddb_target_utilization)
    bill.add(
        "DynamoDB",
        f"provisioned {wcu:,} WCU",
        wcu * hours,
        "WCU-hours",
        prices.cost("dynamodb_wcu_hour", wcu * hours),
        PROVISIONED,
    )
    bill.add(
        "DynamoDB",
        f"provisioned {rcu:,} RCU",
        rcu * hours,
        "RCU-hours",
        prices.cost("dynamodb_rcu_hour", rcu * hours),
        PROVISIONED,
    )
    bill.add(
        "DynamoDB",
        "storage",
        profile.ddb_storage_gb,
        "GB-months",
        prices.cost("dynamodb_storage_gb_month", profile.ddb_storage_gb),
    )
    bill.notes.append(
        f"DynamoDB: {events * profile.ddb_write_requests_per_event / seconds:,.0f} write requests/s "
        f"({profile.ddb_write_requests_per_event:g} per event) carrying "
        f"{write_units / events:g} WRU per event; {read_units / seconds:,.0f} RRU/s."
    )

    # CloudWatch: EMF custom metrics, Lambda logs (vended, tiered), API access logs, storage, alarms.
    bill.add(
        "CloudWatch",
        "custom metrics (EMF)",
        profile.custom_metrics,
        "metrics",
        prices.cost("cloudwatch_custom_metric_month", profile.custom_metrics),
    )
    lambda_log_gb = sum(invocations[n] * functions[n].log_bytes_per_invocation for n in functions) / GB
    bill.add(
        "CloudWatch",
        "Lambda logs ingested (tiered)",
        lambda_log_gb,
        "GB",
        prices.cost("cloudwatch_lambda_logs_ingest_gb", lambda_log_gb),
    )
    access_log_gb = api_requests * profile.api_access_log_bytes_per_request / GB
    bill.add(
        "CloudWatch",
        "API access logs ingested",
        access_log_gb,
        "GB",
        prices.cost("cloudwatch_logs_ingest_gb", access_log_gb),
    )
    stored_log_gb = (lambda_log_gb + access_log_gb) * profile.log_retention_days / (hours / 24)
    bill.add(
        "CloudWatch",
        f"log storage ({profile.log_retention_days:g} days)",
        stored_log_gb,
        "GB-months",
        prices.cost("cloudwatch_logs_storage_gb_month", stored_log_gb),
    )
    bill.add(
        "CloudWatch",
        "alarms",
        profile.alarms,
        "alarms",
        prices.cost("cloudwatch_alarm_month", profile.alarms),
    )
    bill.add(
        "CloudWatch",
        "dashboards",
        profile.dashboards,
        "dashboards",
        prices.cost("cloudwatch_dashboard_month", profile.dashboards),
    )

    # X-Ray: sampled requests and invocations.
    stream_invocations = sum(v for n, v in invocations.items() if n not in ("ingest", "serve"))
    traces = (api_requests + stream_invocations) * profile.xray_sampling
    bill.add(
        "X-Ray",
        f"traces recorded ({profile.xray_sampling:.0%} sampled)",
        traces,
        "traces",
        prices.cost("xray_trace_recorded", traces),
    )

    # SQS: dead letters and on-failure messages only (send; receive and delete when inspected).
    sqs_requests = events / 1e6 * profile.dead_letters_per_million_events * 3
    bill.add(
        "SQS",
        "dead-letter and on-failure queues",
        sqs_requests,
        "requests",
        prices.cost("sqs_standard_request", sqs_requests),
    )

    # KMS: the key, plus data-key requests that Kinesis and DynamoDB cache (about one per shard or table
    # every 5 minutes, on the writer and the reader side).
    kms_requests = (shards * 2 + 2) * 12 * hours
    bill.add(
        "KMS",
        f"{profile.kms_keys} customer managed key(s)",
        profile.kms_keys,
        "keys",
        prices.cost("kms_key_month", profile.kms_keys),
    )
    bill.add(
        "KMS",
        "requests (cached data keys)",
        kms_requests,
        "requests",
        prices.cost("kms_request", kms_requests),
    )

    # Data transfer: only responses leave AWS; data in and traffic between services in-region are free.
    out_gb = (
        serve_requests * profile.recommendation_response_bytes
        + events * profile.ingest_response_bytes_per_event
    ) / GB
    bill.add(
        "Data transfer",
        "out to the internet (tiered)",
        out_gb,
        "GB",
        prices.cost("data_transfer_out_gb", out_gb),
    )
    return bill


# --- Levers -------------------------------------------------------------------------------------------

# What would lower the bill: each lever gives the Profile overrides it stands for (nested FunctionProfile
# fields as objects). All are configuration (the read route's API type changes how reads authenticate);
# changes to the feature code are estimated by bench.scale_figures.design_levers from measured units.
LEVERS: list[tuple[str, Callable[[Profile], dict[str, Any]]]] = [
    (
        "serve logs: INFO line sampled at 1%, platform logs at WARN (EMF metrics only)",
        lambda p: {"serve": {"log_bytes_per_invocation": 720.0}},
    ),
    ("X-Ray sampling 1% instead of 5%", lambda p: {"xray_sampling": 0.01}),
    (
        "API access logs off for the read route (ingest's kept): 300 B -> 30 B a request",
        lambda p: {"api_access_log_bytes_per_request": 30.0},
    ),
    ("clients send 500 events per request instead of 100", lambda p: {"events_per_request": 500.0}),
    (
        "DynamoDB auto scaling target 90% instead of 70% (steady load)",
        lambda p: {"ddb_target_utilization": 0.9},
    ),
    (
        "recommendation reads on an HTTP API (an authorizer instead of usage plans; ingest stays REST)",
        lambda p: {"read_api": "http"},
    ),
]


def lever_bills(profile: Profile, prices: Prices) -> list[dict[str, Any]]:
    """The cost per million events with each lever alone, then with all of them."""
    rows = []
    for name, lever in LEVERS:
        rows.append(_lever_row(name, monthly_bill(apply_overrides(profile, lever(profile)), prices)))
    rows.append(
        _lever_row("all of the above", monthly_bill(apply_overrides(profile, all_levers(profile)), prices))
    )
    return rows


def all_levers(profile: Profile) -> dict[str, Any]:
    """The overrides of every lever together (nested function fields merged)."""
    combined: dict[str, Any] = {}
    for _name, lever in LEVERS:
        for key, value in lever(profile).items():
            combined[key] = {**combined.get(key, {}), **value} if isinstance(value, dict) else value
    return combined


def _lever_row(name: str, bill: Bill) -> dict[str, Any]:
    return {
        "lever": name,
        "on_demand_per_million": round(bill.per_million_events(ON_DEMAND), 4),
        "provisioned_per_million": round(bill.per_million_events(PROVISIONED), 4),
    }


# --- Output -------------------------------------------------------------------------------------------


def _quantity(value: float) -> str:
    for threshold, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:,.2f} {suffix}"
    return f"{value:,.2f}"


def render(bill: Bill) -> str:
    """The bill as a fixed-width text table."""
    p = bill.profile
    lines = [
        f"== {p.name}: {p.events_per_second:,.0f} events/s ({_quantity(bill.events)} events/month), "
        f"{p.reads_per_second:,.0f} recommendation reads/s, {p.events_per_request:g} events/request, "
        f"{p.event_bytes + p.record_overhead_bytes:g} B records",
        f"{'service':<14}{'line':<44}{'quantity':>22}  {'USD/month':>12}",
    ]
    for option in (COMMON, ON_DEMAND, PROVISIONED):
        chosen = [line for line in bill.lines if line.option == option]
        if option != COMMON:
            lines.append(f"-- {option} alternative")
        for line in chosen:
            quantity = f"{_quantity(line.quantity)} {line.unit}"
            lines.append(f"{line.service:<14}{line.item:<44}{quantity:>22}  {line.cost:>12,.2f}")
    for option, label in (
        (ON_DEMAND, "Kinesis + DynamoDB on-demand"),
        (PROVISIONED, "Kinesis + DynamoDB provisioned"),
    ):
        lines.append(
            f"TOTAL {label:<32} {bill.total(option):>14,.2f} USD/month  "
            f"{bill.per_million_events(option):>8,.4f} USD per million events"
        )
    lines += [f"  note: {note}" for note in bill.notes]
    return "\n".join(lines)


def as_dict(bill: Bill) -> dict[str, Any]:
    return {
        "profile": dataclasses.asdict(bill.profile),
        "events_per_month": bill.events,
        "provisioned_shards": bill.shards,
        "lines": [dataclasses.asdict(line) for line in bill.lines],
        "totals": {
            option: {
                "monthly_usd": round(bill.total(option), 2),
                "per_million_events_usd": round(bill.per_million_events(option), 4),
                "by_service": {k: round(v, 2) for k, v in bill.by_service(option).items()},
            }
            for option in (ON_DEMAND, PROVISIONED)
        },
        "notes": bill.notes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Monthly AWS bill of streamrec for a traffic profile.")
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        action="append",
        help="named profile (repeatable; default: all)",
    )
    parser.add_argument("--events-per-second", type=float, help="a custom profile instead of the named ones")
    parser.add_argument(
        "--reads-per-second", type=float, help="with --events-per-second (default: events/10)"
    )
    parser.add_argument("--measured", type=Path, help="JSON file of measured Profile fields to apply")
    parser.add_argument("--prices", type=Path, default=PRICES_FILE)
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--levers", action="store_true", help="also price each lever (LEVERS)")
    args = parser.parse_args(argv)

    prices = Prices.load(args.prices)
    if args.events_per_second is not None:
        reads = args.reads_per_second if args.reads_per_second is not None else args.events_per_second / 10
        profiles = [apply_overrides(Profile("custom", args.events_per_second, reads), deployed_settings())]
    else:
        profiles = [PROFILES[name] for name in (args.profile or PROFILES)]
    if args.measured:
        try:
            overrides = json.loads(args.measured.read_text(encoding="utf-8"))
            profiles = [apply_overrides(p, overrides) for p in profiles]
        except (OSError, ValueError, TypeError) as error:
            print(f"cost_model: {args.measured}: {error}", file=sys.stderr)
            return 2
    bills = [monthly_bill(p, prices) for p in profiles]
    levers = {p.name: lever_bills(p, prices) for p in profiles} if args.levers else {}
    if args.json:
        documents = [as_dict(b) for b in bills]
        for document in documents:
            if levers:
                document["levers"] = levers[document["profile"]["name"]]
        print(
            json.dumps(
                {
                    "region": prices.data["region"],
                    "prices_checked_on": prices.data["checked_on"],
                    "bills": documents,
                },
                indent=2,
            )
        )
    else:
        print(
            f"Prices: {prices.data['region']}, checked {prices.data['checked_on']} (bench/prices.json); "
            f"month = {prices.hours_per_month:g} h"
        )
        print("\n\n".join(render(b) for b in bills))
        for name, rows in levers.items():
            print(f"\nLevers, {name} (USD per million events; each alone, then all together):")
            for row in rows:
                print(
                    f"  {row['lever']:<84} on-demand {row['on_demand_per_million']:7.3f}   "
                    f"provisioned {row['provisioned_per_million']:7.3f}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
