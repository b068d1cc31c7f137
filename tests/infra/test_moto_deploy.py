"""The synthesized template deploys into moto's CloudFormation, as the local emulator does.

Same steps as a real `cdk deploy` after bootstrap: the bootstrap version parameter, the assets bucket with
every file asset (directories zipped), then CreateStack with the template as synthesized. What moto
accepts and drops is written down in docs/runbook.md ("Local emulator and moto").
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from streamrec_core import constants as c
from streamrec_core import routes

from tests.infra.conftest import ACCOUNT, REGION, Synth

BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"


def _zip_dir(path: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(path.rglob("*")):
            if file.is_file():
                zf.write(file, file.relative_to(path).as_posix())
    return buf.getvalue()


def _publish_assets(synth: Synth, s3: Any) -> None:
    manifest = json.loads((synth.outdir / f"{synth.stack_name}.assets.json").read_text())
    for asset in manifest["files"].values():
        source = synth.outdir / asset["source"]["path"]
        body = _zip_dir(source) if source.is_dir() else source.read_bytes()
        for dest in asset["destinations"].values():
            bucket = (
                dest["bucketName"].replace("${AWS::AccountId}", ACCOUNT).replace("${AWS::Region}", REGION)
            )
            s3.put_object(Bucket=bucket, Key=dest["objectKey"], Body=body)


@pytest.fixture(scope="module", params=["dev", "prod"])
def deployed(
    request: pytest.FixtureRequest, synths: dict[str, Synth]
) -> Iterator[tuple[Synth, dict[str, str]]]:
    synth = synths[request.param]
    with mock_aws():
        boto3.client("ssm", region_name=REGION).put_parameter(
            Name=BOOTSTRAP_VERSION_PARAMETER, Value="30", Type="String"
        )
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}")
        _publish_assets(synth, s3)
        cfn = boto3.client("cloudformation", region_name=REGION)
        cfn.create_stack(
            StackName=synth.stack_name,
            TemplateBody=json.dumps(synth.template),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        )
        stack = cfn.describe_stacks(StackName=synth.stack_name)["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
        yield synth, {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def test_stack_reaches_create_complete_with_the_data_plane_outputs(
    deployed: tuple[Synth, dict[str, str]],
) -> None:
    _, outputs = deployed
    for name in (
        c.OUTPUT_STREAM_NAME,
        c.OUTPUT_USERS_TABLE,
        c.OUTPUT_ITEMS_TABLE,
        c.OUTPUT_DLQ_URL,
        c.OUTPUT_ON_FAILURE_QUEUE_URL,
        c.OUTPUT_ALARM_TOPIC_ARN,
        c.OUTPUT_REST_API_ID,
        c.OUTPUT_API_STAGE,
    ):
        assert outputs.get(name), name
    kinesis = boto3.client("kinesis", region_name=REGION)
    assert (
        kinesis.describe_stream_summary(StreamName=outputs[c.OUTPUT_STREAM_NAME])["StreamDescriptionSummary"][
            "StreamStatus"
        ]
        == "ACTIVE"
    )
    ddb = boto3.client("dynamodb", region_name=REGION)
    users = ddb.describe_table(TableName=outputs[c.OUTPUT_USERS_TABLE])["Table"]
    assert users["KeySchema"] == [{"AttributeName": c.USERS_PK, "KeyType": "HASH"}]


def test_functions_deploy_with_their_handlers_and_environment(deployed: tuple[Synth, dict[str, str]]) -> None:
    synth, outputs = deployed
    functions = boto3.client("lambda", region_name=REGION).list_functions()["Functions"]
    by_handler = {f["Handler"]: f for f in functions}
    assert set(by_handler) == {
        "ingest.handler.handler",
        "process.handler.handler",
        "aggregate.handler.items",
        "aggregate.handler.experiments",
        "serve.handler.handler",
    }
    ingest_env = by_handler["ingest.handler.handler"]["Environment"]["Variables"]
    assert ingest_env[c.ENV_STREAM_NAME] == outputs[c.OUTPUT_STREAM_NAME]
    process_env = by_handler["process.handler.handler"]["Environment"]["Variables"]
    assert process_env[c.ENV_DLQ_URL] == outputs[c.OUTPUT_DLQ_URL]
    assert process_env[c.ENV_USERS_TABLE] == outputs[c.OUTPUT_USERS_TABLE]
    for handler in ("aggregate.handler.items", "aggregate.handler.experiments"):
        env = by_handler[handler]["Environment"]["Variables"]
        assert env[c.ENV_USERS_TABLE] == outputs[c.OUTPUT_USERS_TABLE]
        assert env[c.ENV_ITEMS_TABLE] == outputs[c.OUTPUT_ITEMS_TABLE]


def test_every_event_source_mapping_keeps_every_setting_in_moto(
    deployed: tuple[Synth, dict[str, str]],
) -> None:
    synth, outputs = deployed
    lambda_client = boto3.client("lambda", region_name=REGION)
    handlers = {f["FunctionArn"]: f["Handler"] for f in lambda_client.list_functions()["Functions"]}
    mappings = lambda_client.list_event_source_mappings()["EventSourceMappings"]
    by_handler = {handlers[m["FunctionArn"]]: m for m in mappings}
    s = synth.settings
    expected = {
        "process.handler.handler": (s.event_source, s.event_source.parallelization_factor),
        "aggregate.handler.items": (s.aggregate_source, 1),
        "aggregate.handler.experiments": (s.experiments_source, 1),
    }
    assert len(mappings) == len(expected) and set(by_handler) == set(expected)
    for handler, (source, factor) in expected.items():
        esm = by_handler[handler]
        assert esm["EventSourceArn"].endswith(f":stream/{outputs[c.OUTPUT_STREAM_NAME]}")
        assert esm["BatchSize"] == source.batch_size
        assert esm["MaximumBatchingWindowInSeconds"] == source.max_batching_window.to_seconds()
        assert esm["ParallelizationFactor"] == factor
        assert esm["BisectBatchOnFunctionError"] is True
        assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        if handler != "process.handler.handler":  # the branches never give a batch up
            assert (
                esm.get("MaximumRetryAttempts", -1) == -1 and esm.get("MaximumRecordAgeInSeconds", -1) == -1
            )
            continue
        # the hot path's mapping gives a batch up after its retries and record age
        assert esm["MaximumRetryAttempts"] == s.event_source.retry_attempts
        assert esm["MaximumRecordAgeInSeconds"] == s.event_source.max_record_age.to_seconds()
        assert esm["DestinationConfig"]["OnFailure"]["Destination"].endswith(
            outputs[c.OUTPUT_ON_FAILURE_QUEUE_URL].rsplit("/", 1)[1]
        )
    # The experiments filter survives the deploy (the local poller reads it back from here).
    [pattern] = by_handler["aggregate.handler.experiments"]["FilterCriteria"]["Filters"]
    assert json.loads(pattern["Pattern"]) == c.ATTRIBUTED_RECORDS_PATTERN
    assert "FilterCriteria" not in by_handler["process.handler.handler"]


def test_the_msgspec_layer_deploys_from_its_asset(deployed: tuple[Synth, dict[str, str]]) -> None:
    [layer] = boto3.client("lambda", region_name=REGION).list_layers()["Layers"]
    assert layer["LatestMatchingVersion"]["CompatibleRuntimes"] == ["python3.12"]


def test_rest_api_routes_and_key_requirements_deploy(deployed: tuple[Synth, dict[str, str]]) -> None:
    _, outputs = deployed
    apigw = boto3.client("apigateway", region_name=REGION)
    resources = apigw.get_resources(restApiId=outputs[c.OUTPUT_REST_API_ID])["items"]
    keyed = {
        (verb, r["path"]): m.get("apiKeyRequired")
        for r in resources
        for verb, m in r.get("resourceMethods", {}).items()
        if verb != "OPTIONS"
    }
    # Exactly the route table's routes, each keyed as its role says (health takes no key).
    assert keyed == {(route.method, route.path): route.key_role is not None for route in routes.ROUTES}
