"""POST /v1/events: API Gateway proxy event -> validated events -> one PutRecords call -> per-index answer.

Thin on purpose: parse the proxy event, read config once per container, call the logic and the Kinesis
writer, emit metrics, map errors to responses. Logs carry counts and the request id, never events.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import msgspec
from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config
from streamrec_core import constants as c
from streamrec_core import routes
from streamrec_core.http import (
    ERROR_INTERNAL,
    ERROR_METHOD_NOT_ALLOWED,
    HttpError,
    body_bytes,
    cors_headers,
    error_response,
    header,
    http_error_response,
    json_response,
    preflight_response,
    request_id,
)

from ingest.config import IngestConfig
from ingest.kinesis_writer import KinesisWriter
from ingest.logic import (
    Limits,
    build_response,
    kinesis_records,
    parse_request,
    rejection_dimensions,
    validate_batch,
)

logger = Logger(service=c.INGEST_SERVICE)
metrics = Metrics(namespace=c.METRICS_NAMESPACE, service=c.INGEST_SERVICE)
tracer = Tracer(service=c.INGEST_SERVICE)

# Time kept back from the function's remaining time for answering after the last retry.
RESPONSE_MARGIN_SECONDS = 1.0
# Our own retries replace botocore's, so the time budget is ours; timeouts fit inside it.
_KINESIS_CLIENT_CONFIG = Config(
    retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5
)


@dataclass(frozen=True, slots=True)
class Dependencies:
    config: IngestConfig
    limits: Limits
    writer: KinesisWriter


_dependencies: Dependencies | None = None


def configure(config: IngestConfig, kinesis_client: Any, **writer_options: Any) -> Dependencies:
    """Set the container's dependencies (tests inject a moto-backed or fake Kinesis client here)."""
    global _dependencies
    _dependencies = Dependencies(
        config=config,
        limits=Limits(
            max_body_bytes=config.max_body_bytes,
            max_events=config.max_events_per_request,
            max_age=config.max_event_age,
            max_future=config.max_future_skew,
        ),
        writer=KinesisWriter(kinesis_client, config.stream_name, **writer_options),
    )
    return _dependencies


def reset() -> None:
    """Forget the container's dependencies (the next invocation reads the environment again)."""
    global _dependencies
    _dependencies = None


def _get_dependencies() -> Dependencies:
    if _dependencies is None:
        # Cold start: a bad environment fails here with a message naming the variable.
        config = IngestConfig.from_env(os.environ)
        return configure(config, boto3.client("kinesis", config=_KINESIS_CLIENT_CONFIG))
    return _dependencies


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)  # responses echo client ids: keep them out of traces
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    deps = _get_dependencies()
    rid = request_id(event)
    origin = header(event, "origin")
    if event.get("httpMethod") == "OPTIONS":
        return preflight_response(origin, deps.config.cors_allowed_origins, (routes.EVENTS.method,))
    cors = cors_headers(origin, deps.config.cors_allowed_origins)
    try:
        return _handle(event, context, deps, rid, cors)
    except HttpError as exc:
        logger.info("request refused", extra={"error_code": exc.code, "status": exc.status})
        metrics.add_metric(name=c.METRIC_REQUESTS_REFUSED, unit=MetricUnit.Count, value=1)
        return http_error_response(exc, request_id=rid, headers=cors)
    except Exception:
        # A bug of ours, never the client's input: answer in the shared shape, keep the trace in the log.
        logger.exception("unhandled error")
        return error_response(ERROR_INTERNAL, "internal error", request_id=rid, headers=cors)


def _handle(
    event: dict[str, Any], context: Any, deps: Dependencies, rid: str | None, cors: dict[str, str]
) -> dict[str, Any]:
    method = event.get("httpMethod")
    if method is not None and method != routes.EVENTS.method:
        allowed = routes.EVENTS.method
        raise HttpError(ERROR_METHOD_NOT_ALLOWED, f"use {allowed}", headers={"Allow": allowed})
    routes.authorize(routes.EVENTS, event, deps.config.key_ids)
    raw_events = parse_request(body_bytes(event), header(event, "content-type"), deps.limits)
    now = datetime.now(UTC)
    batch = validate_batch(raw_events, now=now, limits=deps.limits)
    records = kinesis_records(batch, now)
    put = deps.writer.put(records, budget_seconds=_budget(deps.config, context))
    status, body, headers = build_response(batch, put.failures, rid)

    counts = body.counts
    metrics.add_metric(name=c.METRIC_EVENTS_ACCEPTED, unit=MetricUnit.Count, value=counts.accepted)
    metrics.add_metric(name=c.METRIC_EVENTS_REJECTED, unit=MetricUnit.Count, value=counts.rejected)
    metrics.add_metric(name=c.METRIC_EVENTS_RETRIED, unit=MetricUnit.Count, value=put.retried)
    metrics.add_metric(name=c.METRIC_EVENTS_FAILED, unit=MetricUnit.Count, value=counts.failed)
    for field_name, count in sorted(rejection_dimensions(batch).items()):
        with single_metric(
            name=c.METRIC_EVENTS_REJECTED,
            unit=MetricUnit.Count,
            value=count,
            namespace=c.METRICS_NAMESPACE,
            default_dimensions={"service": c.INGEST_SERVICE, c.METRIC_DIMENSION_FIELD: field_name},
        ):
            pass
    logger.info(
        "events ingested",
        extra={
            "status": status,
            "put_records_calls": put.calls,
            **{f"events_{k}": v for k, v in msgspec.structs.asdict(counts).items()},
        },
    )
    return json_response(status, body, headers={**cors, **headers})


def _budget(config: IngestConfig, context: Any) -> float:
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if remaining_ms is None:
        return config.put_retry_budget_seconds
    return max(0.0, min(config.put_retry_budget_seconds, remaining_ms() / 1000 - RESPONSE_MARGIN_SECONDS))
