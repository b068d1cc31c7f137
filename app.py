#!/usr/bin/env python3
"""CDK entry point: `python app.py` or `npx cdk synth [-c env=prod]` writes the template to cdk.out.

The settings profile comes from context `env` (default dev); cdk-nag's AwsSolutions checks run on every
synth (errors fail it) unless `-c nag=false`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import cdk_nag

from stacks.nag_suppressions import apply_nag_suppressions
from stacks.settings import settings_from_context
from stacks.streamrec_stack import StreamrecStack

STACK_NAME_PREFIX = "Streamrec"
REPO_ROOT = Path(__file__).resolve().parent


def build_app(app: cdk.App) -> StreamrecStack:
    settings = settings_from_context(app.node)
    # Account/region from the CLI's credentials when present; otherwise an environment-agnostic template.
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    env = cdk.Environment(account=account, region=region) if account and region else None
    stack = StreamrecStack(
        app,
        f"{STACK_NAME_PREFIX}-{settings.profile}",
        settings=settings,
        env=env,
        description="streamrec: real-time personalization pipeline",
        # Stack tags, which CloudFormation propagates to every taggable resource at deploy time. They stay
        # out of the template on purpose: moto's CloudFormation crashes on tagged AWS::KMS::Key resources.
        tags={"project": "streamrec", "environment": settings.profile},
    )
    apply_nag_suppressions(stack)
    if str(app.node.try_get_context("nag")).lower() != "false":
        # Acknowledged findings are also written into each resource's Metadata, for auditors.
        checks = cdk_nag.AwsSolutionsChecks(app, verbose=True, write_suppressions_to_cloud_formation=True)
        cdk.Validations.of(app).add_plugins(checks)
    return stack


def cdk_json_context(path: Path = REPO_ROOT / "cdk.json") -> dict[str, Any]:
    """cdk.json's context, so `python app.py` works without the CLI (CLI-given context still wins)."""
    return json.loads(path.read_text(encoding="utf-8"))["context"]


if __name__ == "__main__":
    # Without the CLI, CDK_OUTDIR is unset and App would write to a temporary directory.
    _app = cdk.App(
        context=cdk_json_context(), outdir=os.environ.get("CDK_OUTDIR", str(REPO_ROOT / "cdk.out"))
    )
    build_app(_app)
    _app.synth()
