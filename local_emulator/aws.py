"""Where the local AWS lives and how to talk to it: region, account, dummy credentials, clients."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
# moto accepts any credentials; these are obviously fake so that nothing can reach a real account.
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"
SESSION_TOKEN = "testing"
BOOTSTRAP_QUALIFIER = "hnb659fds"
BOOTSTRAP_VERSION_PARAMETER = f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version"
BOOTSTRAP_VERSION = "21"
ASSETS_BUCKET = f"cdk-{BOOTSTRAP_QUALIFIER}-assets-{ACCOUNT_ID}-{REGION}"

_CONFIG = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=60)


def credentials_env(endpoint: str, region: str = REGION) -> dict[str, str]:
    """Environment variables that point any AWS SDK at the local endpoint with dummy credentials."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }


def client(service: str, endpoint: str, region: str = REGION) -> Any:
    """A boto3 client for `service` against the local endpoint (moto's server)."""
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        aws_session_token=SESSION_TOKEN,
        config=_CONFIG,
    )
