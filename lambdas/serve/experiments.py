"""Per-variant statistics of an experiment (its configuration and assignment: streamrec_core.experiments)."""

from __future__ import annotations

import math

from streamrec_core.responses import Rate


def wilson(successes: int, trials: int, z: float = 1.959963984540054) -> Rate:
    """A proportion with its Wilson score interval (95% by default); all None without trials."""
    if trials <= 0:
        return Rate(None, None, None)
    successes = max(0, min(successes, trials))
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    return Rate(p, max(0.0, centre - half), min(1.0, centre + half))
