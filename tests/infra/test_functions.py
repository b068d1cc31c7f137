"""Functions: runtime, tracing, handlers, layers (Powertools, msgspec), log groups, environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from streamrec_core import constants as c

from tests.infra.conftest import REPO_ROOT, Synth, ref

# name -> (logical id prefix, Powertools service, handler, settings sizing attribute)
FUNCTIONS = {
    "ingest": ("IngestFunction", c.INGEST_SERVICE, "ingest.handler.handler", "ingest"),
    "process": ("ProcessingProcessFunction", c.PROCESS_SERVICE, "process.handler.handler", "process"),
    "items": ("BranchesItemsFunction", c.AGGREGATE_SERVICE, "aggregate.handler.items", "aggregate"),
    "experiments": (
        "BranchesExperimentsFunction",
        c.EXPERIMENTS_SERVICE,
        "aggregate.handler.experiments",
        "experiments",
    ),
    "serve": ("ServeFunction", c.SERVE_SERVICE, "serve.handler.handler", "serve"),
}
FEATURE_ENVIRONMENT = (
    c.ENV_USER_TTL_SECONDS,
    c.ENV_ITEM_TTL_SECONDS,
    c.ENV_ALLOWED_LATENESS_SECONDS,
    c.ENV_OUTBOX_RETENTION_SECONDS,
)


def _props(synth: Synth, name: str) -> dict[str, Any]:
    return synth.props("AWS::Lambda::Function", FUNCTIONS[name][0])


def _env(synth: Synth, name: str) -> dict[str, Any]:
    return _props(synth, name)["Environment"]["Variables"]


def _table(synth: Synth, prefix: str) -> dict[str, str]:
    return ref(synth.one("AWS::DynamoDB::Table", prefix)[0])


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_runs_its_handler_on_python312_with_active_tracing_sized_from_its_settings(
    synth: Synth, name: str
) -> None:
    props = _props(synth, name)
    fn_settings = synth.settings.functions
    sizing = getattr(fn_settings, FUNCTIONS[name][3])
    assert props["Handler"] == FUNCTIONS[name][2]
    assert props["Runtime"] == "python3.12"
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["MemorySize"] == sizing.memory_mb
    assert props["Timeout"] == sizing.timeout.to_seconds()
    assert props["Architectures"] == [fn_settings.architecture]


def test_dev_sizes_every_function_differently_so_swapped_sizings_are_caught(dev: Synth) -> None:
    sizes = [(_props(dev, name)["MemorySize"], _props(dev, name)["Timeout"]) for name in FUNCTIONS]
    assert len(set(sizes)) == len(sizes), sizes


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_runs_with_the_powertools_layer_and_the_stacks_msgspec_layer(
    synth: Synth, name: str
) -> None:
    fn_settings = synth.settings.functions
    powertools, runtime = _props(synth, name)["Layers"]
    arn = "".join(p if isinstance(p, str) else "|" for p in powertools["Fn::Join"][1])
    assert arn.endswith(
        f":017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-{fn_settings.architecture}"
        f":{fn_settings.powertools_layer_version}"
    )
    layer_id, _ = synth.one("AWS::Lambda::LayerVersion", "DependenciesRuntimeLayer")
    assert runtime == ref(layer_id)


def test_the_msgspec_layer_holds_the_pinned_msgspec_built_for_the_functions_platform(synth: Synth) -> None:
    # Given the one layer of the stack and the wheel metadata pip installed into it
    props = synth.props("AWS::Lambda::LayerVersion", "DependenciesRuntimeLayer")
    architecture = synth.settings.functions.architecture
    assert props["CompatibleRuntimes"] == ["python3.12"]
    assert props["CompatibleArchitectures"] == [architecture]
    root = synth.outdir / f"asset.{props['Content']['S3Key'].removesuffix('.zip')}"
    pinned = next(
        line.split("==")[1]
        for line in (REPO_ROOT / "lambdas" / "requirements.txt").read_text().splitlines()
        if line.startswith("msgspec==")
    )
    [wheel] = (root / "python").glob("msgspec-*.dist-info/WHEEL")
    # Then it is the pinned version, a CPython 3.12 wheel for the functions' CPU, under python/
    assert wheel.parent.name == f"msgspec-{pinned}.dist-info"
    cpu = {"arm64": "aarch64", "x86_64": "x86_64"}[architecture]
    tags = [line.split(": ", 1)[1] for line in wheel.read_text().splitlines() if line.startswith("Tag: ")]
    assert tags and all(t.startswith("cp312-cp312-") and t.endswith(cpu) for t in tags), tags
    assert (root / "python" / "msgspec" / "__init__.py").is_file()
    assert list((root / "python" / "msgspec").glob("_core.cpython-312-*.so"))


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_logs_to_its_own_log_group_with_retention_from_settings(synth: Synth, name: str) -> None:
    props = _props(synth, name)
    group = synth.resources[props["LoggingConfig"]["LogGroup"]["Ref"]]
    assert group["Type"] == "AWS::Logs::LogGroup"
    days = {"ONE_WEEK": 7, "THREE_MONTHS": 90}[synth.settings.functions.log_retention.name]
    assert group["Properties"]["RetentionInDays"] == days
    # An explicit log group, never the log_retention custom resource.
    assert not synth.of_type("Custom::LogRetention")


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_tells_powertools_its_service_and_namespace(synth: Synth, name: str) -> None:
    env = _env(synth, name)
    assert env[c.ENV_POWERTOOLS_SERVICE_NAME] == FUNCTIONS[name][1]
    assert env[c.ENV_POWERTOOLS_METRICS_NAMESPACE] == c.METRICS_NAMESPACE
    assert env[c.ENV_LOG_LEVEL] == synth.settings.functions.log_level


def test_ingest_environment_comes_from_settings(synth: Synth) -> None:
    env = _env(synth, "ingest")
    ing = synth.settings.ingest
    stream_id, _ = synth.one("AWS::Kinesis::Stream")
    assert env[c.ENV_STREAM_NAME] == ref(stream_id)
    assert env[c.ENV_MAX_EVENT_AGE_SECONDS] == str(ing.max_event_age_seconds)
    assert env[c.ENV_MAX_FUTURE_SKEW_SECONDS] == str(ing.max_future_skew_seconds)
    assert env[c.ENV_MAX_BODY_BYTES] == str(ing.max_body_bytes)
    assert env[c.ENV_MAX_EVENTS_PER_REQUEST] == str(ing.max_events_per_request)
    assert env[c.ENV_PUT_RETRY_BUDGET_SECONDS] == str(ing.put_retry_budget_seconds)
    assert env[c.ENV_CORS_ALLOWED_ORIGINS] == ",".join(synth.settings.api.cors_allowed_origins)


def test_ingest_retry_budget_leaves_time_to_answer_within_api_gateways_29_seconds(synth: Synth) -> None:
    env = _env(synth, "ingest")
    timeout = synth.props("AWS::Lambda::Function", "IngestFunction")["Timeout"]
    assert int(env[c.ENV_PUT_RETRY_BUDGET_SECONDS]) < timeout <= 29


def _check_feature_environment(synth: Synth, env: dict[str, Any]) -> None:
    f = synth.settings.features
    assert env[c.ENV_USER_TTL_SECONDS] == str(int(f.user_ttl.to_seconds()))
    assert env[c.ENV_ITEM_TTL_SECONDS] == str(int(f.item_ttl.to_seconds()))
    assert env[c.ENV_ALLOWED_LATENESS_SECONDS] == str(int(f.allowed_lateness.to_seconds()))
    assert env[c.ENV_OUTBOX_RETENTION_SECONDS] == str(int(f.outbox_retention.to_seconds()))


def test_process_environment_names_both_tables_and_the_feature_settings(synth: Synth) -> None:
    env = _env(synth, "process")
    _check_feature_environment(synth, env)
    assert env[c.ENV_USERS_TABLE] == _table(synth, "TablesUsers")
    # The items table for the branches' progress rows only (test_security: read, progress rows).
    assert env[c.ENV_ITEMS_TABLE] == _table(synth, "TablesItems")
    assert env[c.ENV_DLQ_URL] == ref(synth.one("AWS::SQS::Queue", "ProcessingDeadLetterQueue")[0])
    assert set(env) == {
        c.ENV_USERS_TABLE,
        c.ENV_ITEMS_TABLE,
        c.ENV_DLQ_URL,
        *FEATURE_ENVIRONMENT,
        c.ENV_POWERTOOLS_SERVICE_NAME,
        c.ENV_POWERTOOLS_METRICS_NAMESPACE,
        c.ENV_LOG_LEVEL,
    }


@pytest.mark.parametrize("name", ["items", "experiments"])
def test_branch_environment_names_both_tables_and_the_feature_settings(synth: Synth, name: str) -> None:
    env = _env(synth, name)
    _check_feature_environment(synth, env)
    assert env[c.ENV_USERS_TABLE] == _table(synth, "TablesUsers")
    assert env[c.ENV_ITEMS_TABLE] == _table(synth, "TablesItems")
    # How long the hot path's mapping retries a record before giving it up (the branches skip it then).
    assert env[c.ENV_HOT_PATH_MAX_RECORD_AGE_SECONDS] == str(
        int(synth.settings.event_source.max_record_age.to_seconds())
    )
    assert set(env) == {
        c.ENV_USERS_TABLE,
        c.ENV_ITEMS_TABLE,
        c.ENV_HOT_PATH_MAX_RECORD_AGE_SECONDS,
        *FEATURE_ENVIRONMENT,
        c.ENV_POWERTOOLS_SERVICE_NAME,
        c.ENV_POWERTOOLS_METRICS_NAMESPACE,
        c.ENV_LOG_LEVEL,
    }


def test_serve_receives_the_experiments_from_settings(dev: Synth) -> None:
    env = _env(dev, "serve")
    experiments = json.loads(env[c.ENV_EXPERIMENTS])
    [experiment] = dev.settings.experiments
    assert experiments == [
        {
            "id": experiment.id,
            "variants": [
                {"name": v.name, "weight": v.weight, "params": dict(v.params)} for v in experiment.variants
            ],
        }
    ]
    assert env[c.ENV_USERS_TABLE] == _table(dev, "TablesUsers")
    assert env[c.ENV_ITEMS_TABLE] == _table(dev, "TablesItems")


def _asset_files(synth: Synth, name: str) -> set[str]:
    props = _props(synth, name)
    asset_hash = props["Code"]["S3Key"].removesuffix(".zip")
    root = synth.outdir / f"asset.{asset_hash}"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_asset_is_its_own_folder_plus_the_shared_core_and_nothing_else(
    dev: Synth, name: str
) -> None:
    folder = FUNCTIONS[name][2].split(".")[0]
    files = _asset_files(dev, name)
    lambdas = Path(__file__).resolve().parents[2] / "lambdas"
    core = {str(p.relative_to(lambdas)) for p in (lambdas / "streamrec_core").rglob("*.py")}
    assert core <= files
    tops = {f.split("/")[0] for f in files}
    assert tops <= {folder, "streamrec_core"}
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)
