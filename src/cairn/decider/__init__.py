"""The decider: how every aggregate of the order domain is written.

``decide(command, state) -> events`` holds the business rules and never changes anything;
``evolve(state, event) -> state`` applies one event and never refuses it (it already
happened); ``initial_state()`` is the state of a stream with no events. An aggregate's current
state is ``fold(decider, events)``. Time, ids and catalogue facts come in on the command.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

C = TypeVar("C")
S = TypeVar("S")
E = TypeVar("E")
C_contra = TypeVar("C_contra", contravariant=True)


class Decider(Protocol[C_contra, S, E]):
    """What the application layer needs from an aggregate module."""

    def decide(self, command: C_contra, state: S) -> Sequence[E]:
        """The events ``command`` causes in ``state``; raises DomainError when a rule refuses."""
        ...

    def evolve(self, state: S, event: E) -> S:
        """The state after ``event``."""
        ...

    def initial_state(self) -> S:
        """The state of a stream that has no events yet."""
        ...


@dataclass(frozen=True, slots=True)
class FunctionDecider(Generic[C, S, E]):
    """A :class:`Decider` made of three module-level functions."""

    decide_fn: Callable[[C, S], Sequence[E]]
    evolve_fn: Callable[[S, E], S]
    initial_state_fn: Callable[[], S]

    def decide(self, command: C, state: S) -> Sequence[E]:
        return self.decide_fn(command, state)

    def evolve(self, state: S, event: E) -> S:
        return self.evolve_fn(state, event)

    def initial_state(self) -> S:
        return self.initial_state_fn()


def fold(decider: Decider[C, S, E], events: Iterable[E], state: S | None = None) -> S:
    """Apply ``events`` in order, from ``state`` (the initial state by default)."""
    current = decider.initial_state() if state is None else state
    for event in events:
        current = decider.evolve(current, event)
    return current
