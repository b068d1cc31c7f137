"""Serve's handler with its hand-rolled routing against the same handler on Powertools' REST resolver.

Issue 13 asked whether `aws_lambda_powertools.event_handler.APIGatewayRestResolver` should replace what
`lambdas/serve/handler.py` does by hand (route matching, CORS, error mapping). Both variants here run the
same route table (streamrec_core.routes: key check, `Route.parse`), the same operations
(`serve.handler._OPERATIONS`), the same Powertools Logger/Metrics/Tracer decorators and the same
in-memory feature rows (no DynamoDB: what differs is the layer around the logic, so the logic must not
drown it). The resolver variant is what a port would look like: routes registered from the table,
exception handlers for the shared error shape, a not-found handler for 404/405, CORSConfig.

Prints per request kind the median and p99 handler latency of each variant (microseconds, CPU-bound,
interleaved in rounds so that load drift hits both), the ratio, and where the two answer differently.

    python -m bench.serve_routing [--rounds 20] [--per-round 200] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

# Powertools reads these at import: no X-Ray outside Lambda, metrics in the namespace serve uses.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response  # noqa: E402
from aws_lambda_powertools.event_handler.exceptions import NotFoundError  # noqa: E402
from serve import handler as serve  # noqa: E402
from serve.logic import Recommender, ServeSettings  # noqa: E402
from streamrec_core import routes  # noqa: E402
from streamrec_core.experiments import Experiment, Variant  # noqa: E402
from streamrec_core.features.config import FeatureConfig  # noqa: E402
from streamrec_core.features.memory_store import MemoryStore  # noqa: E402
from streamrec_core.features.reference import ReferenceFold  # noqa: E402
from streamrec_core.features.store import Throttled  # noqa: E402
from streamrec_core.features.trending import TrendingList, merge  # noqa: E402
from streamrec_core.http import (  # noqa: E402
    CORS_ALLOW_HEADERS,
    CORS_EXPOSE_HEADERS,
    CORS_MAX_AGE_SECONDS,
    ERROR_INTERNAL,
    ERROR_METHOD_NOT_ALLOWED,
    ERROR_NOT_FOUND,
    ERROR_SERVICE_UNAVAILABLE,
    JSON_CONTENT_TYPE,
    STATUS_BY_CODE,
    HttpError,
    encode_json,
    error_body,
    request_id,
)

from bench.common import fmt, generated_events, print_header, source_to_event, write_result
from local_emulator.worker_main import LambdaContext

READER_KEY_ID = "reader-key-id"
ORIGIN = "https://shop.example"
WIDTHS = (16, 10, 16, 10, 10)  # of the printed table's columns
CFG = FeatureConfig(user_ttl_seconds=86_400, item_ttl_seconds=86_400, allowed_lateness_ms=3_600_000)


# --- The world both variants read --------------------------------------------------------------------
def feature_rows(events: int) -> tuple[MemoryStore, list[str], list[str]]:
    """Rows of a seeded clickstream as the tables hold them; (store, user ids, item ids)."""
    fold = ReferenceFold(CFG)
    sources = generated_events(events, users=300, items=2000, seed=11)
    for n, source in enumerate(sources):
        fold.apply_dict(source_to_event(source), shard_id="s", sequence_number=n + 1)
    overall, by_category = merge([fold.partial], CFG)
    rows = [*fold.rows().values(), TrendingList(None, items=overall)]
    rows += [TrendingList(category, items=items) for category, items in by_category.items()]
    store = MemoryStore()
    store.put_many(rows, conditional=False)
    return store, sorted(fold.users), sorted(fold.items)


def configure(store: MemoryStore) -> serve.Dependencies:
    """The serve container's dependencies, with the feature rows in memory (the DynamoDB reader port)."""
    experiments = (Experiment("ranking", (Variant("control", 1.0), Variant("recent-heavy", 1.0))),)
    config = serve.ServeConfig(
        users_table="users",
        items_table="items",
        experiments=experiments,
        cors_allowed_origins=(ORIGIN,),
        key_ids={routes.KeyRole.READER: READER_KEY_ID},
    )
    deps = serve.Dependencies(config, store, Recommender(store, ServeSettings(experiments)))
    serve._dependencies = deps
    return deps


