"""A real PostgreSQL hot standby of the shared test server, made and torn down by a test.

The shared server's ``pg_hba.conf`` allows no replication connection (from 127.0.0.1 or the
local socket), and changing it would mean reconfiguring a server shared by everyone. So the
standby is made the other classic way, without the replication protocol: a low-level base backup
(``pg_backup_start`` / ``pg_backup_stop`` around a file copy of the data directory) and WAL
shipping. A thread of the test copies each finished WAL segment of the primary's ``pg_wal``
into the standby's own archive from the backup's start on (the primary keeps none for us, and
the machine's other users write WAL fast), and the standby's ``restore_command`` reads that
archive, or the primary's ``pg_wal`` for the segment still being written (copied as far as it
goes and fetched again on the next retry). It is a real second postmaster in hot-standby mode,
replaying the primary's WAL with a real lag, on a free port; it answers read-only queries and
refuses writes. A replica replicates the whole
cluster: a database created after it started (``CREATE DATABASE`` is in the WAL) is there too.

The postmaster runs as the ``postgres`` OS user (the tests run as root). Nothing on the shared
server changes: the backup functions only mark the backup's start and end in its WAL.
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


def _segment(lsn: str) -> str:
    """The WAL file holding ``lsn`` (timeline 1, 16 MB segments): ``pg_walfile_name``, which a
    standby cannot run."""
    high, low = (int(part, 16) for part in lsn.split("/"))
    return f"{1:08X}{high:08X}{low >> 24:08X}"


class _WalShipper(threading.Thread):
    """Copies every finished segment of the primary's WAL from ``first`` on into ``archive``
    (atomically: copy, then rename), and drops those the standby has replayed."""

    def __init__(self, primary_wal: Path, archive: Path, first: str, replica_url: str) -> None:
        super().__init__(daemon=True, name="wal-shipper")
        self.primary_wal, self.archive, self.first = primary_wal, archive, first
        self.replica_url = replica_url
        self.halt = threading.Event()

    def run(self) -> None:
        with psycopg.connect(PRIMARY_ADMIN_URL, autocommit=True) as conn:
            turns = 0
            while not self.halt.wait(0.1):
                row = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()
                self._ship(str(row[0]) if row else "")
                turns += 1
                if turns % 20 == 0:
                    self._trim()

    def _ship(self, current: str) -> None:
        for name in sorted(os.listdir(self.primary_wal)):
            if len(name) != 24 or not self.first <= name < current:
                continue
            target = self.archive / name
            if target.exists():
                continue
            partial = self.archive / f"{name}.partial"
            try:
                shutil.copyfile(self.primary_wal / name, partial)
            except FileNotFoundError:  # removed by a checkpoint meanwhile
                continue
            partial.rename(target)

    def _trim(self) -> None:
        try:
            with psycopg.connect(self.replica_url, connect_timeout=2) as conn:
                row = conn.execute("SELECT pg_last_wal_replay_lsn()").fetchone()
        except psycopg.Error:
            return
        if not row or row[0] is None:
            return
        replayed = _segment(str(row[0]))
        for name in os.listdir(self.archive):
            if name < replayed:
                (self.archive / name).unlink(missing_ok=True)


class Replica:
    """A hot standby of the shared server (``start()`` / ``stop()``); ``url(database)``."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="cairn-replica-"))
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.shipper: _WalShipper | None = None

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> None:
        with psycopg.connect(PRIMARY_ADMIN_URL, autocommit=True) as conn:
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
            start = _one(
                conn, "SELECT pg_walfile_name(pg_backup_start('cairn-test-replica', true))"
            )
            archive = self.root / "archive"
            archive.mkdir()
            self.shipper = _WalShipper(
                primary_data / "pg_wal", archive, start, self.url("postgres")
            )
            self.shipper.start()
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
            "restore_command": (
                f"'cp {archive}/%f %p 2>/dev/null || cp {primary_data}/pg_wal/%f %p'"
            ),
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
        # The archive's segments stay root's (readable by all), as the shipper writes them.
        for path in [self.root, archive, *self.data.rglob("*"), self.data]:
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
        if self.shipper is not None:
            self.shipper.halt.set()
            self.shipper.join(timeout=10)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)
