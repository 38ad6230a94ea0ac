"""HTTP load against a real ``cairn serve`` on PostgreSQL: create and place orders.

    .venv/bin/python -m bench http [--seconds 15] [--concurrency 32] [--client wrk|httpx]
        [--deployments workers,separate,api-only] [--rounds 1] [--profile]

(Run it as a module: executed as a file, ``bench/http.py`` would shadow the standard library's
``http`` package.)

Each deployment gets a fresh PostgreSQL database and its own server:

* ``workers``: one ``cairn serve`` process running the API and the workers (projections,
  sagas, deadlines), the default deployment;
* ``separate``: ``cairn serve --no-workers`` plus one ``cairn worker`` process;
* ``api-only``: ``cairn serve --no-workers`` and no worker at all (the API's own ceiling).

A product with plenty of stock is registered, then ``concurrency`` keep-alive connections each
loop: ``POST /api/v1/orders`` (one item) then ``POST /api/v1/orders/{id}/place``. Every request
is one command. The load generator is ``wrk`` (C, with a Lua script; one thread per
connection so that each connection's create and place alternate) when it is installed, else a
Python httpx client, which costs the shared CPU several times more per request (``--client``
picks one; both print their own CPU per command). Reported per deployment: commands/s, latency
percentiles at the client, errors, CPU milliseconds per command of the cairn processes and of
the client, and how long the server took to stop after SIGTERM. With ``--rounds N`` the
deployments run in turn N times and the medians are reported with the spread.

``--profile`` samples the ``cairn serve`` process with py-spy during the measured run (no
slow-down of the server, unlike cProfile) and summarises where its CPU goes.

Goal (issue 7): >= 500 commands/s with p99 <= 50 ms on 2 cores, everything (client, server,
workers, PostgreSQL) on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
import psycopg

from bench.common import Report, percentile, scratch_pg_database

CAIRN = str(Path(sys.executable).with_name("cairn"))
PY_SPY = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
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
PLACE = {"payment_method": "tok_ok"}
DEPLOYMENTS = ("workers", "separate", "api-only")
GOAL_RATE = 500.0
STOP_TIMEOUT = 60.0

# One connection per wrk thread, so request() and response() alternate on that connection:
# a 201 (created) hands its order id to the next request, the place; anything else starts over.
_WRK_SCRIPT = """
local create_body = [[%(create)s]]
local place_body = [[%(place)s]]
local headers = {["Authorization"] = "Bearer %(token)s", ["Content-Type"] = "application/json"}
local pending = nil
failed = 0
local threads = {}

-- Pacing (interval > 0): each connection sends one request every `interval` ms on a fixed
-- schedule; a late response does not push the schedule back (the next one goes at once).
-- Connection k (slot, set by setup) starts k/connections of an interval late, so the requests
-- are spread evenly over time. (math.random cannot do it: every thread's Lua state starts from
-- the same seed, so all connections drew the same phase and fired in bursts of `connections`.)
local interval = %(interval_ms)s
local connections = %(connections)s
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long sec; long nsec; } cairn_ts; int clock_gettime(int, cairn_ts *); ]]
local ts = ffi.new("cairn_ts")
local due = nil

local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.sec) * 1000 + tonumber(ts.nsec) / 1e6
end

function delay()
  if interval <= 0 then return 0 end
  local now = now_ms()
  if due == nil then due = now + (slot - 1) * interval / connections end
  local wait = due - now
  due = due + interval
  if wait < 0 then return 0 end
  return wait
end

