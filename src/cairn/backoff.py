"""Exponential backoff: the one way cairn computes how long to wait before trying again.

Every retry in cairn (a crashed worker restarted, the relay after a broker outage, a projection
after a database error or a failing handler, a saga step's persisted retry, a command that lost
a write race) waits ``Backoff(...).delay(attempt)`` seconds. The delays are tenacity's wait
strategies (``wait_exponential``, and ``wait_random_exponential`` for full jitter), called with
a retry state built for the attempt number, rather than tenacity's decorator: the loops that use
them run forever and keep their own state (a lease, a status, a counter reset on success), and
a saga step retry does not sleep at all, it stores the moment it falls due in the database.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from tenacity import RetryCallState, Retrying, wait_exponential, wait_random_exponential

__all__ = ["Backoff"]

# The wait strategies read only ``attempt_number`` from the state; the state wants an owner.
_OWNER = Retrying()


@dataclass(frozen=True, slots=True)
class Backoff:
    """``initial * 2 ** (attempt - 1)`` seconds before retry ``attempt`` (1, 2, …), at most
    ``maximum``.

    ``jitter`` spreads each delay uniformly over ± that fraction of it (0.25: 75 % to 125 %);
    ``full_jitter`` draws it uniformly from zero to the delay instead ("full jitter", for
    writers racing for the same row).
    """

    initial: float
    maximum: float = math.inf
    jitter: float = 0.0
    full_jitter: bool = False
    _wait: wait_exponential = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        strategy = wait_random_exponential if self.full_jitter else wait_exponential
        object.__setattr__(self, "_wait", strategy(multiplier=self.initial, max=self.maximum))

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (counted from 1; lower counts as 1)."""
        state = RetryCallState(retry_object=_OWNER, fn=None, args=(), kwargs={})
        state.attempt_number = max(attempt, 1)
        seconds: float = self._wait(state)
        if self.jitter:
            seconds *= random.uniform(1 - self.jitter, 1 + self.jitter)
        return seconds
