"""Given / when / then for deciders: a supported helper, as the in-memory store is.

given(orders.decider, [OrderCreated(...)]).when(PlaceOrder(...)).then([OrderPlaced(...)])
given(orders.decider, []).when(PlaceOrder(...)).then_fails("order.not_found")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from cairn.decider import Decider, fold
from cairn.errors import DomainError

C = TypeVar("C")
S = TypeVar("S")
E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class Given(Generic[C, S, E]):
    decider: Decider[C, S, E]
    history: Sequence[E]

    def when(self, command: C) -> When[C, S, E]:
        return When(self, command)


@dataclass(frozen=True, slots=True)
class When(Generic[C, S, E]):
    given: Given[C, S, E]
    command: C

    def _run(self) -> list[E]:
        state = fold(self.given.decider, self.given.history)
        return list(self.given.decider.decide(self.command, state))

    def then(self, expected: Sequence[E]) -> S:
        """Assert the command emits exactly ``expected``; returns the state after them."""
        actual = self._run()
        assert actual == list(expected), f"expected {list(expected)!r}, got {actual!r}"
        return fold(self.given.decider, [*self.given.history, *actual])

    def then_fails(self, code: str, **details: Any) -> DomainError:
        """Assert the command is refused with ``code`` (and the given details)."""
        try:
            events = self._run()
        except DomainError as error:
            refused = error
        else:
            raise AssertionError(f"expected DomainError {code!r}, got events {events!r}")
        if refused.code != code:
            raise AssertionError(f"expected {code!r}, got {refused.code!r}: {refused}")
        for key, value in details.items():
            if refused.details.get(key) != value:
                raise AssertionError(f"{key}: expected {value!r}, got {refused.details.get(key)!r}")
        return refused


def given(decider: Decider[C, S, E], history: Sequence[E] = ()) -> Given[C, S, E]:
    return Given(decider, history)
