"""localstack/endpoint.py writes the file the e2e suite reads when STREAMREC_TARGET=localstack."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import boto3
from moto import mock_aws
from streamrec_core import constants as c

from tests.infra.conftest import REGION, REPO_ROOT

_spec = importlib.util.spec_from_file_location(
    "localstack_endpoint", REPO_ROOT / "localstack" / "endpoint.py"
)
assert _spec and _spec.loader
endpoint = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(endpoint)


@mock_aws
def test_endpoint_file_names_the_stage_url_and_both_api_key_values(tmp_path: Path) -> None:
    # Given a deployed stack's outputs and its two API keys
    apigw = boto3.client("apigateway", region_name=REGION)
    producer = apigw.create_api_key(name="p", enabled=True, value="producer-secret-value-0001")
    reader = apigw.create_api_key(name="r", enabled=True, value="reader-secret-value-00002")
    outputs = {
        c.OUTPUT_REST_API_ID: "abc123",
        c.OUTPUT_API_STAGE: "local",
        c.OUTPUT_PRODUCER_API_KEY_ID: producer["id"],
        c.OUTPUT_READER_API_KEY_ID: reader["id"],
        c.OUTPUT_STREAM_NAME: "events",
    }
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps({"Streamrec-localstack": outputs}))
    out = tmp_path / "endpoint.json"
    # When the script runs
    endpoint.main(
        [
            "--stack=Streamrec-localstack",
            f"--outputs-file={outputs_file}",
            "--aws-endpoint=http://localhost:4566",
            f"--region={REGION}",
            f"--out={out}",
        ],
        apigateway=apigw,  # moto's, standing in for LocalStack's
    )
    # Then the e2e suite finds the stage URL, the key values and the outputs
    document = json.loads(out.read_text())
    assert document["base_url"] == "http://localhost:4566/_aws/execute-api/abc123/local"
    assert document["api_keys"] == {
        "producer": "producer-secret-value-0001",
        "reader": "reader-secret-value-00002",
    }
    assert document["aws_endpoint"] == "http://localhost:4566"
    assert document["outputs"][c.OUTPUT_STREAM_NAME] == "events"
