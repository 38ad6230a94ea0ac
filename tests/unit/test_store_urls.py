"""How database URLs are read: the SQLAlchemy convention for SQLite, libpq for PostgreSQL."""

import pytest

from cairn.errors import UnsupportedStoreURL
from cairn.store.urls import Backend, backend_of, postgres_conninfo, sqlite_path


def test_three_slashes_name_a_path_relative_to_the_working_directory() -> None:
    assert sqlite_path("sqlite:///orders.db") == "orders.db"


def test_four_slashes_name_an_absolute_path() -> None:
    assert sqlite_path("sqlite:////var/lib/cairn/orders.db") == "/var/lib/cairn/orders.db"


def test_sqlite_without_a_file_is_a_private_memory_database() -> None:
    assert sqlite_path("sqlite://") == ":memory:"


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("memory://", Backend.MEMORY),
        ("sqlite:///x.db", Backend.SQLITE),
        ("postgresql://u@h:5432/db", Backend.POSTGRES),
        ("postgres://u@h/db", Backend.POSTGRES),
    ],
)
def test_the_scheme_picks_the_backend(url: str, backend: Backend) -> None:
    assert backend_of(url) is backend


@pytest.mark.parametrize("url", ["mysql://h/db", "orders.db", "", "ftp://x"])
def test_an_unknown_scheme_is_a_typed_error_naming_the_url(url: str) -> None:
    with pytest.raises(UnsupportedStoreURL, match="URL"):
        backend_of(url)


def test_postgres_alias_scheme_is_normalised_for_libpq() -> None:
    assert postgres_conninfo("postgres://u@h/db") == "postgresql://u@h/db"
