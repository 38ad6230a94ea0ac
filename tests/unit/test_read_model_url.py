"""SPEC §18: with a Redis event store, read models, saga state, checkpoints and idempotency
records live in ``CAIRN_READ_MODEL_URL`` (SQLite beside the working directory by default); with
a SQL store they stay in the store's own database."""

from __future__ import annotations

import pytest

from cairn.settings import Settings


def test_a_redis_store_puts_the_rest_in_sqlite_beside_the_working_directory() -> None:
    settings = Settings(database_url="redis://127.0.0.1:6379/0")
    assert settings.sql_url == "sqlite:///./cairn-read.db"


def test_cairn_read_model_url_names_where_the_rest_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_DATABASE_URL", "redis://127.0.0.1:6379/0?volatile=ok")
    monkeypatch.setenv("CAIRN_READ_MODEL_URL", "postgresql://postgres@127.0.0.1/reads")
    assert Settings().sql_url == "postgresql://postgres@127.0.0.1/reads"


@pytest.mark.parametrize("url", ["sqlite:///cairn.db", "postgresql://h/db", "memory://"])
def test_a_sql_or_memory_store_keeps_everything_in_its_own_database(url: str) -> None:
    assert Settings(database_url=url, read_model_url="sqlite:///elsewhere.db").sql_url == url
