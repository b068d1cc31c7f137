"""A streamrec Lambda function: one folder of `lambdas/` plus the shared core, and Powertools.

Every function gets the same runtime, X-Ray tracing, an explicit log group (no `log_retention` custom
resource) and Powertools either from the public Powertools v3 layer by ARN (`layer`: `cdk synth` works
offline and needs no Docker) or installed into the asset by local pip bundling (`bundled`, no Docker).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Aws, IgnoreMode
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct
from streamrec_core import constants as c

from stacks.constructs.bundling import POWERTOOLS_PACKAGE, pinned_requirement, pip_bundling
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


class StreamrecFunction(Construct):
    """`function` runs `<folder>.handler.handler`; its logs go to `log_group`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        folder: str,
        service: str,
        sizing: FunctionSettings,
        settings: Settings,
        environment: Mapping[str, str],
        description: str,
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
        fn_settings = settings.functions
        layers: list[lambda_.ILayerVersion] = []
        bundling = None
        if fn_settings.powertools_source == "layer":
            layers.append(
                lambda_.LayerVersion.from_layer_version_arn(
                    self, "Powertools", powertools_layer_arn(settings)
                )
            )
        else:
            bundling = pip_bundling(
                [LAMBDAS_DIR / folder, LAMBDAS_DIR / CORE_PACKAGE],
                [pinned_requirement(POWERTOOLS_PACKAGE)],
                fn_settings.architecture,
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
            handler=f"{folder}.handler.handler",
            code=code,
            memory_size=sizing.memory_mb,
            timeout=sizing.timeout,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            role=self.role,
            layers=layers,
            environment={
                c.ENV_POWERTOOLS_SERVICE_NAME: service,
                c.ENV_POWERTOOLS_METRICS_NAMESPACE: c.METRICS_NAMESPACE,
                c.ENV_LOG_LEVEL: settings.functions.log_level,
                **environment,
            },
        )
