"""The aggregate functions' settings, read once per container from the environment CDK sets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from streamrec_core import constants as c
from streamrec_core.env import require_int, require_str
from streamrec_core.features.config import FeatureConfig, feature_config_from_env


@dataclass(frozen=True, slots=True)
class AggregateConfig:
    users_table: str
    items_table: str
    features: FeatureConfig
    hot_path_max_record_age_s: int  # -1: the hot path's mapping never gives a record up

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AggregateConfig:
        """Validate the environment; ConfigError names the first bad variable."""
        return cls(
            users_table=require_str(env, c.ENV_USERS_TABLE),
            items_table=require_str(env, c.ENV_ITEMS_TABLE),
            features=feature_config_from_env(env),
            hot_path_max_record_age_s=require_int(env, c.ENV_HOT_PATH_MAX_RECORD_AGE_SECONDS, minimum=-1),
        )
