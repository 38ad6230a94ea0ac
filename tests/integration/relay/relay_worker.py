"""A relay in its own process, for crash and failover tests:

    python relay_worker.py <database_url> <broker_url> <topic> [batch_size]

Runs until killed. Prints ``started`` once the store is open and ``owner`` when it holds the
relay lease.
"""

from __future__ import annotations

import asyncio
import sys

import cairn
from cairn.observability.logging import configure_logging
from cairn.relay import build_relay
from cairn.settings import Settings


async def main(database_url: str, broker_url: str, topic: str, batch_size: int) -> None:
    settings = Settings(database_url=database_url, broker_url=broker_url, broker_topic=topic)
    # As `cairn worker` does: log lines go to stderr, stdout is this script's protocol.
    configure_logging(settings.log_level, json=settings.log_json)
    async with cairn.open_store(database_url) as store:
        relay = build_relay(
            settings, store, batch_size=batch_size, backoff_max=0.5, lease_retry=0.2
        )
        assert relay is not None
        print("started", flush=True)

        async def announce_ownership() -> None:
            while not relay.lease.held:
                await asyncio.sleep(0.02)
            print("owner", flush=True)

        watcher = asyncio.create_task(announce_ownership())
        try:
            await relay.run()
        finally:
            watcher.cancel()
            await relay.close()


if __name__ == "__main__":
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], batch))
