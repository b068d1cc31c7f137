"""The ingest function's settings, read once per container from the environment CDK sets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from streamrec_core import constants as c
from streamrec_core import routes
from streamrec_core.env import ConfigError, require_float, require_int, require_str
from streamrec_core.http import parse_origins

# API Gateway ends every integration after 29 s; the retry budget must leave room for the rest.
API_GATEWAY_LIMIT_SECONDS = 29.0
# Smallest body limit that still fits one maximal event in an envelope.
MIN_BODY_BYTES = 2 * c.MAX_EVENT_BYTES


@dataclass(frozen=True, slots=True)
class IngestConfig:
    stream_name: str
    max_event_age: timedelta
    max_future_skew: timedelta
    max_body_bytes: int
    max_events_per_request: int
    put_retry_budget_seconds: float
    cors_allowed_origins: tuple[str, ...]
    key_ids: Mapping[routes.KeyRole, str]  # the API key id each key role of ingest's routes accepts

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IngestConfig:
        """Validate the environment; ConfigError names the first bad variable."""
        budget = require_float(env, c.ENV_PUT_RETRY_BUDGET_SECONDS, minimum=0.0)
        if budget >= API_GATEWAY_LIMIT_SECONDS:
            raise ConfigError(
                f"environment variable {c.ENV_PUT_RETRY_BUDGET_SECONDS} must be < "
                f"{API_GATEWAY_LIMIT_SECONDS:.0f} (API Gateway's integration limit), got {budget}"
            )
        return cls(
            stream_name=require_str(env, c.ENV_STREAM_NAME),
            max_event_age=timedelta(seconds=require_int(env, c.ENV_MAX_EVENT_AGE_SECONDS, minimum=1)),
            max_future_skew=timedelta(seconds=require_int(env, c.ENV_MAX_FUTURE_SKEW_SECONDS, minimum=0)),
            max_body_bytes=require_int(env, c.ENV_MAX_BODY_BYTES, minimum=MIN_BODY_BYTES),
            max_events_per_request=require_int(
                env, c.ENV_MAX_EVENTS_PER_REQUEST, minimum=1, maximum=c.MAX_EVENTS_PER_REQUEST
            ),
            put_retry_budget_seconds=budget,
            # Optional by design: no origins means no browser access (no CORS headers).
            cors_allowed_origins=parse_origins(env.get(c.ENV_CORS_ALLOWED_ORIGINS)),
            key_ids=routes.key_ids_from_env(env, routes.INGEST),
        )
