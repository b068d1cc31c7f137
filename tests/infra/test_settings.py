"""Settings profiles from CDK context: complete, validated, with errors that name the key."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from stacks.settings import SettingsError, load_profiles_from_cdk_json, parse_profile, settings_from_context
from tests.imports import imported_packages

REPO_ROOT = Path(__file__).resolve().parents[2]
CDK_JSON = REPO_ROOT / "cdk.json"


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


def _set(raw: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    target: Any = raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def _errors(raw: dict[str, Any]) -> list[str]:
    """The profile's error lines (none if it is valid)."""
    try:
        parse_profile("dev", raw)
    except SettingsError as exc:
        return str(exc).splitlines()
    return []


def _key(path: tuple[str | int, ...]) -> str:
    return "profiles.dev" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("event_source", "batch_size"),
            0,
            r"profiles\.dev\.event_source\.batch_size: Input should be greater than or equal to 1, got 0",
        ),
        (
            ("event_source", "parallelization_factor"),
            11,
            r"event_source\.parallelization_factor: .* 10, got 11",
        ),
        (
            ("event_source", "max_record_age_seconds"),
            30,
            r"event_source\.max_record_age_seconds: .* 60, got 30",
        ),
        (
            ("event_source", "starting_position"),
            "AT_TIMESTAMP",
            r"starting_position: Input should be 'TRIM_HORIZON' or 'LATEST', got 'AT_TIMESTAMP'",
        ),
        (
            ("aggregate_source", "batch_size"),
            10_001,
            r"profiles\.dev\.aggregate_source\.batch_size: Input should be less than or equal to 10000",
        ),
        (
            ("experiments_source", "max_batching_window_seconds"),
            301,
            r"experiments_source\.max_batching_window_seconds: Input should be less than or equal to 300",
        ),
        (
            ("experiments_source", "retry_attempts"),
            3,
            r"profiles\.dev\.experiments_source\.retry_attempts: Extra inputs are not permitted",
        ),
        (
            ("functions", "aggregate", "timeout_seconds"),
            901,
            r"functions\.aggregate\.timeout_seconds: .* 900",
        ),
        (
            ("functions", "dependencies"),
            "layer",
            r"functions\.dependencies: Input should be 'layers' or 'bundled', got 'layer'",
        ),
        (
            ("features", "outbox_retention_seconds"),
            59,
            r"features\.outbox_retention_seconds: Input should be greater than or equal to 60, got 59",
        ),
        (("stream", "mode"), "SERVERLESS", r"stream\.mode: Input should be 'ON_DEMAND' or 'PROVISIONED'"),
        (
            ("functions", "ingest", "timeout_seconds"),
            30,
            r"functions\.ingest\.timeout_seconds: Input should be less than or equal to 29, got 30",
        ),
        (
            ("functions", "serve", "timeout_seconds"),
            30,
            r"functions\.serve\.timeout_seconds: Input should be less than or equal to 29, got 30",
        ),
        (("functions", "log_retention"), "FOREVER", r"functions\.log_retention: Input should be 'ONE_DAY', "),
        (("ingest", "max_events_per_request"), 501, r"ingest\.max_events_per_request: .* 500, got 501"),
        (
            ("alarms", "ingest_rejection_rate"),
            5,
            r"alarms\.ingest_rejection_rate: Input should be less than or equal to 1, got 5",
        ),
        (("alarms", "email"), "not-an-email", r"alarms\.email: String should match pattern"),
        # JSON types as written: a boolean, a string or a float is not an integer, a boolean not a number
        (("alarms", "dlq_depth"), True, r"alarms\.dlq_depth: Input should be a valid integer, got True"),
        (("alarms", "dlq_depth"), "0", r"alarms\.dlq_depth: Input should be a valid integer, got '0'"),
        (("alarms", "dlq_depth"), 1.5, r"alarms\.dlq_depth: Input should be a valid integer, got 1\.5"),
        (
            ("api", "stage_rate_limit"),
            True,
            r"api\.stage_rate_limit: Input should be a valid number, got True",
        ),
        (
            ("api", "cors_allowed_origins"),
            ["localhost"],
            r"api\.cors_allowed_origins\[0\]: String should match",
        ),
        (("api", "cors_allowed_origins"), "*", r"api\.cors_allowed_origins: Input should be a valid tuple"),
        (("api", "stage_name"), "my stage", r"api\.stage_name: String should match pattern"),
        (
            ("api", "producers", "quota_period"),
            "YEAR",
            r"api\.producers\.quota_period: Input should be 'DAY'",
        ),
        (("removal_policy",), "KEEP", r"profiles\.dev\.removal_policy: Input should be 'DESTROY', 'RETAIN'"),
        (
            ("removal_policy",),
            "RETAIN_ON_UPDATE_OR_DELETE",
            r"profiles\.dev\.removal_policy: Input should be 'DESTROY', 'RETAIN' or 'SNAPSHOT'",
        ),
        (("stream",), [], r"profiles\.dev\.stream: Input should be a valid dictionary"),
    ],
)
def test_an_invalid_value_is_refused_with_its_full_key(
    dev_raw: dict[str, Any], path: tuple[str, ...], value: Any, message: str
) -> None:
    _set(dev_raw, path, value)
    with pytest.raises(SettingsError, match=message):
        parse_profile("dev", dev_raw)


