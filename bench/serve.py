"""Figure 3: serve. DynamoDB round trips per request, handler p50/p99 against moto in-process, requests/s.

The feature tables are filled by the real process handler from the first ``--events`` real events
(against moto in-process, as in ``bench.dynamodb_writes``); then the real serve handler
(``serve.handler.handler``, Powertools included) answers ``GET /v1/users/{id}/recommendations?k=10``
API Gateway proxy events for users of the replay and for never-seen users (cold starts), with its
DynamoDB client wrapped in `bench.stores.CountingDynamoDB`: round trips are the read requests each
request makes. The HTTP figures on the local emulator come from ``bench.pipeline_bench`` (``--http``).

Usage:
    python -m bench.serve                   # in-process figures, 20,000 events, 2,000 requests
    python -m bench.serve --http            # plus HTTP p50/p99 on the local emulator
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import random
import time
from typing import Any

from bench.common import dataset, encode_events, fmt, kinesis_batches, print_header, summary_ms, write_result
from bench.dynamodb_writes import (
    ITEMS_TABLE,
    REGION,
    USERS_TABLE,
    FakeContext,
    _aws_env,
    create_tables,
    process_config,
)
from bench.stores import CountingDynamoDB
from local_emulator import moto_patches

GOAL_ROUND_TRIPS = 2


BENCH_READER_KEY_ID = "bench-reader"  # the reader key id serve accepts, as API Gateway passes it


def proxy_event(user_id: str, k: int = 10) -> dict[str, Any]:
    """An API Gateway REST proxy event for GET recommendations."""
    path = f"/v1/users/{user_id}/recommendations"
    return {
        "resource": "/v1/users/{user_id}/recommendations",
        "path": path,
        "httpMethod": "GET",
        "headers": {"x-api-key": "bench"},
        "multiValueHeaders": {},
        "queryStringParameters": {"k": str(k)},
        "multiValueQueryStringParameters": {"k": [str(k)]},
        "pathParameters": {"user_id": user_id},
        "stageVariables": None,
        "requestContext": {
            "requestId": f"bench-{random.getrandbits(64):016x}",
            "stage": "dev",
            "resourcePath": "/v1/users/{user_id}/recommendations",
            "httpMethod": "GET",
            "identity": {"apiKey": "bench", "apiKeyId": BENCH_READER_KEY_ID},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def serve_env() -> dict[str, str]:
    from streamrec_core import constants as c

    from bench.common import REPO_ROOT
    from stacks.settings import load_profiles_from_cdk_json

    dev = load_profiles_from_cdk_json(str(REPO_ROOT / "cdk.json"))["dev"]
    return {
        c.ENV_USERS_TABLE: USERS_TABLE,
        c.ENV_ITEMS_TABLE: ITEMS_TABLE,
        c.ENV_TRENDING_SLOTS: "4",
        c.ENV_EXPERIMENTS: dev.experiments_json(),
        c.ENV_READER_API_KEY_ID: BENCH_READER_KEY_ID,
    }


def measure_in_process(events: int, requests: int, cold_share: float) -> dict[str, Any]:
    import boto3
    from moto import mock_aws
    from process import handler as process_handler
    from serve import handler as serve_handler

    sources = dataset("real", limit=events)
    batches = kinesis_batches(encode_events(sources), batch_size=500, shards=2)
    users = list(dict.fromkeys(s["user_id"] for s in sources))
    rng = random.Random(11)
    with mock_aws(), moto_patches.patched():
        client = boto3.client("dynamodb", region_name=REGION)
        create_tables(client)
        process_handler.configure(
            process_config(), client, boto3.client("sqs", region_name=REGION), sleep=lambda s: None
        )
        process_handler.logger.setLevel(logging.WARNING)
        with contextlib.redirect_stdout(io.StringIO()):
            for batch in batches:
                process_handler.handler(batch.event, FakeContext())
        process_handler.reset()

        counting = CountingDynamoDB(client)
        serve_handler.configure(serve_handler.ServeConfig.from_env(serve_env()), counting)
        serve_handler.logger.setLevel(logging.WARNING)
        wall: list[float] = []
        cpu: list[float] = []
        trips: list[int] = []
        statuses: dict[int, int] = {}
        cold = 0
        units_at_start = 0.0
        sink = io.StringIO()
        try:
            for index in range(requests + 50):
                if rng.random() < cold_share:
                    user, cold = f"bench-cold-{index}", cold + (index >= 50)
                else:
                    user = rng.choice(users)
                event = proxy_event(user)
                before = counting.read_requests
                started, started_cpu = time.perf_counter(), time.process_time()
                with contextlib.redirect_stdout(sink):
                    response = serve_handler.handler(event, FakeContext(function_name="serve"))
                elapsed, elapsed_cpu = time.perf_counter() - started, time.process_time() - started_cpu
                sink.seek(0)
                sink.truncate()
                if index < 50:
                    units_at_start = counting.read_units
                    continue  # warm-up: imports, first client calls
                statuses[response["statusCode"]] = statuses.get(response["statusCode"], 0) + 1
                wall.append(elapsed * 1000)
                cpu.append(elapsed_cpu * 1000)
                trips.append(counting.read_requests - before)
        finally:
            serve_handler.reset()
    return {
        "events_loaded": len(sources),
        "requests": requests,
        "cold_start_users": cold,
        "statuses": statuses,
        "round_trips_per_request": {
            "max": max(trips),
            "mean": round(sum(trips) / len(trips), 3),
            "histogram": {str(n): trips.count(n) for n in sorted(set(trips))},
        },
        "read_units_per_request": round((counting.read_units - units_at_start) / len(trips), 2),
        "handler_wall": summary_ms(wall),
        "handler_cpu": summary_ms(cpu),
        "requests_per_second_one_thread": round(1000 / (sum(wall) / len(wall)), 1),
        "goal_round_trips": GOAL_ROUND_TRIPS,
        "goal_met": max(trips) <= GOAL_ROUND_TRIPS,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events", type=int, default=20_000, help="real events processed into the tables first"
    )
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument(
        "--cold-share", type=float, default=0.1, help="share of requests for never-seen users"
    )
    parser.add_argument("--http", action="store_true", help="also the HTTP figures on the local emulator")
    parser.add_argument("--quick", action="store_true", help="5,000 events, 300 requests")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.requests = 5_000, 300
    _aws_env()
    header = print_header("serve: round trips per request, handler latency against moto in-process")
    figures = measure_in_process(args.events, args.requests, args.cold_share)
    trips = figures["round_trips_per_request"]
    wall, cpu = figures["handler_wall"], figures["handler_cpu"]
    verdict = "meets" if figures["goal_met"] else "MISSES"
    print(
        f"   tables from {fmt(figures['events_loaded'])} real events; {fmt(args.requests)} requests "
        f"({figures['cold_start_users']} for never-seen users); statuses {figures['statuses']}"
    )
    print(
        f"   DynamoDB round trips per request: max {trips['max']}, mean {trips['mean']} "
        f"{trips['histogram']}; "
        f"goal <= {GOAL_ROUND_TRIPS}: {verdict}"
    )
    print(
        f"   read units per request {figures['read_units_per_request']} (eventually consistent BatchGetItem)"
    )
    print(
        f"   handler against moto in-process: p50 {wall['p50_ms']:.1f} ms, p99 {wall['p99_ms']:.1f} ms "
        f"(CPU p50 {cpu['p50_ms']:.1f} ms; moto's own work included); "
        f"{figures['requests_per_second_one_thread']} requests/s on one thread"
    )
    if not args.no_save and not args.quick:
        write_result("serve", header, figures)
    if args.http:
        from bench import pipeline_bench

        return pipeline_bench.main(["--no-save"] if args.no_save else [], parts=("serve",), name="serve_http")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
