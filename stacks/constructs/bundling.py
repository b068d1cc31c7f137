"""Local bundling with pip for the Lambda platform: no Docker, manylinux wheels for the function's CPU.

- `functions.dependencies: layers` (dev, prod): the stack's own layer holds msgspec (compiled) under
  `python/`; Powertools comes from its public layer by ARN.
- `functions.dependencies: bundled` (targets that cannot apply layers, e.g. LocalStack's community
  image): each asset holds its function folder, the shared core, Powertools and msgspec.

Wheels are downloaded once per requirement and platform into a wheelhouse (`.local/wheels/`) and every
bundling installs from there with `--no-index`: only the first synth after a new pin needs PyPI.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling

REPO_ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO_ROOT / "lambdas" / "requirements.txt"  # the functions' run-time pins
WHEELHOUSE = REPO_ROOT / ".local" / "wheels"
POWERTOOLS_PACKAGE = "aws-lambda-powertools"
MSGSPEC_PACKAGE = "msgspec"
# A Python layer's packages live under python/ (on sys.path in the Lambda Python runtimes).
LAYER_PACKAGES_DIR = "python"
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
    """The exact pin of `package` (with extras) in lambdas/requirements.txt: Lambda runs what tests ran."""
    pattern = re.compile(rf"^{re.escape(package)}(\[[^\]]*\])?==\S+", re.IGNORECASE)
    for line in requirements.read_text().splitlines():
        match = pattern.match(line.strip())
        if match:
            return match.group(0)
    raise ValueError(f"{package} is not pinned with == in {requirements}")


def _platform_options(architecture: str) -> list[str]:
    return [
        "--platform",
        PIP_PLATFORMS[architecture],
        "--implementation",
        "cp",
        "--python-version",
        LAMBDA_PYTHON_VERSION,
        "--only-binary=:all:",
    ]


def pip_command(target: str, requirement: str, architecture: str, wheels: Path | None = None) -> list[str]:
    """pip install of wheels only, for the Lambda platform and Python version, into `target`; from the
    directory `wheels` alone (no index) when given."""
    offline = ["--no-index", "--find-links", str(wheels)] if wheels is not None else []
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        *offline,
        "--target",
        target,
        *_platform_options(architecture),
        requirement,
    ]


def pip_download_command(dest: str, requirement: str, architecture: str) -> list[str]:
    """pip download of the requirement's wheels and its dependencies' for the Lambda platform."""
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--dest",
        dest,
        *_platform_options(architecture),
        requirement,
    ]


def wheelhouse_for(architecture: str, wheelhouse: Path = WHEELHOUSE) -> Path:
    return wheelhouse / f"{PIP_PLATFORMS[architecture]}-cp{LAMBDA_PYTHON_VERSION.replace('.', '')}"


def ensure_wheels(requirement: str, architecture: str, wheelhouse: Path = WHEELHOUSE) -> Path:
    """The wheelhouse directory holding `requirement` (and its dependencies) for the platform; downloads
    them the first time only. Safe for concurrent synths: each downloads into its own scratch directory
    and moves finished wheels in; a marker file records the requirement as complete."""
    target = wheelhouse_for(architecture, wheelhouse)
    marker = target / f".{hashlib.sha256(requirement.encode()).hexdigest()[:16]}.done"
    if marker.exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target, prefix=".download-") as scratch:
        subprocess.run(pip_download_command(scratch, requirement, architecture), check=True)
        for wheel in Path(scratch).glob("*.whl"):
            os.replace(wheel, target / wheel.name)
        (Path(scratch) / "done").write_text(requirement + "\n")
        os.replace(Path(scratch) / "done", marker)
    return target


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
    """Copies the source folders into the asset and pip-installs the requirements into `packages_dir`
    of it (the asset root for a function, `python/` for a layer), from the wheelhouse."""

    def __init__(
        self,
        sources: list[Path],
        requirements: list[str],
        architecture: str,
        *,
        packages_dir: str = "",
        wheelhouse: Path = WHEELHOUSE,
    ) -> None:
        self.sources = sources
        self.requirements = requirements
        self.architecture = architecture
        self.packages_dir = packages_dir
        self.wheelhouse = wheelhouse

    @jsii.member(jsii_name="tryBundle")
    def try_bundle(self, output_dir: str, _options: BundlingOptions) -> bool:
        for source in self.sources:
            shutil.copytree(
                source,
                Path(output_dir) / source.name,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                dirs_exist_ok=True,
            )
        packages = Path(output_dir) / self.packages_dir
        packages.mkdir(parents=True, exist_ok=True)
        for requirement in self.requirements:
            wheels = ensure_wheels(requirement, self.architecture, self.wheelhouse)
            subprocess.run(pip_command(str(packages), requirement, self.architecture, wheels), check=True)
        remove_runtime_provided(packages)
        return True


def _options(local: PipLocalBundling) -> BundlingOptions:
    return BundlingOptions(
        # Required by the API but never pulled: local bundling returns True, so Docker is not used.
        image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.12"),
        # jsii calls try_bundle(output_dir, options) with the options as one argument, not as the keywords
        # ILocalBundling declares (aws/aws-cdk#26581), so the class cannot match that declaration.
        local=local,  # type: ignore[arg-type]
    )


def pip_bundling(sources: list[Path], requirements: list[str], architecture: str) -> BundlingOptions:
    """A function asset: its source folders plus the requirements."""
    return _options(PipLocalBundling(sources, requirements, architecture))


def layer_bundling(requirements: list[str], architecture: str) -> BundlingOptions:
    """A Python layer asset: the requirements under python/."""
    return _options(PipLocalBundling([], requirements, architecture, packages_dir=LAYER_PACKAGES_DIR))


def layer_asset_hash(requirements: list[str], architecture: str) -> str:
    """What a layer's content depends on: the pins and the platform (never the bundling's output, so a
    synth whose cloud assembly already holds the layer skips bundling it)."""
    key = "|".join([*requirements, PIP_PLATFORMS[architecture], LAMBDA_PYTHON_VERSION, LAYER_PACKAGES_DIR])
    return hashlib.sha256(key.encode()).hexdigest()