function setup(thread)
  table.insert(threads, thread)
  thread:set("slot", #threads)
end

function request()
  if pending ~= nil then
    local path = "/api/v1/orders/" .. pending .. "/place"
    pending = nil
    return wrk.format("POST", path, headers, place_body)
  end
  return wrk.format("POST", "/api/v1/orders", headers, create_body)
end

function response(status, hdrs, body)
  if status == 201 then
    pending = string.match(body, '"order_id":"([^"]+)"')
  elseif status ~= 202 then
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local failed_total = 0
  for _, t in ipairs(threads) do failed_total = failed_total + t:get("failed") end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %%d, "duration_us": %%d, "failed": %%d, "socket_errors": %%d,'
    .. ' "p50_us": %%d, "p95_us": %%d, "p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, failed_total,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


@dataclass
class Run:
    """One measured load against one deployment."""

    deployment: str
    commands: int = 0
    seconds: float = 0.0
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    errors: int = 0
    server_cpu: float = 0.0  # seconds, the cairn serve process
    worker_cpu: float = 0.0  # seconds, the cairn worker process (deployment "separate")
    postgres_cpu: float = 0.0  # seconds, the PostgreSQL backends serving this database
    client_cpu: float = 0.0
    stop_seconds: float = 0.0
    #: The same load paced at the goal's rate (wrk only): what latency is at that rate.
    paced: Run | None = None
    #: Sagas started by the end of the load, and how many of them had not finished.
    sagas: int = 0
    sagas_unfinished: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.commands / self.seconds if self.seconds else 0.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process (``/proc/<pid>/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    env.update(
        CAIRN_DATABASE_URL=database_url,
        CAIRN_TOKENS=f"{TOKEN}=admin",
        CAIRN_LOG_LEVEL="WARNING",
    )
    return env


def _start(args: list[str], database_url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [CAIRN, *args], env=_env(database_url), stdout=out, stderr=subprocess.STDOUT
        )


def _stop(proc: subprocess.Popen[bytes]) -> float | None:
    """SIGTERM, then the seconds it took to exit (``None``: killed after STOP_TIMEOUT)."""
    started = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None
    return time.perf_counter() - started


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


async def _register_product(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=30) as c:
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


async def _load_httpx(url: str, seconds: float, concurrency: int, run: Run) -> None:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, limits=limits, timeout=30) as c:
        stop_at = time.perf_counter() + seconds

        async def client_loop() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                created = await c.post("/api/v1/orders", json=ORDER)
                t1 = time.perf_counter()
                latencies.append(t1 - t0)
                if created.status_code != 201:
                    errors += 1
                    continue
                oid = created.json()["order_id"]
                placed = await c.post(f"/api/v1/orders/{oid}/place", json=PLACE)
                latencies.append(time.perf_counter() - t1)
                if placed.status_code != 202:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        run.seconds = time.perf_counter() - started
    ms = [x * 1000 for x in latencies]
    run.commands, run.errors = len(ms) - errors, errors
    run.p50, run.p95, run.p99 = (percentile(ms, q) for q in (50, 95, 99))


async def _load_wrk(url: str, seconds: float, concurrency: int, run: Run, script: Path) -> None:
    args = [
        "wrk",
        f"-t{concurrency}",
        f"-c{concurrency}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
    ]
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    text = out.decode()
    found = re.search(r"WRK_JSON (\{.*\})", text)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {text[-2000:]}")
    data = json.loads(found.group(1))
    run.errors = int(data["failed"]) + int(data["socket_errors"])
    run.commands = int(data["requests"]) - run.errors
    run.seconds = int(data["duration_us"]) / 1e6
    run.p50, run.p95, run.p99 = (int(data[f"p{q}_us"]) / 1000 for q in (50, 95, 99))


async def _load(
    client: str, url: str, seconds: float, concurrency: int, run: Run, script: Path
) -> None:
    if client == "wrk":
        await _load_wrk(url, seconds, concurrency, run, script)
    else:
        await _load_httpx(url, seconds, concurrency, run)


def _client_cpu() -> float:
    """CPU of this process plus its reaped children (wrk is reaped when it ends)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def measure_once(
    deployment: str,
    database_url: str,
    *,
    seconds: float,
    concurrency: int,
    client: str,
    workdir: Path,
    profile: Path | None,
    rate: float,
) -> Run:
    run = Run(deployment)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / f"{deployment}.log"
    serve_args = ["serve", "--port", str(port)]
    if deployment != "workers":
        serve_args.append("--no-workers")
    procs = [_start(serve_args, database_url, log)]
    if deployment == "separate":
        procs.append(_start(["worker"], database_url, log))
    script, paced_script = workdir / "bench.lua", workdir / "paced.lua"
    lua = {"create": json.dumps(ORDER), "place": json.dumps(PLACE), "token": TOKEN}
    lua["connections"] = str(concurrency)
    script.write_text(_WRK_SCRIPT % {**lua, "interval_ms": 0})
    paced_script.write_text(_WRK_SCRIPT % {**lua, "interval_ms": 1000 * concurrency / (rate or 1)})
    spy: asyncio.subprocess.Process | None = None
    try:
        await _wait_ready(url, procs[0])
        await _register_product(url)
        await _load(client, url, min(3.0, seconds / 4), concurrency, Run(deployment), script)
        cpu0 = [_cpu_seconds(p.pid) for p in procs]
        backends = await _backend_pids(database_url)
        pg0 = sum(_cpu_seconds(pid) for pid in backends)
        client0 = _client_cpu()
        if profile is not None:
            spy_args = [PY_SPY, "record", "--pid", str(procs[0].pid), "--nonblocking"]
            spy_args += ["--duration", str(max(1, round(seconds) - 1)), "--format", "raw"]
            spy = await asyncio.create_subprocess_exec(
                *spy_args,
                "-o",
                str(profile),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        await _load(client, url, seconds, concurrency, run, script)
        cpu1 = [_cpu_seconds(p.pid) for p in procs]
        run.server_cpu = cpu1[0] - cpu0[0]
        run.worker_cpu = sum(cpu1[1:]) - sum(cpu0[1:])
        run.client_cpu = _client_cpu() - client0
        run.postgres_cpu = sum(_cpu_seconds(pid) for pid in backends) - pg0
        if deployment != "api-only":
            run.sagas, run.sagas_unfinished = await _saga_backlog(database_url)
        if spy is not None:
            await asyncio.wait_for(spy.wait(), timeout=60)
        if client == "wrk" and rate > 0:
            run.paced = Run(deployment)
            await _load_wrk(url, seconds, concurrency, run.paced, paced_script)
    finally:
        stops = [_stop(p) for p in procs]
    if stops[0] is None:
        run.notes.append(f"{deployment}: the server did not stop within {STOP_TIMEOUT:g} s")
    run.stop_seconds = stops[0] if stops[0] is not None else STOP_TIMEOUT
    if len(stops) > 1 and stops[1] is None:
        run.notes.append(f"{deployment}: the worker did not stop within {STOP_TIMEOUT:g} s")
    return run


async def _backend_pids(database_url: str) -> list[int]:
    """The PostgreSQL backends connected to this database (the pools are open by now; a
    backend that starts later is not counted, so the figure is a lower bound)."""
    name = database_url.rsplit("/", 1)[1]
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        return [int(row[0]) for row in await cur.fetchall()]


async def _saga_backlog(database_url: str) -> tuple[int, int]:
    """(sagas started, sagas not completed yet): do the workers keep up with the API?"""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status <> 'completed') FROM saga_instances"
        )
        row = await cur.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _package_of(frame: str) -> str:
    found = re.match(r".* \((.*):\d+\)$", frame)
    filename = found.group(1) if found else frame
    if filename.startswith("cairn/"):
        return "cairn." + filename.split("/")[1].removesuffix(".py")
    if "/" in filename and not filename.startswith("<"):
        top = filename.split("/")[0]
        return top if "python3" not in top else "stdlib"
    return "stdlib:" + filename


_ACTIVITIES = (
    (("(uvicorn/protocols/http", "(fastapi/", "(starlette/"), "http"),
    (("(cairn/sagas/",), "sagas"),
    (("(cairn/projections/",), "projections"),
    (("(cairn/relay/",), "relay"),
    (("(cairn/application/",), "commands (task not named)"),
    (("(cairn/store/",), "store"),
)


def _activity_of(frames: list[str]) -> str:
    """What a sample was doing. Under uvloop a sample's stack starts at its task's coroutine,
    so a stack cut short inside psycopg cannot be attributed."""
    for markers, name in _ACTIVITIES:
        if any(marker in frame for frame in frames for marker in markers):
            return name
    return "unattributed"


def profile_summary(path: Path, top: int = 15) -> list[str]:
    """py-spy's raw stacks → CPU share by package (own time), hottest functions, and the share
    of the time spent under a few cairn functions (inclusive)."""
    if not path.exists():
        return ["no profile written (is py-spy installed?)"]
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    activity: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        own[frames[-1]] += n
        activity[_activity_of(frames)] += n
        packages[_package_of(stack.split(";")[-1])] += n
        for frame in set(frames):
            if "(cairn/" in frame or "(fastapi/routing" in frame:
                inclusive[frame] += n
    if not total:
        return ["no samples"]
    lines = [f"{total} samples; by activity:"]
    lines.append(", ".join(f"{k} {100 * v / total:.0f}%" for k, v in activity.most_common()))
    lines.append("by package (own time):")
    lines.append(", ".join(f"{k} {100 * v / total:.0f}%" for k, v in packages.most_common(10)))
    lines.append("hottest functions (own time):")
    lines += [f"{100 * v / total:5.1f}%  {k}" for k, v in own.most_common(top)]
    lines.append("under cairn functions (inclusive):")
    lines += [f"{100 * v / total:5.1f}%  {k}" for k, v in inclusive.most_common(top * 2)]
    return lines


def _spread(values: list[float]) -> str:
    return f"{min(values):,.1f}-{max(values):,.1f}" if len(values) > 1 else ""


def _report(runs: list[Run], client: str, concurrency: int, rounds: int) -> Report:
    report = Report("http")
    for deployment in dict.fromkeys(r.deployment for r in runs):
        mine = [r for r in runs if r.deployment == deployment]

        def add(name: str, values: list[float], unit: str, d: str = deployment) -> float:
            value = statistics.median(values)
            spread = _spread(values)
            report.add(f"{d}: {name}", value, unit, f"rounds {spread}" if spread else "")
            return value

        rate = add("commands/s", [r.rate for r in mine], "cmd/s")
        add("latency p50", [r.p50 for r in mine], "ms")
        add("latency p95", [r.p95 for r in mine], "ms")
        p99 = add("latency p99", [r.p99 for r in mine], "ms")
        add("errors", [float(r.errors) for r in mine], "requests")
        add(
            "cairn CPU",
            [1000 * (r.server_cpu + r.worker_cpu) / max(r.commands, 1) for r in mine],
            "ms/cmd",
        )
        if deployment == "separate":
            add(
                "  of which worker",
                [1000 * r.worker_cpu / max(r.commands, 1) for r in mine],
                "ms/cmd",
            )
        add("PostgreSQL CPU", [1000 * r.postgres_cpu / max(r.commands, 1) for r in mine], "ms/cmd")
        add("client CPU", [1000 * r.client_cpu / max(r.commands, 1) for r in mine], "ms/cmd")
        add("stop after SIGTERM", [r.stop_seconds for r in mine], "s")
        if deployment != "api-only":
            add("sagas unfinished at the end", [float(r.sagas_unfinished) for r in mine], "")
            add("  of sagas started", [float(r.sagas) for r in mine], "")
        report.check(f"{deployment}: commands/s", rate, GOAL_RATE)
        paced = [r.paced for r in mine if r.paced is not None]
        if paced:
            d = f"{deployment} paced at {GOAL_RATE:g}/s"
            add("commands/s", [r.rate for r in paced], "cmd/s", d)
            add("latency p50", [r.p50 for r in paced], "ms", d)
            add("latency p95", [r.p95 for r in paced], "ms", d)
            p99 = add("latency p99", [r.p99 for r in paced], "ms", d)
            add("errors", [float(r.errors) for r in paced], "requests", d)
        report.check(f"{deployment}: p99 ms" + (" (paced)" if paced else ""), p99, 50, "<=")
        for r in mine:
            report.notes += r.notes
    report.notes.append(
        f"{concurrency} keep-alive connections from {client} on the same "
        f"{os.cpu_count()}-core machine as cairn and PostgreSQL; each order = create + place "
        f"(2 commands); {rounds} round(s), deployments in turn, medians"
    )
    return report


async def measure(
    *,
    seconds: float,
    concurrency: int,
    client: str,
    deployments: list[str],
    rounds: int,
    profile: bool,
    database_url: str | None,
    paced: bool = True,
) -> Report:
    workdir = Path(tempfile.mkdtemp(prefix="cairn-bench-http-"))
    runs: list[Run] = []
    profiles: dict[str, Path] = {}
    for round_ in range(rounds):
        for deployment in deployments:
            prof = workdir / f"{deployment}.{round_}.spy" if profile and round_ == 0 else None
            if prof is not None:
                profiles[deployment] = prof
            measure = partial(
                measure_once,
                deployment,
                seconds=seconds,
                concurrency=concurrency,
                client=client,
                rate=GOAL_RATE if paced else 0.0,
                workdir=workdir,
                profile=prof,
            )
            if database_url:
                run = await measure(database_url)
            else:
                async with scratch_pg_database("cairn_bench_http") as url_db:
                    run = await measure(url_db)
            print(
                f"  {deployment}: {run.rate:.0f} cmd/s, p99 {run.p99:.0f} ms, {run.errors} errors",
                flush=True,
            )
            runs.append(run)
    report = _report(runs, client, concurrency, rounds)
    for deployment, path in profiles.items():
        report.notes.append(f"profile of cairn serve, {deployment} (py-spy, {client} load):")
        report.notes += profile_summary(path)
    return report


def main(argv: list[str] | None = None) -> int:
    from bench.common import format_table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--quick", action="store_true", help="5 seconds, one deployment")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--client", choices=("wrk", "httpx"), default="wrk" if shutil.which("wrk") else "httpx"
    )
    parser.add_argument("--deployments", default=",".join(DEPLOYMENTS))
    parser.add_argument("--no-workers", action="store_true", help="same as --deployments api-only")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="py-spy the serve process")
    parser.add_argument(
        "--no-paced", action="store_true", help="skip the run paced at the goal's rate"
    )
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    if args.client == "httpx":
        # The Python client shares the 2 cores with cairn and costs several times wrk's CPU per
        # request: its figures are not comparable with wrk's (README's). Say so up front.
        print(
            "warning: load from the in-process httpx client (wrk not found: apt-get install wrk);"
            " figures are not comparable with wrk runs",
            file=sys.stderr,
        )
    deployments = [d.strip() for d in args.deployments.split(",") if d.strip()]
    if args.no_workers:
        deployments = ["api-only"]
    if args.quick:
        args.seconds, deployments = 5, deployments[:1]
    unknown = set(deployments) - set(DEPLOYMENTS)
    if unknown:
        parser.error(f"unknown deployment(s) {sorted(unknown)}; choose from {DEPLOYMENTS}")
    report = asyncio.run(
        measure(
            seconds=args.seconds,
            concurrency=args.concurrency,
            client=args.client,
            deployments=deployments,
            rounds=args.rounds,
            profile=args.profile,
            database_url=args.database_url,
            paced=not args.no_paced,
        )
    )
    print(format_table(report))
    return 0