# Every numeric bound, both sides: (key path, lowest accepted, highest accepted). The limits are AWS's own
# (Kinesis, the event source mapping, Lambda, API Gateway, CloudWatch Logs) or stated in the settings.
BOUNDS: list[tuple[tuple[str | int, ...], int | float, int | float]] = [
    (("stream", "shard_count"), 1, 10_000),
    (("stream", "retention_hours"), 24, 8760),
    *(
        ((source, "batch_size"), 1, 10_000)
        for source in ("event_source", "aggregate_source", "experiments_source")
    ),
    *(
        ((source, "max_batching_window_seconds"), 0, 300)
        for source in ("event_source", "aggregate_source", "experiments_source")
    ),
    (("event_source", "parallelization_factor"), 1, 10),
    (("event_source", "retry_attempts"), 0, 10_000),
    (("event_source", "max_record_age_seconds"), 60, 604_800),
    *(
        (("functions", name, "memory_mb"), 128, 10_240)
        for name in ("ingest", "process", "aggregate", "experiments", "serve")
    ),
    (("functions", "ingest", "timeout_seconds"), 1, 29),
    (("functions", "serve", "timeout_seconds"), 1, 29),
    (("functions", "process", "timeout_seconds"), 1, 900),
    (("functions", "aggregate", "timeout_seconds"), 1, 900),
    (("functions", "experiments", "timeout_seconds"), 1, 900),
    (("functions", "powertools_layer_version"), 1, 10_000),
    (("features", "user_ttl_days"), 1, 3650),
    (("features", "item_ttl_days"), 1, 3650),
    (("features", "allowed_lateness_seconds"), 0, 604_800),
    (("features", "outbox_retention_seconds"), 60, 604_800),
    (("ingest", "max_event_age_seconds"), 60, 365 * 86_400),
    (("ingest", "max_future_skew_seconds"), 0, 86_400),
    (("ingest", "max_body_bytes"), 1024, 10 * 1024 * 1024),
    (("ingest", "max_events_per_request"), 1, 500),
    (("ingest", "put_retry_budget_seconds"), 1, 28),
    (("api", "stage_rate_limit"), 0.001, 1_000_000),
    (("api", "stage_burst_limit"), 1, 1_000_000),
    *(
        (("api", plan, key), lo, hi)
        for plan in ("producers", "readers")
        for key, lo, hi in (
            ("rate_limit", 0.001, 1_000_000),
            ("burst_limit", 1, 1_000_000),
            ("quota_limit", 1, 2_000_000_000),
        )
    ),
    (("alarms", "period_seconds"), 60, 86_400),
    (("alarms", "evaluation_periods"), 1, 100),
    (("alarms", "iterator_age_seconds"), 1, 604_800),
    (("alarms", "aggregate_iterator_age_seconds"), 1, 604_800),
    (("alarms", "experiments_iterator_age_seconds"), 1, 604_800),
    *(
        (("alarms", key), 0, 1_000_000)
        for key in (
            "dlq_depth",
            "on_failure_depth",
            "process_errors",
            "process_throttles",
            "aggregate_errors",
            "experiments_errors",
            "aggregate_unresolved",
            "dynamodb_throttles",
            "kinesis_write_throttles",
            "put_records_failures",
        )
    ),
    (("alarms", "ingest_rejection_rate"), 0, 1.0),
    (("alarms", "api_5xx_rate"), 0, 1.0),
    (("alarms", "serve_fallback_rate"), 0, 1.0),
    (("alarms", "api_p99_latency_ms"), 1, 29_000),
]


