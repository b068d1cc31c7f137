"""Suite-wide test configuration.

Unit and integration tests must never reach the network: AWS credentials are dummies and every boto3
call goes to moto (in-process `mock_aws` or the emulator's moto server on 127.0.0.1).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Dummy credentials: a test that forgot its moto fixture fails instead of touching a real account.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SECURITY_TOKEN", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# Powertools emits EMF to stdout; tests need no namespace validation noise.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Streamrec")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/e2e is marked `e2e` (so `-m e2e` / `-m "not e2e"` select them).

    They share one local pipeline per pytest process (moto server + deployed stack + runtime). The
    xdist_group mark asks `--dist loadgroup` to keep them on one worker; with pytest 9.2 + xdist 3.8 the
    grouping is not honoured, so the e2e fixture starts one pipeline per worker with its own workdir.
    """
    e2e_dir = REPO_ROOT / "tests" / "e2e"
    for item in items:
        if e2e_dir in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.xdist_group("e2e"))


# Everywhere boto3 looks for credentials: variables, the shared files, a container or instance role.
_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A developer machine with no AWS setup: no credentials anywhere boto3 looks."""
    for name in _CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
