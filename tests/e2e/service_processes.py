"""Processes of seed 004's service layout for the end-to-end tests: ``cairn serve`` given
longer to start, and ``cairn worker``, each with a small connection budget."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from e2e_server import CAIRN, Server, cairn_env

SMALL = {"CAIRN_DB_MAX_CONNECTIONS": "4"}


class Service(Server):
    """``cairn serve``, given longer to start than ``Server``: here up to eight processes start
    at once on a machine of two cores shared with others."""

    def _wait_ready(self, timeout: float = 90.0) -> None:
        super()._wait_ready(timeout)


class Worker:
    """One ``cairn worker`` process."""

    def __init__(
        self, database_url: str, workdir: Path, *args: str, env: Mapping[str, str] | None = None
    ) -> None:
        """``env``: more CAIRN_* settings."""
        self.log_path = workdir / f"worker-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [CAIRN, "worker", *args],
            cwd=workdir,
            env=cairn_env(database_url, **SMALL, **(env or {})),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._log.close()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]
