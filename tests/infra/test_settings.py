"""Settings profiles from CDK context: complete, validated, with errors that name the key."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from stacks.settings import SettingsError, load_profiles_from_cdk_json, parse_profile, settings_from_context

CDK_JSON = Path(__file__).resolve().parents[2] / "cdk.json"


@pytest.fixture
def dev_raw() -> dict[str, Any]:
    return copy.deepcopy(json.loads(CDK_JSON.read_text())["context"]["profiles"]["dev"])


class _Node:
    """Stands in for a construct node: what `-c key=value` and cdk.json give the app."""

    def __init__(self, context: dict[str, Any]) -> None:
        self.context = context

    def try_get_context(self, key: str) -> Any:
        return self.context.get(key)


def test_every_profile_in_cdk_json_is_valid() -> None:
    profiles = load_profiles_from_cdk_json(str(CDK_JSON))
    assert {"dev", "prod"} <= set(profiles)


def test_env_context_selects_the_profile_and_dev_is_the_default() -> None:
    context = json.loads(CDK_JSON.read_text())["context"]
    assert settings_from_context(_Node({"profiles": context["profiles"]})).profile == "dev"
    assert settings_from_context(_Node({"profiles": context["profiles"], "env": "prod"})).profile == "prod"


def test_an_unknown_profile_is_refused_with_the_known_ones_listed() -> None:
    context = json.loads(CDK_JSON.read_text())["context"]
    with pytest.raises(SettingsError, match=r"env=staging; known: dev, localstack, prod"):
        settings_from_context(_Node({"profiles": context["profiles"], "env": "staging"}))


def test_dev_gets_one_experiment_with_two_variants_that_differ_in_a_model_parameter(
    dev_raw: dict[str, Any],
) -> None:
    settings = parse_profile("dev", dev_raw)
    [experiment] = settings.experiments
    control, variant = experiment.variants
    assert control.params != variant.params
    assert json.loads(settings.experiments_json())[0]["id"] == experiment.id


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("event_source", "batch_size"),
            0,
            r"profiles\.dev\.event_source\.batch_size must be an integer in \[1, 10000\]",
        ),
        (("event_source", "parallelization_factor"), 11, r"event_source\.parallelization_factor"),
        (("event_source", "max_record_age_seconds"), 30, r"event_source\.max_record_age_seconds"),
        (("event_source", "starting_position"), "AT_TIMESTAMP", r"starting_position must be one of"),
        (
            ("aggregate_source", "batch_size"),
            10_001,
            r"profiles\.dev\.aggregate_source\.batch_size must be an integer in \[1, 10000\]",
        ),
        (
            ("experiments_source", "max_batching_window_seconds"),
            301,
            r"experiments_source\.max_batching_window_seconds must be an integer in \[0, 300\]",
        ),
        (("experiments_source", "max_record_age_seconds"), 59, r"experiments_source\.max_record_age_seconds"),
        (("functions", "aggregate", "timeout_seconds"), 901, r"functions\.aggregate\.timeout_seconds"),
        (("functions", "dependencies"), "layer", r"functions\.dependencies must be one of layers, bundled"),
        (
            ("features", "outbox_retention_seconds"),
            59,
            r"features\.outbox_retention_seconds must be an integer in \[60, 86400\]",
        ),
        (("stream", "mode"), "SERVERLESS", r"stream\.mode must be one of ON_DEMAND, PROVISIONED"),
        (("functions", "ingest", "timeout_seconds"), 30, r"functions\.ingest\.timeout_seconds .*\[1, 29\]"),
        (("functions", "log_retention"), "FOREVER", r"functions\.log_retention must be one of"),
        (("ingest", "max_events_per_request"), 501, r"ingest\.max_events_per_request"),
        (
            ("alarms", "ingest_rejection_rate"),
            5,
            r"alarms\.ingest_rejection_rate must be a number in \[0, 1\]",
        ),
        (("alarms", "email"), "not-an-email", r"alarms\.email must match"),
        (("alarms", "dlq_depth"), True, r"alarms\.dlq_depth must be an integer"),
        (("api", "cors_allowed_origins"), ["localhost"], r"api\.cors_allowed_origins\[0\]"),
        (("api", "producers", "quota_period"), "YEAR", r"api\.producers\.quota_period"),
        (("removal_policy",), "KEEP", r"profiles\.dev\.removal_policy must be one of"),
    ],
)
def test_an_invalid_value_is_refused_with_its_full_key(
    dev_raw: dict[str, Any], path: tuple[str, ...], value: Any, message: str
) -> None:
    target = dev_raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(SettingsError, match=message):
        parse_profile("dev", dev_raw)


def test_a_missing_key_is_refused_by_name(dev_raw: dict[str, Any]) -> None:
    del dev_raw["event_source"]["retry_attempts"]
    with pytest.raises(SettingsError, match=r"profiles\.dev\.event_source\.retry_attempts is required"):
        parse_profile("dev", dev_raw)


def test_an_unknown_key_is_refused_so_a_typo_is_never_ignored(dev_raw: dict[str, Any]) -> None:
    dev_raw["event_source"]["retry_attemps"] = 2
    with pytest.raises(
        SettingsError, match=r"profiles\.dev\.event_source has unknown key\(s\): retry_attemps"
    ):
        parse_profile("dev", dev_raw)


def test_on_demand_streams_take_no_shard_count(dev_raw: dict[str, Any]) -> None:
    dev_raw["stream"] = {"mode": "ON_DEMAND", "shard_count": 4, "retention_hours": 24}
    with pytest.raises(SettingsError, match=r"stream\.shard_count must be null or absent"):
        parse_profile("dev", dev_raw)


def test_optional_email_may_be_absent_because_cdk_drops_null_context_values(dev_raw: dict[str, Any]) -> None:
    del dev_raw["alarms"]["email"]
    assert parse_profile("dev", dev_raw).alarms.email is None


def test_retry_budget_must_leave_the_ingest_function_time_to_answer(dev_raw: dict[str, Any]) -> None:
    dev_raw["ingest"]["put_retry_budget_seconds"] = dev_raw["functions"]["ingest"]["timeout_seconds"]
    with pytest.raises(SettingsError, match=r"put_retry_budget_seconds must be below functions\.ingest"):
        parse_profile("dev", dev_raw)


@pytest.mark.parametrize("source", ["event_source", "aggregate_source", "experiments_source"])
def test_record_age_cannot_exceed_stream_retention(dev_raw: dict[str, Any], source: str) -> None:
    dev_raw[source]["max_record_age_seconds"] = dev_raw["stream"]["retention_hours"] * 3600 + 1
    with pytest.raises(
        SettingsError, match=rf"{source}\.max_record_age_seconds must not exceed stream\.retention_hours"
    ):
        parse_profile("dev", dev_raw)


@pytest.mark.parametrize("alarm", ["aggregate_iterator_age_seconds", "experiments_iterator_age_seconds"])
def test_a_branch_lag_alarm_must_fire_before_records_outlive_the_outbox(
    dev_raw: dict[str, Any], alarm: str
) -> None:
    # Given a branch lag alarm exactly at the outbox retention (a lag it would report too late)
    retention = dev_raw["features"]["outbox_retention_seconds"]
    dev_raw["alarms"][alarm] = retention
    # Then the profile is refused, saying why
    with pytest.raises(
        SettingsError,
        match=rf"alarms\.{alarm} must be below features\.outbox_retention_seconds \({retention}\): a branch "
        r"lagging past the outbox retention can no longer resolve records",
    ):
        parse_profile("dev", dev_raw)
    # And one second below is accepted
    dev_raw["alarms"][alarm] = retention - 1
    assert parse_profile("dev", dev_raw).features.outbox_retention.to_seconds() == retention


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e[0]["variants"].pop(), r"needs at least two variants"),
        (lambda e: e.append(copy.deepcopy(e[0])), r"experiments\[1\]\.id 'recency-half-life' is used twice"),
        (
            lambda e: e[0]["variants"][1].update(name="control"),
            r"variants\[1\]\.name 'control' is used twice",
        ),
        (lambda e: e[0]["variants"][0].update(weight=0), r"variants\[0\]\.weight must be a number"),
        (
            lambda e: e[0]["variants"][0].update(params={"nested": {"a": 1}}),
            r"params must be an object of scalars",
        ),
    ],
)
def test_experiments_are_validated(dev_raw: dict[str, Any], mutate: Any, message: str) -> None:
    mutate(dev_raw["experiments"])
    with pytest.raises(SettingsError, match=message):
        parse_profile("dev", dev_raw)


def test_a_variant_parameter_the_model_does_not_know_is_refused(dev_raw: dict[str, Any]) -> None:
    # Serve ignores unknown names, so this typo would make the variant silently identical to control.
    dev_raw["experiments"][0]["variants"][1]["params"] = {"recency_half_life_hours": 6}
    with pytest.raises(
        SettingsError, match=r"variants\[1\]\.params has unknown model parameter\(s\) recency_half_life_hours"
    ):
        parse_profile("dev", dev_raw)


def test_a_variant_parameter_of_the_wrong_type_is_refused(dev_raw: dict[str, Any]) -> None:
    dev_raw["experiments"][0]["variants"][1]["params"] = {"exclude_purchased": 1}
    with pytest.raises(SettingsError, match=r"variants\[1\]\.params: model parameter exclude_purchased"):
        parse_profile("dev", dev_raw)
