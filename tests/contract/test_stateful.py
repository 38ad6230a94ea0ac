"""A hypothesis state machine drives a store with random appends (right and wrong expected
versions, retries, deletes) and reads, and checks every answer against a plain model.

Positions are only promised to be strictly increasing (SPEC §1): a backend may skip some (on
PostgreSQL a retry allocates positions before it finds its batch stored). The model therefore
records the positions the store gave and checks reads against them.

Runs on every backend; PostgreSQL truncates its tables between examples instead of creating a
database per example.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import hypothesis.strategies as st
import psycopg
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import cairn
from cairn import ANY, STREAM_EXISTS, ConcurrencyError, NewEvent
from cairn.errors import StreamDeletedError
from cairn.store import AppendResult, EventStore, ExpectedVersion

T = TypeVar("T")

STREAMS = ["cart-a", "cart-b", "order-c"]

# Any Unicode but U+0000, which every backend refuses (PostgreSQL's jsonb cannot hold it).
characters = st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    # jsonb keeps numbers as decimals: magnitudes beyond ~1e15 may come back as an equal int
    # or a differently rounded float; ordinary figures round-trip exactly.
    | st.floats(min_value=-1e15, max_value=1e15, allow_nan=False)
    | st.text(characters, max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(characters, max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
payloads = st.dictionaries(st.text(characters, max_size=5), json_values, max_size=3)


@dataclass
class Model:
    streams: dict[str, list[uuid.UUID]] = field(default_factory=dict)
    #: (position, stream, id, data) in log order.
    log: list[tuple[int, str, uuid.UUID, dict[str, Any]]] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)

    def version(self, stream: str) -> int:
        return len(self.streams.get(stream, []))

    @property
    def head(self) -> int:
        return self.log[-1][0] if self.log else 0


async def _open(url: str) -> EventStore:
    return await cairn.open_store(url)


class StoreMachine(RuleBasedStateMachine):
    url: str = "memory://"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.model = Model()
        self.last: tuple[str, list[NewEvent], AppendResult] | None = None
        self.store: EventStore | None = None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    @initialize()
    def open_store(self) -> None:
        url = self.url
        if url.startswith("postgresql"):
            with psycopg.connect(url, autocommit=True) as conn:
                if conn.execute("SELECT to_regclass('events')").fetchone() != (None,):
                    conn.execute("TRUNCATE events, streams, snapshots")
                    conn.execute("ALTER SEQUENCE events_position_seq RESTART WITH 1")
        elif url.startswith("sqlite"):
            url = url.replace(".db", f"-{uuid.uuid4().hex[:8]}.db")
        elif url.startswith("redis"):
            url = f"{url}-{uuid.uuid4().hex[:8]}"  # a fresh prefix (the fixture deletes it)
        self.store = self.run(_open(url))

    def teardown(self) -> None:
        if self.store is not None:
            self.run(self.store.close())
        self.loop.close()

    @property
    def s(self) -> EventStore:
        assert self.store is not None
        return self.store

    @rule(
        stream=st.sampled_from(STREAMS),
        datas=st.lists(payloads, min_size=1, max_size=3),
        how=st.sampled_from(["right", "wrong", "any", "exists"]),
    )
    def append(self, stream: str, datas: list[dict[str, Any]], how: str) -> None:
        actual = self.model.version(stream)
        choices: dict[str, ExpectedVersion] = {
            "right": actual,
            "wrong": actual + 1,
            "any": ANY,
            "exists": STREAM_EXISTS,
        }
        expected = choices[how]
        events = [NewEvent("Happened", d, {"user": "u"}) for d in datas]
        should_fail = how == "wrong" or (how == "exists" and actual == 0)
        try:
            result = self.run(self.s.append(stream, events, expected_version=expected))
        except StreamDeletedError:
            assert stream in self.model.deleted
            return
        except ConcurrencyError as exc:
            refused_at = exc.actual
            assert should_fail
            assert refused_at == actual
            return
        assert stream not in self.model.deleted
        assert not should_fail
        positions = [e.position for e in result.events]
        assert positions == sorted(set(positions))
        assert positions[0] > self.model.head
        assert result.position == positions[-1]
        for e, position in zip(events, positions, strict=True):
            self.model.streams.setdefault(stream, []).append(e.event_id)
            self.model.log.append((position, stream, e.event_id, dict(e.data)))
        assert result.version == self.model.version(stream)
        self.last = (stream, events, result)

    @precondition(lambda self: self.last is not None)
    @rule()
    def retry_last_append(self) -> None:
        assert self.last is not None
        stream, events, result = self.last
        assert self.run(self.s.append(stream, events, expected_version=ANY)) == result

    @rule(stream=st.sampled_from(STREAMS[:2]))
    def delete(self, stream: str) -> None:
        self.run(self.s.delete_stream(stream))
        self.model.deleted.add(stream)

    @rule(stream=st.sampled_from(STREAMS), lo=st.integers(1, 6), span=st.integers(0, 6))
    def read_stream(self, stream: str, lo: int, span: int) -> None:
        got = self.run(self.s.read_stream(stream, from_version=lo, to_version=lo + span))
        ids = [] if stream in self.model.deleted else self.model.streams.get(stream, [])
        assert [e.id for e in got] == ids[lo - 1 : lo + span]
        assert [e.version for e in got] == list(range(lo, lo + len(got)))

    @rule(after=st.integers(0, 12), limit=st.integers(1, 12))
    def read_all(self, after: int, limit: int) -> None:
        got = self.run(self.s.read_all(after=after, limit=limit))
        want = [entry for entry in self.model.log if entry[0] > after][:limit]
        assert [(e.position, e.stream_id, e.id, e.data) for e in got] == want

    @invariant()
    def head_and_versions_match(self) -> None:
        if self.store is None:
            return
        assert self.run(self.s.head_position()) == self.model.head
        for stream in STREAMS:
            assert self.run(self.s.stream_version(stream)) == self.model.version(stream)


def run_machine(url: str, examples: int) -> None:
    machine: Any = type("Machine", (StoreMachine,), {"url": url})
    machine.TestCase.settings = settings(
        max_examples=examples,
        stateful_step_count=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    machine.TestCase().runTest()


def test_store_behaves_like_the_model(store_url: str) -> None:
    examples = {"memory": 60, "sqlite": 20}.get(store_url.split(":")[0], 10)
    run_machine(store_url, examples)
