"""Local pip bundling: the msgspec layer, and whole assets for targets without layers (no Docker; pip is
stubbed here, the real layer is checked on the synthesized app in test_functions)."""

from __future__ import annotations

import importlib.metadata
import subprocess
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from stacks.constructs import bundling
from stacks.settings import load_profiles_from_cdk_json
from tests.infra.conftest import REPO_ROOT

# What the CDK passes to try_bundle: the asset's Docker bundling options, which local bundling ignores.
ANY_OPTIONS = cdk.BundlingOptions(image=cdk.DockerImage.from_registry("unused"))


@pytest.mark.parametrize("package", ["aws-lambda-powertools", "msgspec"])
def test_the_bundled_packages_are_the_versions_the_tests_run_against(package: str) -> None:
    requirement = bundling.pinned_requirement(package)
    pinned = [line for line in bundling.REQUIREMENTS.read_text().splitlines() if line.startswith(requirement)]
    assert pinned and "==" in requirement
    assert requirement.split("==")[1] == importlib.metadata.version(package)


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


class FakePip:
    """Stands in for pip: `download` drops a wheel into --dest, `install` creates the given names."""

    def __init__(self, installs: tuple[str, ...] = ()) -> None:
        self.installs = installs
        self.commands: list[list[str]] = []

    def __call__(self, command: list[str], check: bool) -> subprocess.CompletedProcess[str]:
        self.commands.append(command)
        if command[3] == "download":
            dest = Path(command[command.index("--dest") + 1])
            (dest / f"{command[-1].replace('==', '-')}-cp312-manylinux2014.whl").write_text("wheel")
        else:
            target = Path(command[command.index("--target") + 1])
            for name in self.installs:
                (target / name).mkdir()
        return subprocess.CompletedProcess(command, 0)

    def verbs(self) -> list[str]:
        return [command[3] for command in self.commands]


def test_bundling_copies_the_function_and_core_then_drops_what_the_runtime_provides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given pip that installs Powertools and, as a dependency, botocore
    pip = FakePip(("aws_lambda_powertools", "botocore", "botocore-1.0.dist-info", "bin"))
    monkeypatch.setattr(bundling.subprocess, "run", pip)
    sources = [REPO_ROOT / "lambdas" / "ingest", REPO_ROOT / "lambdas" / "streamrec_core"]
    out = tmp_path / "asset"
    out.mkdir()
    # When the asset is bundled
    local = bundling.PipLocalBundling(
        sources, ["aws-lambda-powertools==3"], "arm64", wheelhouse=tmp_path / "wheels"
    )
    assert local.try_bundle(str(out), ANY_OPTIONS)
    # Then it holds the function, the core and Powertools, and not the runtime's own boto stack
    assert sorted(p.name for p in out.iterdir()) == ["aws_lambda_powertools", "ingest", "streamrec_core"]
    assert (out / "ingest" / "handler.py").is_file()
    assert not list(out.rglob("__pycache__"))


def test_wheels_are_downloaded_once_and_every_later_bundling_installs_offline_from_the_wheelhouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an empty wheelhouse
    pip = FakePip(("msgspec",))
    monkeypatch.setattr(bundling.subprocess, "run", pip)
    wheelhouse = tmp_path / "wheels"

    def bundle_layer(name: str) -> Path:
        out = tmp_path / name
        out.mkdir()
        local = bundling.PipLocalBundling(
            [], ["msgspec==0.23.0"], "arm64", packages_dir="python", wheelhouse=wheelhouse
        )
        assert local.try_bundle(str(out), ANY_OPTIONS)
        return out

    # When the layer is bundled twice (two synths)
    first = bundle_layer("first")
    second = bundle_layer("second")
    # Then PyPI is asked once; both installs read the wheelhouse alone
    assert pip.verbs() == ["download", "install", "install"]
    platform_dir = wheelhouse / "manylinux2014_aarch64-cp312"
    for command in pip.commands[1:]:
        assert command[command.index("--find-links") + 1] == str(platform_dir)
        assert "--no-index" in command
    assert [p.name for p in platform_dir.glob("*.whl")] == ["msgspec-0.23.0-cp312-manylinux2014.whl"]
    # And the layer's packages are under python/, where the Lambda Python runtime looks
    for out in (first, second):
        assert [p.name for p in out.iterdir()] == ["python"]
        assert (out / "python" / "msgspec").is_dir()


def test_a_new_pin_or_platform_is_downloaded_and_an_interrupted_download_is_not_taken_as_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pip = FakePip()
    wheelhouse = tmp_path / "wheels"

    def failing(command: list[str], check: bool) -> subprocess.CompletedProcess[str]:
        raise subprocess.CalledProcessError(1, command)

    # Given a download that failed half-way
    monkeypatch.setattr(bundling.subprocess, "run", failing)
    with pytest.raises(subprocess.CalledProcessError):
        bundling.ensure_wheels("msgspec==0.23.0", "arm64", wheelhouse)
    # When bundling runs again, and then for a new pin and the other architecture
    monkeypatch.setattr(bundling.subprocess, "run", pip)
    bundling.ensure_wheels("msgspec==0.23.0", "arm64", wheelhouse)
    bundling.ensure_wheels("msgspec==0.23.0", "arm64", wheelhouse)
    bundling.ensure_wheels("msgspec==0.24.0", "arm64", wheelhouse)
    bundling.ensure_wheels("msgspec==0.23.0", "x86_64", wheelhouse)
    # Then each (pin, platform) is downloaded exactly once, the failed one included
    downloads = [(c[-1], c[c.index("--platform") + 1]) for c in pip.commands]
    assert downloads == [
        ("msgspec==0.23.0", "manylinux2014_aarch64"),
        ("msgspec==0.24.0", "manylinux2014_aarch64"),
        ("msgspec==0.23.0", "manylinux2014_x86_64"),
    ]


def test_the_layers_asset_hash_follows_the_pins_and_the_platform_only() -> None:
    base = bundling.layer_asset_hash(["msgspec==0.23.0"], "arm64")
    assert base == bundling.layer_asset_hash(["msgspec==0.23.0"], "arm64")
    assert base != bundling.layer_asset_hash(["msgspec==0.24.0"], "arm64")
    assert base != bundling.layer_asset_hash(["msgspec==0.23.0"], "x86_64")


def test_only_the_localstack_profile_bundles_dependencies_into_each_asset() -> None:
    profiles = load_profiles_from_cdk_json(str(REPO_ROOT / "cdk.json"))
    sources: dict[str, Any] = {name: p.functions.dependencies for name, p in profiles.items()}
    assert sources == {"dev": "layers", "prod": "layers", "localstack": "bundled"}
