"""examples/grpc_tail.py: tails SubscribeAll from a real ``cairn serve`` and, run again,
resumes after its checkpoint."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_server import ADMIN, MUG, Server, free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "grpc_tail.py"


@pytest.fixture
def grpc_target(tmp_path: Path) -> Iterator[str]:
    """A server (SQLite) with gRPC on a free port, and three events in its log."""
    port = free_port()
    server = Server(f"sqlite:///{tmp_path}/cairn.db", tmp_path, CAIRN_GRPC_PORT=str(port))
    try:
        # A product, then a replenishment: ProductRegistered, StockReplenished (its initial
        # stock), StockReplenished.
        for path, body in (
            ("/api/v1/products", MUG),
            (f"/api/v1/products/{MUG['sku']}/stock", {"quantity": 5}),
        ):
            r = httpx.post(f"{server.url}{path}", json=body, headers=ADMIN, timeout=30)
            assert r.status_code in (200, 201), r.text
        yield f"127.0.0.1:{port}"
    finally:
        assert server.stop() == 0, server.log()


def _run(target: str, token: str, checkpoint: Path, limit: int) -> subprocess.CompletedProcess[str]:
    args = ["--token", token, "--checkpoint", str(checkpoint), "--limit", str(limit)]
    return subprocess.run(
        [sys.executable, str(EXAMPLE), target, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _tail(target: str, checkpoint: Path, limit: int) -> list[list[str]]:
    done = _run(target, "adm", checkpoint, limit)
    assert done.returncode == 0, done.stderr
    return [line.split() for line in done.stdout.splitlines()]


def test_the_tail_prints_events_from_the_start_and_checkpoints_the_last(
    grpc_target: str, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "tail.pos"
    lines = _tail(grpc_target, checkpoint, 2)
    assert [(line[0], line[1], line[3]) for line in lines] == [
        ("1", "inventory-MUG-1", "ProductRegistered"),
        ("2", "inventory-MUG-1", "StockReplenished"),
    ]
    assert checkpoint.read_text().strip() == "2"


def test_run_again_the_tail_resumes_after_its_checkpoint(grpc_target: str, tmp_path: Path) -> None:
    checkpoint = tmp_path / "tail.pos"
    first = _tail(grpc_target, checkpoint, 1)
    second = _tail(grpc_target, checkpoint, 2)
    assert [line[0] for line in first + second] == ["1", "2", "3"]
    assert checkpoint.read_text().strip() == "3"


def test_a_token_that_is_not_an_admins_stops_the_tail_with_the_reason(
    grpc_target: str, tmp_path: Path
) -> None:
    done = _run(grpc_target, "ops", tmp_path / "tail.pos", 1)
    assert done.returncode == 1
    assert done.stderr.startswith("PERMISSION_DENIED")


def test_the_tail_waits_for_a_server_that_is_not_up_yet(tmp_path: Path) -> None:
    port = free_port()
    checkpoint = tmp_path / "tail.pos"
    args = ["--token", "adm", "--checkpoint", str(checkpoint), "--limit", "1"]
    tail = subprocess.Popen(
        [sys.executable, str(EXAMPLE), f"127.0.0.1:{port}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        server = Server(f"sqlite:///{tmp_path}/cairn.db", tmp_path, CAIRN_GRPC_PORT=str(port))
        try:
            r = httpx.post(f"{server.url}/api/v1/products", json=MUG, headers=ADMIN, timeout=30)
            assert r.status_code == 201, r.text
            out, err = tail.communicate(timeout=60)
        finally:
            assert server.stop() == 0, server.log()
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait()
    assert tail.returncode == 0, err
    assert "server unavailable" in err
    assert out.split() == ["1", "inventory-MUG-1", "1", "ProductRegistered"]
    assert checkpoint.read_text().strip() == "1"
