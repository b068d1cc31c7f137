"""Stack outputs the emulator, tools and tests rely on; removal policies per environment."""

from __future__ import annotations

import pytest
from streamrec_core import constants as c

from tests.infra.conftest import Synth, ref

OUTPUTS = {
    c.OUTPUT_STREAM_NAME: ("AWS::Kinesis::Stream", ""),
    c.OUTPUT_USERS_TABLE: ("AWS::DynamoDB::Table", "TablesUsers"),
    c.OUTPUT_ITEMS_TABLE: ("AWS::DynamoDB::Table", "TablesItems"),
    c.OUTPUT_DLQ_URL: ("AWS::SQS::Queue", "ProcessingDeadLetterQueue"),
    c.OUTPUT_ON_FAILURE_QUEUE_URL: ("AWS::SQS::Queue", "ProcessingOnFailureQueue"),
    c.OUTPUT_ALARM_TOPIC_ARN: ("AWS::SNS::Topic", ""),
    c.OUTPUT_REST_API_ID: ("AWS::ApiGateway::RestApi", ""),
    c.OUTPUT_PRODUCER_API_KEY_ID: ("AWS::ApiGateway::ApiKey", "ApiRestApiProducerKey"),
    c.OUTPUT_READER_API_KEY_ID: ("AWS::ApiGateway::ApiKey", "ApiRestApiReaderKey"),
    c.OUTPUT_DASHBOARD_NAME: ("AWS::CloudWatch::Dashboard", ""),
}


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_output_refers_to_its_resource(synth: Synth, name: str) -> None:
    cfn_type, prefix = OUTPUTS[name]
    logical_id, _ = synth.one(cfn_type, prefix)
    assert synth.template["Outputs"][name]["Value"] == ref(logical_id)


def test_api_url_and_stage_outputs_name_the_stage_from_settings(synth: Synth) -> None:
    outputs = synth.template["Outputs"]
    stage_id, _ = synth.one("AWS::ApiGateway::Stage")
    assert outputs[c.OUTPUT_API_STAGE]["Value"] == synth.settings.api.stage_name
    assert ref(stage_id) in outputs[c.OUTPUT_API_URL]["Value"]["Fn::Join"][1]


STATEFUL = (
    "AWS::Kinesis::Stream",
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::KMS::Key",
    "AWS::Logs::LogGroup",
)


@pytest.mark.parametrize("cfn_type", STATEFUL)
def test_dev_destroys_its_data_on_delete_and_prod_retains_it(dev: Synth, prod: Synth, cfn_type: str) -> None:
    # Given the same stateful resources in both environments
    for synth, policy in ((dev, "Delete"), (prod, "Retain")):
        resources = synth.of_type(cfn_type)
        assert resources
        # Then dev cleans up after itself while prod keeps features, queued records, keys and logs
        for logical_id, res in resources.items():
            assert res.get("DeletionPolicy") == policy, (synth.profile, logical_id)
            assert res.get("UpdateReplacePolicy") == policy, (synth.profile, logical_id)


def test_stream_mode_and_retention_come_from_settings(dev: Synth, prod: Synth) -> None:
    dev_stream = dev.props("AWS::Kinesis::Stream")
    prod_stream = prod.props("AWS::Kinesis::Stream")
    assert dev_stream["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert dev_stream["ShardCount"] == dev.settings.stream.shard_count
    assert prod_stream["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert "ShardCount" not in prod_stream
    for synth, stream in ((dev, dev_stream), (prod, prod_stream)):
        assert stream["RetentionPeriodHours"] == synth.settings.stream.retention.to_hours()