@pytest.mark.parametrize(("path", "lowest", "highest"), BOUNDS, ids=[_key(b[0]) for b in BOUNDS])
def test_each_bound_accepts_its_limit_and_refuses_one_step_past_it(
    dev_raw: dict[str, Any], path: tuple[str | int, ...], lowest: float, highest: float
) -> None:
    # A float bound is a number field (a fraction or a rate); one step past it is a millionth.
    step = 1 if isinstance(lowest, int) and isinstance(highest, int) else 0.000001
    key = _key(path)
    for value in (lowest, highest):
        # At the limit the key itself is fine (a rule between keys may still refuse the profile)
        _set(dev_raw, path, value)
        assert not [e for e in _errors(dev_raw) if e.startswith(f"{key}:")], (key, value)
    for value, rule in (
        (lowest - step, "greater than or equal to"),
        (highest + step, "less than or equal to"),
    ):
        # One step past it the key is refused, naming the rule
        _set(dev_raw, path, value)
        assert any(e.startswith(f"{key}: Input should be {rule}") for e in _errors(dev_raw)), (key, value)


def test_every_error_of_a_profile_is_reported_at_once(dev_raw: dict[str, Any]) -> None:
    # Given a profile with three mistakes in different places
    dev_raw["event_source"]["batch_size"] = 0
    del dev_raw["alarms"]["dlq_depth"]
    dev_raw["experiments"][0]["variants"][1]["name"] = "bad name"
    # Then one error names all three keys, one line each
    assert _errors(dev_raw) == [
        "profiles.dev.event_source.batch_size: Input should be greater than or equal to 1, got 0",
        "profiles.dev.alarms.dlq_depth: Field required",
        "profiles.dev.experiments[0].variants[1].name must match [A-Za-z0-9._:@-]{1,64}, got 'bad name'",
    ]


def test_a_missing_key_is_refused_by_name(dev_raw: dict[str, Any]) -> None:
    del dev_raw["event_source"]["retry_attempts"]
    with pytest.raises(SettingsError, match=r"profiles\.dev\.event_source\.retry_attempts: Field required"):
        parse_profile("dev", dev_raw)


def test_an_unknown_key_is_refused_so_a_typo_is_never_ignored(dev_raw: dict[str, Any]) -> None:
    dev_raw["event_source"]["retry_attemps"] = 2
    with pytest.raises(
        SettingsError, match=r"profiles\.dev\.event_source\.retry_attemps: Extra inputs are not permitted"
    ):
        parse_profile("dev", dev_raw)


