"""Figures 3 (HTTP part), 4 and 5 on the embedded local emulator: ingest, freshness, serve over HTTP.

One `LocalPipeline` (moto server, the deployed template, function workers, REST API, pollers) serves
all three; ``bench.ingest``, ``bench.freshness`` and ``bench.serve`` run their part alone (serve's DynamoDB
reads per recommendation are bench.scale's).

The pipeline runs a profile derived from ``dev`` (cdk.json) named ``bench``: the same stream, functions
and features, with two changes said with every figure: the API usage plans' rate limits are raised
(API Gateway throttling is a quota, not pipeline speed: dev's readers plan allows 50 requests/s), and
``--window`` sets the event source mapping's MaximumBatchingWindowInSeconds (dev: 1 s).

- Ingest (figure 5): real Taobao events, re-timed to the present like ``tools.replay``, POSTed in
  requests of ``--ingest-batch`` events; events/s, request latency, and PutRecords calls per request,
  read from the ingest function's own log line (``put_records_calls``).
- Freshness (figure 4): for each probe a user never seen before asks for recommendations (a cold
  start: ``fallback: true``, only trending items), then one view of a known item is POSTed; from the
  200 answer, GET polls every ``--poll-ms`` until the response reflects the event: ``fallback`` turns
  false or an item with reason ``covisit``/``category`` appears (the user now has history and a
  category affinity). Probes start at random phases of the poller's cycle.
- Serve over HTTP (figure 3): GET recommendations for users of the replay, one client thread;
  latency p50/p99 and requests/s, and the serve function's own duration from the emulator's metrics.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import http.client
import json
import random
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from streamrec_core.routes import EVENTS
from streamrec_core.routes import RECOMMENDATIONS as RECS

from bench.common import REPO_ROOT, dataset, fmt, percentile, print_header, summary_ms, write_result

BENCH_PROFILE = "bench"
WORKDIR = REPO_ROOT / ".local" / "bench"
FRESHNESS_GOAL_P95_S = 1.0


# --- The pipeline -----------------------------------------------------------------------------------
def bench_profiles(window_s: float) -> dict[str, Any]:
    """cdk.json's profiles plus `bench`: dev with the batching window set and API throttles raised."""
    profiles = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]["profiles"]
    bench = copy.deepcopy(profiles["dev"])
    bench["event_source"]["max_batching_window_seconds"] = window_s
    api = bench["api"]
    api["stage_rate_limit"], api["stage_burst_limit"] = 10_000, 20_000
    for plan in ("producers", "readers"):
        api[plan].update({"rate_limit": 5_000, "burst_limit": 10_000, "quota_limit": 100_000_000})
    return {**profiles, BENCH_PROFILE: bench}


@contextlib.contextmanager
def local_pipeline(window_s: float) -> Iterator[Any]:
    from local_emulator.pipeline import LocalPipeline

    WORKDIR.mkdir(parents=True, exist_ok=True)
    for log in (WORKDIR / "logs").glob("*.log"):
        log.unlink()
    started = time.monotonic()
    with LocalPipeline.start(
        profile=BENCH_PROFILE,
        workdir=WORKDIR,
        cache_root=WORKDIR / "cdk.out",
        context={"profiles": bench_profiles(window_s), "nag": False},
    ) as pipeline:
        print(
            f"   local pipeline up in {time.monotonic() - started:.1f} s at {pipeline.base_url} "
            f"(profile {BENCH_PROFILE}: dev with batching window {window_s:g} s, API throttles raised; "
            f"moto patched by local_emulator/moto_patches.py)"
        )
        yield pipeline


