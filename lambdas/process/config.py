"""The process function's settings, read once per container from the environment CDK sets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from streamrec_core import constants as c
from streamrec_core.env import require_str
from streamrec_core.features.config import FeatureConfig, feature_config_from_env


@dataclass(frozen=True, slots=True)
class ProcessConfig:
    users_table: str
    items_table: str  # read only: the aggregate branches' progress rows
    dead_letter_queue_url: str
    features: FeatureConfig

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProcessConfig:
        """Validate the environment; ConfigError names the first bad variable."""
        return cls(
            users_table=require_str(env, c.ENV_USERS_TABLE),
            items_table=require_str(env, c.ENV_ITEMS_TABLE),
            dead_letter_queue_url=require_str(env, c.ENV_DLQ_URL),
            features=feature_config_from_env(env),
        )