def test_on_demand_streams_take_no_shard_count(dev_raw: dict[str, Any]) -> None:
    dev_raw["stream"] = {"mode": "ON_DEMAND", "shard_count": 4, "retention_hours": 24}
    with pytest.raises(
        SettingsError,
        match=r"profiles\.dev\.stream: shard_count must be null or absent when mode is ON_DEMAND",
    ):
        parse_profile("dev", dev_raw)
    # And null or absent are both accepted (CDK drops null context values)
    dev_raw["stream"]["shard_count"] = None
    assert parse_profile("dev", dev_raw).stream.shard_count is None
    del dev_raw["stream"]["shard_count"]
    assert parse_profile("dev", dev_raw).stream.mode == "ON_DEMAND"


@pytest.mark.parametrize("shards", [None, "absent"])
def test_provisioned_streams_need_a_shard_count(dev_raw: dict[str, Any], shards: Any) -> None:
    dev_raw["stream"] = {"mode": "PROVISIONED", "retention_hours": 24}
    if shards is None:
        dev_raw["stream"]["shard_count"] = None
    with pytest.raises(
        SettingsError, match=r"profiles\.dev\.stream: shard_count is required when mode is PROVISIONED"
    ):
        parse_profile("dev", dev_raw)


def test_optional_email_may_be_absent_because_cdk_drops_null_context_values(dev_raw: dict[str, Any]) -> None:
    del dev_raw["alarms"]["email"]
    assert parse_profile("dev", dev_raw).alarms.email is None


def test_retry_budget_must_leave_the_ingest_function_time_to_answer(dev_raw: dict[str, Any]) -> None:
    timeout = dev_raw["functions"]["ingest"]["timeout_seconds"]
    dev_raw["ingest"]["put_retry_budget_seconds"] = timeout
    with pytest.raises(
        SettingsError,
        match=r"profiles\.dev: ingest\.put_retry_budget_seconds must be below "
        r"functions\.ingest\.timeout_seconds so ingest can still answer after its last retry",
    ):
        parse_profile("dev", dev_raw)
    # And one second less is accepted
    dev_raw["ingest"]["put_retry_budget_seconds"] = timeout - 1
    assert parse_profile("dev", dev_raw).ingest.put_retry_budget_seconds == timeout - 1


def test_record_age_cannot_exceed_stream_retention(dev_raw: dict[str, Any]) -> None:
    retention = dev_raw["stream"]["retention_hours"] * 3600
    dev_raw["event_source"]["max_record_age_seconds"] = retention + 1
    dev_raw["features"]["outbox_retention_seconds"] = 7 * 86_400
    with pytest.raises(
        SettingsError,
        match=r"profiles\.dev: event_source\.max_record_age_seconds must not exceed stream\.retention_hours",
    ):
        parse_profile("dev", dev_raw)
    # And exactly the retention is accepted
    dev_raw["event_source"]["max_record_age_seconds"] = retention
    assert parse_profile("dev", dev_raw).event_source.max_record_age.to_seconds() == retention


