"""The process function's settings, read once per container from the environment CDK sets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from streamrec_core import constants as c
from streamrec_core.env import require_int, require_str
from streamrec_core.features import FeatureConfig


@dataclass(frozen=True, slots=True)
class ProcessConfig:
    users_table: str
    items_table: str
    dead_letter_queue_url: str
    features: FeatureConfig

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProcessConfig:
        """Validate the environment; ConfigError names the first bad variable."""
        return cls(
            users_table=require_str(env, c.ENV_USERS_TABLE),
            items_table=require_str(env, c.ENV_ITEMS_TABLE),
            dead_letter_queue_url=require_str(env, c.ENV_DLQ_URL),
            features=FeatureConfig(
                user_ttl_seconds=require_int(env, c.ENV_USER_TTL_SECONDS, minimum=1),
                item_ttl_seconds=require_int(env, c.ENV_ITEM_TTL_SECONDS, minimum=1),
                allowed_lateness_ms=require_int(env, c.ENV_ALLOWED_LATENESS_SECONDS, minimum=0) * 1000,
                trending_slots=require_int(env, c.ENV_TRENDING_SLOTS, minimum=1, maximum=64),
            ),
        )
