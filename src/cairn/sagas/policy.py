"""How long a step may take, how often it is retried, and the saga's overall deadline."""

from __future__ import annotations

from dataclasses import dataclass

from cairn.backoff import Backoff
from cairn.settings import Settings


@dataclass(frozen=True, slots=True)
class StepPolicy:
    """Timeout and retries of every step, and the saga's overall deadline (seconds)."""

    timeout: float = 5.0
    attempts: int = 3
    backoff: float = 0.2
    max_backoff: float = 5.0
    #: Compensations are retried longer than forward steps before the saga shows ``failed``.
    compensation_attempts: int = 8
    deadline: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> StepPolicy:
        return cls(
            timeout=settings.saga_step_timeout,
            attempts=settings.saga_step_attempts,
            backoff=settings.saga_retry_backoff,
            compensation_attempts=max(8, settings.saga_step_attempts),
            deadline=settings.saga_deadline,
        )

    def delay(self, attempt: int) -> float:
        """Exponential backoff with jitter before attempt ``attempt + 1``."""
        return Backoff(initial=self.backoff, maximum=self.max_backoff, jitter=0.25).delay(attempt)
