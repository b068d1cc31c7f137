"""localstack/deploy.sh and what runs it (npm script, make target, compose file), run here without Docker.

The script runs for real in a copy of its folder, with stand-ins for what it calls: `curl` (LocalStack's
health endpoint), `npm`, `node_modules/.bin/cdklocal` and the virtualenv's python, each recording its
arguments and environment. The cdklocal stand-in refuses what cdklocal 3.x refuses (aws-cdk-local
src/index.js, configureEnvironment: AWS_ENDPOINT_URL without AWS_ENDPOINT_URL_S3) and keeps only the
AWS_* variables cdklocal keeps, so what it records is what the CDK CLI would see.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.conftest import REPO_ROOT

DEPLOY = "localstack/deploy.sh"
COMPOSE = REPO_ROOT / "localstack" / "docker-compose.yml"
# Not a real key, but shaped like one: it must not reach LocalStack.
REAL_LOOKING_KEY = "AKIAIOSFODNN7EXAMPLE"

RECORDER = """#!{python}
import json, os, sys
with open({log!r}, "a") as log:
    log.write(json.dumps({{"argv": [{name!r}, *sys.argv[1:]], "env": dict(os.environ)}}) + "\\n")
"""
# cdklocal 3.x's configureEnvironment, reduced to what decides whether and where it deploys.
CDKLOCAL_CHECK = """
env = dict(os.environ)
if "AWS_ENDPOINT_URL" in env and "AWS_ENDPOINT_URL_S3" not in env:
    sys.exit("If specifying 'AWS_ENDPOINT_URL' then 'AWS_ENDPOINT_URL_S3' must be specified")
allowed = [name.strip() for name in env.get("AWS_ENVAR_ALLOWLIST", "").split(",")]
seen = {{k: v for k, v in env.items()
        if not k.startswith("AWS_") or k.startswith("AWS_ENDPOINT_URL") or k in allowed}}
seen.setdefault("AWS_ACCESS_KEY_ID", "test")
seen.setdefault("AWS_SECRET_ACCESS_KEY", "test")
seen.setdefault("AWS_REGION", "us-east-1")
with open({log!r}, "a") as log:
    log.write(json.dumps({{"argv": ["cdk", *sys.argv[1:]], "env": seen}}) + "\\n")
"""


class Checkout:
    """A copy of the repo's localstack/ folder with stand-ins for the commands deploy.sh runs."""

    def __init__(self, root: Path) -> None:
        self.root = root / "repo"
        self.bin = root / "bin"
        self.log = root / "calls.jsonl"
        (self.root / "localstack").mkdir(parents=True)
        shutil.copy2(REPO_ROOT / DEPLOY, self.root / DEPLOY)
        self.bin.mkdir()
        for name in ("curl", "npm"):
            self._recorder(self.bin / name, name)
        self._recorder(self.root / ".venv" / "bin" / "python", "python")
        cdklocal = self._recorder(self.root / "node_modules" / ".bin" / "cdklocal", "cdklocal")
        cdklocal.write_text(cdklocal.read_text() + CDKLOCAL_CHECK.format(log=str(self.log)))
        # package-lock.json installed as it is (npm writes node_modules/.package-lock.json)
        (self.root / "package-lock.json").write_text("{}")
        (self.root / "node_modules" / ".package-lock.json").write_text("{}")
        os.utime(self.root / "package-lock.json", (1_000_000, 1_000_000))

    def _recorder(self, path: Path, name: str) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(RECORDER.format(python=sys.executable, log=str(self.log), name=name))
        path.chmod(0o755)
        return path

    def localstack_down(self) -> None:
        """curl cannot connect (exit 7), as when nothing listens on 4566."""
        (self.bin / "curl").write_text("#!/bin/sh\necho 'curl: (7) Failed to connect' >&2\nexit 7\n")

    def run(self, command: list[str], **env: str) -> subprocess.CompletedProcess[str]:
        base = {"PATH": f"{self.bin}:/usr/bin:/bin", "HOME": str(self.root)}
        return subprocess.run(
            command, cwd=self.root, env={**base, **env}, capture_output=True, text=True, timeout=60
        )

    def calls(self, name: str) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        calls = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [call for call in calls if call["argv"][0] == name]