# --- The resolver variant -----------------------------------------------------------------------------
def powertools_handler(deps: serve.Dependencies) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """serve.handler.handler as a port to APIGatewayRestResolver would write it."""
    origins = deps.config.cors_allowed_origins
    cors = (
        CORSConfig(
            allow_origin=origins[0],
            extra_origins=list(origins[1:]),
            allow_headers=[h.strip() for h in CORS_ALLOW_HEADERS.split(",")],
            expose_headers=[CORS_EXPOSE_HEADERS],
            max_age=CORS_MAX_AGE_SECONDS,
        )
        if origins
        else None
    )
    app = APIGatewayRestResolver(cors=cors, serializer=encode_json)

    def error(
        code: str, message: str, headers: dict[str, str] | None = None, details: Any = None
    ) -> Response:
        body = error_body(code, message, request_id=request_id(app.current_event.raw_event), details=details)
        return Response(STATUS_BY_CODE[code], JSON_CONTENT_TYPE, encode_json(body), headers=headers)

    for route in routes.routes_of(routes.SERVE):

        def endpoint(route: routes.Route = route, **_: str) -> Response:
            event = app.current_event.raw_event
            routes.authorize(route, event, deps.config.key_ids)
            args = route.parse(event, app.current_event.path_parameters or {})
            body = serve._OPERATIONS[route](deps, args, request_id(event))
            return Response(200, JSON_CONTENT_TYPE, encode_json(body))

        rule = route.path.replace("{", "<").replace("}", ">")
        app.route(rule, method=route.method, cors=True)(endpoint)

    @app.exception_handler(HttpError)
    def http_error(exc: HttpError) -> Response:
        return error(exc.code, exc.message, exc.headers, exc.details)

    @app.exception_handler(Throttled)
    def throttled(exc: Throttled) -> Response:
        return error(ERROR_SERVICE_UNAVAILABLE, "feature store busy; retry", {"Retry-After": "1"})

    @app.exception_handler(Exception)
    def unhandled(exc: Exception) -> Response:
        serve.logger.exception("unhandled error")
        return error(ERROR_INTERNAL, "internal error")

    @app.not_found
    def not_found(exc: NotFoundError) -> Response:
        # The resolver knows no 405: a known path with another method is "not found" to it.
        route, _ = routes.match(routes.routes_of(routes.SERVE), app.current_event.raw_event)
        if route is None:
            return error(ERROR_NOT_FOUND, "no such resource")
        return error(ERROR_METHOD_NOT_ALLOWED, f"use {route.method}", {"Allow": route.method})

    @serve.logger.inject_lambda_context(correlation_id_path=serve.correlation_paths.API_GATEWAY_REST)
    @serve.metrics.log_metrics
    @serve.tracer.capture_lambda_handler
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    return handler


# --- Requests -------------------------------------------------------------------------------------------
def lambda_context() -> LambdaContext:
    return LambdaContext("serve", timeout_s=3600, memory_mb=1024)


