"""One backoff for every retry in cairn: the delays each caller relies on."""

from __future__ import annotations

import math
import random

import pytest

from cairn.application.middleware import RetryPolicy
from cairn.backoff import Backoff
from cairn.sagas.runner import StepPolicy


def test_delays_double_from_the_initial_one_up_to_the_maximum() -> None:
    backoff = Backoff(initial=0.2, maximum=5.0)
    assert [backoff.delay(n) for n in range(1, 8)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


def test_a_long_run_of_failures_stays_at_the_maximum() -> None:
    assert Backoff(initial=0.2, maximum=5.0).delay(10_000) == 5.0


def test_without_a_maximum_delays_keep_doubling() -> None:
    backoff = Backoff(initial=0.05)
    assert backoff.maximum == math.inf
    assert backoff.delay(5) == 0.05 * 2**4


def test_attempts_below_one_count_as_the_first() -> None:
    assert Backoff(initial=0.2).delay(0) == Backoff(initial=0.2).delay(1) == 0.2


@pytest.mark.parametrize("attempt", [1, 2, 5, 9])
def test_jitter_spreads_the_delay_over_a_fraction_either_side(attempt: int) -> None:
    plain = Backoff(initial=0.2, maximum=5.0).delay(attempt)
    jittered = Backoff(initial=0.2, maximum=5.0, jitter=0.25)
    for _ in range(50):
        assert 0.75 * plain <= jittered.delay(attempt) <= 1.25 * plain


def test_full_jitter_draws_between_zero_and_the_delay() -> None:
    backoff = Backoff(initial=0.004, maximum=0.1, full_jitter=True)
    for attempt in range(1, 10):
        for _ in range(20):
            assert 0 <= backoff.delay(attempt) <= min(0.1, 0.004 * 2 ** (attempt - 1))


def test_saga_step_delay_keeps_its_formula() -> None:
    policy = StepPolicy()
    for attempt in range(0, 12):
        random.seed(attempt)
        got = policy.delay(attempt)
        random.seed(attempt)
        base = min(policy.max_backoff, policy.backoff * 2 ** max(0, attempt - 1))
        assert got == base * random.uniform(0.75, 1.25)


def test_conflict_retry_delay_keeps_its_formula() -> None:
    policy = RetryPolicy()
    for attempt in range(1, 12):
        random.seed(attempt)
        got = policy.delay(attempt)
        random.seed(attempt)
        want = random.uniform(0, min(policy.max_delay, policy.base_delay * 2**attempt))
        assert got == pytest.approx(want, abs=1e-15)
