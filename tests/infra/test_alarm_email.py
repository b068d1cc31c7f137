"""The optional alarm email: subscribed only when settings name one.

Built in-process on imported resources (no assets, no nag), so it costs a fraction of a full synth.
"""

from __future__ import annotations

from typing import Any, cast

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from stacks.constructs.monitoring import Monitored, Monitoring
from stacks.settings import Settings, load_profiles_from_cdk_json
from tests.infra.conftest import ACCOUNT, REGION, REPO_ROOT


def _monitoring_template(settings: Any) -> Template:
    app = cdk.App()
    stack = cdk.Stack(app, "Probe", env=cdk.Environment(account=ACCOUNT, region=REGION))
    arn = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:{{}}"
    fn = lambda_.Function.from_function_arn(stack, "Fn", arn.format("lambda", "function:f"))
    watched = Monitored(
        stream=kinesis.Stream.from_stream_arn(stack, "S", arn.format("kinesis", "stream/s")),
        process=fn,
        aggregate=fn,
        experiments=fn,
        ingest=fn,
        serve=fn,
        dead_letter_queue=sqs.Queue.from_queue_arn(stack, "D", arn.format("sqs", "d")),
        on_failure_queue=sqs.Queue.from_queue_arn(stack, "O", arn.format("sqs", "o")),
        users=dynamodb.Table.from_table_name(stack, "U", "users"),
        items=dynamodb.Table.from_table_name(stack, "I", "items"),
        # an imported stage is a StageBase at run time (its metric helpers); jsii types it IStage
        api_stage=cast(
            apigw.StageBase,
            apigw.Stage.from_stage_attributes(
                stack,
                "Stage",
                stage_name="dev",
                rest_api=apigw.RestApi.from_rest_api_attributes(
                    stack, "Api", rest_api_id="api", root_resource_id="root"
                ),
            ),
        ),
    )
    Monitoring(stack, "Monitoring", settings=settings, watched=watched)
    return Template.from_stack(stack)


def _dev() -> Settings:
    return load_profiles_from_cdk_json(str(REPO_ROOT / "cdk.json"))["dev"]


def test_an_alarm_email_in_settings_subscribes_it_to_the_alarm_topic() -> None:
    # Given the dev settings with an on-call address
    dev = _dev()
    settings = dev.model_copy(
        update={"alarms": dev.alarms.model_copy(update={"email": "oncall@example.com"})}
    )
    # When the monitoring construct is built
    subscriptions = _monitoring_template(settings).find_resources("AWS::SNS::Subscription")
    # Then exactly that address is subscribed by email
    [subscription] = subscriptions.values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "oncall@example.com"


def test_without_an_alarm_email_nothing_is_subscribed() -> None:
    dev = _dev()
    assert dev.alarms.email is None
    assert _monitoring_template(dev).find_resources("AWS::SNS::Subscription") == {}
