"""Circuit breakers around the services cairn calls: payment gateway, carrier, broker (SPEC §12).

Why: a service that is down or slow must not hold saga workers, relay loops or connections.
Every call through a :class:`Breaker` is bounded by ``call_timeout``; after ``threshold``
failures in a row the breaker opens and calls fail at once with
:class:`~cairn.errors.CircuitOpenError` (a transient error: a saga step retries it with backoff,
the relay backs off) for ``reset_after`` seconds; then calls go through again (half-open) and
the first outcome closes or re-opens it. The state machine is ``purgatory``'s; this module adds
the timeout, the typed errors, a log line per state change and the status that
``/api/v1/admin/health`` and ``/metrics`` show (:meth:`Breakers.statuses`).

Which exceptions are answers, not failures, is the caller's to say (``answers=``): a carrier
refusing an address has answered, and is up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal, TypeVar

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from cairn.errors import CircuitOpenError, TransientAdapterError
from cairn.observability.logging import get_logger
from cairn.settings import Settings

log = get_logger("cairn.breakers")

T = TypeVar("T")
BreakerState = Literal["closed", "open", "half_open"]

#: purgatory's state names → the ones cairn shows.
_STATES: Final[dict[str, BreakerState]] = {
    "closed": "closed",
    "opened": "open",
    "half-opened": "half_open",
}


@dataclass(frozen=True, slots=True)
class BreakerStatus:
    """What health and metrics show about one breaker."""

    name: str
    state: BreakerState
    #: Failures in a row (reset by a success).
    failures: int
    #: Times it opened since the process started (a counter).
    openings: int
    last_error: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Breaker:
    """One service's breaker. Build it with :meth:`Breakers.get`."""

    def __init__(
        self,
        name: str,
        *,
        threshold: int,
        reset_after: float,
        call_timeout: float,
        answers: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.name = name
        self.call_timeout = call_timeout
        self.reset_after = reset_after
        # A cancelled call (the caller's own timeout, a shutdown) says nothing of the service.
        exclude: list[Any] = [asyncio.CancelledError, *answers]
        self._factory = AsyncCircuitBreakerFactory(
            default_threshold=threshold, default_ttl=reset_after, exclude=exclude
        )
        self._factory.add_listener(self._observe)
        self._state: BreakerState = "closed"
        self._opened_at = 0.0
        self._failures = 0
        self._openings = 0
        self._last_error: str | None = None

    async def call(self, make: Callable[[], Awaitable[T]]) -> T:
        """``await make()`` through the breaker, bounded by ``call_timeout``. Raises
        :class:`CircuitOpenError` without calling while open, and
        :class:`TransientAdapterError` when the call times out."""
        breaker = await self._factory.get_breaker(self.name)
        try:
            async with breaker:
                try:
                    async with asyncio.timeout(self.call_timeout):
                        return await make()
                except TimeoutError:
                    self._last_error = f"no answer within {self.call_timeout:g} s"
                    raise
                except Exception as exc:
                    self._last_error = f"{type(exc).__name__}: {exc}".rstrip(": ")
                    raise
        except OpenedState:
            raise CircuitOpenError(
                f"{self.name}: circuit open after {self._failures} failures "
                f"(last: {self._last_error}); calls fail fast for up to {self.reset_after:g} s"
            ) from None
        except TimeoutError:
            raise TransientAdapterError(f"{self.name}: {self._last_error}") from None

    def _observe(self, name: str, kind: str, event: Any) -> None:
        """purgatory's hook: keep the status, count openings, log each state change."""
        if kind == "failed":
            self._failures = int(event.failure_count)
        elif kind == "recovered":
            self._failures = 0
        elif kind == "state_changed":
            state = _STATES.get(str(event.state), "closed")
            if state == "open":
                self._openings += 1
                self._opened_at = time.monotonic()
            if state != self._state:
                log.warning(
                    "circuit breaker %s: %s -> %s%s",
                    name,
                    self._state,
                    state,
                    f" ({self._last_error})" if state == "open" and self._last_error else "",
                )
            self._state = state

    def status(self) -> BreakerStatus:
        state = self._state
        if state == "open" and time.monotonic() >= self._opened_at + self.reset_after:
            state = "half_open"  # the next call goes through (purgatory moves on that call)
        return BreakerStatus(self.name, state, self._failures, self._openings, self._last_error)


class Breakers:
    """The breakers of one process, by service name, with one configuration."""

    def __init__(
        self, *, threshold: int = 5, reset_after: float = 5.0, call_timeout: float = 4.0
    ) -> None:
        self.threshold = threshold
        self.reset_after = reset_after
        self.call_timeout = call_timeout
        self._breakers: dict[str, Breaker] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Breakers:
        return cls(
            threshold=settings.breaker_threshold,
            reset_after=settings.breaker_reset_seconds,
            call_timeout=settings.breaker_call_timeout,
        )

    def get(self, name: str, *, answers: tuple[type[BaseException], ...] = ()) -> Breaker:
        """The breaker of ``name``, created on first use."""
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = self._breakers[name] = Breaker(
                name,
                threshold=self.threshold,
                reset_after=self.reset_after,
                call_timeout=self.call_timeout,
                answers=answers,
            )
        return breaker

    def statuses(self) -> list[BreakerStatus]:
        return [b.status() for _, b in sorted(self._breakers.items())]
