"""Kinesis batch handler: records -> feature logic -> feature store; answers with batchItemFailures.

Thin on purpose: read config once per container, parse the event, run `HotPath`, emit metrics,
return `{"batchItemFailures": [...]}` (an empty list = the whole batch is done). Exceptions are left to
propagate: the event source mapping then retries or bisects the batch, and the watermarks make the
replay idempotent. Logs carry counts and sequence numbers, never event contents.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from streamrec_core import constants as c
from streamrec_core.features.dynamodb import WRITER_CLIENT_CONFIG, DynamoStore
from streamrec_core.kinesis import parse_kinesis_event

from process.config import ProcessConfig
from process.dead_letter import SqsDeadLetters
from process.logic import BatchResult, HotPath

logger = Logger(service=c.PROCESS_SERVICE)
metrics = Metrics(namespace=c.METRICS_NAMESPACE, service=c.PROCESS_SERVICE)
tracer = Tracer(service=c.PROCESS_SERVICE)


@dataclass(frozen=True, slots=True)
class Dependencies:
    config: ProcessConfig
    store: DynamoStore
    processor: HotPath


_dependencies: Dependencies | None = None


def configure(
    config: ProcessConfig, dynamodb_client: Any, sqs_client: Any, **processor_options: Any
) -> Dependencies:
    """Set the container's dependencies (tests inject moto-backed or fault-injecting clients here)."""
    global _dependencies
    store = DynamoStore(dynamodb_client, config.users_table, config.items_table)
    dead_letters = SqsDeadLetters(sqs_client, config.dead_letter_queue_url)
    _dependencies = Dependencies(
        config=config,
        store=store,
        processor=HotPath(store, dead_letters, config.features, **processor_options),
    )
    return _dependencies


def reset() -> None:
    """Forget the container's dependencies (the next invocation reads the environment again)."""
    global _dependencies
    _dependencies = None


def _get_dependencies() -> Dependencies:
    if _dependencies is None:
        # Cold start: a bad environment fails here with a message naming the variable.
        config = ProcessConfig.from_env(os.environ)
        return configure(
            config,
            boto3.client("dynamodb", config=WRITER_CLIENT_CONFIG),
            boto3.client("sqs", config=WRITER_CLIENT_CONFIG),
        )
    return _dependencies


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    deps = _get_dependencies()
    records = parse_kinesis_event(event)
    if records:
        # One batch = one shard and a contiguous range: that range is the correlation id.
        first, last = records[0], records[-1]
        logger.set_correlation_id(f"{first.shard_id}:{first.sequence_number}-{last.sequence_number}")
    writes_before = deps.store.counts.writes
    result = deps.processor.process(records)
    emit_metrics(result, deps.store.counts.writes - writes_before)
    logger.info(
        "batch processed",
        extra={
            "records": result.records,
            "applied": result.applied,
            "late": result.late,
            "duplicates": result.duplicates,
            "seen": result.seen,
            "dead_lettered": result.dead_lettered,
            "users_written": result.users_written,
            "conflicts": result.conflicts,
            "throttles": result.throttles,
            "failed_sequence_number": result.failed_sequence_number,
        },
    )
    return response(result)


def response(result: BatchResult) -> dict[str, Any]:
    """The ReportBatchItemFailures answer: the first record not applied, or nothing."""
    if result.failed_sequence_number is None:
        return {"batchItemFailures": []}
    return {"batchItemFailures": [{"itemIdentifier": result.failed_sequence_number}]}


def emit_metrics(result: BatchResult, write_requests: int) -> None:
    count = MetricUnit.Count
    metrics.add_metric(name=c.METRIC_RECORDS_PROCESSED, unit=count, value=result.records)
    metrics.add_metric(name=c.METRIC_EVENTS_APPLIED, unit=count, value=result.applied)
    metrics.add_metric(name=c.METRIC_DUPLICATES_SKIPPED, unit=count, value=result.duplicates)
    metrics.add_metric(name=c.METRIC_LATE_EVENTS, unit=count, value=result.late)
    metrics.add_metric(name=c.METRIC_FEATURE_WRITES, unit=count, value=write_requests)
    metrics.add_metric(name=c.METRIC_DLQ_SENDS, unit=count, value=result.dead_lettered)
    metrics.add_metric(name=c.METRIC_FEATURE_WRITE_CONFLICTS, unit=count, value=result.conflicts)
    metrics.add_metric(name=c.METRIC_FEATURE_WRITE_THROTTLES, unit=count, value=result.throttles)
    metrics.add_metric(
        name=c.METRIC_BATCH_ITEM_FAILURES, unit=count, value=0 if result.failed_sequence_number is None else 1
    )
    if result.redrive_uncertain:
        metrics.add_metric(name=c.METRIC_REDRIVE_UNCERTAIN, unit=count, value=result.redrive_uncertain)
