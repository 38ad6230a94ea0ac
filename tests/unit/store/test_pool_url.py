"""The PostgreSQL event store's pool is sized from its URL: ``?pool_min=…&pool_max=…``."""

import pytest

from cairn.errors import UnsupportedStoreURL
from cairn.store.urls import PoolSize, pool_size, postgres_conninfo


def test_a_url_without_pool_parameters_gets_the_default_pool() -> None:
    assert pool_size("postgresql://u@h/db") == PoolSize(min=2, max=16)


def test_pool_parameters_size_the_pool() -> None:
    assert pool_size("postgresql://u@h/db?pool_min=4&pool_max=32") == PoolSize(min=4, max=32)


def test_a_minimum_above_the_default_maximum_raises_the_maximum() -> None:
    assert pool_size("postgresql://u@h/db?pool_min=20") == PoolSize(min=20, max=20)


@pytest.mark.parametrize(
    "query",
    ["pool_min=x", "pool_max=", "pool_min=0", "pool_max=-1", "pool_min=8&pool_max=4"],
)
def test_a_bad_pool_parameter_is_refused(query: str) -> None:
    with pytest.raises(UnsupportedStoreURL):
        pool_size(f"postgresql://u@h/db?{query}")


def test_pool_parameters_never_reach_libpq() -> None:
    url = "postgresql://u@h/db?sslmode=disable&pool_min=1&pool_max=4&application_name=x"
    assert postgres_conninfo(url) == "postgresql://u@h/db?sslmode=disable&application_name=x"


def test_a_url_without_pool_parameters_reaches_libpq_unchanged() -> None:
    url = "postgresql://u@h/db?sslmode=disable"
    assert postgres_conninfo(url) == url
