"""Typed, validated settings for one environment, read from CDK context.

`cdk.json` holds `context.profiles.{dev,prod,...}`; `-c env=prod` picks one (default `dev`). Every tunable
of the stack lives here exactly once; constructs read these objects and never hold a number of their own.
A profile must name every key (no silent defaults) and no unknown key (a typo must not be ignored); each
error names the full key path, e.g. `profiles.prod.event_source.batch_size`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_logs as logs
from streamrec_core.experiments import Experiment, experiments_json, parse_experiments

DEFAULT_PROFILE = "dev"
CONTEXT_PROFILES = "profiles"
CONTEXT_ENV = "env"

STREAM_MODES = ("ON_DEMAND", "PROVISIONED")
STARTING_POSITIONS = ("TRIM_HORIZON", "LATEST")
QUOTA_PERIODS = ("DAY", "WEEK", "MONTH")
ARCHITECTURES = ("arm64", "x86_64")
DEPENDENCY_SOURCES = ("layers", "bundled")
REMOVAL_POLICIES = ("DESTROY", "RETAIN", "SNAPSHOT")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# API Gateway ends every integration after 29 s, so a synchronous function must finish before that.
API_GATEWAY_INTEGRATION_LIMIT_SECONDS = 29


class SettingsError(ValueError):
    """A profile in CDK context is missing, incomplete or invalid; the message names the key."""


@dataclass(frozen=True)
class StreamSettings:
    mode: str  # ON_DEMAND | PROVISIONED
    shard_count: int | None  # only for PROVISIONED
    retention: Duration


@dataclass(frozen=True)
class EventSourceSettings:
    """The Kinesis -> process event source mapping (the hot path)."""

    batch_size: int
    max_batching_window: Duration
    parallelization_factor: int
    retry_attempts: int
    max_record_age: Duration
    starting_position: str  # TRIM_HORIZON | LATEST


@dataclass(frozen=True)
class BranchSourceSettings:
    """A Kinesis -> aggregate branch event source mapping (items or experiments) on the same stream.

    Its starting position is the hot path's; its ParallelizationFactor is always 1 (one invocation per
    shard, records in sequence order: the branches keep per-shard watermarks on shared rows), and it
    never gives a batch up (it waits for the hot path, which it follows), so neither is a setting.
    """

    batch_size: int
    max_batching_window: Duration


@dataclass(frozen=True)
class FunctionSettings:
    memory_mb: int
    timeout: Duration


@dataclass(frozen=True)
class FunctionsSettings:
    ingest: FunctionSettings
    process: FunctionSettings
    aggregate: FunctionSettings  # the items branch (co-visitation, trending)
    experiments: FunctionSettings  # the experiments branch (filtered to attributed events)
    serve: FunctionSettings
    architecture: str  # arm64 | x86_64, also picks the Powertools layer flavour and the wheels
    # layers: Powertools from its public layer by ARN, msgspec from the stack's own layer (local pip
    # bundling); bundled: both pip-installed into each function asset (targets without layers)
    dependencies: str
    powertools_layer_version: int
    log_retention: logs.RetentionDays
    log_level: str


@dataclass(frozen=True)
class FeatureSettings:
    user_ttl: Duration  # a user item expires after this long without events
    item_ttl: Duration  # item window buckets expire after this long
    allowed_lateness: Duration
    # How long the hot path keeps a record's outcome in the user row for the aggregate branches; a
    # branch lagging longer cannot resolve the record any more (counted as AggregateUnresolved).
    outbox_retention: Duration


@dataclass(frozen=True)
class IngestSettings:
    max_event_age: Duration
    max_future_skew: Duration
    max_body_bytes: int
    max_events_per_request: int
    put_retry_budget: Duration  # PutRecords retries of failed entries, within API Gateway's 29 s


@dataclass(frozen=True)
class UsagePlanSettings:
    rate_limit: float  # requests per second, steady state
    burst_limit: int
    quota_limit: int
    quota_period: str  # DAY | WEEK | MONTH


@dataclass(frozen=True)
class ApiSettings:
    stage_name: str
    stage_rate_limit: float  # method throttling for every method of the stage
    stage_burst_limit: int
    producers: UsagePlanSettings  # POST /v1/events
    readers: UsagePlanSettings  # the GET routes
    cors_allowed_origins: tuple[str, ...]  # empty: no CORS preflight at all


@dataclass(frozen=True)
class AlarmSettings:
    """Thresholds, each named; rates are fractions (0.05 = 5 %)."""

    period: Duration
    evaluation_periods: int
    iterator_age: Duration  # the hot path's freshness goal
    aggregate_iterator_age: Duration  # items branch; must stay below features.outbox_retention
    experiments_iterator_age: Duration  # experiments branch; likewise
    dlq_depth: int
    on_failure_depth: int
    process_errors: int
    process_throttles: int
    aggregate_errors: int
    experiments_errors: int
    aggregate_unresolved: int  # records a branch could no longer resolve (data quality)
    ingest_rejection_rate: float
    api_5xx_rate: float
    api_p99_latency: Duration
    serve_fallback_rate: float
    dynamodb_throttles: int
    kinesis_write_throttles: int
    put_records_failures: int
    email: str | None


@dataclass(frozen=True)
class Settings:
    profile: str
    stream: StreamSettings
    event_source: EventSourceSettings
    aggregate_source: BranchSourceSettings
    experiments_source: BranchSourceSettings
    functions: FunctionsSettings
    features: FeatureSettings
    ingest: IngestSettings
    api: ApiSettings
    alarms: AlarmSettings
    experiments: tuple[Experiment, ...]
    removal_policy: RemovalPolicy

    def experiments_json(self) -> str:
        """The experiments as the serve function reads them (ENV_EXPERIMENTS), compact and stable."""
        return experiments_json(self.experiments)


# --- reading ---------------------------------------------------------------------------------------


class _Reader:
    """Reads one mapping of the profile, remembering its path for error messages and which keys it used."""

    def __init__(self, path: str, raw: Any) -> None:
        if not isinstance(raw, Mapping):
            raise SettingsError(f"{path} must be an object, got {type(raw).__name__}")
        self.path = path
        self.raw = raw
        self.used: set[str] = set()

    def _get(self, key: str) -> Any:
        if key not in self.raw:
            raise SettingsError(f"{self.path}.{key} is required")
        self.used.add(key)
        return self.raw[key]

    def sub(self, key: str) -> _Reader:
        return _Reader(f"{self.path}.{key}", self._get(key))

    def int_(self, key: str, lo: int, hi: int) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise SettingsError(f"{self.path}.{key} must be an integer in [{lo}, {hi}], got {value!r}")
        return value

    def float_(self, key: str, lo: float, hi: float) -> float:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise SettingsError(f"{self.path}.{key} must be a number in [{lo}, {hi}], got {value!r}")
        return float(value)

    def choice(self, key: str, options: tuple[str, ...]) -> str:
        value = self._get(key)
        if value not in options:
            raise SettingsError(f"{self.path}.{key} must be one of {', '.join(options)}, got {value!r}")
        return str(value)

    def str_(self, key: str, pattern: re.Pattern[str]) -> str:
        value = self._get(key)
        if not isinstance(value, str) or not pattern.match(value):
            raise SettingsError(f"{self.path}.{key} must match {pattern.pattern}, got {value!r}")
        return value

    def optional_str(self, key: str, pattern: re.Pattern[str]) -> str | None:
        # CDK drops null values from context, so an optional key may be absent as well as null.
        if self.raw.get(key) is None:
            self.used.add(key)
            return None
        return self.str_(key, pattern)

    def list_(self, key: str) -> list[Any]:
        value = self._get(key)
        if not isinstance(value, list):
            raise SettingsError(f"{self.path}.{key} must be a list, got {type(value).__name__}")
        return value

    def done(self) -> None:
        unknown = sorted(set(self.raw) - self.used)
        if unknown:
            raise SettingsError(f"{self.path} has unknown key(s): {', '.join(unknown)}")


def _stream(r: _Reader) -> StreamSettings:
    mode = r.choice("mode", STREAM_MODES)
    shard_count: int | None = None
    if mode == "PROVISIONED":
        shard_count = r.int_("shard_count", 1, 10_000)
    elif r.raw.get("shard_count") is not None:
        raise SettingsError(f"{r.path}.shard_count must be null or absent when mode is ON_DEMAND")
    else:
        r.used.add("shard_count")  # CDK drops null context values, so it may also be absent
    # Kinesis retention is 24 h .. 365 days.
    retention = Duration.hours(r.int_("retention_hours", 24, 8760))
    r.done()
    return StreamSettings(mode=mode, shard_count=shard_count, retention=retention)


def _event_source(r: _Reader) -> EventSourceSettings:
    # Ranges are the Kinesis event source mapping's own limits.
    result = EventSourceSettings(
        batch_size=r.int_("batch_size", 1, 10_000),
        max_batching_window=Duration.seconds(r.int_("max_batching_window_seconds", 0, 300)),
        parallelization_factor=r.int_("parallelization_factor", 1, 10),
        retry_attempts=r.int_("retry_attempts", 0, 10_000),
        max_record_age=Duration.seconds(r.int_("max_record_age_seconds", 60, 604_800)),
        starting_position=r.choice("starting_position", STARTING_POSITIONS),
    )
    r.done()
    return result


def _branch_source(r: _Reader) -> BranchSourceSettings:
    result = BranchSourceSettings(
        batch_size=r.int_("batch_size", 1, 10_000),
        max_batching_window=Duration.seconds(r.int_("max_batching_window_seconds", 0, 300)),
    )
    r.done()
    return result


def _function(r: _Reader, max_timeout: int) -> FunctionSettings:
    result = FunctionSettings(
        memory_mb=r.int_("memory_mb", 128, 10_240),
        timeout=Duration.seconds(r.int_("timeout_seconds", 1, max_timeout)),
    )
    r.done()
    return result


def _functions(r: _Reader) -> FunctionsSettings:
    result = FunctionsSettings(
        ingest=_function(r.sub("ingest"), API_GATEWAY_INTEGRATION_LIMIT_SECONDS),
        process=_function(r.sub("process"), 900),
        aggregate=_function(r.sub("aggregate"), 900),
        experiments=_function(r.sub("experiments"), 900),
        serve=_function(r.sub("serve"), API_GATEWAY_INTEGRATION_LIMIT_SECONDS),
        architecture=r.choice("architecture", ARCHITECTURES),
        dependencies=r.choice("dependencies", DEPENDENCY_SOURCES),
        powertools_layer_version=r.int_("powertools_layer_version", 1, 10_000),
        log_retention=getattr(
            logs.RetentionDays, r.choice("log_retention", tuple(m.name for m in logs.RetentionDays))
        ),
        log_level=r.choice("log_level", LOG_LEVELS),
    )
    r.done()
    return result


def _features(r: _Reader) -> FeatureSettings:
    result = FeatureSettings(
        user_ttl=Duration.days(r.int_("user_ttl_days", 1, 3650)),
        item_ttl=Duration.days(r.int_("item_ttl_days", 1, 3650)),
        allowed_lateness=Duration.seconds(r.int_("allowed_lateness_seconds", 0, 7 * 86_400)),
        # The functions refuse less than 60 s (OUTBOX_RETENTION_SECONDS); a day is far beyond any lag
        # worth waiting for.
        outbox_retention=Duration.seconds(r.int_("outbox_retention_seconds", 60, 7 * 86_400)),
    )
    r.done()
    return result


def _ingest(r: _Reader) -> IngestSettings:
    result = IngestSettings(
        max_event_age=Duration.seconds(r.int_("max_event_age_seconds", 60, 365 * 86_400)),
        max_future_skew=Duration.seconds(r.int_("max_future_skew_seconds", 0, 86_400)),
        # API Gateway refuses payloads above 10 MB.
        max_body_bytes=r.int_("max_body_bytes", 1024, 10 * 1024 * 1024),
        max_events_per_request=r.int_("max_events_per_request", 1, 500),  # PutRecords takes at most 500
        put_retry_budget=Duration.seconds(
            r.int_("put_retry_budget_seconds", 1, API_GATEWAY_INTEGRATION_LIMIT_SECONDS - 1)
        ),
    )
    r.done()
    return result


def _usage_plan(r: _Reader) -> UsagePlanSettings:
    result = UsagePlanSettings(
        rate_limit=r.float_("rate_limit", 0.001, 1_000_000),
        burst_limit=r.int_("burst_limit", 1, 1_000_000),
        quota_limit=r.int_("quota_limit", 1, 2_000_000_000),
        quota_period=r.choice("quota_period", QUOTA_PERIODS),
    )
    r.done()
    return result


_ORIGIN_RE = re.compile(r"^(\*|https?://[A-Za-z0-9.-]+(:\d+)?)$")  # "*" allows any origin


def _api(r: _Reader) -> ApiSettings:
    origins = r.list_("cors_allowed_origins")
    for i, origin in enumerate(origins):
        if not isinstance(origin, str) or not _ORIGIN_RE.match(origin):
            raise SettingsError(
                f"{r.path}.cors_allowed_origins[{i}] must be '*' or an origin like https://example.com"
            )
    result = ApiSettings(
        stage_name=r.str_("stage_name", re.compile(r"^[A-Za-z0-9_]{1,64}$")),
        stage_rate_limit=r.float_("stage_rate_limit", 0.001, 1_000_000),
        stage_burst_limit=r.int_("stage_burst_limit", 1, 1_000_000),
        producers=_usage_plan(r.sub("producers")),
        readers=_usage_plan(r.sub("readers")),
        cors_allowed_origins=tuple(origins),
    )
    r.done()
    return result


_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _alarms(r: _Reader) -> AlarmSettings:
    result = AlarmSettings(
        period=Duration.seconds(r.int_("period_seconds", 60, 86_400)),
        evaluation_periods=r.int_("evaluation_periods", 1, 100),
        iterator_age=Duration.seconds(r.int_("iterator_age_seconds", 1, 604_800)),
        aggregate_iterator_age=Duration.seconds(r.int_("aggregate_iterator_age_seconds", 1, 604_800)),
        experiments_iterator_age=Duration.seconds(r.int_("experiments_iterator_age_seconds", 1, 604_800)),
        dlq_depth=r.int_("dlq_depth", 0, 1_000_000),
        on_failure_depth=r.int_("on_failure_depth", 0, 1_000_000),
        process_errors=r.int_("process_errors", 0, 1_000_000),
        process_throttles=r.int_("process_throttles", 0, 1_000_000),
        aggregate_errors=r.int_("aggregate_errors", 0, 1_000_000),
        experiments_errors=r.int_("experiments_errors", 0, 1_000_000),
        aggregate_unresolved=r.int_("aggregate_unresolved", 0, 1_000_000),
        ingest_rejection_rate=r.float_("ingest_rejection_rate", 0, 1),
        api_5xx_rate=r.float_("api_5xx_rate", 0, 1),
        api_p99_latency=Duration.millis(r.int_("api_p99_latency_ms", 1, 29_000)),
        serve_fallback_rate=r.float_("serve_fallback_rate", 0, 1),
        dynamodb_throttles=r.int_("dynamodb_throttles", 0, 1_000_000),
        kinesis_write_throttles=r.int_("kinesis_write_throttles", 0, 1_000_000),
        put_records_failures=r.int_("put_records_failures", 0, 1_000_000),
        email=r.optional_str("email", _EMAIL_RE),
    )
    r.done()
    return result


def _experiments(r: _Reader) -> tuple[Experiment, ...]:
    # The rules are serve's own (streamrec_core.experiments), so a profile serve would refuse fails here.
    try:
        return parse_experiments(r.list_("experiments"))
    except ValueError as exc:
        raise SettingsError(f"{r.path}.{exc}") from None


def parse_profile(name: str, raw: Any) -> Settings:
    """Validate one profile (the object under `profiles.<name>`) into Settings."""
    r = _Reader(f"{CONTEXT_PROFILES}.{name}", raw)
    settings = Settings(
        profile=name,
        stream=_stream(r.sub("stream")),
        event_source=_event_source(r.sub("event_source")),
        aggregate_source=_branch_source(r.sub("aggregate_source")),
        experiments_source=_branch_source(r.sub("experiments_source")),
        functions=_functions(r.sub("functions")),
        features=_features(r.sub("features")),
        ingest=_ingest(r.sub("ingest")),
        api=_api(r.sub("api")),
        alarms=_alarms(r.sub("alarms")),
        experiments=_experiments(r),
        removal_policy=getattr(RemovalPolicy, r.choice("removal_policy", REMOVAL_POLICIES)),
    )
    r.done()
    _check_cross_field(settings, r.path)
    return settings


def _check_cross_field(s: Settings, path: str) -> None:
    if s.ingest.put_retry_budget.to_seconds() >= s.functions.ingest.timeout.to_seconds():
        raise SettingsError(
            f"{path}.ingest.put_retry_budget_seconds must be below functions.ingest.timeout_seconds "
            "so ingest can still answer after its last retry"
        )
    # A record older than the stream's retention is gone before the age limit could ever apply.
    if s.event_source.max_record_age.to_seconds() > s.stream.retention.to_seconds():
        raise SettingsError(
            f"{path}.event_source.max_record_age_seconds must not exceed stream.retention_hours"
        )
    # A branch resolves each record through the outbox the hot path keeps in the user row until the
    # branches have consumed it, for at most outbox_retention; lagging longer, it can no longer resolve
    # records (they are counted, not applied). A branch waits up to the hot path's maximum record age for
    # a record the hot path has not applied yet, so the retention must outlast that wait, and its
    # iterator-age alarm must fire while the lag can still be caught up.
    retention = s.features.outbox_retention.to_seconds()
    if retention <= s.event_source.max_record_age.to_seconds():
        raise SettingsError(
            f"{path}.features.outbox_retention_seconds ({int(retention)}) must exceed "
            "event_source.max_record_age_seconds: a branch may wait that long for the hot path, and the "
            "outbox entries of the records after it must still be there when it goes on"
        )
    for key, age in (
        ("aggregate_iterator_age_seconds", s.alarms.aggregate_iterator_age),
        ("experiments_iterator_age_seconds", s.alarms.experiments_iterator_age),
    ):
        if age.to_seconds() >= retention:
            raise SettingsError(
                f"{path}.alarms.{key} must be below features.outbox_retention_seconds ({int(retention)}): "
                "a branch lagging past the outbox retention can no longer resolve records, so the "
                "alarm must fire before that"
            )


def settings_from_context(node: Any) -> Settings:
    """Settings for the profile named by context `env` (default dev), from context `profiles`.

    `node` is a construct node (e.g. `app.node`); anything with `try_get_context` works.
    """
    profiles = node.try_get_context(CONTEXT_PROFILES)
    if not isinstance(profiles, Mapping) or not profiles:
        raise SettingsError(f"CDK context '{CONTEXT_PROFILES}' is missing (expected in cdk.json)")
    name = node.try_get_context(CONTEXT_ENV) or DEFAULT_PROFILE
    if name not in profiles:
        raise SettingsError(f"unknown profile -c {CONTEXT_ENV}={name}; known: {', '.join(sorted(profiles))}")
    return parse_profile(name, profiles[name])


def load_profiles_from_cdk_json(path: str = "cdk.json") -> dict[str, Settings]:
    """Every profile in cdk.json, validated; for tools (cost model, emulator) that run outside CDK."""
    with open(path, encoding="utf-8") as fh:
        profiles = json.load(fh)["context"][CONTEXT_PROFILES]
    return {name: parse_profile(name, raw) for name, raw in profiles.items()}
