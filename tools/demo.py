"""The main job: the whole pipeline on the embedded local emulator, end to end.

Synthesizes the CDK app, starts moto's server, deploys the same template into it, starts the local
runtime, replays a clickstream through ``POST /v1/events`` (a seeded synthetic one by default, or any
file in the shared data format), waits for processing to drain, measures freshness (event accepted ->
visible in recommendations) and prints a short report with recommendations for a few users.

Usage (``make demo`` runs this):
    python -m tools.demo                                   # 5,000 generated events
    python -m tools.demo --events 20000
    python -m tools.demo --events-file ../shared/data/taobao-userbehavior/events.jsonl --limit 20000
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from streamrec_core import routes

from local_emulator.pipeline import LocalPipeline
from tools.generate_clickstream import generate_events
from tools.progress import Progress
from tools.replay import ReplaySummary, format_timestamp, read_events, replay
from tools.storefront import DEMO_SHOP, Storefront
from tools.storefront import ROUTE as STOREFRONT_ROUTE

REPO_ROOT = Path(__file__).resolve().parent.parent
# A freshness probe gives up after this long (the goal is p95 <= 1 s; anything near this is a failure).
PROBE_TIMEOUT_S = 10.0
PROBE_POLL_S = 0.02


def _request(method: str, url: str, api_key: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("x-api-key", api_key)
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def recommendations(pipeline: LocalPipeline, user_id: str, k: int = 5) -> dict[str, Any]:
    """GET the user's recommendations over HTTP with the reader key."""
    url = routes.RECOMMENDATIONS.url(pipeline.base_url, user_id=user_id, k=k)
    status, body = _request(routes.RECOMMENDATIONS.method, url, pipeline.api_keys["reader"])
    if status != 200:
        raise RuntimeError(f"GET recommendations answered {status}: {body}")
    return body