@pytest.fixture
def checkout(tmp_path: Path) -> Checkout:
    return Checkout(tmp_path)


def _value(argv: list[str], option: str) -> str:
    return argv[argv.index(option) + 1]


def test_deploy_reaches_the_cdk_cli_with_both_endpoints_and_the_localstack_profile(
    checkout: Checkout,
) -> None:
    # Given LocalStack up on its default port
    result = checkout.run(["bash", DEPLOY])
    # Then cdklocal accepts the environment and the CDK CLI bootstraps and deploys the localstack
    # profile's stack into LocalStack, S3 included
    assert result.returncode == 0, result.stderr
    assert [call["argv"][1:] for call in checkout.calls("cdk")] == [
        ["bootstrap", "-c", "env=localstack"],
        [
            "deploy",
            "Streamrec-localstack",
            "-c",
            "env=localstack",
            "--require-approval",
            "never",
            "--outputs-file",
            ".local/localstack-outputs.json",
        ],
    ]
    for call in checkout.calls("cdk"):
        env = call["env"]
        assert env["AWS_ENDPOINT_URL"] == env["AWS_ENDPOINT_URL_S3"] == "http://localhost:4566"
        assert env["CDK_S3_FORCE_PATH_STYLE"] == "1"
        assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
        assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == ("test", "test")
    # And the endpoint file is written from that stack's outputs, for the same endpoint and region
    (python,) = checkout.calls("python")
    argv = python["argv"]
    assert argv[1] == "localstack/endpoint.py"
    assert _value(argv, "--stack") == "Streamrec-localstack"
    assert _value(argv, "--outputs-file") == ".local/localstack-outputs.json"
    assert _value(argv, "--aws-endpoint") == "http://localhost:4566"
    assert _value(argv, "--region") == "us-east-1"
    assert _value(argv, "--out") == "localstack/endpoint.json"
    # And the pinned CLI was not reinstalled (the lock file did not change)
    assert checkout.calls("npm") == []


def test_a_region_set_in_the_shell_is_the_one_deployed_to_and_written(checkout: Checkout) -> None:
    # Given a shell that works in eu-west-1 (cdklocal drops AWS_* variables it is not told to keep)
    result = checkout.run(["bash", DEPLOY], AWS_DEFAULT_REGION="eu-west-1")
    assert result.returncode == 0, result.stderr
    # Then the CDK CLI deploys there and the endpoint file names it
    assert {call["env"]["AWS_REGION"] for call in checkout.calls("cdk")} == {"eu-west-1"}
    assert {call["env"]["AWS_DEFAULT_REGION"] for call in checkout.calls("cdk")} == {"eu-west-1"}
    (python,) = checkout.calls("python")
    assert _value(python["argv"], "--region") == "eu-west-1"


def test_credentials_from_the_shell_never_reach_localstack(checkout: Checkout) -> None:
    # Given a shell holding what looks like a real AWS key, a session and a profile
    result = checkout.run(
        ["bash", DEPLOY],
        AWS_ACCESS_KEY_ID=REAL_LOOKING_KEY,
        AWS_SECRET_ACCESS_KEY="secret",
        AWS_SESSION_TOKEN="session",
        AWS_PROFILE="prod",
    )
    assert result.returncode == 0, result.stderr
    # Then neither cdklocal nor the endpoint writer (boto3, which reads the same variables) is given them
    for call in checkout.calls("cdklocal") + checkout.calls("python"):
        env = call["env"]
        assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == ("test", "test")
        assert "AWS_SESSION_TOKEN" not in env and "AWS_PROFILE" not in env
        assert REAL_LOOKING_KEY not in json.dumps(env)


