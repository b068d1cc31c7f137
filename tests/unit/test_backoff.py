"""The one backoff formula (streamrec_core.backoff): both sides of every bound, and the write-retry budget."""

from __future__ import annotations

import math

import pytest
from streamrec_core.backoff import NO_JITTER, WriteRetries, backoff_delay

from streamrec_client import StreamrecClient

BASE, CAP = 0.05, 2.0


def test_the_first_retry_waits_the_base_and_each_next_one_twice_as_long() -> None:
    assert [backoff_delay(n, base=BASE, cap=CAP) for n in range(1, 7)] == pytest.approx(
        [0.05, 0.1, 0.2, 0.4, 0.8, 1.6]
    )


def test_the_delay_stops_growing_at_the_cap() -> None:
    # 0.05 * 2**5 = 1.6 is below the cap; 0.05 * 2**6 = 3.2 is above it
    assert backoff_delay(6, base=BASE, cap=CAP) == pytest.approx(1.6)
    assert backoff_delay(7, base=BASE, cap=CAP) == CAP
    assert backoff_delay(10_000, base=BASE, cap=CAP) == CAP  # no overflow, however many retries


def test_without_a_cap_the_delay_keeps_doubling() -> None:
    assert backoff_delay(12, base=BASE) == pytest.approx(BASE * 2**11)
    assert math.isfinite(backoff_delay(10_000, base=BASE))


def test_full_jitter_scales_the_bound_by_the_draw_from_zero_to_the_bound() -> None:
    assert backoff_delay(1, base=BASE, cap=CAP, jitter=0.0) == 0.0
    assert backoff_delay(1, base=BASE, cap=CAP, jitter=1.0) == BASE
    assert backoff_delay(4, base=BASE, cap=CAP, jitter=0.25) == pytest.approx(0.1)
    assert backoff_delay(9, base=BASE, cap=CAP, jitter=0.5) == pytest.approx(CAP / 2)
    assert NO_JITTER == 1.0


@pytest.mark.parametrize("attempt", [0, -1])
def test_there_is_no_retry_number_below_one(attempt: int) -> None:
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(attempt, base=BASE)


@pytest.mark.parametrize("jitter", [-0.01, 1.01])
def test_a_jitter_draw_outside_zero_to_one_is_refused(jitter: float) -> None:
    with pytest.raises(ValueError, match="jitter"):
        backoff_delay(1, base=BASE, jitter=jitter)


def test_throttled_rounds_back_off_exponentially_until_the_budget_is_spent() -> None:
    slept: list[float] = []
    budget = WriteRetries(max_throttles=3, base_s=BASE)
    assert [budget.again(throttled=True, sleep=slept.append) for _ in range(4)] == [True, True, True, False]
    assert slept == pytest.approx([0.05, 0.1, 0.2])  # the round past the budget does not sleep


def test_conflicting_rounds_back_off_with_full_jitter_and_their_own_budget() -> None:
    slept: list[float] = []
    draws = iter([0.5, 0.0])
    budget = WriteRetries(max_conflicts=2, base_s=BASE, jitter=lambda: next(draws))
    assert [budget.again(throttled=False, sleep=slept.append) for _ in range(3)] == [True, True, False]
    assert slept == pytest.approx([0.025, 0.0])
    assert budget.again(throttled=True, sleep=slept.append)  # throttles count apart from conflicts


def test_a_fresh_budget_keeps_the_limits_and_forgets_what_was_spent() -> None:
    spent = WriteRetries(max_conflicts=1, max_throttles=1)
    assert spent.again(throttled=True, sleep=lambda s: None)
    assert not spent.again(throttled=True, sleep=lambda s: None)
    fresh = spent.fresh()
    assert (fresh.max_conflicts, fresh.max_throttles, fresh.throttles) == (1, 1, 0)
    assert fresh.again(throttled=True, sleep=lambda s: None)


@pytest.mark.parametrize("draw", [0.0, 0.25, 1.0])
def test_the_producer_client_keeps_the_same_formula(draw: float) -> None:
    # streamrec_client carries its own copy (producers import it without lambdas/): it must not drift
    client = StreamrecClient("http://api.test", "k", base_delay=0.2, max_delay=10.0, rand=lambda: draw)
    for attempt in range(1, 10):
        assert client._delay(attempt - 1, 0.0) == pytest.approx(
            backoff_delay(attempt, base=0.2, cap=10.0, jitter=draw)
        )
