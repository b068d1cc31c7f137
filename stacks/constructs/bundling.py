"""Local bundling with pip for the Lambda platform: no Docker, manylinux wheels for the function's CPU.

Used when a profile sets `functions.powertools_source: bundled` (targets that cannot apply the public
Powertools layer, e.g. LocalStack's community image): each asset then holds its function folder, the
shared core and Powertools installed from PyPI as Lambda-platform wheels. With the default `layer`
source nothing here runs and synthesis stays offline.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling

REPO_ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO_ROOT / "requirements.txt"
POWERTOOLS_PACKAGE = "aws-lambda-powertools"
LAMBDA_PYTHON_VERSION = "3.12"
# Lambda runs Amazon Linux 2023 (glibc 2.34); manylinux2014 wheels run there.
PIP_PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
# The Lambda Python runtime ships boto3 and its dependencies; copies in the asset would shadow them (a
# botocore that does not match the runtime's boto3) and add ~90 MB, so they are removed after pip.
RUNTIME_PROVIDED = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "dateutil",
    "python_dateutil",
    "six",
    "urllib3",
)


def pinned_requirement(package: str, requirements: Path = REQUIREMENTS) -> str:
    """The exact pin of `package` (with extras) from requirements.txt, so Lambda runs what tests ran."""
    pattern = re.compile(rf"^{re.escape(package)}(\[[^\]]*\])?==\S+", re.IGNORECASE)
    for line in requirements.read_text().splitlines():
        match = pattern.match(line.strip())
        if match:
            return match.group(0)
    raise ValueError(f"{package} is not pinned with == in {requirements}")


def pip_command(target: str, requirement: str, architecture: str) -> list[str]:
    """pip install of wheels only, for the Lambda platform and Python version, into `target`."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        target,
        "--platform",
        PIP_PLATFORMS[architecture],
        "--implementation",
        "cp",
        "--python-version",
        LAMBDA_PYTHON_VERSION,
        "--only-binary=:all:",
        requirement,
    ]


def remove_runtime_provided(target: Path) -> list[str]:
    """Delete packages the Lambda runtime provides (and pip's console scripts); returns what went."""
    removed = []
    for entry in sorted(target.iterdir()):
        name = entry.name.split("-")[0].removesuffix(".py").lower()
        if name in RUNTIME_PROVIDED or entry.name == "bin":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            removed.append(entry.name)
    return removed


@jsii.implements(ILocalBundling)
class PipLocalBundling:
    """Copies the source folders into the asset and pip-installs the requirements beside them."""

    def __init__(self, sources: list[Path], requirements: list[str], architecture: str) -> None:
        self.sources = sources
        self.requirements = requirements
        self.architecture = architecture

    @jsii.member(jsii_name="tryBundle")
    def try_bundle(self, output_dir: str, _options: Any) -> bool:
        for source in self.sources:
            shutil.copytree(
                source,
                Path(output_dir) / source.name,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                dirs_exist_ok=True,
            )
        for requirement in self.requirements:
            subprocess.run(pip_command(output_dir, requirement, self.architecture), check=True)
        remove_runtime_provided(Path(output_dir))
        return True


def pip_bundling(sources: list[Path], requirements: list[str], architecture: str) -> BundlingOptions:
    return BundlingOptions(
        # Required by the API but never pulled: local bundling returns True, so Docker is not used.
        image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.12"),
        local=PipLocalBundling(sources, requirements, architecture),
    )