def probe_freshness(pipeline: LocalPipeline, user_id: str, item_id: str, category: str) -> float:
    """Seconds from a 200 on POST /v1/events to recommendations computed from features including it.

    The signal is the response's ``features_as_of`` (the newest event time in the user's features)
    reaching the probe event's own timestamp.
    """
    stamp = time.time()
    event = {
        "event_id": f"probe-{uuid.uuid4().hex}",
        "event_type": "view",
        "user_id": user_id,
        "item_id": item_id,
        "category": category,
        "timestamp": format_timestamp(stamp),
    }
    url = routes.EVENTS.url(pipeline.base_url)
    status, body = _request(routes.EVENTS.method, url, pipeline.api_keys["producer"], event)
    if status != 200 or body["counts"]["accepted"] != 1:
        raise RuntimeError(f"probe event not accepted: {status} {body}")
    accepted_at = time.monotonic()
    wanted_ms = int(stamp * 1000)
    while time.monotonic() - accepted_at < PROBE_TIMEOUT_S:
        as_of = recommendations(pipeline, user_id).get("features_as_of") or 0
        if as_of >= wanted_ms:
            return time.monotonic() - accepted_at
        time.sleep(PROBE_POLL_S)
    return float("inf")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation), as latency reports usually state it."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def run(args: argparse.Namespace, out: Any = sys.stdout) -> dict[str, Any]:
    """Run the demo; returns the report as a dict (also printed)."""

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    say("streamrec demo: the whole pipeline on the embedded local emulator (moto), no AWS account\n")
    say("1/5 synthesize the CDK app, start moto, deploy the template, start the local runtime ...")
    with LocalPipeline.start(profile=args.profile, write_endpoint_file=True) as pipeline:
        say(f"    up in {pipeline.timings['total_s']:.1f} s; API at {pipeline.base_url}")
        say(f"    endpoint and API keys written to {pipeline.workdir / 'endpoint.json'}")
        say(f"    console: {pipeline.endpoint_document()['admin_url']}console (open it to watch the replay)")

        if args.events_file:
            source: Any = Path(args.events_file)
            label = f"{args.events_file}" + (f" (first {args.limit})" if args.limit else "")
        else:
            source = generate_events(args.events, users=args.users, items=args.items, seed=args.seed)
            label = f"{len(source)} generated events (seed {args.seed})"
        catalog = itertools.islice(read_events(source), args.limit) if args.events_file else source
        storefront = Storefront(pipeline.base_url, pipeline.api_keys, catalog)
        storefront.install(pipeline.runtime)
        say(f"    storefront: {pipeline.endpoint_document()['admin_url']}{STOREFRONT_ROUTE}")
        say(f"2/5 replay {label} through POST /v1/events ...")
        users: Counter[str] = Counter()
        item_category: dict[str, str] = {}

        def on_batch(batch: list[dict[str, Any]], _outcome: Any) -> None:
            for event in batch:
                users[event["user_id"]] += 1
                if event.get("item_id") and event.get("category"):
                    item_category[event["item_id"]] = event["category"]

        summary: ReplaySummary = replay(
            source,
            base_url=pipeline.base_url,
            api_key=pipeline.api_keys["producer"],
            speed=args.speed,
            limit=args.limit,
            progress=Progress(None, label="replay"),
            on_batch=on_batch,
        )
        say(f"    {summary.describe()}")

        say("3/5 wait for the stream to drain through the process function ...")
        drain_started = time.monotonic()
        pipeline.wait_until_idle(timeout_s=args.drain_timeout)
        lag_s = time.monotonic() - drain_started
        say(f"    processing caught up {lag_s:.2f} s after the last request was accepted")

        say(f"4/5 measure freshness with {args.probes} probes (event accepted -> in recommendations) ...")
        popular = [item for item, _ in Counter(item_category).most_common(args.probes)] or ["probe-item"]
        probe_users = [user for user, _ in users.most_common(args.probes)] or ["probe-user"]
        freshness = [
            probe_freshness(
                pipeline,
                probe_users[i % len(probe_users)],
                popular[i % len(popular)],
                item_category.get(popular[i % len(popular)], "probe"),
            )
            for i in range(args.probes)
        ]
        finite = [value for value in freshness if value != float("inf")]

        say("5/5 recommendations for a few users:")
        shown: dict[str, Any] = {}
        for user_id, count in users.most_common(3):
            body = recommendations(pipeline, user_id)
            shown[user_id] = body
            items = ", ".join(f"{it['item_id']} ({it['reason']} {it['score']:.2f})" for it in body["items"])
            say(f"    user {user_id} ({count} events, variant {body['variant']}): {items or '-'}")
        cold = recommendations(pipeline, f"new-user-{uuid.uuid4().hex[:8]}")
        say(
            f"    a new user (cold start, fallback={cold.get('fallback')}): "
            + ", ".join(it["item_id"] for it in cold["items"])
        )

        alarms = pipeline.evaluate_alarms()
        firing = sorted(name for name, state in alarms.items() if state.get("state") == "ALARM")
        report: dict[str, Any] = {
            "events_sent": summary.sent,
            "accepted": summary.accepted,
            "rejected": dict(summary.rejected),
            "failed": summary.failed,
            "ingest_events_per_s": round(summary.events_per_second, 1),
            "drain_after_replay_s": round(lag_s, 3),
            "freshness_s": {
                "probes": len(freshness),
                "timed_out": len(freshness) - len(finite),
                "p50": round(percentile(finite, 50), 3) if finite else None,
                "p95": round(percentile(finite, 95), 3) if finite else None,
                "max": round(max(finite), 3) if finite else None,
            },
            "alarms_in_alarm": firing,
            "startup_s": round(pipeline.timings["total_s"], 1),
        }
        say("\nreport")
        say(
            f"    events: {summary.sent} sent, {summary.accepted} accepted, "
            f"{summary.rejected_total} rejected, {summary.failed} failed after retries"
        )
        fresh = report["freshness_s"]
        say(
            f"    freshness: p50 {fresh['p50']} s, p95 {fresh['p95']} s, max {fresh['max']} s "
            f"over {fresh['probes']} probes ({fresh['timed_out']} timed out; goal p95 <= 1 s)"
        )
        say(f"    alarms in ALARM: {', '.join(firing) or 'none'}")
        if args.json:
            say(json.dumps(report, indent=2))
        return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=DEMO_SHOP.events, help="generated events")
    parser.add_argument("--users", type=int, default=DEMO_SHOP.users, help="generated users")
    parser.add_argument("--items", type=int, default=DEMO_SHOP.items, help="generated items")
    parser.add_argument("--seed", type=int, default=DEMO_SHOP.seed)
    parser.add_argument("--events-file", help="replay this JSONL file (shared data format) instead")
    parser.add_argument("--limit", type=int, help="replay only the first N events of the file")
    parser.add_argument(
        "--speed", type=float, default=0.0, help="replay speed factor (0 = as fast as possible)"
    )
    parser.add_argument("--probes", type=int, default=20, help="freshness probes (default 20)")
    parser.add_argument("--drain-timeout", type=float, default=600.0, help="seconds to wait for processing")
    parser.add_argument("--profile", default="dev", help="settings profile (default dev)")
    parser.add_argument("--json", action="store_true", help="also print the report as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    report = run(args)
    ok = report["accepted"] > 0 and report["freshness_s"]["timed_out"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
