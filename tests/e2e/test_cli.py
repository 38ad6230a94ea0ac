"""The ``cairn`` command line, as a user runs it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from e2e_server import CAIRN, cairn_env


def cairn(
    *args: str, database_url: str, cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CAIRN, *args],
        cwd=cwd,
        env=cairn_env(database_url),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_migrate_is_idempotent(tmp_path: Path, pg_url: str) -> None:
    for url in (f"sqlite:///{tmp_path}/cli.db", pg_url):
        first = cairn("migrate", database_url=url, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert "applied" in first.stdout
        second = cairn("migrate", database_url=url, cwd=tmp_path)
        assert second.returncode == 0, second.stderr
        assert "applied" not in second.stdout
        assert "schema up to date" in second.stdout


def test_relative_sqlite_url_is_relative_to_the_working_directory(tmp_path: Path) -> None:
    r = cairn("migrate", database_url="sqlite:///./here.db", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "here.db").exists()


def test_events_prints_a_stream_oldest_first(tmp_path: Path) -> None:
    import asyncio

    import cairn as lib

    url = f"sqlite:///{tmp_path}/events.db"

    async def seed() -> None:
        async with lib.open_store(url) as store:
            await store.append("thing-1", [lib.NewEvent("Made", {}), lib.NewEvent("Used", {})])

    asyncio.run(seed())
    r = cairn("events", "thing-1", "--json", database_url=url, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert [line.split('"type": ')[1].split('"')[1] for line in lines] == ["Made", "Used"]
    table = cairn("events", "thing-1", database_url=url, cwd=tmp_path)
    assert table.returncode == 0
    assert "Made" in table.stdout
    assert table.stdout.index("Made") < table.stdout.index("Used")


def test_unreachable_database_is_a_one_line_error(tmp_path: Path) -> None:
    started = time.monotonic()
    r = cairn(
        "migrate",
        database_url="postgresql://postgres@127.0.0.1:1/nowhere",
        cwd=tmp_path,
        timeout=40,
    )
    assert time.monotonic() - started < 30
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("error:")


def test_bad_url_is_a_one_line_error(tmp_path: Path) -> None:
    r = cairn("serve", "--port", "1", database_url="mysql://x/y", cwd=tmp_path)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert "unsupported URL scheme" in r.stderr


def test_demo_runs_every_saga_path_in_a_fresh_directory(tmp_path: Path) -> None:
    started = time.monotonic()
    r = subprocess.run(
        [CAIRN, "demo"],
        cwd=tmp_path,
        env={k: v for k, v in cairn_env("unused://").items() if not k.startswith("CAIRN_")},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert time.monotonic() - started < 60
    assert r.stdout.count("✓") == 6, r.stdout
    assert "✗" not in r.stdout
    assert "delivered" in r.stdout
    assert "[redacted]" in r.stdout  # the forgotten customer, in the customers read model
    assert (tmp_path / "cairn-demo.db").exists()
