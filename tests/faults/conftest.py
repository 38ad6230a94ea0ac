"""Fault tests: real ``cairn serve`` processes under load while a fault is injected (SPEC §12).

They reuse the end-to-end helpers (``tests/e2e/e2e_server.py``) and share their scenario with
``python -m bench faults`` (:mod:`scenario`). Each module runs its fault once (a module-scoped
fixture, kept under ~30 s) and prints the closing note's figures (run with ``-s``); each test
then states one behaviour of that run.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))

from scenario import PG_ADMIN_URL


@pytest.fixture(scope="module")
def module_pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one module's fault run, dropped afterwards."""
    name = f"cairn_f_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
