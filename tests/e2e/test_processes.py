"""Processes: `cairn worker` beside an API without workers, and a `cairn serve` killed with
SIGKILL mid-saga that resumes its sagas after a restart (SPEC §9)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
from e2e_server import CAIRN, CUSTOMER_1, MUG, OPERATOR, Server, cairn_env, order_body, wait_for


def _place(client: httpx.Client, token: str) -> str:
    r = client.post("/api/v1/products", json=MUG, headers=OPERATOR)
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/orders", json=order_body(), headers=CUSTOMER_1)
    assert r.status_code == 201, r.text
    oid = str(r.json()["order_id"])
    r = client.post(
        f"/api/v1/orders/{oid}/place", json={"payment_method": token}, headers=CUSTOMER_1
    )
    assert r.status_code == 202, r.text
    return oid


def test_a_worker_process_runs_the_sagas_of_an_api_without_workers(
    database_url: str, tmp_path: Path
) -> None:
    api = Server(database_url, tmp_path, args=("--no-workers",))
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [CAIRN, "worker"],
        cwd=tmp_path,
        env=cairn_env(database_url),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        with httpx.Client(base_url=api.url, timeout=30) as client:
            oid = _place(client, "tok_ok")
            wait_for(client, f"/api/v1/orders/{oid}", lambda o: o["status"] == "confirmed")
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=20)
        log.close()
        assert code == 0, (tmp_path / "worker.log").read_text()[-3000:]
        assert api.stop() == 0


def test_a_killed_server_resumes_its_sagas_after_a_restart(
    database_url: str, tmp_path: Path
) -> None:
    first = Server(database_url, tmp_path)
    with httpx.Client(base_url=first.url, timeout=30) as client:
        oid = _place(client, "tok_flaky")
    first.kill()
    second = Server(database_url, tmp_path)
    try:
        with httpx.Client(base_url=second.url, timeout=30) as client:
            order = wait_for(
                client, f"/api/v1/orders/{oid}", lambda o: o["status"] == "confirmed", timeout=30
            )
            assert order["order_id"] == oid
            inventory = wait_for(
                client, "/api/v1/inventory/MUG-1", lambda i: i["reserved"] == 2, timeout=10
            )
            assert inventory["available"] == 8
    finally:
        assert second.stop() == 0
