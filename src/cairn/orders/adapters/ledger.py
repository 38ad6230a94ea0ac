"""The fakes' ledger: every call a fake adapter received and every effect it had.

Entries are keyed by ``(operation, idempotency_key)``: a re-sent call (same key) is recognised
and answered from the ledger without a second effect, which is what lets tests prove that no
reservation, authorisation or capture happened twice. With a ``path`` the ledger is a JSON-lines
file shared by processes (a ``flock`` serialises writers), so a saga worker killed with
``kill -9`` and its successor see one history.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    #: ``authorize``, ``capture``, ``void``, ``refund``, ``create_shipment``, ``cancel_shipment``
    #: for effects; ``attempt`` rows record calls that had no effect (timeouts, transient errors).
    operation: str
    key: str
    subject: str
    result: dict[str, Any] = field(default_factory=dict)


class Ledger:
    def __init__(self, path: str | None = None) -> None:
        self._path = path
        self._entries: list[LedgerEntry] = []
        # The first entry of each (operation, key): find() is asked once per call a fake gets,
        # and a scan would make a long benchmark slower with every order.
        self._first: dict[tuple[str, str], LedgerEntry] = {}
        self._held = False

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the ledger for a read-decide-write sequence (across processes with a path)."""
        if self._path is None or self._held:
            yield
            return
        fd = os.open(f"{self._path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._reload()
            self._held = True
            yield
        finally:
            self._held = False
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _reload(self) -> None:
        assert self._path is not None
        entries: list[LedgerEntry] = []
        with contextlib.suppress(FileNotFoundError), open(self._path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    raw = json.loads(line)
                    entries.append(LedgerEntry(**raw))
        self._entries = entries
        self._first = {}
        for entry in entries:
            self._first.setdefault((entry.operation, entry.key), entry)

    def record(self, entry: LedgerEntry) -> None:
        self._entries.append(entry)
        self._first.setdefault((entry.operation, entry.key), entry)
        if self._path is not None:
            line = json.dumps(
                {
                    "operation": entry.operation,
                    "key": entry.key,
                    "subject": entry.subject,
                    "result": entry.result,
                }
            )
            with open(self._path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())

    def find(self, operation: str, key: str) -> LedgerEntry | None:
        return self._first.get((operation, key))

    def entries(
        self, operation: str | None = None, subject: str | None = None
    ) -> list[LedgerEntry]:
        """Entries (oldest first), optionally of one operation and/or one subject."""
        if self._path is not None and not self._held:
            with self.locked():
                pass
        return [
            e
            for e in self._entries
            if (operation is None or e.operation == operation)
            and (subject is None or e.subject == subject)
        ]

    def count(self, operation: str, subject: str) -> int:
        return len(self.entries(operation, subject))
