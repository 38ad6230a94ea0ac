"""A PostgreSQL outage under load (SPEC §12): while six clients create and place orders, the
test's database refuses connections and loses its sessions for 5 s, then comes back. The server
runs every worker, the relay included (to a Redis of the test's own)."""

from __future__ import annotations

import asyncio

import pytest
from e2e_server import Server
from scenario import (
    PG_ADMIN_URL,
    Load,
    OwnRedis,
    Settled,
    Target,
    database_outage,
    problems,
    report,
    settled,
    setup_catalogue,
    under_load,
)

pytestmark = pytest.mark.faults
CLIENTS = 6


@pytest.fixture(scope="module")
def outage_run(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> tuple[Load, Settled]:
    """One outage under load, shared by the assertions below (each states one behaviour)."""
    pg_url = request.getfixturevalue("module_pg_url")
    workdir = tmp_path_factory.mktemp("outage")
    broker = OwnRedis(workdir)
    server = Server(pg_url, workdir, CAIRN_BROKER_URL=broker.url)
    try:
        asyncio.run(setup_catalogue(server.url))
        load = asyncio.run(
            under_load(
                Target(server.url),
                database_outage(PG_ADMIN_URL, pg_url, 5.0),
                clients=CLIENTS,
            )
        )
        after = asyncio.run(settled(server.url, load, since=load.fault_ended, timeout=30.0))
        print(f"\n{report('database outage (5 s)', CLIENTS, load, after).table()}")
        return load, after
    finally:
        broker.stop()
        assert server.stop() == 0, server.log()


def test_every_answer_during_an_outage_is_a_503_problem_with_retry_after_never_a_500(
    outage_run: tuple[Load, Settled],
) -> None:
    load, _ = outage_run
    assert problems(load) == []
    assert load.statuses().get(500, 0) == 0


def test_no_acknowledged_command_is_lost(outage_run: tuple[Load, Settled]) -> None:
    load, after = outage_run
    assert sum(1 for c in load.commands() if c.acknowledged) > 0
    assert after.lost == []


def test_every_worker_catches_up_within_15_s_of_the_database_return(
    outage_run: tuple[Load, Settled],
) -> None:
    _, after = outage_run
    assert after.behind == []
    assert after.recovery_s < 15.0


def test_liveness_answers_and_readiness_and_health_fail_while_the_database_is_down(
    outage_run: tuple[Load, Settled],
) -> None:
    load, _ = outage_run
    start, end = load.fault_started + 1.0, load.fault_ended
    assert {p.status for p in load.probes_of("/healthz", start, end)} == {200}
    assert 503 in {p.status for p in load.probes_of("/readyz", start, end)}
    health = load.probes_of("/api/v1/admin/health", start, end)
    assert any(p.status == 503 and p.body["status"] == "degraded" for p in health), [
        (round(p.at - start, 1), p.status, p.body) for p in health
    ]


def test_health_is_ok_again_once_the_workers_caught_up(outage_run: tuple[Load, Settled]) -> None:
    _, after = outage_run
    status, body = after.health
    assert (status, body["status"]) == (200, "ok"), body
