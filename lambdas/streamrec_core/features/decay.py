"""Exponential decay by half-life, with a table for the small integer steps the folds use most."""

from __future__ import annotations

from typing import Final

_TABLE_SIZE: Final = 512


class Decay:
    """`decay(steps)` = 0.5 ** (steps / half_life); steps <= 0 give 1.0 (never grown)."""

    __slots__ = ("half_life", "table")

    def __init__(self, half_life: float) -> None:
        if half_life <= 0:
            raise ValueError("half_life must be > 0")
        self.half_life = half_life
        self.table = [0.5 ** (step / half_life) for step in range(_TABLE_SIZE)]

    def __call__(self, steps: int) -> float:
        if steps <= 0:
            return 1.0
        if steps < _TABLE_SIZE:
            return self.table[steps]
        return 0.5 ** (steps / self.half_life)


_DECAYS: dict[float, Decay] = {}


def hour_decay(half_life_hours: float) -> Decay:
    """The shared Decay of a half-life in hours (built once per value)."""
    decay = _DECAYS.get(half_life_hours)
    if decay is None:
        decay = _DECAYS[half_life_hours] = Decay(half_life_hours)
    return decay


def decayed(score: float, at: int, to: int, half_life: float) -> float:
    """A score kept at step `at`, decayed to step `to` (unchanged when `to` is not later)."""
    if to <= at:
        return float(score)
    return float(score) * hour_decay(half_life)(to - at)