class Http:
    """A small HTTP client on one persistent connection per call site (http.client, no extra packages)."""

    def __init__(self, base_url: str, api_key: str) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.prefix = parsed.path.rstrip("/")
        self.api_key = api_key

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any, float]:
        """(status, JSON body, seconds)."""
        headers = {"x-api-key": self.api_key, "content-type": "application/json"}
        started = time.perf_counter()
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            connection.request(method, self.prefix + path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        finally:
            connection.close()
        elapsed = time.perf_counter() - started
        try:
            document = json.loads(payload) if payload else None
        except json.JSONDecodeError:
            document = payload[:200]
        return response.status, document, elapsed


def retimed(sources: list[dict[str, Any]], span_s: float = 1800.0) -> list[dict[str, Any]]:
    """Source events as schema events stamped within the last `span_s` seconds (tools.replay's way)."""
    from tools.replay import Retimer, format_timestamp, source_time, time_bounds, to_schema_event

    first, last, _ = time_bounds(sources)
    retimer = Retimer.for_speed(0.0, first, last, now=time.time(), span_seconds=span_s)
    return [to_schema_event(s, format_timestamp(retimer(source_time(s))), id_salt="bench") for s in sources]


def function_named(pipeline: Any, role: str) -> str:
    return next(name for name in pipeline.runtime.functions if role.lower() in name.lower())


def durations_ms(pipeline: Any, role: str, since: float) -> list[float]:
    """Per-invocation durations of one function recorded by the emulator's metric store since `since`."""
    from local_emulator.metrics import dims

    name = function_named(pipeline, role)
    return pipeline.runtime.metrics.values(
        "AWS/Lambda", "Duration", dims({"FunctionName": name}), since, time.time() + 1
    )


def log_records(role: str, message: str) -> list[dict[str, Any]]:
    """JSON log lines of one function (the worker's log file) with the given message."""
    records = []
    for path in (WORKDIR / "logs").glob("*.log"):
        if role.lower() not in path.name.lower():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if message in line:
                with contextlib.suppress(json.JSONDecodeError):
                    records.append(json.loads(line[line.index("{") :]))
    return records


# --- Figure 5: ingest --------------------------------------------------------------------------------
def bench_ingest(pipeline: Any, events: list[dict[str, Any]], batch: int) -> dict[str, Any]:
    client = Http(pipeline.base_url, pipeline.api_keys["producer"])
    since = time.time()
    lines_before = len(log_records("Ingest", "events ingested"))
    latencies: list[float] = []
    accepted = failed = rejected = 0
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        status, body, seconds = client.request(
            EVENTS.method, EVENTS.url(""), json.dumps({"events": chunk}).encode()
        )
        statuses[status] = statuses.get(status, 0) + 1
        latencies.append(seconds * 1000)
        if isinstance(body, dict) and "counts" in body:
            accepted += body["counts"]["accepted"]
            failed += body["counts"]["failed"]
            rejected += body["counts"]["rejected"]
    elapsed = time.perf_counter() - started
    requests = len(latencies)
    time.sleep(0.5)  # the worker's log lines reach the file
    lines = log_records("Ingest", "events ingested")[lines_before:]
    calls = [int(r.get("put_records_calls", 0)) for r in lines]
    ingest_ms = durations_ms(pipeline, "Ingest", since)
    figures: dict[str, Any] = {
        "events": len(events),
        "events_per_request": batch,
        "requests": requests,
        "statuses": statuses,
        "accepted": accepted,
        "rejected": rejected,
        "failed": failed,
        "events_per_second": round(len(events) / elapsed),
        "requests_per_second": round(requests / elapsed, 2),
        "request_latency": summary_ms(latencies),
        "ingest_function_duration": summary_ms(ingest_ms),
        "put_records_calls": sum(calls),
        "put_records_calls_per_request": round(sum(calls) / len(calls), 3) if calls else None,
        "log_lines_read": len(lines),
    }
    print(
        f"   ingest: {fmt(figures['events_per_second'])} events/s through POST /v1/events "
        f"({requests} requests of {batch}, one client), request p50 "
        f"{figures['request_latency']['p50_ms']:.0f} ms "
        f"p99 {figures['request_latency']['p99_ms']:.0f} ms; accepted {fmt(accepted)}, rejected "
        f"{rejected}, failed {failed}"
    )
    print(
        f"   ingest: PutRecords calls per request {figures['put_records_calls_per_request']} "
        f"({figures['put_records_calls']} calls in {len(lines)} invocations, from the function's log lines); "
        f"function duration p50 {figures['ingest_function_duration']['p50_ms']:.0f} ms"
    )
    return figures


# --- Figure 4: freshness -----------------------------------------------------------------------------
def _reflects_history(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    if body.get("fallback") is False:
        return True
    return any(item.get("reason") in ("covisit", "category") for item in body.get("items", []))


def bench_freshness(
    pipeline: Any, probe_item: tuple[str, str], probes: int, poll_ms: float, timeout_s: float = 30.0
) -> dict[str, Any]:
    producer = Http(pipeline.base_url, pipeline.api_keys["producer"])
    reader = Http(pipeline.base_url, pipeline.api_keys["reader"])
    item_id, category = probe_item
    run = uuid.uuid4().hex[:8]
    rng = random.Random(7)
    seconds: list[float] = []
    polls: list[int] = []
    timeouts = not_cold = 0
    for index in range(probes):
        user = f"bench-fresh-{run}-{index}"
        status, before, _ = reader.request(RECS.method, RECS.url("", user_id=user, k=10))
        if status != 200 or _reflects_history(before):
            not_cold += 1
        time.sleep(rng.random() * 0.5)  # a random phase of the poller's cycle
        event = {
            "event_type": "view",
            "user_id": user,
            "item_id": item_id,
            "category": category,
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        }
        status, body, _ = producer.request(EVENTS.method, EVENTS.url(""), json.dumps(event).encode())
        accepted_at = time.perf_counter()
        if status != 200:
            raise RuntimeError(f"probe event refused: {status} {body}")
        count = 0
        while True:
            count += 1
            status, body, _ = reader.request(RECS.method, RECS.url("", user_id=user, k=10))
            now = time.perf_counter()
            if status == 200 and _reflects_history(body):
                seconds.append(now - accepted_at)
                polls.append(count)
                break
            if now - accepted_at > timeout_s:
                timeouts += 1
                break
            time.sleep(poll_ms / 1000)
    figures: dict[str, Any] = {
        "probes": probes,
        "poll_interval_ms": poll_ms,
        "visible": len(seconds),
        "timeouts": timeouts,
        "probes_not_cold_before": not_cold,
        "p50_s": round(percentile(seconds, 50), 3),
        "p95_s": round(percentile(seconds, 95), 3),
        "p99_s": round(percentile(seconds, 99), 3),
        "max_s": round(max(seconds), 3) if seconds else None,
        "min_s": round(min(seconds), 3) if seconds else None,
        "goal_p95_s": FRESHNESS_GOAL_P95_S,
        "goal_met": bool(seconds) and percentile(seconds, 95) <= FRESHNESS_GOAL_P95_S and not timeouts,
    }
    verdict = "meets" if figures["goal_met"] else "MISSES"
    print(
        f"   freshness (accepted -> visible in recommendations), {probes} probes, polling every "
        f"{poll_ms:g} ms: "
        f"p50 {figures['p50_s']:.2f} s, p95 {figures['p95_s']:.2f} s, p99 {figures['p99_s']:.2f} s, "
        f"max {figures['max_s']} s; timeouts {timeouts}; goal p95 <= {FRESHNESS_GOAL_P95_S:g} s: {verdict}"
    )
    return figures


# --- Figure 3 over HTTP: serve ------------------------------------------------------------------------
def bench_serve_http(pipeline: Any, users: list[str], requests: int) -> dict[str, Any]:
    reader = Http(pipeline.base_url, pipeline.api_keys["reader"])
    since = time.time()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    fallbacks = 0
    started = time.perf_counter()
    for index in range(requests):
        user = users[index % len(users)]
        status, body, seconds = reader.request(RECS.method, RECS.url("", user_id=user, k=10))
        statuses[status] = statuses.get(status, 0) + 1
        latencies.append(seconds * 1000)
        fallbacks += bool(isinstance(body, dict) and body.get("fallback"))
    elapsed = time.perf_counter() - started
    serve_ms = durations_ms(pipeline, "Serve", since)
    figures: dict[str, Any] = {
        "requests": requests,
        "users": len(set(users[:requests])),
        "statuses": statuses,
        "fallbacks": fallbacks,
        "http_latency": summary_ms(latencies),
        "requests_per_second_one_client": round(requests / elapsed, 1),
        "serve_function_duration": summary_ms(serve_ms),
    }
    print(
        f"   serve over HTTP: p50 {figures['http_latency']['p50_ms']:.1f} ms, p99 "
        f"{figures['http_latency']['p99_ms']:.1f} ms, "
        f"{figures['requests_per_second_one_client']} requests/s (one client); serve function duration "
        f"p50 {figures['serve_function_duration']['p50_ms']:.1f} ms p99 "
        f"{figures['serve_function_duration']['p99_ms']:.1f} ms; "
        f"statuses {statuses}"
    )
    return figures


# --- Running them -----------------------------------------------------------------------------------
def run(parts: tuple[str, ...], args: argparse.Namespace) -> dict[str, Any]:
    sources = dataset("real", limit=args.events)
    events = retimed(sources)
    popular: dict[tuple[str, str], int] = {}
    for source in sources:
        key = (source["item_id"], source["category"])
        popular[key] = popular.get(key, 0) + 1
    probe_item = max(popular, key=lambda k: popular[k])
    users = list(dict.fromkeys(s["user_id"] for s in sources))
    figures: dict[str, Any] = {
        "window_s": args.window,
        "events_replayed": len(events),
        "profile": f"{BENCH_PROFILE} (dev, batching window {args.window:g} s, API throttles raised)",
    }
    with local_pipeline(args.window) as pipeline:
        since = time.time()
        figures["ingest"] = bench_ingest(pipeline, events, args.ingest_batch)
        # The cost model's traffic profile sends 100 events per request: the ingest duration at that size.
        small = retimed(sources[: min(len(sources), 2_000)])
        for event in small:
            event["event_id"] = "s100-" + event["event_id"][:58]
        figures["ingest_100"] = bench_ingest(pipeline, small, 100)
        drained = time.perf_counter()
        pipeline.wait_until_idle(timeout_s=900)
        figures["drain_s_after_ingest"] = round(time.perf_counter() - drained, 1)
        figures["process_function_duration_ms"] = summary_ms(durations_ms(pipeline, "Process", since))
        print(
            f"   the stream drained {figures['drain_s_after_ingest']} s after the last request; "
            f"process function "
            f"duration per batch p50 {figures['process_function_duration_ms']['p50_ms']:.0f} ms "
            f"p99 {figures['process_function_duration_ms']['p99_ms']:.0f} ms (against moto's server)"
        )
        if "freshness" in parts:
            figures["freshness"] = bench_freshness(pipeline, probe_item, args.probes, args.poll_ms)
        if "serve" in parts:
            figures["serve_http"] = bench_serve_http(pipeline, users, args.requests)
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--events", type=int, default=10_000, help="real events replayed first (default 10,000)"
    )
    parser.add_argument("--ingest-batch", type=int, default=500, help="events per POST (default 500)")
    parser.add_argument(
        "--window",
        type=float,
        default=0.0,
        help="MaximumBatchingWindowInSeconds of the hot path's mapping (every profile: 0)",
    )
    parser.add_argument("--probes", type=int, default=40, help="freshness probes")
    parser.add_argument("--poll-ms", type=float, default=25.0, help="GET interval while waiting for an event")
    parser.add_argument("--requests", type=int, default=500, help="GET recommendations over HTTP")
    parser.add_argument("--quick", action="store_true", help="2,000 events, 10 probes, 100 requests")
    parser.add_argument("--no-save", action="store_true")


def main(
    argv: list[str] | None = None,
    parts: tuple[str, ...] = ("ingest", "freshness", "serve"),
    name: str = "pipeline",
) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.probes, args.requests = 2_000, 10, 100
    header = print_header(f"local emulator: {', '.join(parts)}")
    figures = run(parts, args)
    if not args.no_save and not args.quick:
        write_result(f"{name}_window{args.window:g}", header, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
