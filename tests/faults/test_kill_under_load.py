"""``kill -9`` of ``cairn serve`` under load, and a restart on the same database (SPEC §9,
§12): nothing acknowledged is lost, every placed order's saga finishes in the new process, and
a command whose answer died with the old process gets its first outcome on retry."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from e2e_server import Server
from scenario import (
    Load,
    Settled,
    Target,
    kill_and_restart,
    problems,
    report,
    settled,
    setup_catalogue,
    under_load,
)

pytestmark = pytest.mark.faults
CLIENTS = 6


@pytest.fixture(scope="module")
def kill_run(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> tuple[Load, Settled]:
    pg_url = request.getfixturevalue("module_pg_url")
    workdir: Path = tmp_path_factory.mktemp("kill")
    servers = [Server(pg_url, workdir)]

    def restart() -> str:
        servers.append(Server(pg_url, workdir))
        return servers[-1].url

    try:
        asyncio.run(setup_catalogue(servers[0].url))
        target = Target(servers[0].url)
        load = asyncio.run(
            under_load(target, kill_and_restart(target, servers[0].kill, restart), clients=CLIENTS)
        )
        after = asyncio.run(settled(target.url, load, since=load.fault_ended, timeout=30.0))
        print(f"\n{report('kill -9 of cairn serve, restart', CLIENTS, load, after).table()}")
        return load, after
    finally:
        assert servers[-1].stop() == 0, servers[-1].log()


def test_no_answer_is_a_500_and_retried_keys_get_their_first_outcome(
    kill_run: tuple[Load, Settled],
) -> None:
    load, _ = kill_run
    assert problems(load) == []


def test_no_acknowledged_command_is_lost_across_a_kill(kill_run: tuple[Load, Settled]) -> None:
    load, after = kill_run
    assert sum(1 for c in load.commands() if c.acknowledged) > 0
    assert after.lost == []


def test_every_saga_finishes_in_the_restarted_process_within_15_s(
    kill_run: tuple[Load, Settled],
) -> None:
    _, after = kill_run
    assert after.behind == []
    assert after.recovery_s < 15.0
