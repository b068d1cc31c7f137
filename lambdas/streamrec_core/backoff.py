"""Exponential backoff: the one formula every retry loop of the functions sleeps by.

Retry number n (n = 1 for the first retry) waits up to `min(cap, base * 2**(n - 1))`. With full jitter
the wait is that bound times a uniform draw in [0, 1] ("full jitter", AWS Architecture Blog, "Exponential
Backoff And Jitter"): writers that collided spread out instead of retrying in step. Without jitter it is
the bound itself, which suits throttling (every waiter backs off; spreading them buys nothing).
`streamrec_client` keeps its own copy of this line: producers import it without the functions' code.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

NO_JITTER = 1.0
# 2.0 ** 1024 overflows a float; any real cap is far below 2 ** 1000 times any base.
_MAX_EXPONENT = 1000


def backoff_delay(attempt: int, *, base: float, cap: float = math.inf, jitter: float = NO_JITTER) -> float:
    """Seconds to wait before retry number `attempt` (1 = the first): `min(cap, base * 2**(attempt-1))`
    scaled by `jitter`, a uniform draw in [0, 1] for full jitter (NO_JITTER: the bound itself)."""
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, not {attempt}")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"jitter must be a draw in [0, 1], not {jitter}")
    return min(cap, base * 2.0 ** min(attempt - 1, _MAX_EXPONENT)) * jitter


@dataclass(slots=True)
class WriteRetries:
    """The retry budget of a read-modify-write loop over conditional writes (the hot path's and the
    aggregate branches'): `fresh()` gives each loop its own count.

    Each failed round counts against its kind: a throttled round backs off exponentially; a round lost
    to a concurrent writer (conflict) backs off with full jitter, since writers that collided would
    otherwise re-read and collide again in step.
    """

    max_conflicts: int = 5
    max_throttles: int = 3
    base_s: float = 0.05
    jitter: Callable[[], float] = random.random
    conflicts: int = 0
    throttles: int = 0

    def fresh(self) -> WriteRetries:
        """The same budget with nothing spent."""
        return WriteRetries(self.max_conflicts, self.max_throttles, self.base_s, self.jitter)

    def again(self, *, throttled: bool, sleep: Callable[[float], None]) -> bool:
        """Count one more failed round; sleep and return True if another is allowed, else False."""
        if throttled:
            self.throttles += 1
            if self.throttles > self.max_throttles:
                return False
            sleep(backoff_delay(self.throttles, base=self.base_s))
        else:
            self.conflicts += 1
            if self.conflicts > self.max_conflicts:
                return False
            sleep(backoff_delay(self.conflicts, base=self.base_s, jitter=self.jitter()))
        return True
