"""A real PostgreSQL hot standby of the shared test server, made and torn down by a test.

The shared server's ``pg_hba.conf`` allows no replication connection (from 127.0.0.1 or the
local socket), and changing it would mean reconfiguring a server shared by everyone. So the
standby is made the other classic way, without the replication protocol: a low-level base backup
(``pg_backup_start`` / ``pg_backup_stop`` around a file copy of the data directory), and the
standby's ``restore_command`` reads the primary's ``pg_wal`` directly (the segment still being
written is copied as far as it goes and fetched again on the next retry). The primary keeps every
segment the standby still needs because of a temporary physical replication slot, made with plain
SQL before the backup starts and moved on to what the standby has replayed; without it, a
checkpoint (every ``DROP DATABASE`` of the other tests forces one) can recycle a segment before
the standby has read it, and the standby then waits for it forever. The slot belongs to the
test's session: it goes when the test's connection closes, even if the test process dies. It is a
real second postmaster in hot-standby mode, replaying the primary's WAL with a real lag, on a free
port; it answers read-only queries and refuses writes. A replica replicates the whole cluster: a
database created after it started (``CREATE DATABASE`` is in the WAL) is there too.

The postmaster runs as the ``postgres`` OS user (the tests run as root). Nothing on the shared
server changes: the backup functions only mark the backup's start and end in its WAL, and the
slot lasts only as long as the test's connection.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PRIMARY_ADMIN_URL = os.environ.get("CAIRN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
#: Copied empty: the primary's WAL (shipped instead) and runtime state.
_EMPTIED = {"pg_wal", "pg_replslot", "pg_stat_tmp"}
#: Left out: the primary's pid file and command line.
_SKIPPED = {"postmaster.pid", "postmaster.opts"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _copy_tree(source: Path, target: Path) -> None:
    """Copy a live data directory; files that vanish meanwhile (temporary ones) are skipped,
    and whatever changes is made consistent by replaying the WAL from the backup's start."""
    target.mkdir(mode=0o700)
    for entry in os.scandir(source):
        if entry.name in _SKIPPED:
            continue
        if entry.name in _EMPTIED:
            (target / entry.name).mkdir(mode=0o700)
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                _copy_tree(Path(entry.path), target / entry.name)
            else:
                shutil.copy2(entry.path, target / entry.name)
        except FileNotFoundError:
            continue


def _one(conn: psycopg.Connection[tuple[object, ...]], sql: str) -> str:
    """The one value ``sql`` answers, as text."""
    row = conn.execute(sql.encode()).fetchone()
    assert row is not None
    return str(row[0])


class _SlotKeeper(threading.Thread):
    """Moves the primary's slot on to what the standby has replayed, so the primary frees the
    WAL the standby no longer needs (the slot alone would keep all of it until the end)."""

    def __init__(
        self, primary: psycopg.Connection[tuple[object, ...]], slot: str, replica_url: str
    ) -> None:
        super().__init__(daemon=True, name="wal-slot-keeper")
        self.primary, self.slot, self.replica_url = primary, slot, replica_url
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(1.0):
            try:
                with psycopg.connect(self.replica_url, connect_timeout=2) as conn:
                    row = conn.execute("SELECT pg_last_wal_replay_lsn()").fetchone()
                if row and row[0] is not None:
                    self.primary.execute(
                        "SELECT pg_replication_slot_advance(%s, %s::pg_lsn)",
                        (self.slot, str(row[0])),
                    )
            except psycopg.Error:
                continue  # the standby is starting, or the slot is already past: next turn


class Replica:
    """A hot standby of the shared server (``start()`` / ``stop()``); ``url(database)``."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="cairn-replica-"))
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.slot = f"cairn_test_replica_{os.getpid()}_{self.port}"
        self.primary: psycopg.Connection[tuple[object, ...]] | None = None
        self.keeper: _SlotKeeper | None = None

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> None:
        # The connection holding the temporary slot lives until stop().
        self.primary = conn = psycopg.connect(PRIMARY_ADMIN_URL, autocommit=True)
        primary_data = Path(_one(conn, "SHOW data_directory"))
        settings = {
            name: _one(conn, f"SHOW {name}")
            for name in (
                "max_connections",
                "max_worker_processes",
                "max_wal_senders",
                "max_locks_per_transaction",
                "max_prepared_transactions",
            )
        }
        # Reserves WAL from now on, before the backup's start.
        conn.execute("SELECT pg_create_physical_replication_slot(%s, true, true)", (self.slot,))
        conn.execute("SELECT pg_backup_start('cairn-test-replica', true)")
        try:
            _copy_tree(primary_data, self.data)
        finally:
            row = conn.execute("SELECT labelfile, spcmapfile FROM pg_backup_stop(false)")
            label, tablespaces = row.fetchone() or ("", "")
        (self.data / "backup_label").write_text(str(label))
        if tablespaces:
            (self.data / "tablespace_map").write_text(str(tablespaces))
        (self.data / "pg_wal" / "archive_status").mkdir(mode=0o700)
        (self.data / "standby.signal").touch()
        (self.data / "pg_hba.conf").write_text("host all all 127.0.0.1/32 trust\n")
        (self.data / "pg_ident.conf").write_text("")
        conf = {
            # Standby parameters must be at least the primary's.
            **settings,
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.root}'",
            "hot_standby": "on",
            "restore_command": f"'cp {primary_data}/pg_wal/%f %p'",
            "wal_retrieve_retry_interval": "'100ms'",
            "shared_buffers": "'16MB'",
            "archive_mode": "off",
            "ssl": "off",
            "logging_collector": "off",
            "hba_file": f"'{self.data}/pg_hba.conf'",
            "ident_file": f"'{self.data}/pg_ident.conf'",
        }
        (self.data / "postgresql.conf").write_text(
            "".join(f"{name} = {value}\n" for name, value in conf.items())
        )
        (self.data / "postgresql.auto.conf").write_text("")
        user = pwd.getpwnam("postgres")
        for path in [self.root, *self.data.rglob("*"), self.data]:
            os.chown(path, user.pw_uid, user.pw_gid)
        self.data.chmod(0o700)
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(PG_BIN / "postgres"), "-D", str(self.data)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            user=user.pw_uid,
            group=user.pw_gid,
            extra_groups=[],
        )
        log.close()
        self._wait_ready(timeout)
        self.keeper = _SlotKeeper(conn, self.slot, self.url("postgres"))
        self.keeper.start()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"the replica exited:\n{self.log()}")
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2) as conn:
                    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                    if row and row[0]:
                        return
            except psycopg.OperationalError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the replica did not accept connections:\n{self.log()}")

    def catch_up(self, timeout: float = 60.0) -> None:
        """Return once the standby has replayed everything the primary had written when called
        (a busy machine can leave it seconds behind, even behind a new database's tables)."""
        with psycopg.connect(PRIMARY_ADMIN_URL, autocommit=True) as conn:
            target = _one(conn, "SELECT pg_current_wal_lsn()")
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
                ).fetchone()
                if row and row[0]:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the replica did not replay to {target}:\n{self.log()}")
                time.sleep(0.05)

    def replayed_lsn(self) -> str:
        with psycopg.connect(self.url("postgres")) as conn:
            return _one(conn, "SELECT pg_last_wal_replay_lsn()")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.keeper is not None:
            self.keeper.halt.set()
            self.keeper.join(timeout=10)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.primary is not None:
            self.primary.close()  # drops the temporary slot
        shutil.rmtree(self.root, ignore_errors=True)
