"""Functions: runtime, tracing, handlers, Powertools layer, log groups, environment from settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from streamrec_core import constants as c

from tests.infra.conftest import Synth, ref

FUNCTIONS = {
    "ingest": ("IngestFunction", c.INGEST_SERVICE),
    "process": ("ProcessingProcessFunction", c.PROCESS_SERVICE),
    "serve": ("ServeFunction", c.SERVE_SERVICE),
}


def _env(synth: Synth, folder: str) -> dict[str, Any]:
    return synth.props("AWS::Lambda::Function", FUNCTIONS[folder][0])["Environment"]["Variables"]


@pytest.mark.parametrize("folder", sorted(FUNCTIONS))
def test_function_runs_its_handler_on_python312_with_active_tracing_and_the_powertools_layer(
    synth: Synth, folder: str
) -> None:
    props = synth.props("AWS::Lambda::Function", FUNCTIONS[folder][0])
    fn_settings = synth.settings.functions
    sizing = getattr(fn_settings, folder)
    assert props["Handler"] == f"{folder}.handler.handler"
    assert props["Runtime"] == "python3.12"
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["MemorySize"] == sizing.memory_mb
    assert props["Timeout"] == sizing.timeout.to_seconds()
    assert props["Architectures"] == [fn_settings.architecture]
    [layer] = props["Layers"]
    arn = "".join(p if isinstance(p, str) else "|" for p in layer["Fn::Join"][1])
    assert arn.endswith(
        f":017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-{fn_settings.architecture}"
        f":{fn_settings.powertools_layer_version}"
    )


@pytest.mark.parametrize("folder", sorted(FUNCTIONS))
def test_function_logs_to_its_own_log_group_with_retention_from_settings(synth: Synth, folder: str) -> None:
    props = synth.props("AWS::Lambda::Function", FUNCTIONS[folder][0])
    group = synth.resources[props["LoggingConfig"]["LogGroup"]["Ref"]]
    assert group["Type"] == "AWS::Logs::LogGroup"
    days = {"ONE_WEEK": 7, "THREE_MONTHS": 90}[synth.settings.functions.log_retention.name]
    assert group["Properties"]["RetentionInDays"] == days
    # An explicit log group, never the log_retention custom resource.
    assert not synth.of_type("Custom::LogRetention")


@pytest.mark.parametrize("folder", sorted(FUNCTIONS))
def test_function_tells_powertools_its_service_and_namespace(synth: Synth, folder: str) -> None:
    env = _env(synth, folder)
    assert env[c.ENV_POWERTOOLS_SERVICE_NAME] == FUNCTIONS[folder][1]
    assert env[c.ENV_POWERTOOLS_METRICS_NAMESPACE] == c.METRICS_NAMESPACE
    assert env[c.ENV_LOG_LEVEL] == synth.settings.functions.log_level


def test_ingest_environment_comes_from_settings(synth: Synth) -> None:
    env = _env(synth, "ingest")
    ing = synth.settings.ingest
    stream_id, _ = synth.one("AWS::Kinesis::Stream")
    assert env[c.ENV_STREAM_NAME] == ref(stream_id)
    assert env[c.ENV_MAX_EVENT_AGE_SECONDS] == str(int(ing.max_event_age.to_seconds()))
    assert env[c.ENV_MAX_FUTURE_SKEW_SECONDS] == str(int(ing.max_future_skew.to_seconds()))
    assert env[c.ENV_MAX_BODY_BYTES] == str(ing.max_body_bytes)
    assert env[c.ENV_MAX_EVENTS_PER_REQUEST] == str(ing.max_events_per_request)
    assert env[c.ENV_PUT_RETRY_BUDGET_SECONDS] == str(int(ing.put_retry_budget.to_seconds()))
    assert env[c.ENV_CORS_ALLOWED_ORIGINS] == ",".join(synth.settings.api.cors_allowed_origins)


def test_ingest_retry_budget_leaves_time_to_answer_within_api_gateways_29_seconds(synth: Synth) -> None:
    env = _env(synth, "ingest")
    timeout = synth.props("AWS::Lambda::Function", "IngestFunction")["Timeout"]
    assert int(env[c.ENV_PUT_RETRY_BUDGET_SECONDS]) < timeout <= 29


def test_process_environment_comes_from_settings(synth: Synth) -> None:
    env = _env(synth, "process")
    f = synth.settings.features
    assert env[c.ENV_USERS_TABLE] == ref(synth.one("AWS::DynamoDB::Table", "TablesUsers")[0])
    assert env[c.ENV_ITEMS_TABLE] == ref(synth.one("AWS::DynamoDB::Table", "TablesItems")[0])
    assert env[c.ENV_USER_TTL_SECONDS] == str(int(f.user_ttl.to_seconds()))
    assert env[c.ENV_ITEM_TTL_SECONDS] == str(int(f.item_ttl.to_seconds()))
    assert env[c.ENV_ALLOWED_LATENESS_SECONDS] == str(int(f.allowed_lateness.to_seconds()))
    assert env[c.ENV_TRENDING_SLOTS] == str(f.trending_slots)


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
    assert env[c.ENV_TRENDING_SLOTS] == str(dev.settings.features.trending_slots)


def _asset_files(synth: Synth, folder: str) -> set[str]:
    props = synth.props("AWS::Lambda::Function", FUNCTIONS[folder][0])
    asset_hash = props["Code"]["S3Key"].removesuffix(".zip")
    root = synth.outdir / f"asset.{asset_hash}"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("folder", sorted(FUNCTIONS))
def test_function_asset_is_its_own_folder_plus_the_shared_core_and_nothing_else(
    dev: Synth, folder: str
) -> None:
    files = _asset_files(dev, folder)
    lambdas = Path(__file__).resolve().parents[2] / "lambdas"
    core = {str(p.relative_to(lambdas)) for p in (lambdas / "streamrec_core").rglob("*.py")}
    assert core <= files
    tops = {f.split("/")[0] for f in files}
    assert tops <= {folder, "streamrec_core"}
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)
