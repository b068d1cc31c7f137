"""Typed, validated settings for one environment, read from CDK context.

`cdk.json` holds `context.profiles.{dev,prod,...}`; `-c env=prod` picks one (default `dev`). Every tunable
of the stack lives here exactly once; constructs read these objects and never hold a number of their own.
The models below are the schema of a profile (pydantic, at synth time only: never in a function asset).
A profile must name every key (no silent defaults) and no unknown key (a typo must not be ignored); each
error names the full key path and the rule, e.g.
`profiles.prod.event_source.batch_size: Input should be less than or equal to 10000, got 20000`.
Fields keep the keys' units (`timeout_seconds`); constructs read them as `Duration`s (`timeout`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_logs as logs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from streamrec_core.experiments import Experiment, experiments_json, parse_experiments

DEFAULT_PROFILE = "dev"
CONTEXT_PROFILES = "profiles"
CONTEXT_ENV = "env"

# API Gateway ends every integration after 29 s, so a synchronous function must finish before that.
API_GATEWAY_INTEGRATION_LIMIT_SECONDS = 29
_ORIGIN = r"^(\*|https?://[A-Za-z0-9.-]+(:\d+)?)$"  # "*" allows any origin
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_MAX_COUNT = 1_000_000  # upper bound of alarm counts and API throttles


class SettingsError(ValueError):
    """A profile in CDK context is missing, incomplete or invalid; the message names the key."""


class _Model(BaseModel):
    # strict: JSON types as written (no "5" or true for an integer); CDK drops null context values, so an
    # optional key may be absent as well as null. Lists and enum names opt out of strict per field.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class StreamSettings(_Model):
    mode: Literal["ON_DEMAND", "PROVISIONED"]
    shard_count: int | None = Field(default=None, ge=1, le=10_000)  # only for PROVISIONED
    retention_hours: int = Field(ge=24, le=8760)  # Kinesis keeps 24 h .. 365 days

    @model_validator(mode="after")
    def _shards_follow_mode(self) -> StreamSettings:
        if self.mode == "PROVISIONED" and self.shard_count is None:
            raise ValueError("shard_count is required when mode is PROVISIONED")
        if self.mode == "ON_DEMAND" and self.shard_count is not None:
            raise ValueError("shard_count must be null or absent when mode is ON_DEMAND")
        return self

    @property
    def retention(self) -> Duration:
        return Duration.hours(self.retention_hours)


class BranchSourceSettings(_Model):
    """A Kinesis -> aggregate branch event source mapping (items or experiments) on the same stream.

    Its starting position is the hot path's; its ParallelizationFactor is always 1 (one invocation per
    shard, records in sequence order: the branches keep per-shard watermarks on shared rows), and it
    never gives a batch up (it waits for the hot path, which it follows), so neither is a setting.
    Ranges are the Kinesis event source mapping's own limits.
    """

    batch_size: int = Field(ge=1, le=10_000)
    max_batching_window_seconds: int = Field(ge=0, le=300)

    @property
    def max_batching_window(self) -> Duration:
        return Duration.seconds(self.max_batching_window_seconds)


class EventSourceSettings(BranchSourceSettings):
    """The Kinesis -> process event source mapping (the hot path)."""

    parallelization_factor: int = Field(ge=1, le=10)
    retry_attempts: int = Field(ge=0, le=10_000)
    max_record_age_seconds: int = Field(ge=60, le=604_800)
    starting_position: Literal["TRIM_HORIZON", "LATEST"]

    @property
    def max_record_age(self) -> Duration:
        return Duration.seconds(self.max_record_age_seconds)


class FunctionSettings(_Model):
    memory_mb: int = Field(ge=128, le=10_240)
    timeout_seconds: int = Field(ge=1, le=900)

    @property
    def timeout(self) -> Duration:
        return Duration.seconds(self.timeout_seconds)


class ApiFunctionSettings(FunctionSettings):
    """A function behind API Gateway: it must answer before the integration ends."""

    timeout_seconds: int = Field(ge=1, le=API_GATEWAY_INTEGRATION_LIMIT_SECONDS)


class FunctionsSettings(_Model):
    ingest: ApiFunctionSettings
    process: FunctionSettings
    aggregate: FunctionSettings  # the items branch (co-visitation, trending)
    experiments: FunctionSettings  # the experiments branch (filtered to attributed events)
    serve: ApiFunctionSettings
    architecture: Literal["arm64", "x86_64"]  # also picks the Powertools layer flavour and the wheels
    # layers: Powertools from its public layer by ARN, msgspec from the stack's own layer (local pip
    # bundling); bundled: both pip-installed into each function asset (targets without layers)
    dependencies: Literal["layers", "bundled"]
    powertools_layer_version: int = Field(ge=1, le=10_000)
    log_retention: logs.RetentionDays = Field(strict=False)  # by name, e.g. ONE_WEEK
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class FeatureSettings(_Model):
    user_ttl_days: int = Field(ge=1, le=3650)  # a user item expires after this long without events
    item_ttl_days: int = Field(ge=1, le=3650)  # item window buckets expire after this long
    allowed_lateness_seconds: int = Field(ge=0, le=7 * 86_400)
    # How long the hot path keeps a record's outcome in the user row for the aggregate branches; a
    # branch lagging longer cannot resolve the record any more (counted as AggregateUnresolved). The
    # functions refuse less than 60 s (OUTBOX_RETENTION_SECONDS); a week is far beyond any lag worth
    # waiting for.
    outbox_retention_seconds: int = Field(ge=60, le=7 * 86_400)

    @property
    def user_ttl(self) -> Duration:
        return Duration.days(self.user_ttl_days)

    @property
    def item_ttl(self) -> Duration:
        return Duration.days(self.item_ttl_days)

    @property
    def allowed_lateness(self) -> Duration:
        return Duration.seconds(self.allowed_lateness_seconds)

    @property
    def outbox_retention(self) -> Duration:
        return Duration.seconds(self.outbox_retention_seconds)


class IngestSettings(_Model):
    max_event_age_seconds: int = Field(ge=60, le=365 * 86_400)
    max_future_skew_seconds: int = Field(ge=0, le=86_400)
    max_body_bytes: int = Field(ge=1024, le=10 * 1024 * 1024)  # API Gateway refuses more than 10 MB
    max_events_per_request: int = Field(ge=1, le=500)  # PutRecords takes at most 500
    # PutRecords retries of failed entries, within API Gateway's 29 s
    put_retry_budget_seconds: int = Field(ge=1, le=API_GATEWAY_INTEGRATION_LIMIT_SECONDS - 1)


class UsagePlanSettings(_Model):
    rate_limit: float = Field(ge=0.001, le=_MAX_COUNT)  # requests per second, steady state
    burst_limit: int = Field(ge=1, le=_MAX_COUNT)
    quota_limit: int = Field(ge=1, le=2_000_000_000)
    quota_period: Literal["DAY", "WEEK", "MONTH"]


class ApiSettings(_Model):
    stage_name: str = Field(pattern=r"^[A-Za-z0-9_]{1,64}$")
    stage_rate_limit: float = Field(ge=0.001, le=_MAX_COUNT)  # method throttling for every method
    stage_burst_limit: int = Field(ge=1, le=_MAX_COUNT)
    producers: UsagePlanSettings  # POST /v1/events
    readers: UsagePlanSettings  # the GET routes
    # "*" or origins like https://example.com; empty: no CORS preflight at all
    cors_allowed_origins: tuple[Annotated[str, Field(pattern=_ORIGIN)], ...] = Field(strict=False)


class AlarmSettings(_Model):
    """Thresholds, each named; rates are fractions (0.05 = 5 %)."""

    period_seconds: int = Field(ge=60, le=86_400)
    evaluation_periods: int = Field(ge=1, le=100)
    iterator_age_seconds: int = Field(ge=1, le=604_800)  # the hot path's freshness goal
    # The branches' lag; each must stay below features.outbox_retention_seconds.
    aggregate_iterator_age_seconds: int = Field(ge=1, le=604_800)
    experiments_iterator_age_seconds: int = Field(ge=1, le=604_800)
    dlq_depth: int = Field(ge=0, le=_MAX_COUNT)
    on_failure_depth: int = Field(ge=0, le=_MAX_COUNT)
    process_errors: int = Field(ge=0, le=_MAX_COUNT)
    process_throttles: int = Field(ge=0, le=_MAX_COUNT)
    aggregate_errors: int = Field(ge=0, le=_MAX_COUNT)
    experiments_errors: int = Field(ge=0, le=_MAX_COUNT)
    aggregate_unresolved: int = Field(ge=0, le=_MAX_COUNT)  # records a branch could no longer resolve
    ingest_rejection_rate: float = Field(ge=0, le=1)
    api_5xx_rate: float = Field(ge=0, le=1)
    api_p99_latency_ms: int = Field(ge=1, le=29_000)
    serve_fallback_rate: float = Field(ge=0, le=1)
    dynamodb_throttles: int = Field(ge=0, le=_MAX_COUNT)
    kinesis_write_throttles: int = Field(ge=0, le=_MAX_COUNT)
    put_records_failures: int = Field(ge=0, le=_MAX_COUNT)
    email: str | None = Field(default=None, pattern=_EMAIL)

    @property
    def period(self) -> Duration:
        return Duration.seconds(self.period_seconds)

    @property
    def iterator_age(self) -> Duration:
        return Duration.seconds(self.iterator_age_seconds)

    @property
    def aggregate_iterator_age(self) -> Duration:
        return Duration.seconds(self.aggregate_iterator_age_seconds)

    @property
    def experiments_iterator_age(self) -> Duration:
        return Duration.seconds(self.experiments_iterator_age_seconds)

    @property
    def api_p99_latency(self) -> Duration:
        return Duration.millis(self.api_p99_latency_ms)


class Settings(_Model):
    stream: StreamSettings
    event_source: EventSourceSettings
    aggregate_source: BranchSourceSettings
    experiments_source: BranchSourceSettings
    functions: FunctionsSettings
    features: FeatureSettings
    ingest: IngestSettings
    api: ApiSettings
    alarms: AlarmSettings
    # Read by serve's own rules (streamrec_core.experiments): a profile serve would refuse fails here.
    experiments: tuple[Experiment, ...]
    # RETAIN_ON_UPDATE_OR_DELETE is left out; read as a RemovalPolicy through the property below
    removal_policy_name: Literal["DESTROY", "RETAIN", "SNAPSHOT"] = Field(alias="removal_policy")
    _profile: str = PrivateAttr(default="")

    @property
    def profile(self) -> str:
        """The profile's name in `context.profiles` (not a key of the profile itself)."""
        return self._profile

    @property
    def removal_policy(self) -> RemovalPolicy:
        return RemovalPolicy[self.removal_policy_name]

    @field_validator("experiments", mode="plain")
    @classmethod
    def _experiments(cls, raw: Any) -> tuple[Experiment, ...]:
        return parse_experiments(raw)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        record_age = self.event_source.max_record_age_seconds
        retention = self.features.outbox_retention_seconds
        problems = []
        if self.ingest.put_retry_budget_seconds >= self.functions.ingest.timeout_seconds:
            problems.append(
                "ingest.put_retry_budget_seconds must be below functions.ingest.timeout_seconds "
                "so ingest can still answer after its last retry"
            )
        # A record older than the stream's retention is gone before the age limit could ever apply.
        if record_age > self.stream.retention_hours * 3600:
            problems.append("event_source.max_record_age_seconds must not exceed stream.retention_hours")
        # A branch resolves each record through the outbox the hot path keeps in the user row until the
        # branches have consumed it, for at most outbox_retention; lagging longer, it can no longer
        # resolve records (they are counted, not applied). A branch waits up to the hot path's maximum
        # record age for a record the hot path has not applied yet, so the retention must outlast that
        # wait, and its iterator-age alarm must fire while the lag can still be caught up.
        if retention <= record_age:
            problems.append(
                f"features.outbox_retention_seconds ({retention}) must exceed "
                f"event_source.max_record_age_seconds ({record_age}): a branch may wait that long for the "
                "hot path, and the outbox entries of the records after it must still be there when it goes on"
            )
        for key in ("aggregate_iterator_age_seconds", "experiments_iterator_age_seconds"):
            if getattr(self.alarms, key) >= retention:
                problems.append(
                    f"alarms.{key} must be below features.outbox_retention_seconds ({retention}): a branch "
                    "lagging past the outbox retention can no longer resolve records, so the alarm must "
                    "fire before that"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def experiments_json(self) -> str:
        """The experiments as the serve function reads them (ENV_EXPERIMENTS), compact and stable."""
        return experiments_json(self.experiments)


def parse_profile(name: str, raw: Any) -> Settings:
    """Validate one profile (the object under `profiles.<name>`) into Settings."""
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(
            "\n".join(_describe(f"{CONTEXT_PROFILES}.{name}", e) for e in exc.errors())
        ) from None
    settings._profile = name
    return settings


def _describe(path: str, error: ErrorDetails) -> str:
    """One pydantic error as `profiles.<name>.<key path>: <rule>, got <value>`."""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    message = str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
    field = str(error["loc"][-1]) if error["loc"] else ""
    if error["type"] == "value_error" and field and message.startswith(field):
        # The rule already names its path below the profile (streamrec_core.experiments): not twice.
        return f"{path.removesuffix(field)}{message}"
    value = error["input"]
    if error["type"] != "missing" and (value is None or isinstance(value, str | int | float)):
        message += f", got {value!r}"
    return f"{path}: {message}"


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
