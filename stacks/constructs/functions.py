"""A streamrec Lambda function: one folder of `lambdas/` plus the shared core, and its dependencies.

Every function gets the same runtime, X-Ray tracing, an explicit log group (no `log_retention` custom
resource) and the same dependencies (`FunctionDependencies`, one per stack): with `layers`, Powertools
from the public Powertools v3 layer by ARN and msgspec from the stack's own layer (local pip bundling
from a cached wheelhouse, no Docker); with `bundled`, both pip-installed into each asset.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import AssetHashType, Aws, IgnoreMode
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct
from streamrec_core import constants as c

from stacks.constructs.bundling import (
    MSGSPEC_PACKAGE,
    POWERTOOLS_PACKAGE,
    REPO_ROOT,
    layer_asset_hash,
    layer_bundling,
    pinned_requirement,
    pip_bundling,
)
from stacks.settings import FunctionSettings, Settings

LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"
CORE_PACKAGE = "streamrec_core"
POWERTOOLS_ACCOUNT = "017000801446"  # the account AWS publishes the Powertools layers from
RUNTIME = lambda_.Runtime.PYTHON_3_12
_ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}


def asset_excludes(folder: str, lambdas_dir: Path = LAMBDAS_DIR) -> list[str]:
    """Glob excludes that leave `folder` and the shared core: every other top-level entry goes.

    Computed from the directory, so a function folder added later never leaks into its neighbours.
    """
    others = sorted(
        p.name
        for p in lambdas_dir.iterdir()
        if p.name not in (folder, CORE_PACKAGE) and not p.name.startswith(".")
    )
    # Git-style patterns: a leading "/" anchors at the asset root, so `streamrec_core/ingest.py` stays.
    return [f"/{name}" for name in others] + [
        "**/__pycache__",
        "**/*.pyc",
        "**/.pytest_cache",
        "**/.mypy_cache",
    ]


def powertools_layer_arn(settings: Settings) -> str:
    fn = settings.functions
    return (
        f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{POWERTOOLS_ACCOUNT}:layer:"
        f"AWSLambdaPowertoolsPythonV3-python312-{fn.architecture}:{fn.powertools_layer_version}"
    )


class FunctionDependencies(Construct):
    """What every function runs with besides its code: Powertools and msgspec, as layers or bundled."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings) -> None:
        super().__init__(scope, construct_id)
        fn = settings.functions
        powertools = pinned_requirement(POWERTOOLS_PACKAGE)
        msgspec = pinned_requirement(MSGSPEC_PACKAGE)
        self.layers: list[lambda_.ILayerVersion] = []
        # Requirements pip-installed into each function asset (none when layers carry them).
        self.bundled: list[str] = []
        self.runtime_layer: lambda_.LayerVersion | None = None
        if fn.dependencies == "layers":
            self.runtime_layer = lambda_.LayerVersion(
                self,
                "RuntimeLayer",
                description=f"{msgspec} for {RUNTIME.name} on {fn.architecture}",
                code=lambda_.Code.from_asset(
                    str(REPO_ROOT),  # never read: local bundling builds the layer from the wheelhouse
                    bundling=layer_bundling([msgspec], fn.architecture),
                    asset_hash=layer_asset_hash([msgspec], fn.architecture),
                    asset_hash_type=AssetHashType.CUSTOM,
                ),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[_ARCHITECTURES[fn.architecture]],
            )
            self.layers = [
                lambda_.LayerVersion.from_layer_version_arn(
                    self, "Powertools", powertools_layer_arn(settings)
                ),
                self.runtime_layer,
            ]
        else:
            self.bundled = [powertools, msgspec]


class StreamrecFunction(Construct):
    """`function` runs `<folder>.handler.<entry>`; its logs go to `log_group`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        folder: str,
        service: str,
        sizing: FunctionSettings,
        settings: Settings,
        dependencies: FunctionDependencies,
        environment: Mapping[str, str],
        description: str,
        entry: str = "handler",
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=settings.functions.log_retention,
            removal_policy=settings.removal_policy,
        )
        # Our own role instead of AWSLambdaBasicExecutionRole: logs go to this log group only.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{service} function",
        )
        self.log_group.grant_write(self.role)
        bundling = None
        if dependencies.bundled:
            bundling = pip_bundling(
                [LAMBDAS_DIR / folder, LAMBDAS_DIR / CORE_PACKAGE],
                dependencies.bundled,
                settings.functions.architecture,
            )
        code = lambda_.Code.from_asset(
            str(LAMBDAS_DIR), exclude=asset_excludes(folder), ignore_mode=IgnoreMode.GIT, bundling=bundling
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=_ARCHITECTURES[settings.functions.architecture],
            handler=f"{folder}.handler.{entry}",
            code=code,
            memory_size=sizing.memory_mb,
            timeout=sizing.timeout,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            role=self.role,
            layers=dependencies.layers,
            environment={
                c.ENV_POWERTOOLS_SERVICE_NAME: service,
                c.ENV_POWERTOOLS_METRICS_NAMESPACE: c.METRICS_NAMESPACE,
                c.ENV_LOG_LEVEL: settings.functions.log_level,
                **environment,
            },
        )
