"""A real saga worker process for the crash tests: ``python saga_worker.py '<json config>'``.

Runs the fulfilment saga runner against the given database, with fake adapters whose ledgers
are files (so the test, and the next incarnation of this worker, see every effect), until it is
killed.
"""

from __future__ import annotations

import asyncio
import json
import sys

from cairn.orders.adapters import FakeCarrier, FakePaymentGateway, Ledger
from cairn.orders.bootstrap import bootstrap
from cairn.orders.components import build_saga_runner
from cairn.sagas import StepPolicy
from cairn.settings import Settings


async def main(config: dict[str, object]) -> None:
    settings = Settings(database_url=str(config["url"]))
    gateway = FakePaymentGateway(
        latency=float(config.get("latency", 0.0)),  # type: ignore[arg-type]
        ledger=Ledger(str(config["gateway_ledger"])),
    )
    carrier = FakeCarrier(ledger=Ledger(str(config["carrier_ledger"])))
    container = await bootstrap(settings, gateway=gateway, carrier=carrier)
    policy = StepPolicy(**config["policy"])  # type: ignore[arg-type]
    runner = await build_saga_runner(
        settings,
        container.store,
        container.command_bus,
        gateway,
        carrier,
        policy=policy,
        partitions=int(config.get("partitions", 1)),  # type: ignore[call-overload]
    )
    runner.poll_interval = 0.02
    print("ready", flush=True)
    try:
        await runner.run()
    finally:
        await runner.close()
        await container.close()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
