"""cdk.json sets the feature flags the pinned aws-cdk-lib recommends: what `cdk init` writes for a new app.

The list comes from the installed aws-cdk-lib itself (`recommended-feature-flags.json` in its jsii
package), so upgrading aws-cdk-lib fails here until its new flags are set and their template changes are
reviewed (docs/decisions.md, "CDK feature flags").
"""

from __future__ import annotations

import json
import tarfile
from importlib import resources
from pathlib import Path
from typing import Any

from tests.infra.conftest import REPO_ROOT

FLAGS_FILE = "package/recommended-feature-flags.json"


def _recommended_flags() -> dict[str, Any]:
    # aws-cdk-lib's npm package, which its Python distribution carries and runs.
    [package] = Path(str(resources.files("aws_cdk._jsii"))).glob("aws-cdk-lib@*.jsii.tgz")
    with tarfile.open(package, "r:gz") as archive:
        for member in archive:
            if member.name == FLAGS_FILE:
                flags = archive.extractfile(member)
                assert flags is not None
                return dict(json.load(flags))
    raise AssertionError(f"{package.name} has no {FLAGS_FILE}")


def test_cdk_json_sets_every_flag_the_pinned_cdk_recommends_at_its_recommended_value() -> None:
    recommended = _recommended_flags()
    context = json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    assert recommended, "the installed aws-cdk-lib recommends no flags"
    assert {flag: context.get(flag) for flag in recommended} == recommended
