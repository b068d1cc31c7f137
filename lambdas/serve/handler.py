"""GET recommendations / similar items / experiments / health: API Gateway REST proxy events.

Thin on purpose: read config once per container, route, parse parameters, call `Recommender`, emit
metrics, map errors to the shared error shape (streamrec_core.http). Logs carry ids and counts only.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config
from streamrec_core import constants as c
from streamrec_core import routes
from streamrec_core.env import ConfigError, require_str
from streamrec_core.experiments import Experiment, parse_experiments
from streamrec_core.features.dynamodb import DynamoStore
from streamrec_core.features.store import StoreError, Throttled
from streamrec_core.http import (
    ERROR_INTERNAL,
    ERROR_METHOD_NOT_ALLOWED,
    ERROR_NOT_FOUND,
    ERROR_SERVICE_UNAVAILABLE,
    RETRY_AFTER_SECONDS,
    HttpError,
    cors_headers,
    error_response,
    header,
    http_error_response,
    json_response,
    parse_origins,
    preflight_response,
    request_id,
)
from streamrec_core.responses import Health

from serve.logic import Recommender, RowReader, ServeSettings

logger = Logger(service=c.SERVE_SERVICE)
metrics = Metrics(namespace=c.METRICS_NAMESPACE, service=c.SERVE_SERVICE)
tracer = Tracer(service=c.SERVE_SERVICE)

_CLIENT_CONFIG = Config(
    retries={"total_max_attempts": 2, "mode": "standard"}, connect_timeout=1, read_timeout=2
)
SERVE_ROUTES = routes.routes_of(routes.SERVE)


@dataclass(frozen=True, slots=True)
class ServeConfig:
    users_table: str
    items_table: str
    experiments: tuple[Experiment, ...]
    cors_allowed_origins: tuple[str, ...]
    key_ids: Mapping[routes.KeyRole, str]  # the API key id each key role of serve's routes accepts

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServeConfig:
        """Validate the environment; ConfigError names the first bad variable."""
        raw = require_str(env, c.ENV_EXPERIMENTS)
        try:
            experiments = parse_experiments(json.loads(raw) if raw.strip() else [])
        except ValueError as exc:
            raise ConfigError(f"environment variable {c.ENV_EXPERIMENTS} is invalid: {exc}") from None
        return cls(
            users_table=require_str(env, c.ENV_USERS_TABLE),
            items_table=require_str(env, c.ENV_ITEMS_TABLE),
            experiments=experiments,
            cors_allowed_origins=parse_origins(env.get(c.ENV_CORS_ALLOWED_ORIGINS)),
            key_ids=routes.key_ids_from_env(env, routes.SERVE),
        )


@dataclass(frozen=True, slots=True)
class Dependencies:
    config: ServeConfig
    store: RowReader
    recommender: Recommender


_dependencies: Dependencies | None = None


def configure(config: ServeConfig, dynamodb_client: Any) -> Dependencies:
    """Set the container's dependencies (tests inject a moto-backed or call-counting client here)."""
    global _dependencies
    store = DynamoStore(dynamodb_client, config.users_table, config.items_table, writers=1)
    settings = ServeSettings(experiments=config.experiments)
    _dependencies = Dependencies(config, store, Recommender(store, settings))
    return _dependencies


def reset() -> None:
    global _dependencies
    _dependencies = None


def _get_dependencies() -> Dependencies:
    if _dependencies is None:
        # Cold start: a bad environment fails here with a message naming the variable.
        return configure(ServeConfig.from_env(os.environ), boto3.client("dynamodb", config=_CLIENT_CONFIG))
    return _dependencies


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    deps = _get_dependencies()
    rid = request_id(event)
    cors = cors_headers(header(event, "origin"), deps.config.cors_allowed_origins)
    try:
        return _handle(event, deps, rid, cors)
    except HttpError as exc:
        return http_error_response(exc, request_id=rid, headers=cors)
    except Throttled:
        logger.warning("feature tables throttled")
        return error_response(
            ERROR_SERVICE_UNAVAILABLE,
            "feature store busy; retry",
            request_id=rid,
            headers={**cors, "Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    except StoreError:
        logger.exception("feature store error")
        return error_response(ERROR_INTERNAL, "internal error", request_id=rid, headers=cors)
    except Exception:
        logger.exception("unhandled error")
        return error_response(ERROR_INTERNAL, "internal error", request_id=rid, headers=cors)


def _handle(
    event: Mapping[str, Any], deps: Dependencies, rid: str | None, cors: dict[str, str]
) -> dict[str, Any]:
    route, path_values = routes.match(SERVE_ROUTES, event)
    if route is None:
        raise HttpError(ERROR_NOT_FOUND, "no such resource")
    method = event.get("httpMethod", route.method)
    if method == "OPTIONS":  # CORS preflight: browsers send no API key with it
        return preflight_response(header(event, "origin"), deps.config.cors_allowed_origins, (route.method,))
    if method != route.method:
        raise HttpError(ERROR_METHOD_NOT_ALLOWED, f"use {route.method}", headers={"Allow": route.method})
    routes.authorize(route, event, deps.config.key_ids)
    args = route.parse(event, path_values)
    return json_response(200, _OPERATIONS[route](deps, args, rid), headers=cors)


def _recommendations(deps: Dependencies, args: dict[str, Any], rid: str | None) -> Any:
    started = time.perf_counter()
    result = deps.recommender.recommendations(**args, request_id=rid)
    elapsed_ms = (time.perf_counter() - started) * 1000
    metrics.add_metric(name=c.METRIC_RECOMMENDATION_LATENCY, unit=MetricUnit.Milliseconds, value=elapsed_ms)
    metrics.add_metric(name=c.METRIC_RECOMMENDATIONS_SERVED, unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=c.METRIC_FALLBACKS, unit=MetricUnit.Count, value=1 if result.fallback else 0)
    metrics.add_metric(name=c.METRIC_VARIANT_IMPRESSIONS, unit=MetricUnit.Count, value=1)
    if result.experiment_id is not None:
        with single_metric(
            name=c.METRIC_VARIANT_IMPRESSIONS,
            unit=MetricUnit.Count,
            value=1,
            namespace=c.METRICS_NAMESPACE,
            default_dimensions={
                "service": c.SERVE_SERVICE,
                c.METRIC_DIMENSION_EXPERIMENT: result.experiment_id,
                c.METRIC_DIMENSION_VARIANT: result.variant,
            },
        ):
            pass
    logger.info(
        "recommendations served",
        extra={
            "items": result.items,
            "fallback": result.fallback,
            "variant": result.variant,
            "ms": round(elapsed_ms, 2),
        },
    )
    return result.body


def _similar(deps: Dependencies, args: dict[str, Any], rid: str | None) -> Any:
    return deps.recommender.similar(**args)


def _experiment(deps: Dependencies, args: dict[str, Any], rid: str | None) -> Any:
    return deps.recommender.experiment(**args)


def _health(deps: Dependencies, args: dict[str, Any], rid: str | None) -> Any:
    return Health("ok", c.MODEL_NAME)


# What each route does with its parsed parameters (routes.Route.parse), returning the response body.
_OPERATIONS: dict[routes.Route, Callable[[Dependencies, dict[str, Any], str | None], Any]] = {
    routes.RECOMMENDATIONS: _recommendations,
    routes.SIMILAR: _similar,
    routes.EXPERIMENT: _experiment,
    routes.HEALTH: _health,
}
