"""The feature tables exactly as the synthesized template declares them, for tests and benchmarks.

Tests and benchmarks that drive the process or serve code against moto directly (without deploying the
whole stack) create the two feature tables from here, so their key schema comes from the same template
`cdk deploy` ships, never from a hand-written copy. A table is found by what the functions are told:
the template resource that a function's `USERS_TABLE` / `ITEMS_TABLE` environment variable refers to.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from streamrec_core.constants import ENV_ITEMS_TABLE, ENV_USERS_TABLE

from local_emulator.assembly import read_assembly, synth

REPO_ROOT = Path(__file__).resolve().parent.parent
# The emulator's own synthesis context, so the cached assembly is shared with `make demo` and the e2e tests.
SYNTH_CONTEXT = {"nag": False}
# CreateTable parameters taken from the template (encryption, TTL and PITR are not needed by moto tests).
TABLE_PROPERTIES = ("KeySchema", "AttributeDefinitions", "BillingMode", "ProvisionedThroughput")


@functools.lru_cache(maxsize=4)
def feature_table_definitions(profile: str = "dev", app_dir: Path = REPO_ROOT) -> dict[str, dict[str, Any]]:
    """Environment variable name (USERS_TABLE, ITEMS_TABLE) -> CreateTable parameters from the template."""
    assembly = read_assembly(synth(app_dir, profile, context=SYNTH_CONTEXT))
    found: dict[str, dict[str, Any]] = {}
    for stack in assembly.stacks:
        resources = stack.template.get("Resources", {})
        for resource in resources.values():
            if resource.get("Type") != "AWS::Lambda::Function":
                continue
            variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
            for name in (ENV_USERS_TABLE, ENV_ITEMS_TABLE):
                ref = variables.get(name)
                if isinstance(ref, dict) and "Ref" in ref:
                    table = resources[ref["Ref"]]["Properties"]
                    found[name] = {key: table[key] for key in TABLE_PROPERTIES if key in table}
    missing = {ENV_USERS_TABLE, ENV_ITEMS_TABLE} - set(found)
    if missing:
        raise LookupError(f"no function of the {profile} template refers to a table as {sorted(missing)}")
    return found


def create_feature_tables(dynamodb: Any, *, users: str, items: str, profile: str = "dev") -> None:
    """Create the users and items tables under the given names with the template's keys."""
    definitions = feature_table_definitions(profile)
    for env_name, table_name in ((ENV_USERS_TABLE, users), (ENV_ITEMS_TABLE, items)):
        dynamodb.create_table(TableName=table_name, **definitions[env_name])
