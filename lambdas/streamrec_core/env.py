"""Fail-fast readers for the environment CDK gives each function.

A missing or malformed setting is a deployment bug: it must stop the cold start with a message naming
the variable, never fall back to a default silently.
"""

from __future__ import annotations

from collections.abc import Mapping


class ConfigError(RuntimeError):
    """Raised at cold start when the function's environment is incomplete or invalid."""


def require_str(env: Mapping[str, str], key: str) -> str:
    value = env.get(key, "").strip()
    if not value:
        raise ConfigError(f"environment variable {key} is required and must be non-empty")
    return value


def require_int(
    env: Mapping[str, str], key: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    raw = require_str(env, key)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {key} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"environment variable {key} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"environment variable {key} must be <= {maximum}, got {value}")
    return value


def require_float(env: Mapping[str, str], key: str, *, minimum: float | None = None) -> float:
    raw = require_str(env, key)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"environment variable {key} must be a number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"environment variable {key} must be >= {minimum}, got {value}")
    return value
