"""Database URLs → what each driver wants. One place, so every component that shares the
store's database (read models, saga state, relay checkpoints, leases) reads the URL the same way.
"""

from __future__ import annotations

from enum import Enum
from urllib.parse import urlsplit

from cairn.errors import UnsupportedStoreURL


class Backend(Enum):
    MEMORY = "memory"
    SQLITE = "sqlite"
    POSTGRES = "postgres"


def backend_of(url: str) -> Backend:
    if not isinstance(url, str) or "://" not in url:
        raise UnsupportedStoreURL(f"not a database URL: {url!r} (try sqlite:///cairn.db)")
    scheme = url.split("://", 1)[0].lower()
    if scheme == "memory":
        return Backend.MEMORY
    if scheme == "sqlite":
        return Backend.SQLITE
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        return Backend.POSTGRES
    raise UnsupportedStoreURL(
        f"unsupported URL scheme {scheme!r}: use memory://, sqlite:/// or postgresql://"
    )


def sqlite_path(url: str) -> str:
    """SQLAlchemy convention: ``sqlite:///rel.db`` is relative, ``sqlite:////abs.db`` absolute;
    ``sqlite://`` or ``sqlite:///:memory:`` is a private in-memory database."""
    if backend_of(url) is not Backend.SQLITE:
        raise UnsupportedStoreURL(f"not a sqlite URL: {url!r}")
    rest = url.split("://", 1)[1]
    if rest in ("", "/", "/:memory:"):
        return ":memory:"
    if not rest.startswith("/"):
        raise UnsupportedStoreURL(f"sqlite URL needs three slashes: {url!r} (sqlite:///file.db)")
    path = rest[1:].split("?", 1)[0]
    if not path:
        raise UnsupportedStoreURL(f"sqlite URL names no file: {url!r}")
    return path


def postgres_conninfo(url: str) -> str:
    """A libpq URL psycopg accepts (``postgres://`` and ``postgresql+driver://`` normalised)."""
    if backend_of(url) is not Backend.POSTGRES:
        raise UnsupportedStoreURL(f"not a postgresql URL: {url!r}")
    parts = urlsplit(url)
    if not parts.hostname and not parts.path.strip("/"):
        raise UnsupportedStoreURL(f"postgresql URL names no host or database: {url!r}")
    return "postgresql://" + url.split("://", 1)[1]
