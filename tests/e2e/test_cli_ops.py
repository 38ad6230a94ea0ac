"""Operators' side of the CLI: ``cairn tokens hash``, a token file at start-up, ``cairn bench``
on a scratch database."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
from pathlib import Path

from e2e_server import CAIRN, cairn_env


def run(
    *args: str, env: dict[str, str], cwd: Path, stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CAIRN, *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_tokens_hash_prints_the_file_line_and_never_the_token(tmp_path: Path) -> None:
    env = cairn_env(f"sqlite:///{tmp_path}/unused.db")
    r = run("tokens", "hash", "customer:c-9", env=env, cwd=tmp_path, stdin="s3cr3t-token\n")
    assert r.returncode == 0, r.stderr
    digest = hashlib.sha256(b"s3cr3t-token").hexdigest()
    assert r.stdout == f"{digest} customer:c-9\n"
    assert "s3cr3t" not in r.stdout + r.stderr
    bad_role = run("tokens", "hash", "root", env=env, cwd=tmp_path, stdin="s3cr3t-token\n")
    assert bad_role.returncode == 1
    assert "unknown role" in bad_role.stderr
    empty = run("tokens", "hash", "admin", env=env, cwd=tmp_path, stdin="\n")
    assert empty.returncode == 1
    assert not (tmp_path / "unused.db").exists()


def test_serve_refuses_a_malformed_tokens_file_in_one_line(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    digest = hashlib.sha256(b"good").hexdigest()
    tokens.write_text(f"{digest} admin\nplain-s3cr3t operator\n", encoding="utf-8")
    env = cairn_env(
        f"sqlite:///{tmp_path}/cairn.db", CAIRN_TOKENS="", CAIRN_TOKENS_FILE=str(tokens)
    )
    r = run("serve", "--port", "1", env=env, cwd=tmp_path, timeout=30)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr
    assert f"CAIRN_TOKENS_FILE {tokens} line 2" in errors[0]
    assert "s3cr3t" not in r.stdout + r.stderr


def _tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM sqlite_master ORDER BY name")]


def test_bench_leaves_the_configured_database_untouched(tmp_path: Path) -> None:
    configured = tmp_path / "production.db"
    sqlite3.connect(configured).close()  # an existing (empty) database file
    before = configured.read_bytes()
    env = cairn_env(f"sqlite:///{configured}")
    r = run("bench", "--orders", "20", "--concurrency", "4", env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "commands/s" in r.stdout
    assert "benchmark database: sqlite:///" in r.stdout
    assert str(configured) not in r.stdout
    assert configured.read_bytes() == before
    assert _tables(configured) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["production.db"]  # scratch removed

    # Asked for explicitly, it writes where it is told.
    target = tmp_path / "bench-here.db"
    r = run("bench", "--orders", "5", "--database", f"sqlite:///{target}", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "events" in _tables(target)
    assert configured.read_bytes() == before

    # The global --database-url is the configured database too: refused, not used.
    r = run("--database-url", f"sqlite:///{configured}", "bench", env=env, cwd=tmp_path)
    assert r.returncode == 1
    assert "--database URL" in r.stderr
    assert configured.read_bytes() == before