def proxy_event(
    route: routes.Route | None,
    path: str,
    *,
    method: str | None = None,
    params: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    key_id: str | None = READER_KEY_ID,
    origin: str | None = ORIGIN,
) -> dict[str, Any]:
    """An API Gateway REST proxy event as API Gateway sends it (the fields both variants read)."""
    headers = {"Host": "api.example", "User-Agent": "bench", "x-api-key": "k"}
    if origin:
        headers["Origin"] = origin
    return {
        "resource": route.path if route else path,
        "path": path,
        "httpMethod": method or (route.method if route else "GET"),
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": params,
        "stageVariables": None,
        "requestContext": {
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "stage": "prod",
            "identity": {"apiKeyId": key_id, "sourceIp": "203.0.113.7"},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def request_kinds(users: list[str], items: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Per kind, a few distinct requests (cycled through while timing)."""
    rng = random.Random(3)
    recs, similar, health = routes.RECOMMENDATIONS, routes.SIMILAR, routes.HEALTH
    sample_users = rng.sample(users, 20)
    return {
        "recommendations 200": [
            proxy_event(recs, f"/v1/users/{u}/recommendations", params={"user_id": u}, query={"k": "10"})
            for u in sample_users
        ],
        "similar 200": [
            proxy_event(similar, f"/v1/items/{i}/similar", params={"item_id": i}, query={"k": "10"})
            for i in rng.sample(items, 20)
        ],
        "health 200": [proxy_event(health, "/v1/health", key_id=None)],
        "bad k 400": [
            proxy_event(recs, f"/v1/users/{u}/recommendations", params={"user_id": u}, query={"k": "0"})
            for u in sample_users
        ],
        "wrong key 403": [
            proxy_event(recs, f"/v1/users/{u}/recommendations", params={"user_id": u}, key_id="other")
            for u in sample_users
        ],
        "no route 404": [proxy_event(None, "/v1/nothing")],
        "wrong method 405": [proxy_event(health, "/v1/health", method="POST", key_id=None)],
        "preflight 204": [
            proxy_event(recs, f"/v1/users/{u}/recommendations", method="OPTIONS", params={"user_id": u})
            for u in sample_users[:3]
        ],
    }


# --- Measuring ---------------------------------------------------------------------------------------
def differences(
    kinds: dict[str, list[dict[str, Any]]], variants: dict[str, Callable[..., dict[str, Any]]]
) -> list[str]:
    """Where the variants answer the same request differently (status, a header, the body), each
    difference once with the request kinds it shows on."""
    found: dict[str, list[str]] = {}
    (name_a, a), (name_b, b) = variants.items()
    for kind, events in kinds.items():
        first, second = a(events[0], lambda_context()), b(events[0], lambda_context())
        seen = []
        if first["statusCode"] != second["statusCode"]:
            seen.append(f"status: {name_a} {first['statusCode']}, {name_b} {second['statusCode']}")
        headers_a, headers_b = _headers(first), _headers(second)
        for header in sorted(set(headers_a) | set(headers_b)):
            if headers_a.get(header) != headers_b.get(header):
                seen.append(
                    f"{header}: {name_a} {headers_a.get(header)!r}, {name_b} {headers_b.get(header)!r}"
                )
        if (first["body"] and json.loads(first["body"])) != (second["body"] and json.loads(second["body"])):
            seen.append(f"body: {name_a} {first['body'][:60]}, {name_b} {second['body'][:60]}")
        for line in seen:
            found.setdefault(line, []).append(kind)
    return [f"{line} ({'all' if len(on) == len(kinds) else ', '.join(on)})" for line, on in found.items()]


def _headers(response: dict[str, Any]) -> dict[str, str]:
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    return headers | {k.lower(): ",".join(v) for k, v in (response.get("multiValueHeaders") or {}).items()}


def measure(
    kinds: dict[str, list[dict[str, Any]]],
    variants: dict[str, Callable[..., dict[str, Any]]],
    rounds: int,
    per_round: int,
) -> dict[str, dict[str, list[float]]]:
    """CPU microseconds per request (of this process: other load on the machine does not count), per kind
    and variant; the variants alternate within every round."""
    samples: dict[str, dict[str, list[float]]] = {kind: {v: [] for v in variants} for kind in kinds}
    context = lambda_context()
    for _ in range(rounds):
        for kind, events in kinds.items():
            for name, handler in variants.items():
                times = samples[kind][name]
                for n in range(per_round):
                    event = events[n % len(events)]
                    started = time.process_time_ns()
                    handler(event, context)
                    times.append((time.process_time_ns() - started) / 1000)
    return samples


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Standard output and warnings to /dev/null (Powertools' logger holds the stdout stream it was
    created with, so only the file descriptor can be redirected)."""
    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(null)
        os.close(saved)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=200)
    parser.add_argument("--events", type=int, default=20_000, help="generated events behind the rows")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 50, 5,000 events (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.per_round, args.events = 3, 50, 5_000
    header = print_header("serve handler: hand-rolled routing vs Powertools APIGatewayRestResolver")
    store, users, items = feature_rows(args.events)
    deps = configure(store)
    variants: dict[str, Callable[..., dict[str, Any]]] = {
        "hand-rolled": serve.handler,
        "powertools": powertools_handler(deps),
    }
    kinds = request_kinds(users, items)
    with _quiet():  # both log and emit EMF to stdout, as in Lambda; the bench shows figures only
        found = differences(kinds, variants)
        measure(kinds, variants, 1, 50)  # warm-up: caches, first-call imports
        samples = measure(kinds, variants, args.rounds, args.per_round)
    print(f"   {args.rounds} rounds x {args.per_round} requests per kind and variant, {args.events} events")
    heads = ("hand-rolled p50", "p99", "powertools p50", "p99", "p50 ratio")
    print(f"   {'us per request':<22}" + "".join(f"{h:>{w}}" for h, w in zip(heads, WIDTHS, strict=True)))
    figures: dict[str, Any] = {}
    for kind, by_variant in samples.items():
        hand, power = by_variant["hand-rolled"], by_variant["powertools"]
        hand_p50, power_p50 = statistics.median(hand), statistics.median(power)
        hand_p99, power_p99 = (statistics.quantiles(v, n=100)[98] for v in (hand, power))
        ratio = power_p50 / hand_p50
        print(
            f"   {kind:<22}{fmt(hand_p50, 1):>16}{fmt(hand_p99, 1):>10}{fmt(power_p50, 1):>16}"
            f"{fmt(power_p99, 1):>10}{f'{ratio:.2f}x':>10}"
        )
        figures[kind] = {
            "hand_rolled_p50_us": round(hand_p50, 1),
            "hand_rolled_p99_us": round(hand_p99, 1),
            "powertools_p50_us": round(power_p50, 1),
            "powertools_p99_us": round(power_p99, 1),
            "ratio_p50": round(ratio, 3),
        }
    print("   where the two answer differently:" if found else "   both answer every request alike")
    for line in found:
        print(f"   - {line}")
    figures["differences"] = found
    if not args.quick:
        write_result("serve_routing", header, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
