"""Locally evaluated alarms on the real stack: a poison source makes the DLQ-depth alarm fire.

moto's CloudFormation skips AWS::CloudWatch::Alarm; the embedded emulator creates the template's alarms
in moto and evaluates them from what it observes (here: the dead-letter queue's real depth in moto SQS).
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.e2e.conftest import eventually

DLQ_ALARM_SUFFIX = "dlq-depth"


@pytest.fixture
def alarm_inbox(local_pipeline):
    """An SQS queue subscribed to the stack's alarm topic, to read the notifications it publishes."""
    sqs, sns = local_pipeline.client("sqs"), local_pipeline.client("sns")
    url = sqs.create_queue(QueueName=f"alarm-inbox-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    subscription = sns.subscribe(
        TopicArn=local_pipeline.outputs["AlarmTopicArn"],
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    yield url
    sns.unsubscribe(SubscriptionArn=subscription)
    sqs.delete_queue(QueueUrl=url)


@pytest.mark.embedded_only(
    "evaluates the alarms with the embedded emulator's evaluator (LocalPipeline.evaluate_alarms), which "
    "runs in the test process only; another target evaluates its alarms itself, on its own schedule"
)
def test_poison_record_on_the_stream_makes_the_dlq_depth_alarm_fire(local_pipeline, alarm_inbox):
    """Given a producer that bypasses ingest and writes an undecodable record to the stream,
    when the pipeline processes it, the record lands in the DLQ and the DLQ-depth alarm goes to ALARM
    and notifies the alarm topic."""
    pipeline = local_pipeline.pipeline
    alarm_name = f"{pipeline.stack_name}-{DLQ_ALARM_SUFFIX}"

    # Given an empty DLQ (other tests share this pipeline), so the alarm starts from OK
    local_pipeline.client("sqs").purge_queue(QueueUrl=local_pipeline.outputs["DeadLetterQueueUrl"])
    assert pipeline.evaluate_alarms()[alarm_name]["state"] == "OK"

    # And a poison record written straight to the stream
    local_pipeline.client("kinesis").put_record(
        StreamName=local_pipeline.outputs["StreamName"], PartitionKey="poison-source", Data=b"\xff not json"
    )

    # When the pipeline has processed it
    local_pipeline.wait_until_idle(timeout_s=60)

    # Then the DLQ holds it and the alarm fires, locally and in moto's CloudWatch
    states = pipeline.evaluate_alarms()
    assert states[alarm_name]["state"] == "ALARM", states[alarm_name]
    described = local_pipeline.client("cloudwatch").describe_alarms(AlarmNames=[alarm_name])
    assert described["MetricAlarms"][0]["StateValue"] == "ALARM"

    # And the alarm topic delivered CloudWatch's notification
    def notified():
        received = local_pipeline.client("sqs").receive_message(
            QueueUrl=alarm_inbox, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        notes = [json.loads(m["Body"]) for m in received.get("Messages", [])]
        return [n for n in notes if n["AlarmName"] == alarm_name and n["NewStateValue"] == "ALARM"]

    (note,) = eventually(notified, timeout_s=15)
    assert note["Trigger"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