def test_a_changed_lock_file_installs_the_pinned_cli_before_deploying(checkout: Checkout) -> None:
    # Given package-lock.json newer than what node_modules holds
    os.utime(checkout.root / "node_modules" / ".package-lock.json", (1, 1))
    result = checkout.run(["bash", DEPLOY])
    # Then npm ci runs, before cdklocal
    assert result.returncode == 0, result.stderr
    calls = [json.loads(line)["argv"][0] for line in checkout.log.read_text().splitlines()]
    assert calls[:3] == ["curl", "npm", "cdklocal"]
    assert checkout.calls("npm")[0]["argv"][1] == "ci"


def test_without_localstack_the_script_says_how_to_start_it_and_deploys_nothing(checkout: Checkout) -> None:
    # Given nothing listening on LocalStack's port
    checkout.localstack_down()
    result = checkout.run(["bash", DEPLOY])
    # Then it stops with the command that starts LocalStack and the note on the auth token
    assert result.returncode == 1
    assert "LocalStack is not reachable at http://localhost:4566" in result.stderr
    assert "docker compose -f localstack/docker-compose.yml up -d --wait" in result.stderr
    assert "LOCALSTACK_AUTH_TOKEN" in result.stderr
    assert checkout.calls("cdklocal") == [] and checkout.calls("python") == []


def test_the_npm_script_and_the_make_target_run_the_same_deploy_script() -> None:
    # npm run localstack:deploy
    scripts = json.loads((REPO_ROOT / "package.json").read_text())["scripts"]
    assert scripts["localstack:deploy"] == f"bash {DEPLOY}"
    # make e2e-localstack: the same script, then the e2e suite against LocalStack's endpoint file
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "e2e-localstack"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    recipe = dry_run.stdout.splitlines()
    deploy_at = recipe.index(f"bash {DEPLOY}")
    (suite,) = [line for line in recipe[deploy_at + 1 :] if "pytest" in line]
    assert "STREAMREC_TARGET=localstack" in suite and "STREAMREC_PROFILE=localstack" in suite
    assert suite.endswith("-m pytest -m e2e")


def test_compose_pins_a_localstack_image_that_starts_without_an_account() -> None:
    service = yaml.safe_load(COMPOSE.read_text())["services"]["localstack"]
    # The image may be overridden (newer images need LOCALSTACK_AUTH_TOKEN), but defaults to a pin
    match = re.fullmatch(
        r"\$\{LOCALSTACK_IMAGE:-localstack/localstack:(\d+)\.(\d+)\.(\d+)\}", service["image"]
    )
    assert match, service["image"]
    # Community releases up to 4.14 start without a token; 2026.03 (calendar versions) and latest need one
    assert (int(match[1]), int(match[2])) <= (4, 14)
    assert "LOCALSTACK_AUTH_TOKEN=${LOCALSTACK_AUTH_TOKEN:-}" in service["environment"]


def test_functions_run_on_the_architecture_their_bundled_wheels_were_built_for() -> None:
    # The localstack profile pip-installs compiled wheels (msgspec) for one architecture into each asset
    functions = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]["profiles"]["localstack"][
        "functions"
    ]
    assert functions["dependencies"] == "bundled" and functions["architecture"] == "x86_64"
    # so LocalStack must not run them natively on another CPU (LAMBDA_IGNORE_ARCHITECTURE=1 would, on arm64)
    environment = yaml.safe_load(COMPOSE.read_text())["services"]["localstack"]["environment"]
    assert not [entry for entry in environment if entry.startswith("LAMBDA_IGNORE_ARCHITECTURE=")]


@pytest.mark.parametrize(
    "path",
    [
        "localstack/endpoint.json",  # API key values
        "localstack/.volume/state.json",  # LocalStack's state (compose volume)
        "localstack/.env",  # LOCALSTACK_AUTH_TOKEN, read by docker compose
        ".local/localstack-outputs.json",  # cdklocal deploy --outputs-file
    ],
)
def test_what_the_localstack_folder_writes_is_ignored_by_git(path: str) -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "--quiet", "--no-index", path], cwd=REPO_ROOT, timeout=30
    )
    assert ignored.returncode == 0, f"{path} is not git-ignored"
