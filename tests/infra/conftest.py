"""Synthesize the real app (`python app.py`, as users and the local emulator run it) once per session.

Both profiles are synthesized in parallel subprocesses with the context the CDK CLI would pass
(cdk.json's context plus `env=<profile>` through CDK_CONTEXT_JSON) into a temporary cloud assembly.
cdk-nag runs in the same synth, so its verdict (exit status + validation report) is part of the result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stacks.settings import Settings, load_profiles_from_cdk_json

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "us-east-1"
PROFILES = ("dev", "prod")


@dataclass
class Synth:
    profile: str
    settings: Settings
    outdir: Path
    returncode: int
    output: str
    template: dict[str, Any]
    stack_name: str

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template["Resources"]

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == cfn_type}

    def one(self, cfn_type: str, logical_id_prefix: str = "") -> tuple[str, dict[str, Any]]:
        """The single resource of a type whose logical id starts with the prefix (construct path)."""
        found = [(k, r) for k, r in self.of_type(cfn_type).items() if k.startswith(logical_id_prefix)]
        assert len(found) == 1, (
            f"expected one {cfn_type} {logical_id_prefix!r}, found {[k for k, _ in found]}"
        )
        return found[0]

    def every(self, cfn_type: str, *logical_id_prefixes: str) -> dict[str, dict[str, Any]]:
        """Every resource of a type, which must be exactly one per prefix: a check looping over them
        fails when one is missing or unexpected instead of passing over an empty or partial set."""
        found = dict(self.one(cfn_type, prefix) for prefix in logical_id_prefixes)
        assert set(found) == set(self.of_type(cfn_type)), (
            f"expected {cfn_type} {logical_id_prefixes}, found {sorted(self.of_type(cfn_type))}"
        )
        return found

    def props(self, cfn_type: str, logical_id_prefix: str = "") -> dict[str, Any]:
        return self.one(cfn_type, logical_id_prefix)[1]["Properties"]

    def mapping_of(self, function_prefix: str) -> dict[str, Any]:
        """Properties of the one event source mapping that invokes the function (logical id prefix)."""
        function_id, _ = self.one("AWS::Lambda::Function", function_prefix)
        found = [
            r["Properties"]
            for r in self.of_type("AWS::Lambda::EventSourceMapping").values()
            if r["Properties"]["FunctionName"] == ref(function_id)
        ]
        assert len(found) == 1, f"expected one mapping for {function_prefix}, found {len(found)}"
        return found[0]

    def validation_report(self) -> dict[str, Any]:
        return json.loads((self.outdir / "validation-report.json").read_text())


def _start(profile: str, outdir: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps({"env": profile}),
        "CDK_DEFAULT_ACCOUNT": ACCOUNT,
        "CDK_DEFAULT_REGION": REGION,
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    return subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="session")
def synths(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Synth]]:
    settings = load_profiles_from_cdk_json(str(REPO_ROOT / "cdk.json"))
    outdirs = {p: tmp_path_factory.mktemp(f"cdk-{p}") for p in PROFILES}
    procs = {p: _start(p, outdirs[p]) for p in PROFILES}
    result = {}
    for profile, proc in procs.items():
        output, _ = proc.communicate(timeout=300)
        stack_name = f"Streamrec-{profile}"
        template_path = outdirs[profile] / f"{stack_name}.template.json"
        # The template is written before cdk-nag validates it, so a nag failure still leaves a template
        # for the other tests; test_nag asserts on the verdict.
        assert template_path.exists(), f"synth of {profile} produced no template:\n{output[-4000:]}"
        result[profile] = Synth(
            profile=profile,
            settings=settings[profile],
            outdir=outdirs[profile],
            returncode=proc.returncode,
            output=output,
            template=json.loads(template_path.read_text()),
            stack_name=stack_name,
        )
    yield result


@pytest.fixture(scope="session")
def dev(synths: dict[str, Synth]) -> Synth:
    return synths["dev"]


@pytest.fixture(scope="session")
def prod(synths: dict[str, Synth]) -> Synth:
    return synths["prod"]


@pytest.fixture(scope="session", params=PROFILES)
def synth(request: pytest.FixtureRequest, synths: dict[str, Synth]) -> Synth:
    """Each profile in turn, for properties every environment must have."""
    return synths[request.param]


# Logical id prefixes of the resources a test may loop over (Synth.every checks there are no others).
QUEUES = ("ProcessingDeadLetterQueue", "ProcessingOnFailureQueue")
TABLES = ("TablesUsers", "TablesItems")


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def arn_of(logical_id: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}
