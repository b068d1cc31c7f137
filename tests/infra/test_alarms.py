"""Every alarm: metric, namespace, dimensions, statistic, period, threshold from settings, SNS actions."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from streamrec_core import constants as c

from stacks.settings import AlarmSettings
from tests.infra.conftest import PROFILES, REPO_ROOT, Synth, ref


@dataclass(frozen=True)
class Plain:
    namespace: str
    metric: str
    statistic: str
    dims: Callable[[Synth], dict[str, Any]]
    threshold: Callable[[AlarmSettings], float]


@dataclass(frozen=True)
class Ratio:
    """An EMF ratio: numerator / denominator (denominator_adds: numerator + other)."""

    numerator: str
    other: str
    service: str
    denominator_adds: bool
    threshold: Callable[[AlarmSettings], float]


def _fn(prefix: str) -> Callable[[Synth], dict[str, Any]]:
    return lambda s: {"FunctionName": ref(s.one("AWS::Lambda::Function", prefix)[0])}


def _queue(prefix: str) -> Callable[[Synth], dict[str, Any]]:
    return lambda s: {"QueueName": {"Fn::GetAtt": [s.one("AWS::SQS::Queue", prefix)[0], "QueueName"]}}


def _table(prefix: str) -> Callable[[Synth], dict[str, Any]]:
    return lambda s: {"TableName": ref(s.one("AWS::DynamoDB::Table", prefix)[0])}


def _stream(s: Synth) -> dict[str, Any]:
    return {"StreamName": ref(s.one("AWS::Kinesis::Stream")[0])}


def _service(service: str) -> Callable[[Synth], dict[str, Any]]:
    return lambda _s: {"service": service}


def _api(s: Synth) -> dict[str, Any]:
    # The Ref of the API's one stage resolves to its name (settings' stage_name, asserted in test_api).
    return {
        "ApiName": s.props("AWS::ApiGateway::RestApi")["Name"],
        "Stage": ref(s.one("AWS::ApiGateway::Stage")[0]),
    }


EXPECTED: dict[str, Plain | Ratio] = {
    c.ALARM_ITERATOR_AGE: Plain(
        "AWS/Lambda",
        "IteratorAge",
        "Maximum",
        _fn("ProcessingProcess"),
        lambda a: a.iterator_age.to_milliseconds(),
    ),
    c.ALARM_PROCESS_ERRORS: Plain(
        "AWS/Lambda", "Errors", "Sum", _fn("ProcessingProcess"), lambda a: a.process_errors
    ),
    c.ALARM_PROCESS_THROTTLES: Plain(
        "AWS/Lambda", "Throttles", "Sum", _fn("ProcessingProcess"), lambda a: a.process_throttles
    ),
    c.ALARM_AGGREGATE_ITERATOR_AGE: Plain(
        "AWS/Lambda",
        "IteratorAge",
        "Maximum",
        _fn("BranchesItems"),
        lambda a: a.aggregate_iterator_age.to_milliseconds(),
    ),
    c.ALARM_AGGREGATE_ERRORS: Plain(
        "AWS/Lambda", "Errors", "Sum", _fn("BranchesItems"), lambda a: a.aggregate_errors
    ),
    c.ALARM_AGGREGATE_UNRESOLVED: Plain(
        c.METRICS_NAMESPACE,
        c.METRIC_AGGREGATE_UNRESOLVED,
        "Sum",
        _service(c.AGGREGATE_SERVICE),
        lambda a: a.aggregate_unresolved,
    ),
    c.ALARM_EXPERIMENTS_ITERATOR_AGE: Plain(
        "AWS/Lambda",
        "IteratorAge",
        "Maximum",
        _fn("BranchesExperiments"),
        lambda a: a.experiments_iterator_age.to_milliseconds(),
    ),
    c.ALARM_EXPERIMENTS_ERRORS: Plain(
        "AWS/Lambda", "Errors", "Sum", _fn("BranchesExperiments"), lambda a: a.experiments_errors
    ),
    c.ALARM_EXPERIMENTS_UNRESOLVED: Plain(
        c.METRICS_NAMESPACE,
        c.METRIC_AGGREGATE_UNRESOLVED,
        "Sum",
        _service(c.EXPERIMENTS_SERVICE),
        lambda a: a.aggregate_unresolved,
    ),
    c.ALARM_DLQ_DEPTH: Plain(
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
        _queue("ProcessingDeadLetterQueue"),
        lambda a: a.dlq_depth,
    ),
    c.ALARM_ON_FAILURE_DEPTH: Plain(
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
        _queue("ProcessingOnFailureQueue"),
        lambda a: a.on_failure_depth,
    ),
    c.ALARM_INGEST_REJECTION_RATE: Ratio(
        c.METRIC_EVENTS_REJECTED,
        c.METRIC_EVENTS_ACCEPTED,
        c.INGEST_SERVICE,
        True,
        lambda a: a.ingest_rejection_rate,
    ),
    c.ALARM_KINESIS_WRITE_THROTTLES: Plain(
        "AWS/Kinesis",
        "WriteProvisionedThroughputExceeded",
        "Sum",
        _stream,
        lambda a: a.kinesis_write_throttles,
    ),
    c.ALARM_PUT_RECORDS_FAILURES: Plain(
        "AWS/Kinesis", "PutRecords.FailedRecords", "Sum", _stream, lambda a: a.put_records_failures
    ),
    c.ALARM_USERS_READ_THROTTLES: Plain(
        "AWS/DynamoDB", "ReadThrottleEvents", "Sum", _table("TablesUsers"), lambda a: a.dynamodb_throttles
    ),
    c.ALARM_USERS_WRITE_THROTTLES: Plain(
        "AWS/DynamoDB", "WriteThrottleEvents", "Sum", _table("TablesUsers"), lambda a: a.dynamodb_throttles
    ),
    c.ALARM_ITEMS_READ_THROTTLES: Plain(
        "AWS/DynamoDB", "ReadThrottleEvents", "Sum", _table("TablesItems"), lambda a: a.dynamodb_throttles
    ),
    c.ALARM_ITEMS_WRITE_THROTTLES: Plain(
        "AWS/DynamoDB", "WriteThrottleEvents", "Sum", _table("TablesItems"), lambda a: a.dynamodb_throttles
    ),
    c.ALARM_API_5XX_RATE: Plain("AWS/ApiGateway", "5XXError", "Average", _api, lambda a: a.api_5xx_rate),
    c.ALARM_API_P99_LATENCY: Plain(
        "AWS/ApiGateway", "Latency", "p99", _api, lambda a: a.api_p99_latency.to_milliseconds()
    ),
    c.ALARM_SERVE_FALLBACK_RATE: Ratio(
        c.METRIC_FALLBACKS,
        c.METRIC_RECOMMENDATIONS_SERVED,
        c.SERVE_SERVICE,
        False,
        lambda a: a.serve_fallback_rate,
    ),
}


def _alarm(synth: Synth, suffix: str) -> dict[str, Any]:
    name = f"{synth.stack_name}-{suffix}"
    found = [r["Properties"] for r in synth.of_type("AWS::CloudWatch::Alarm").values()]
    matching = [p for p in found if p["AlarmName"] == name]
    assert len(matching) == 1, f"no alarm named {name}"
    return matching[0]


def _dims(props: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in props["Dimensions"]}


def test_the_stack_has_exactly_the_expected_alarms(synth: Synth) -> None:
    names = sorted(r["Properties"]["AlarmName"] for r in synth.of_type("AWS::CloudWatch::Alarm").values())
    assert names == sorted(f"{synth.stack_name}-{suffix}" for suffix in EXPECTED)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("suffix", sorted(EXPECTED))
def test_alarm_watches_the_right_metric_with_its_dimensions_and_threshold(
    synths: dict[str, Synth], profile: str, suffix: str
) -> None:
    # Given the alarm as synthesized for this profile
    synth = synths[profile]
    props = _alarm(synth, suffix)
    expected = EXPECTED[suffix]
    alarms = synth.settings.alarms
    # Then it compares the right metric with the threshold from settings, over the configured period
    assert props["Threshold"] == expected.threshold(alarms)
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    assert props["EvaluationPeriods"] == alarms.evaluation_periods
    period = int(alarms.period.to_seconds())
    if isinstance(expected, Plain):
        assert props["Namespace"] == expected.namespace
        assert props["MetricName"] == expected.metric
        assert _dims(props) == expected.dims(synth)
        assert props["Period"] == period
        statistic = props.get("Statistic") or props.get("ExtendedStatistic")
        assert statistic == expected.statistic
    else:
        metrics = {m["Id"]: m for m in props["Metrics"]}
        [expression] = [m for m in props["Metrics"] if "Expression" in m]
        assert expression["ReturnData"] is True
        by_name = {
            m["MetricStat"]["Metric"]["MetricName"]: (mid, m["MetricStat"])
            for mid, m in metrics.items()
            if "MetricStat" in m
        }
        assert set(by_name) == {expected.numerator, expected.other}
        for _, stat in by_name.values():
            assert stat["Metric"]["Namespace"] == c.METRICS_NAMESPACE
            assert stat["Metric"]["Dimensions"] == [{"Name": "service", "Value": expected.service}]
            assert stat["Stat"] == "Sum" and stat["Period"] == period
        num, other = by_name[expected.numerator][0], by_name[expected.other][0]
        if expected.denominator_adds:
            assert expression["Expression"] == f"FILL({num}, 0) / (FILL({num}, 0) + FILL({other}, 0))"
        else:
            assert expression["Expression"] == f"FILL({num}, 0) / {other}"


@pytest.mark.parametrize("suffix", sorted(EXPECTED))
def test_alarm_notifies_the_alarm_topic_when_it_fires_and_when_it_recovers(synth: Synth, suffix: str) -> None:
    topic_id, _ = synth.one("AWS::SNS::Topic")
    props = _alarm(synth, suffix)
    assert props["AlarmActions"] == [ref(topic_id)]
    assert props["OKActions"] == [ref(topic_id)]
    # Quiet periods are not incidents: no data never fires an alarm.
    assert props["TreatMissingData"] == "notBreaching"


def test_thresholds_follow_the_selected_profile(dev: Synth, prod: Synth) -> None:
    # Given profiles with different freshness goals
    assert dev.settings.alarms.iterator_age.to_seconds() != prod.settings.alarms.iterator_age.to_seconds()
    # Then each stack's iterator-age alarm uses its own profile's goal
    assert _alarm(dev, c.ALARM_ITERATOR_AGE)["Threshold"] != _alarm(prod, c.ALARM_ITERATOR_AGE)["Threshold"]


def test_dev_thresholds_are_distinct_so_a_threshold_given_to_the_wrong_alarm_is_caught(dev: Synth) -> None:
    for group in (
        (c.ALARM_ITERATOR_AGE, c.ALARM_AGGREGATE_ITERATOR_AGE, c.ALARM_EXPERIMENTS_ITERATOR_AGE),
        (c.ALARM_PROCESS_ERRORS, c.ALARM_AGGREGATE_ERRORS, c.ALARM_EXPERIMENTS_ERRORS),
    ):
        thresholds = [_alarm(dev, suffix)["Threshold"] for suffix in group]
        assert len(set(thresholds)) == len(thresholds), (group, thresholds)


def test_an_expired_outbox_entry_is_an_alarm_at_the_first_one(synth: Synth) -> None:
    # A record a branch could no longer resolve is an aggregate that is missing for good.
    for suffix in (c.ALARM_AGGREGATE_UNRESOLVED, c.ALARM_EXPERIMENTS_UNRESOLVED):
        assert _alarm(synth, suffix)["Threshold"] == 0


def test_branch_lag_alarms_fire_before_the_outbox_retention_is_reached(synth: Synth) -> None:
    retention_ms = synth.settings.features.outbox_retention.to_milliseconds()
    for suffix in (c.ALARM_AGGREGATE_ITERATOR_AGE, c.ALARM_EXPERIMENTS_ITERATOR_AGE):
        assert _alarm(synth, suffix)["Threshold"] < retention_ms


def _dashboard_text(synth: Synth) -> str:
    """The dashboard body with each Ref replaced by the logical id it refers to."""
    body = synth.props("AWS::CloudWatch::Dashboard")["DashboardBody"]
    return "".join(p if isinstance(p, str) else p.get("Ref", "") for p in body["Fn::Join"][1])


def test_dashboard_covers_every_part_of_the_pipeline(synth: Synth) -> None:
    text = _dashboard_text(synth)
    for section in (
        "Ingest",
        "Stream",
        "Processing",
        "Aggregate branches",
        "Dead letters",
        "Feature tables",
        "Serving",
        "Experiments",
    ):
        assert f"## {section}" in text
    for metric in (
        "IteratorAge",
        c.METRIC_EVENTS_REJECTED,
        c.METRIC_DLQ_SENDS,
        "WriteThrottleEvents",
        c.METRIC_FALLBACKS,
    ):
        assert metric in text


def _graphed_dimensions(text: str, namespace: str, metric: str) -> list[dict[str, str]]:
    """Dimension maps of every graphed series of a metric ([namespace, metric, k1, v1, ..., {options}])."""
    found = []
    for match in re.finditer(rf'\["{re.escape(namespace)}","{re.escape(metric)}",((?:"[^"]*",)*)\{{', text):
        values = json.loads(f"[{match.group(1).rstrip(',')}]")
        found.append(dict(zip(values[::2], values[1::2], strict=True)))
    return found


def test_dashboard_shows_each_configured_variant_with_the_dimensions_the_functions_emit(dev: Synth) -> None:
    # Given dev's experiment from settings
    [experiment] = dev.settings.experiments
    text = _dashboard_text(dev)
    # Then every variant's impressions (serve), clicks and purchases (the experiments branch) are graphed
    # with service, experiment and variant dimensions, and its CTR is computed
    for metric, service in (
        (c.METRIC_VARIANT_IMPRESSIONS, c.SERVE_SERVICE),
        (c.METRIC_VARIANT_CLICKS, c.EXPERIMENTS_SERVICE),
        (c.METRIC_VARIANT_PURCHASES, c.EXPERIMENTS_SERVICE),
    ):
        graphed = _graphed_dimensions(text, c.METRICS_NAMESPACE, metric)
        for variant in experiment.variants:
            expected = {
                "service": service,
                c.METRIC_DIMENSION_EXPERIMENT: experiment.id,
                c.METRIC_DIMENSION_VARIANT: variant.name,
            }
            assert expected in graphed, (metric, graphed)
    for variant in experiment.variants:
        assert f"{variant.name} ctr" in text


def test_dashboard_says_so_when_no_experiment_is_configured(prod: Synth) -> None:
    assert prod.settings.experiments == ()
    assert "No experiments configured" in _dashboard_text(prod)


def test_dashboard_shows_each_branchs_lag_errors_and_unresolved_records(synth: Synth) -> None:
    text = _dashboard_text(synth)
    for prefix in ("BranchesItems", "BranchesExperiments"):
        function_id, _ = synth.one("AWS::Lambda::Function", prefix)
        for metric in ("IteratorAge", "Errors", "Invocations", "Duration"):
            assert {"FunctionName": function_id} in _graphed_dimensions(text, "AWS/Lambda", metric), (
                prefix,
                metric,
            )
    for service in (c.AGGREGATE_SERVICE, c.EXPERIMENTS_SERVICE):
        for metric in (
            c.METRIC_RECORDS_PROCESSED,
            c.METRIC_AGGREGATE_EFFECTS,
            c.METRIC_AGGREGATE_NOT_READY,
            c.METRIC_AGGREGATE_UNRESOLVED,
            c.METRIC_AGGREGATE_GIVEN_UP,
            c.METRIC_FEATURE_WRITE_CONFLICTS,
        ):
            assert {"service": service} in _graphed_dimensions(text, c.METRICS_NAMESPACE, metric), (
                service,
                metric,
            )
    assert {"service": c.AGGREGATE_SERVICE} in _graphed_dimensions(
        text, c.METRICS_NAMESPACE, c.METRIC_TRENDING_MERGES
    )


def test_every_alarm_links_to_its_entry_in_the_runbook(synth: Synth) -> None:
    runbook = (REPO_ROOT / "docs" / "runbook.md").read_text()
    for alarm in synth.of_type("AWS::CloudWatch::Alarm").values():
        description = alarm["Properties"]["AlarmDescription"]
        anchor = re.search(r"Runbook: docs/runbook\.md#([a-z0-9-]+)$", description)
        assert anchor, description
        assert f'<a id="{anchor.group(1)}"></a>' in runbook, anchor.group(1)
