"""Local pip bundling for targets without the Powertools layer (no Docker; pip is stubbed here)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from stacks.constructs import bundling
from stacks.settings import load_profiles_from_cdk_json
from tests.infra.conftest import REPO_ROOT


def test_the_bundled_powertools_is_the_version_the_tests_run_against() -> None:
    requirement = bundling.pinned_requirement("aws-lambda-powertools")
    pinned = [
        line
        for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
        if line.startswith(requirement)
    ]
    assert pinned and "==" in requirement


def test_an_unpinned_package_is_refused(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("aws-lambda-powertools>=3\n")
    with pytest.raises(ValueError, match="not pinned"):
        bundling.pinned_requirement("aws-lambda-powertools", requirements)


@pytest.mark.parametrize(
    ("architecture", "platform"), [("arm64", "manylinux2014_aarch64"), ("x86_64", "manylinux2014_x86_64")]
)
def test_pip_installs_only_wheels_for_the_lambda_platform_and_python(
    architecture: str, platform: str
) -> None:
    command = bundling.pip_command("/out", "pkg==1.0", architecture)
    assert command[command.index("--platform") + 1] == platform
    assert command[command.index("--python-version") + 1] == "3.12"
    assert command[command.index("--target") + 1] == "/out"
    assert "--only-binary=:all:" in command and command[-1] == "pkg==1.0"


def test_bundling_copies_the_function_and_core_then_drops_what_the_runtime_provides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given pip that installs Powertools and, as a dependency, botocore
    def fake_pip(command: list[str], check: bool) -> subprocess.CompletedProcess[str]:
        target = Path(command[command.index("--target") + 1])
        for name in ("aws_lambda_powertools", "botocore", "botocore-1.0.dist-info", "bin"):
            (target / name).mkdir()
        (target / "six.py").write_text("")
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(bundling.subprocess, "run", fake_pip)
    sources = [REPO_ROOT / "lambdas" / "ingest", REPO_ROOT / "lambdas" / "streamrec_core"]
    out = tmp_path / "asset"
    out.mkdir()
    # When the asset is bundled
    assert bundling.PipLocalBundling(sources, ["aws-lambda-powertools==3"], "arm64").try_bundle(
        str(out), None
    )
    # Then it holds the function, the core and Powertools, and not the runtime's own boto stack
    assert sorted(p.name for p in out.iterdir()) == ["aws_lambda_powertools", "ingest", "streamrec_core"]
    assert (out / "ingest" / "handler.py").is_file()
    assert not list(out.rglob("__pycache__"))


def test_only_the_localstack_profile_bundles_so_default_synths_stay_offline() -> None:
    profiles = load_profiles_from_cdk_json(str(REPO_ROOT / "cdk.json"))
    sources: dict[str, Any] = {name: p.functions.powertools_source for name, p in profiles.items()}
    assert sources == {"dev": "layer", "prod": "layer", "localstack": "bundled"}
