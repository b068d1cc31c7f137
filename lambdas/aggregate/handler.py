"""The aggregate branches' Kinesis handlers: `items` (co-visitation, trending) and `experiments`.

Two functions from this one folder, each on its own event source mapping of the events stream. Thin on
purpose: read config once per container, parse the event, run the branch's logic, emit metrics, return
`{"batchItemFailures": [...]}`. Exceptions propagate (the mapping retries or bisects; the per-row
watermarks make the replay idempotent). Logs carry counts and sequence numbers, never event contents.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from streamrec_core import constants as c
from streamrec_core.features.dynamodb import WRITER_CLIENT_CONFIG, DynamoStore
from streamrec_core.kinesis import parse_kinesis_event

from aggregate.config import AggregateConfig
from aggregate.logic import AggregateResult, ExperimentCounter, ItemAggregator

logger = Logger(service=c.AGGREGATE_SERVICE)
items_metrics = Metrics(namespace=c.METRICS_NAMESPACE, service=c.AGGREGATE_SERVICE)
experiments_metrics = Metrics(namespace=c.METRICS_NAMESPACE, service=c.EXPERIMENTS_SERVICE)
tracer = Tracer(service=c.AGGREGATE_SERVICE)


@dataclass(frozen=True, slots=True)
class Dependencies:
    config: AggregateConfig
    store: DynamoStore
    items: ItemAggregator
    experiments: ExperimentCounter


_dependencies: Dependencies | None = None


def configure(config: AggregateConfig, dynamodb_client: Any, **options: Any) -> Dependencies:
    """Set the container's dependencies (tests inject moto-backed or fault-injecting clients here)."""
    global _dependencies
    store = DynamoStore(dynamodb_client, config.users_table, config.items_table)
    options = {"hot_path_max_record_age_s": config.hot_path_max_record_age_s, **options}
    _dependencies = Dependencies(
        config,
        store,
        ItemAggregator(store, config.features, **options),
        ExperimentCounter(store, config.features, **options),
    )
    return _dependencies


def reset() -> None:
    global _dependencies
    _dependencies = None


def _get_dependencies() -> Dependencies:
    if _dependencies is None:
        # Cold start: a bad environment fails here with a message naming the variable.
        config = AggregateConfig.from_env(os.environ)
        return configure(config, boto3.client("dynamodb", config=WRITER_CLIENT_CONFIG))
    return _dependencies


def _run(event: dict[str, Any], branch: Callable[[Dependencies], Any], metrics: Metrics) -> dict[str, Any]:
    deps = _get_dependencies()
    records = parse_kinesis_event(event)
    if records:
        first, last = records[0], records[-1]
        logger.set_correlation_id(f"{first.shard_id}:{first.sequence_number}-{last.sequence_number}")
    writes_before = deps.store.counts.writes
    result: AggregateResult = branch(deps).process(records)
    _emit(metrics, result, deps.store.counts.writes - writes_before)
    logger.info(
        "batch aggregated",
        extra={
            "records": result.records,
            "effects": result.effects,
            "not_ready": result.not_ready,
            "unresolved": result.unresolved,
            "given_up": result.given_up,
            "rows_written": result.rows_written,
            "conflicts": result.conflicts,
            "merged": result.merged,
            "failed_sequence_number": result.failed_sequence_number,
        },
    )
    if result.failed_sequence_number is None:
        return {"batchItemFailures": []}
    return {"batchItemFailures": [{"itemIdentifier": result.failed_sequence_number}]}


@items_metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def items(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _run(event, lambda deps: deps.items, items_metrics)


@experiments_metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def experiments(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _run(event, lambda deps: deps.experiments, experiments_metrics)


def _emit(metrics: Metrics, result: AggregateResult, write_requests: int) -> None:
    count = MetricUnit.Count
    metrics.add_metric(name=c.METRIC_RECORDS_PROCESSED, unit=count, value=result.records)
    metrics.add_metric(name=c.METRIC_AGGREGATE_EFFECTS, unit=count, value=result.effects)
    metrics.add_metric(name=c.METRIC_AGGREGATE_NOT_READY, unit=count, value=result.not_ready)
    metrics.add_metric(name=c.METRIC_AGGREGATE_UNRESOLVED, unit=count, value=result.unresolved)
    metrics.add_metric(name=c.METRIC_AGGREGATE_GIVEN_UP, unit=count, value=result.given_up)
    metrics.add_metric(name=c.METRIC_FEATURE_WRITES, unit=count, value=write_requests)
    metrics.add_metric(name=c.METRIC_FEATURE_WRITE_CONFLICTS, unit=count, value=result.conflicts)
    metrics.add_metric(name=c.METRIC_FEATURE_WRITE_THROTTLES, unit=count, value=result.throttles)
    metrics.add_metric(name=c.METRIC_TRENDING_MERGES, unit=count, value=int(result.merged))
    metrics.add_metric(
        name=c.METRIC_BATCH_ITEM_FAILURES, unit=count, value=0 if result.failed_sequence_number is None else 1
    )
    # Per-variant clicks and purchases (impressions are counted by serve when it answers).
    per_metric = {"click": c.METRIC_VARIANT_CLICKS, "purchase": c.METRIC_VARIANT_PURCHASES}
    totals: dict[str, int] = {}
    for (experiment_id, variant, event_type), value in sorted(result.counted.items()):
        name = per_metric.get(event_type)
        if name is None:
            continue
        totals[name] = totals.get(name, 0) + value
        with single_metric(
            name=name,
            unit=count,
            value=value,
            namespace=c.METRICS_NAMESPACE,
            default_dimensions={
                "service": c.EXPERIMENTS_SERVICE,
                c.METRIC_DIMENSION_EXPERIMENT: experiment_id,
                c.METRIC_DIMENSION_VARIANT: variant,
            },
        ):
            pass
    for name, value in totals.items():
        metrics.add_metric(name=name, unit=count, value=value)
