"""Database URLs → what each driver wants. One place, so every component that shares the
store's database (read models, saga state, relay checkpoints, leases) reads the URL the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cairn.errors import UnsupportedStoreURL


class Backend(Enum):
    MEMORY = "memory"
    SQLITE = "sqlite"
    POSTGRES = "postgres"
    REDIS = "redis"


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
    if scheme in ("redis", "rediss"):
        return Backend.REDIS
    raise UnsupportedStoreURL(
        f"unsupported URL scheme {scheme!r}: use memory://, sqlite:///, postgresql:// or redis://"
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


#: Query parameters of a ``postgresql://`` URL that size the event store's connection pool;
#: they are cairn's, so they are removed before the URL reaches libpq (which refuses them).
POOL_PARAMETERS: Final = ("pool_min", "pool_max")


@dataclass(frozen=True, slots=True)
class PoolSize:
    """Connections the PostgreSQL event store keeps open (``min``) and may open (``max``)."""

    min: int = 2
    max: int = 16


def postgres_conninfo(url: str) -> str:
    """A libpq URL psycopg accepts (``postgres://`` and ``postgresql+driver://`` normalised,
    the pool parameters removed)."""
    if backend_of(url) is not Backend.POSTGRES:
        raise UnsupportedStoreURL(f"not a postgresql URL: {url!r}")
    parts = urlsplit(url)
    if not parts.hostname and not parts.path.strip("/"):
        raise UnsupportedStoreURL(f"postgresql URL names no host or database: {url!r}")
    conninfo = "postgresql://" + url.split("://", 1)[1]
    if not parts.query:
        return conninfo
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in query if k not in POOL_PARAMETERS]
    if len(kept) == len(query):
        return conninfo
    return urlunsplit(urlsplit(conninfo)._replace(query=urlencode(kept)))


def pool_size(url: str) -> PoolSize:
    """``?pool_min=2&pool_max=16`` of a ``postgresql://`` URL (the defaults where absent)."""
    given = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    default = PoolSize()
    sizes: dict[str, int] = {}
    for name, fallback in zip(POOL_PARAMETERS, (default.min, default.max), strict=True):
        text = given.get(name)
        if text is None:
            sizes[name] = fallback
            continue
        try:
            sizes[name] = int(text)
        except ValueError:
            raise UnsupportedStoreURL(f"{name} must be an integer, got {text!r}") from None
        if sizes[name] < 1:
            raise UnsupportedStoreURL(f"{name} must be at least 1, got {sizes[name]}")
    if "pool_max" not in given:
        sizes["pool_max"] = max(sizes["pool_max"], sizes["pool_min"])
    if sizes["pool_min"] > sizes["pool_max"]:
        raise UnsupportedStoreURL(
            f"pool_min ({sizes['pool_min']}) must not exceed pool_max ({sizes['pool_max']})"
        )
    return PoolSize(sizes["pool_min"], sizes["pool_max"])


#: Query parameters of a ``redis://`` store URL that are cairn's (removed before redis-py sees
#: the URL, which would pass them to the connection as unknown keyword arguments).
REDIS_PARAMETERS: Final = ("volatile", "prefix")


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A ``redis://host:port/db?volatile=ok&prefix=name`` store URL, taken apart."""

    #: The URL redis-py connects with (cairn's own parameters removed).
    connection_url: str
    #: Every key of the store starts with ``{prefix}:`` (a hash tag: one Cluster slot).
    prefix: str = "cairn"
    #: ``?volatile=ok``: the operator accepts a Redis that loses everything on restart.
    volatile_ok: bool = False


def redis_target(url: str) -> RedisTarget:
    if backend_of(url) is not Backend.REDIS:
        raise UnsupportedStoreURL(f"not a redis URL: {url!r}")
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in REDIS_PARAMETERS}
    volatile = ours.get("volatile")
    if volatile not in (None, "ok"):
        raise UnsupportedStoreURL(f"volatile must be 'ok' when given, got {volatile!r}")
    prefix = ours.get("prefix", "cairn")
    if not prefix or any(c in prefix for c in "{}: \t\r\n"):
        raise UnsupportedStoreURL(f"prefix {prefix!r} must be non-empty, without braces or colons")
    kept = [(k, v) for k, v in query if k not in REDIS_PARAMETERS]
    connection = urlunsplit(parts._replace(query=urlencode(kept)))
    return RedisTarget(connection, prefix, volatile == "ok")
