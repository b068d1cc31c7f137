"""Synthesize a CDK app (cached per source hash) and read the cloud assembly it produces.

Synthesis runs the app's own entry point (``python app.py``) in a subprocess, exactly as ``cdk synth``
would, with the context the CDK CLI would pass: ``cdk.json``'s ``context`` plus ``env=<profile>``
(through ``CDK_CONTEXT_JSON``). The output lands in ``.local/cdk.out/<profile>-<hash>``; when the app's
sources have not changed, the cached assembly is reused and start-up skips the 10-20 s of synthesis.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_emulator import aws

log = logging.getLogger(__name__)

# Folders never part of the app's inputs (tests, tools, caches, the emulator itself).
_SKIP_DIRS = {
    ".git",
    ".venv",
    ".local",
    "cdk.out",
    "node_modules",
    "tests",
    "docs",
    "tools",
    "bench",
    "local_emulator",
    "localstack",
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
    ".mypy_cache",
    ".ruff_cache",
    ".ci",
}
_SKIP_SUFFIXES = (".pyc", ".pyo")
CACHE_VERSION = "1"


@dataclass(frozen=True)
class FileAsset:
    """A file asset of the assembly and where the template expects it in the bootstrap bucket."""

    asset_id: str
    source: Path
    packaging: str  # "zip" (a directory, or an archive) | "file"
    bucket: str
    key: str


@dataclass
class StackArtifact:
    """One CloudFormation stack of the assembly."""

    artifact_id: str
    stack_name: str
    template_path: Path
    template: dict[str, Any]
    assets: list[FileAsset] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)


@dataclass
class CloudAssembly:
    """The stacks of a synthesized app, in deployment order."""

    directory: Path
    stacks: list[StackArtifact]


def source_hash(app_dir: Path, profile: str, context: dict[str, Any] | None = None) -> str:
    """Hash of everything that can change the synthesized output (sources, profile, CDK version)."""
    # Read the version from metadata: importing aws_cdk would start a Node.js process.
    cdk_version = importlib.metadata.version("aws-cdk-lib")
    digest = hashlib.sha256()
    digest.update(f"v{CACHE_VERSION}|{profile}|{cdk_version}|".encode())
    digest.update(json.dumps(context or {}, sort_keys=True).encode())
    for path in sorted(_app_files(app_dir)):
        digest.update(str(path.relative_to(app_dir)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _app_files(app_dir: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(app_dir):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.startswith(".")]
        for name in names:
            if not name.endswith(_SKIP_SUFFIXES):
                files.append(Path(root) / name)
    return files


def cdk_context(app_dir: Path, profile: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The context the CDK CLI would give the app: cdk.json's context, then ``env``, then `extra`."""
    context: dict[str, Any] = {}
    cdk_json = app_dir / "cdk.json"
    if cdk_json.exists():
        context.update(json.loads(cdk_json.read_text()).get("context", {}))
    context["env"] = profile
    context.update(extra or {})
    return context


def synth(
    app_dir: Path,
    profile: str = "dev",
    *,
    cache_root: Path | None = None,
    context: dict[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Synthesize the app in `app_dir` and return the cloud assembly directory (cached).

    Safe to call from several processes at once: a file lock serializes synthesis per cache root.
    """
    app_dir = app_dir.resolve()
    cache_root = (cache_root or app_dir / ".local" / "cdk.out").resolve()
    cache_root.mkdir(parents=True, exist_ok=True)
    full_context = cdk_context(app_dir, profile, context)
    digest = source_hash(app_dir, profile, full_context)[:16]
    target = cache_root / f"{profile}-{digest}"
    with open(cache_root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "manifest.json").exists() and not force:
            log.info("reusing synthesized assembly %s", target)
            return target
        _run_synth(app_dir, full_context, cache_root, target)
        for stale in cache_root.glob(f"{profile}-*"):
            if stale != target:
                shutil.rmtree(stale, ignore_errors=True)
    return target


def _run_synth(app_dir: Path, context: dict[str, Any], cache_root: Path, target: Path) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="synth-", dir=cache_root))
    env = dict(os.environ)
    env.update(
        CDK_OUTDIR=str(scratch),
        CDK_CONTEXT_JSON=json.dumps(context),
        CDK_DEFAULT_ACCOUNT=aws.ACCOUNT_ID,
        CDK_DEFAULT_REGION=aws.REGION,
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
    )
    # The app must never reach a real account while synthesizing for the emulator.
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        env.pop(key, None)
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not (scratch / "manifest.json").exists():
        shutil.rmtree(scratch, ignore_errors=True)
        raise RuntimeError(
            f"synthesis of {app_dir / 'app.py'} failed (exit {result.returncode}):\n{result.stderr[-4000:]}"
        )
    shutil.rmtree(target, ignore_errors=True)
    scratch.rename(target)


def read_assembly(directory: Path, account: str = aws.ACCOUNT_ID, region: str = aws.REGION) -> CloudAssembly:
    """Read the stacks, templates and file assets of a cloud assembly directory."""
    manifest = json.loads((directory / "manifest.json").read_text())
    artifacts: dict[str, Any] = manifest.get("artifacts", {})
    asset_files: dict[str, list[FileAsset]] = {}
    stacks: dict[str, StackArtifact] = {}
    nested: list[CloudAssembly] = []
    for artifact_id, artifact in artifacts.items():
        kind = artifact.get("type")
        props = artifact.get("properties", {})
        if kind == "cdk:asset-manifest":
            asset_files[artifact_id] = _read_assets(directory, props["file"], account, region)
        elif kind == "aws:cloudformation:stack":
            template_path = directory / props["templateFile"]
            stacks[artifact_id] = StackArtifact(
                artifact_id=artifact_id,
                stack_name=props.get("stackName") or artifact_id,
                template_path=template_path,
                template=json.loads(template_path.read_text()),
                dependencies=list(artifact.get("dependencies", [])),
            )
        elif kind == "cdk:cloud-assembly":
            nested.append(read_assembly(directory / props["directoryName"], account, region))
    for stack in stacks.values():
        for dependency in stack.dependencies:
            stack.assets.extend(asset_files.get(dependency, []))
    ordered = _topological(stacks)
    for inner in nested:
        ordered.extend(inner.stacks)
    return CloudAssembly(directory=directory, stacks=ordered)


def _read_assets(directory: Path, file_name: str, account: str, region: str) -> list[FileAsset]:
    manifest = json.loads((directory / file_name).read_text())
    assets = []
    for asset_id, entry in manifest.get("files", {}).items():
        source = entry["source"]
        if "path" not in source:
            raise RuntimeError(f"asset {asset_id} is built by a command; the emulator needs a path")
        for destination in entry["destinations"].values():
            assets.append(
                FileAsset(
                    asset_id=asset_id,
                    source=directory / source["path"],
                    packaging=source.get("packaging", "file"),
                    bucket=_placeholders(destination["bucketName"], account, region),
                    key=_placeholders(destination["objectKey"], account, region),
                )
            )
    return assets


def _placeholders(value: str, account: str, region: str) -> str:
    return (
        value.replace("${AWS::AccountId}", account)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", "aws")
    )


def _topological(stacks: dict[str, StackArtifact]) -> list[StackArtifact]:
    ordered: list[StackArtifact] = []
    seen: set[str] = set()

    def visit(artifact_id: str) -> None:
        if artifact_id in seen or artifact_id not in stacks:
            return
        seen.add(artifact_id)
        for dependency in stacks[artifact_id].dependencies:
            visit(dependency)
        ordered.append(stacks[artifact_id])

    for artifact_id in stacks:
        visit(artifact_id)
    return ordered
