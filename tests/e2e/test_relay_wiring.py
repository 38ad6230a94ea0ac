"""With ``CAIRN_BROKER_URL`` set, ``cairn serve`` runs the relay and reports it."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
from e2e_server import ADMIN, MUG, OPERATOR, Server, wait_for

from cairn.relay import jetstream_stream_name


def test_serve_runs_the_relay_when_a_broker_is_configured(
    sqlite_url: str, nats_url: str, tmp_path: Path
) -> None:
    topic = f"cairn.e2e{uuid.uuid4().hex[:8]}"
    server = Server(sqlite_url, tmp_path, CAIRN_BROKER_URL=nats_url, CAIRN_BROKER_TOPIC=topic)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            r = client.post("/api/v1/products", json=MUG, headers=OPERATOR)
            assert r.status_code == 201
            position = r.json()["position"]
            health = wait_for(
                client,
                "/api/v1/admin/health",
                lambda b: b["components"]["relay"].get("position", 0) >= position,
            )
            assert health["components"]["broker"]["status"] == "ok"
            assert health["components"]["relay"]["lag_events"] == 0
            metrics = client.get("/metrics", headers=ADMIN).text
            assert "cairn_relay_lag_events 0.0" in metrics
    finally:
        assert server.stop() == 0
        asyncio.run(_delete_stream(nats_url, jetstream_stream_name(topic)))


async def _delete_stream(url: str, name: str) -> None:
    import nats

    nc = await nats.connect(url)
    try:
        await nc.jetstream().delete_stream(name)
    finally:
        await nc.close()
