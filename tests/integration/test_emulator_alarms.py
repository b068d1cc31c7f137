"""Locally evaluated CloudWatch alarms (moto's CloudFormation skips AWS::CloudWatch::Alarm): the alarm
definitions live in moto's CloudWatch, the datapoints come from what the runtime observes, and state
changes go back to moto and to the alarm's SNS actions."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from local_emulator.alarms import AlarmEvaluator
from local_emulator.esm import EsmConfig, EsmPoller
from local_emulator.metrics import MetricStore
from local_emulator.testing import FUNCTION_ARN, FakeClock, ScriptedFunction, create_stream, put

REGION = "us-east-1"
FUNCTION = {"FunctionName": "process"}


@pytest.fixture
def aws():
    with mock_aws():
        clients = {
            name: boto3.client(name, region_name=REGION) for name in ("cloudwatch", "sns", "sqs", "kinesis")
        }
        topic = clients["sns"].create_topic(Name="alarms")["TopicArn"]
        inbox = clients["sqs"].create_queue(QueueName="inbox")["QueueUrl"]
        inbox_arn = clients["sqs"].get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        clients["sns"].subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn, Attributes={"RawMessageDelivery": "true"}
        )
        clients["topic"], clients["inbox"] = topic, inbox
        yield clients


def _alarm(aws, name, **overrides):
    definition = {
        "AlarmName": name,
        "Namespace": "AWS/Lambda",
        "MetricName": "IteratorAge",
        "Dimensions": [{"Name": "FunctionName", "Value": "process"}],
        "Statistic": "Maximum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 60_000,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "AlarmActions": [aws["topic"]],
        "OKActions": [aws["topic"]],
    }
    definition.update(overrides)
    aws["cloudwatch"].put_metric_alarm(**definition)


def _notifications(aws):
    messages = aws["sqs"].receive_message(QueueUrl=aws["inbox"], MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_iterator_age_alarm_fires_from_the_age_the_poller_observes(aws):
    """The iterator-age alarm fires when the event source mapping invokes with records older than the
    threshold (iterator age = invocation time - arrival of the batch's last record), and notifies SNS."""
    # Given an iterator-age alarm (>= 60 s) and a poller whose clock is 120 s after the record arrived
    _alarm(aws, "iterator-age")
    arn = create_stream(aws["kinesis"], "events")
    put(aws["kinesis"], "events", "u", "late")
    iterator = aws["kinesis"].get_shard_iterator(
        StreamName="events", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    arrival = aws["kinesis"].get_records(ShardIterator=iterator)["Records"][0]["ApproximateArrivalTimestamp"]
    clock = FakeClock(arrival.timestamp() + 120)
    store = MetricStore(clock=clock)
    poller = EsmPoller(
        aws["kinesis"],
        EsmConfig(arn, FUNCTION_ARN),
        invoke=ScriptedFunction(),
        clock=clock,
        on_batch=lambda outcome: store.put("AWS/Lambda", "IteratorAge", FUNCTION, outcome.iterator_age_ms),
    )
    evaluator = AlarmEvaluator(aws["cloudwatch"], aws["sns"], store, clock=clock)

    # When the record is processed and the alarms evaluated
    poller.run_until_idle()
    changed = evaluator.evaluate()

    # Then the alarm is in ALARM, in moto too, and CloudWatch's notification reached the topic
    assert [s.name for s in changed] == ["iterator-age"]
    assert evaluator.states["iterator-age"].state == "ALARM"
    assert evaluator.states["iterator-age"].last_value == pytest.approx(120_000, abs=1)
    alarm = aws["cloudwatch"].describe_alarms(AlarmNames=["iterator-age"])["MetricAlarms"][0]
    assert alarm["StateValue"] == "ALARM"
    (note,) = _notifications(aws)
    assert note["AlarmName"] == "iterator-age"
    assert (note["OldStateValue"], note["NewStateValue"]) == ("INSUFFICIENT_DATA", "ALARM")
    assert note["Trigger"]["MetricName"] == "IteratorAge"
    assert note["Trigger"]["Dimensions"] == [{"value": "process", "name": "FunctionName"}]


def test_alarm_returns_to_ok_when_fresh_datapoints_stop_breaching(aws):
    """After a period without breaching datapoints the alarm goes back to OK and runs its OK actions."""
    _alarm(aws, "iterator-age")
    clock = FakeClock()
    store = MetricStore(clock=clock)
    evaluator = AlarmEvaluator(aws["cloudwatch"], aws["sns"], store, clock=clock)
    store.put("AWS/Lambda", "IteratorAge", FUNCTION, 90_000)
    evaluator.evaluate()
    _notifications(aws)

    clock.advance(61)
    store.put("AWS/Lambda", "IteratorAge", FUNCTION, 500)
    evaluator.evaluate()

    assert evaluator.states["iterator-age"].state == "OK"
    assert [n["NewStateValue"] for n in _notifications(aws)] == ["OK"]


def test_only_the_alarms_own_dimensions_count(aws):
    """A datapoint of another function (other dimensions) never moves the alarm."""
    _alarm(aws, "iterator-age")
    clock = FakeClock()
    store = MetricStore(clock=clock)
    evaluator = AlarmEvaluator(aws["cloudwatch"], aws["sns"], store, clock=clock)

    store.put("AWS/Lambda", "IteratorAge", {"FunctionName": "other"}, 90_000)
    evaluator.evaluate()

    assert evaluator.states["iterator-age"].state == "INSUFFICIENT_DATA"


@pytest.mark.parametrize(
    ("breaching_periods", "expected"),
    [([True, True, False], "ALARM"), ([True, False, False], "OK")],
    ids=["2-of-3", "1-of-3"],
)
def test_datapoints_to_alarm_out_of_evaluation_periods(aws, breaching_periods, expected):
    """M out of N: DatapointsToAlarm breaching periods among the last EvaluationPeriods make ALARM."""
    _alarm(aws, "depth", EvaluationPeriods=3, DatapointsToAlarm=2)
    clock = FakeClock()
    store = MetricStore(clock=clock)
    evaluator = AlarmEvaluator(aws["cloudwatch"], aws["sns"], store, clock=clock)
    for breaching in breaching_periods:  # one datapoint per period, oldest first
        clock.advance(60)
        store.put("AWS/Lambda", "IteratorAge", FUNCTION, 90_000 if breaching else 10)

    evaluator.evaluate()

    assert evaluator.states["depth"].state == expected


@pytest.mark.parametrize(
    ("treat_missing", "expected"),
    [
        ("missing", "INSUFFICIENT_DATA"),
        ("notBreaching", "OK"),
        ("breaching", "ALARM"),
        ("ignore", "INSUFFICIENT_DATA"),
    ],
)
def test_treat_missing_data(aws, treat_missing, expected):
    """Without datapoints, TreatMissingData decides the state."""
    _alarm(aws, "quiet", TreatMissingData=treat_missing)
    clock = FakeClock()
    evaluator = AlarmEvaluator(aws["cloudwatch"], aws["sns"], MetricStore(clock=clock), clock=clock)

    evaluator.evaluate()

    assert evaluator.states["quiet"].state == expected


def test_metric_math_rate_alarm(aws):
    """An alarm on an expression (rejected / received) is evaluated from both metrics."""

    def stat(metric_id, name):
        return {
            "Id": metric_id,
            "ReturnData": False,
            "MetricStat": {
                "Metric": {
                    "Namespace": "Streamrec",
                    "MetricName": name,
                    "Dimensions": [{"Name": "service", "Value": "ingest"}],
                },
                "Period": 60,
                "Stat": "Sum",
            },
        }

    aws["cloudwatch"].put_metric_alarm(
        AlarmName="rejection-rate",
        EvaluationPeriods=1,
        Threshold=0.05,
        ComparisonOperator="GreaterThanThreshold",
        Metrics=[
            stat("rejected", "EventsRejected"),
            stat("accepted", "EventsAccepted"),
            {"Id": "rate", "Expression": "rejected / (rejected + accepted)", "ReturnData": True},
        ],
    )
    clock = FakeClock()
    store = MetricStore(clock=clock)
    evaluator = AlarmEvaluator(aws["cloudwatch"], aws["sns"], store, clock=clock)
    store.put("Streamrec", "EventsAccepted", {"service": "ingest"}, 90)
    store.put("Streamrec", "EventsRejected", {"service": "ingest"}, 10)

    evaluator.evaluate()

    assert evaluator.states["rejection-rate"].state == "ALARM"
    assert evaluator.states["rejection-rate"].last_value == pytest.approx(0.1)
