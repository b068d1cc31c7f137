"""Write the endpoint file the e2e suite reads for a pipeline deployed into LocalStack (or any AWS API).

Same shape as the embedded emulator's `.local/endpoint.json`: base URL of the REST API stage, the API key
values of the two usage plans, the AWS endpoint and the stack outputs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import boto3

# Run as a script from the repo: the shared constants live in lambdas/streamrec_core.
from streamrec_core import constants as c

# Keys of `api_keys` and the outputs that name their API key ids.
API_KEY_OUTPUTS = {"producer": c.OUTPUT_PRODUCER_API_KEY_ID, "reader": c.OUTPUT_READER_API_KEY_ID}


def base_url(aws_endpoint: str, rest_api_id: str, stage: str) -> str:
    """LocalStack's path-style URL of a REST API stage (no wildcard DNS needed)."""
    return f"{aws_endpoint.rstrip('/')}/_aws/execute-api/{rest_api_id}/{stage}"


def endpoint_document(
    stack_name: str, outputs: dict[str, str], apigateway: Any, aws_endpoint: str, region: str
) -> dict[str, Any]:
    """The endpoint file's content; API key values are read with GetApiKey(includeValue)."""
    keys = {
        role: apigateway.get_api_key(apiKey=outputs[output], includeValue=True)["value"]
        for role, output in API_KEY_OUTPUTS.items()
    }
    return {
        "target": "localstack",
        "base_url": base_url(aws_endpoint, outputs[c.OUTPUT_REST_API_ID], outputs[c.OUTPUT_API_STAGE]),
        "api_keys": keys,
        "aws_endpoint": aws_endpoint,
        "region": region,
        "stack_name": stack_name,
        "outputs": outputs,
    }


def main(argv: list[str] | None = None, apigateway: Any = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--outputs-file", required=True, type=Path, help="cdk deploy --outputs-file output")
    parser.add_argument("--aws-endpoint", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    outputs = json.loads(args.outputs_file.read_text())[args.stack]
    apigateway = apigateway or boto3.client(
        "apigateway", endpoint_url=args.aws_endpoint, region_name=args.region
    )
    document = endpoint_document(args.stack, outputs, apigateway, args.aws_endpoint, args.region)
    args.out.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