def test_the_outbox_must_outlast_how_long_a_branch_may_wait_for_the_hot_path(dev_raw: dict[str, Any]) -> None:
    # Given an outbox retention equal to the hot path's maximum record age (a branch may wait that long)
    age = dev_raw["event_source"]["max_record_age_seconds"]
    dev_raw["features"]["outbox_retention_seconds"] = age
    # Then the profile is refused, saying why
    with pytest.raises(
        SettingsError,
        match=rf"profiles\.dev: features\.outbox_retention_seconds \({age}\) must exceed "
        rf"event_source\.max_record_age_seconds \({age}\)",
    ):
        parse_profile("dev", dev_raw)
    # And one second more is accepted (if the branch lag alarms still fire before it)
    dev_raw["features"]["outbox_retention_seconds"] = age + 1
    assert parse_profile("dev", dev_raw).features.outbox_retention.to_seconds() == age + 1


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
        match=rf"profiles\.dev: alarms\.{alarm} must be below features\.outbox_retention_seconds "
        rf"\({retention}\): a branch lagging past the outbox retention can no longer resolve records",
    ):
        parse_profile("dev", dev_raw)
    # And one second below is accepted
    dev_raw["alarms"][alarm] = retention - 1
    assert parse_profile("dev", dev_raw).features.outbox_retention.to_seconds() == retention


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda e: e[0]["variants"].pop(),
            r"profiles\.dev\.experiments\[0\]\.variants needs at least two variants, got 1",
        ),
        (
            lambda e: e.append(copy.deepcopy(e[0])),
            r"profiles\.dev\.experiments\[1\]\.id 'recency-half-life' is used twice",
        ),
        (
            lambda e: e[0]["variants"][1].update(name="control"),
            r"profiles\.dev\.experiments\[0\]\.variants\[1\]\.name 'control' is used twice",
        ),
        (
            lambda e: e[0]["variants"][0].update(weight=0),
            r"profiles\.dev\.experiments\[0\]\.variants\[0\]\.weight must be a number in \[1e-06, 1000000\], "
            r"got 0",
        ),
        (
            lambda e: e[0]["variants"][0].update(params=[1]),
            r"profiles\.dev\.experiments\[0\]\.variants\[0\]\.params must be an object of scalars",
        ),
        (
            lambda e: e[0]["variants"][0].update(params={"seed_items": {"a": 1}}),
            r"profiles\.dev\.experiments\[0\]\.variants\[0\]\.params must be an object of scalars",
        ),
        (
            lambda e: e[0].update(id="a/b"),
            r"profiles\.dev\.experiments\[0\]\.id must match \[A-Za-z0-9\._:@-\]\{1,64\}, got 'a/b'",
        ),
        (
            lambda e: e[0]["variants"][0].update(weight=1_000_000.000001),
            r"profiles\.dev\.experiments\[0\]\.variants\[0\]\.weight must be a number in \[1e-06, 1000000\]",
        ),
        (
            lambda e: e[0]["variants"][0].update(weight=0.0000009),
            r"profiles\.dev\.experiments\[0\]\.variants\[0\]\.weight must be a number in \[1e-06, 1000000\]",
        ),
    ],
)
def test_experiments_are_validated(dev_raw: dict[str, Any], mutate: Any, message: str) -> None:
    mutate(dev_raw["experiments"])
    with pytest.raises(SettingsError, match=message):
        parse_profile("dev", dev_raw)


@pytest.mark.parametrize("weight", [0.000001, 1_000_000])
def test_a_variant_weight_at_either_limit_is_accepted(dev_raw: dict[str, Any], weight: float) -> None:
    dev_raw["experiments"][0]["variants"][0]["weight"] = weight
    assert parse_profile("dev", dev_raw).experiments[0].variants[0].weight == weight


def test_a_variant_parameter_the_model_does_not_know_is_refused(dev_raw: dict[str, Any]) -> None:
    # Serve ignores unknown names, so this typo would make the variant silently identical to control.
    dev_raw["experiments"][0]["variants"][1]["params"] = {"recency_half_life_hours": 6}
    with pytest.raises(
        SettingsError,
        match=r"profiles\.dev\.experiments\[0\]\.variants\[1\]\.params has unknown model parameter\(s\) "
        r"recency_half_life_hours; known: affinity_boost, ",
    ):
        parse_profile("dev", dev_raw)


def test_a_variant_parameter_of_the_wrong_type_is_refused(dev_raw: dict[str, Any]) -> None:
    dev_raw["experiments"][0]["variants"][1]["params"] = {"exclude_purchased": 1}
    with pytest.raises(
        SettingsError, match=r"variants\[1\]\.params: model parameter exclude_purchased must be a boolean"
    ):
        parse_profile("dev", dev_raw)


def test_the_functions_never_import_the_settings_models_or_pydantic() -> None:
    # pydantic is a synth-time dependency: function assets hold lambdas/ and the pinned layers only.
    imported = {
        (path.name, package)
        for path in (REPO_ROOT / "lambdas").rglob("*.py")
        for package in imported_packages(path)
    }
    assert not [
        (name, module) for name, module in imported if module in {"pydantic", "pydantic_core", "stacks"}
    ]
