"""HTTP load against a real ``cairn serve`` on PostgreSQL: create and place orders.

    .venv/bin/python -m bench http [--seconds 20] [--concurrency 32] [--no-workers] [--profile]

(Run it as a module: executed as a file, ``bench/http.py`` would shadow the standard library's
``http`` package.)

Starts ``cairn serve`` (one uvicorn process, workers included unless ``--no-workers``) on a
scratch PostgreSQL database, registers a product with plenty of stock, then ``concurrency``
async clients (httpx, keep-alive) each loop: ``POST /api/v1/orders`` (one item) then
``POST /api/v1/orders/{id}/place``. Every request is one command; reported: commands/s and
latency percentiles measured at the client, errors, and (``--profile``) where the server spends
its time (the server then runs under cProfile, so its figures are lower). Goal (issue 7):
>= 500 commands/s with p99 <= 50 ms on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import Report, percentile, scratch_pg_database

CAIRN = str(Path(sys.executable).with_name("cairn"))
TOKEN = "bench-admin"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
ORDER = {
    "customer_id": "c-bench",
    "customer_name": "Bench",
    "customer_email": "bench@example.com",
    "currency": "EUR",
    "shipping_address": {
        "line1": "1 Main St",
        "city": "Paris",
        "postal_code": "75001",
        "country": "FR",
    },
    "items": [{"sku": "BENCH-1", "quantity": 1}],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(
    database_url: str, port: int, workers: bool, log: Path, profile: Path | None = None
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    env.update(
        CAIRN_DATABASE_URL=database_url,
        CAIRN_TOKENS=f"{TOKEN}=admin",
        CAIRN_LOG_LEVEL="WARNING",
    )
    args = [CAIRN, "serve", "--port", str(port)]
    if profile is not None:  # the server under cProfile; the profile is written on SIGTERM
        runner = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "cairn.cli"]
        args = [*runner, *args[1:]]
    if not workers:
        args.append("--no-workers")
    with log.open("wb") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)


async def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"cairn serve exited with {proc.returncode}")
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("cairn serve did not become ready")


async def _load(url: str, seconds: float, concurrency: int) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, limits=limits, timeout=30) as c:
        r = await c.post(
            "/api/v1/products",
            headers={"Idempotency-Key": "bench-product"},
            json={
                "sku": "BENCH-1",
                "name": "Bench",
                "price": "1.00",
                "currency": "EUR",
                "initial_stock": 1_000_000,
            },
        )
        r.raise_for_status()
        stop_at = time.perf_counter() + seconds

        async def client_loop() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                created = await c.post("/api/v1/orders", json=ORDER)
                t1 = time.perf_counter()
                if created.status_code != 201:
                    errors += 1
                    continue
                latencies.append(t1 - t0)
                oid = created.json()["order_id"]
                placed = await c.post(
                    f"/api/v1/orders/{oid}/place", json={"payment_method": "tok_ok"}
                )
                t2 = time.perf_counter()
                if placed.status_code != 202:
                    errors += 1
                    continue
                latencies.append(t2 - t1)

        started = time.perf_counter()
        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, errors, elapsed


def _package_of(filename: str) -> str:
    if "site-packages/" in filename:
        return filename.split("site-packages/")[1].split("/")[0]
    if "/src/cairn/" in filename:
        return "cairn." + filename.split("/src/cairn/")[1].split("/")[0].removesuffix(".py")
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins"
    return "stdlib:" + Path(filename).stem


def _profile_summary(path: Path, top: int = 12) -> list[str]:
    """The server's hottest functions by own time (cProfile), and where it waited."""
    import pstats

    if not path.exists():
        return ["no profile written"]
    stats = pstats.Stats(str(path))
    total = stats.total_tt  # type: ignore[attr-defined]
    entries = stats.stats.items()  # type: ignore[attr-defined]
    rows = sorted(entries, key=lambda kv: kv[1][2], reverse=True)
    packages: dict[str, float] = {}
    for (filename, _, _), (_, _, tottime, _, _) in entries:
        packages[_package_of(filename)] = packages.get(_package_of(filename), 0.0) + tottime
    lines = [
        "by package: "
        + ", ".join(
            f"{name} {100 * t / total:.0f}%"
            for name, t in sorted(packages.items(), key=lambda kv: kv[1], reverse=True)[:10]
        ),
        "hottest functions:",
    ]
    for (filename, line, name), (_, _, tottime, _, _) in rows[:top]:
        where = filename.split("site-packages/")[-1].split("src/")[-1]
        lines.append(f"{100 * tottime / total:5.1f}%  {name}  ({where}:{line})")
    return lines


async def measure(
    seconds: float, concurrency: int, workers: bool, profile: bool, database_url: str | None
) -> Report:
    report = Report("http")
    tmp = Path(tempfile.mkdtemp(prefix="cairn-bench-http-"))

    async def against(url_db: str) -> None:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        prof = tmp / "serve.prof" if profile else None
        proc = _start_server(url_db, port, workers, tmp / "serve.log", prof)
        try:
            await _wait_ready(url, proc)
            await _load(url, min(2.0, seconds / 4), concurrency)  # warm-up
            latencies, errors, elapsed = await _load(url, seconds, concurrency)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                report.notes.append("the server did not stop within 60 s of SIGTERM")
        ms = [x * 1000 for x in latencies]
        rate = len(latencies) / elapsed
        report.add("commands per second", rate, "cmd/s", f"{len(latencies)} in {elapsed:.1f} s")
        report.add("latency p50", percentile(ms, 50), "ms")
        report.add("latency p95", percentile(ms, 95), "ms")
        report.add("latency p99", percentile(ms, 99), "ms")
        report.add("errors", errors, "requests")
        report.check("commands/s", rate, 500)
        report.check("p99 ms", percentile(ms, 99), 50, "<=")
        report.notes.append(
            f"cairn serve (1 uvicorn process, workers {'on' if workers else 'off'}) on PostgreSQL; "
            f"{concurrency} httpx clients on the same {os.cpu_count()}-core machine; "
            "each order = create + place (2 commands)"
        )
        if prof is not None:
            report.notes += ["server own time (cProfile, slows the server down):"]
            report.notes += _profile_summary(prof)

    if database_url:
        await against(database_url)
    else:
        async with scratch_pg_database("cairn_bench_http") as url_db:
            await against(url_db)
    return report


def main(argv: list[str] | None = None) -> int:
    from bench.common import format_table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--quick", action="store_true", help="5 seconds")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--no-workers", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    report = asyncio.run(
        measure(
            args.seconds, args.concurrency, not args.no_workers, args.profile, args.database_url
        )
    )
    print(format_table(report))
    return 0
