"""API Gateway's usage plan limits for the local gateway: a per-key token bucket at the plan's rate and
burst (or a per-method override) and a quota per period. `UsagePlanLimits.refusal` names the gateway
response that refuses a request (THROTTLED, QUOTA_EXCEEDED), or None.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from local_emulator.rest_api import ApiKey, Method, UsagePlan


class TokenBucket:
    """API Gateway's throttling model: `burst` tokens, refilled at `rate` per second."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self.capacity = float(burst)
        self.tokens = float(burst)
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Take one token; False when the request must be throttled."""
        with self._lock:
            now = self._clock()
            self.tokens = min(self.capacity, self.tokens + (now - self._last) * self.rate)
            self._last = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False


class Quota:
    """A usage plan's quota for one key: `limit` requests per period, counted from the first."""

    def __init__(self, limit: int, period_s: float, clock: Callable[[], float]) -> None:
        self.limit, self.period_s, self._clock = limit, period_s, clock
        self.start, self.used = clock(), 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            if now - self.start >= self.period_s:
                self.start, self.used = now, 0
            if self.used >= self.limit:
                return False
            self.used += 1
            return True


class UsagePlanLimits:
    """The token buckets and quotas of one REST API's usage plans, shared by all request threads."""

    def __init__(self, api_id: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.api_id = api_id
        self._clock = clock
        self._buckets: dict[tuple[str, ...], TokenBucket] = {}
        self._quotas: dict[tuple[str, str], Quota] = {}
        self._lock = threading.Lock()

    def refusal(self, key: ApiKey, stage: str, method: Method) -> str | None:
        """The gateway response type refusing the request (THROTTLED, QUOTA_EXCEEDED), or None."""
        for plan in key.plans:
            if (self.api_id, stage) not in plan.stages:
                continue
            method_path = f"{method.resource_path}/{method.http_method}"
            rate, burst = plan.method_throttles.get((self.api_id, method_path), (plan.rate, plan.burst))
            if rate is not None and burst is not None:
                bucket_key = (
                    plan.plan_id,
                    key.key_id,
                    method_path if (self.api_id, method_path) in plan.method_throttles else "",
                )
                if not self._bucket(bucket_key, rate, burst).take():
                    return "THROTTLED"
            if plan.quota_limit is not None and plan.quota_period_s is not None:
                if not self._quota(plan, key).take():
                    return "QUOTA_EXCEEDED"
            return None
        return None

    def _bucket(self, key: tuple[str, ...], rate: float, burst: int) -> TokenBucket:
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(rate, burst, self._clock)
            return bucket

    def _quota(self, plan: UsagePlan, key: ApiKey) -> Quota:
        with self._lock:
            quota = self._quotas.get((plan.plan_id, key.key_id))
            if quota is None:
                assert plan.quota_limit is not None and plan.quota_period_s is not None
                quota = self._quotas[(plan.plan_id, key.key_id)] = Quota(
                    plan.quota_limit, plan.quota_period_s, self._clock
                )
            return quota
