"""Faults under load: the scenario of ``tests/faults`` on a real ``cairn serve``, longer, with
the closing note's table (load held, fault injected, 5xx, commands lost, recovery time).

    python -m bench faults                  # a 30 s database outage -> bench/results/faults.json
    python -m bench faults --fault kill     # kill -9 of the server and a restart
    python -m bench faults --outage 60 --clients 12 --warmup 10 --cooldown 10

Each run gets a fresh PostgreSQL database (dropped afterwards). ``--fault outage`` makes that
database refuse connections and terminates its sessions for ``--outage`` seconds (only that
database: ``ALTER DATABASE … ALLOW_CONNECTIONS false``); ``--fault kill`` sends SIGKILL to the
server and starts another one on the same database. Clients create and place orders with an
``Idempotency-Key`` each and retry on 503 and on connection errors; afterwards every
acknowledged command must be in the log and every acknowledged place must have a terminal saga
and a settled order in the read model. Exit code 1 if anything was lost, answered 5xx other
than 503, or did not catch up within ``--settle`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import scratch_pg_database

TESTS = Path(__file__).resolve().parents[1] / "tests"


def _scenario() -> Any:
    """``tests/faults/scenario.py`` (one scenario for the tests and this runner) and the
    end-to-end server helper it uses."""
    for folder in (TESTS / "e2e", TESTS / "faults"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    return importlib.import_module("scenario")


async def _run(args: argparse.Namespace) -> int:
    scenario = _scenario()
    server_type: Any = importlib.import_module("e2e_server").Server
    async with scratch_pg_database("cairn_bench_faults") as pg_url:
        with tempfile.TemporaryDirectory() as workdir:
            servers = [await asyncio.to_thread(server_type, pg_url, Path(workdir))]
            try:
                await scenario.setup_catalogue(servers[0].url)
                target = scenario.Target(servers[0].url)
                if args.fault == "kill":

                    def restart() -> str:
                        servers.append(server_type(pg_url, Path(workdir)))
                        return str(servers[-1].url)

                    fault = scenario.kill_and_restart(target, servers[0].kill, restart)
                    name = "kill -9 of cairn serve, restart"
                else:
                    fault = scenario.database_outage(scenario.PG_ADMIN_URL, pg_url, args.outage)
                    name = f"database outage ({args.outage:g} s)"
                load = await scenario.under_load(
                    target,
                    fault,
                    clients=args.clients,
                    warmup=args.warmup,
                    cooldown=args.cooldown,
                )
                after = await scenario.settled(
                    target.url, load, since=load.fault_ended, timeout=args.settle
                )
            finally:
                await asyncio.to_thread(servers[-1].stop)
    result = scenario.report(name, args.clients, load, after)
    print(result.table())
    wrong = scenario.problems(load)
    for line in [*wrong[:10], *after.lost[:10], *after.behind[:10]]:
        print(f"  ! {line}")
    return 1 if wrong or after.lost or after.behind else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench faults", description=__doc__)
    parser.add_argument("--fault", choices=("outage", "kill"), default="outage")
    parser.add_argument("--outage", type=float, default=30.0, help="seconds the database is down")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--cooldown", type=float, default=5.0)
    parser.add_argument("--settle", type=float, default=60.0, help="seconds allowed to catch up")
    return asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
