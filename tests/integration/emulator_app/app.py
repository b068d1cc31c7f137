#!/usr/bin/env python3
"""A tiny CDK app for the emulator's integration tests: one keyed API method, a stream with an event
source mapping and an on-failure queue, a queue-depth alarm with an SNS action, a dashboard graphing the
API stage, and a second stream with three mappings (a hot path with ParallelizationFactor 2, a branch
with a batching window, a filtered branch) whose functions share one module and a layer."""

import os

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs

app = cdk.App(outdir=os.environ.get("CDK_OUTDIR"))
stack = cdk.Stack(app, "EmulatorFixture")
code = lambda_.Code.from_asset(os.path.join(os.path.dirname(__file__), "functions"))
echo = lambda_.Function(
    stack,
    "Echo",
    runtime=lambda_.Runtime.PYTHON_3_12,
    handler="echo.handler",
    code=code,
    memory_size=256,
    timeout=cdk.Duration.seconds(5),
)
sink = lambda_.Function(
    stack,
    "Sink",
    runtime=lambda_.Runtime.PYTHON_3_12,
    handler="sink.handler",
    code=code,
    timeout=cdk.Duration.seconds(5),
)

api = apigw.RestApi(stack, "Api", deploy_options=apigw.StageOptions(stage_name="test"))
integration = apigw.LambdaIntegration(echo)
echo_resource = api.root.add_resource("echo").add_resource("{id}")
echo_resource.add_method("GET", integration, api_key_required=True)
echo_resource.add_method("POST", integration, api_key_required=True)
api.root.add_resource("open").add_method("GET", integration)
api.root.add_resource("boom").add_method("GET", integration)
api.root.add_resource("malformed").add_method("GET", integration)
limited = api.root.add_resource("limited")
limited.add_method("GET", integration, api_key_required=True)

plan = api.add_usage_plan("Plan", throttle=apigw.ThrottleSettings(rate_limit=100, burst_limit=50))
plan.add_api_stage(stage=api.deployment_stage)
key = api.add_api_key("Key")
plan.add_api_key(key)
# One token per 100 s: the second request in a row is throttled, however slow the machine.
slow_plan = api.add_usage_plan("SlowPlan", throttle=apigw.ThrottleSettings(rate_limit=0.01, burst_limit=1))
slow_plan.add_api_stage(stage=api.deployment_stage)
slow_key = api.add_api_key("SlowKey")
slow_plan.add_api_key(slow_key)
# A plan attached to no stage: its key opens nothing.
idle_plan = api.add_usage_plan("IdlePlan")
idle_key = api.add_api_key("IdleKey")
idle_plan.add_api_key(idle_key)

stream = kinesis.Stream(stack, "Stream", shard_count=1)
on_failure = sqs.Queue(stack, "OnFailure")
sink.add_event_source(
    sources.KinesisEventSource(
        stream,
        starting_position=lambda_.StartingPosition.TRIM_HORIZON,
        batch_size=10,
        retry_attempts=0,
        bisect_batch_on_error=False,
        report_batch_item_failures=True,
        on_failure=sources.SqsDlq(on_failure),
    )
)

branch_stream = kinesis.Stream(stack, "BranchStream", shard_count=1)
recorded = sqs.Queue(stack, "Recorded")
layer = lambda_.LayerVersion(
    stack,
    "Layer",
    code=lambda_.Code.from_asset(os.path.join(os.path.dirname(__file__), "layer")),
    compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
)
for name, entry, mapping in (
    ("Hot", "hot", {"batch_size": 2, "parallelization_factor": 2}),
    ("Items", "items", {"batch_size": 100, "max_batching_window": cdk.Duration.seconds(1)}),
    (
        "Experiments",
        "experiments",
        {
            "batch_size": 2,
            "filters": [
                lambda_.FilterCriteria.filter(
                    {"data": {"attribution": {"variant": lambda_.FilterRule.exists()}}}
                )
            ],
        },
    ),
):
    branch = lambda_.Function(
        stack,
        name,
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler=f"recorder.handler.{entry}",
        code=code,
        layers=[layer],
        timeout=cdk.Duration.seconds(5),
        environment={"RECORDED_QUEUE_URL": recorded.queue_url},
    )
    branch.add_event_source(
        sources.KinesisEventSource(
            branch_stream,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            retry_attempts=0,
            report_batch_item_failures=True,
            **mapping,
        )
    )

topic = sns.Topic(stack, "AlarmTopic")
inbox = sqs.Queue(stack, "AlarmInbox")
topic.add_subscription(subscriptions.SqsSubscription(inbox, raw_message_delivery=True))
depth = cloudwatch.Alarm(
    stack,
    "OnFailureDepth",
    alarm_name="fixture-on-failure-depth",
    metric=on_failure.metric_approximate_number_of_messages_visible(
        period=cdk.Duration.minutes(1), statistic="Maximum"
    ),
    threshold=1,
    evaluation_periods=1,
    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
)
depth.add_alarm_action(actions.SnsAction(topic))
# The stage's metrics name it by Ref, and moto's CloudFormation skips stages.
cloudwatch.Dashboard(
    stack,
    "Dashboard",
    dashboard_name="fixture-dashboard",
    widgets=[[cloudwatch.GraphWidget(left=[api.deployment_stage.metric_count()])]],
)

for name, value in {
    "RestApiId": api.rest_api_id,
    "ApiStageName": api.deployment_stage.stage_name,
    "MainApiKeyId": key.key_id,
    "SlowApiKeyId": slow_key.key_id,
    "IdleApiKeyId": idle_key.key_id,
    "StreamName": stream.stream_name,
    "OnFailureQueueUrl": on_failure.queue_url,
    "AlarmInboxUrl": inbox.queue_url,
    "EchoFunctionName": echo.function_name,
    "SinkFunctionName": sink.function_name,
    "BranchStreamName": branch_stream.stream_name,
    "RecordedQueueUrl": recorded.queue_url,
}.items():
    cdk.CfnOutput(stack, name, value=value)
app.synth()
