"""A local function imports what its asset holds, as in Lambda, not the developer's editable install."""

from __future__ import annotations

from pathlib import Path

from local_emulator.workers import FunctionSpec, LocalFunction

HANDLER = """
import importlib.util


def handler(event, context):
    return {name: importlib.util.find_spec(name) is not None for name in event["modules"]}
"""


def test_a_function_cannot_import_project_code_its_asset_does_not_hold(tmp_path: Path) -> None:
    # GIVEN an asset with only its handler (the repository itself is installed editable by `make venv`)
    (tmp_path / "app.py").write_text(HANDLER)
    function = LocalFunction(
        FunctionSpec(
            name="isolated",
            arn="arn:aws:lambda:us-east-1:123456789012:function:isolated",
            handler="app.handler",
            code_dir=tmp_path,
            environment={},
            timeout_s=30.0,
        ),
        endpoint="http://127.0.0.1:9",
    )
    try:
        # WHEN it looks for the shared core, a function package, a tool, and an installed library
        payload, error = function.invoke({"modules": ["streamrec_core", "process", "tools", "boto3"]})
    finally:
        function.close()
    # THEN only the library is importable: a bundling omission fails locally as it would in Lambda
    assert error is None, payload
    assert payload == {"streamrec_core": False, "process": False, "tools": False, "boto3": True}
