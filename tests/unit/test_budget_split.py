"""How CAIRN_DB_MAX_CONNECTIONS is shared out between a process's PostgreSQL users."""

from __future__ import annotations

import pytest

from cairn.sql.budget import ConnectionBudget
from cairn.store.urls import pool_size


def test_the_default_budget_gives_the_store_the_larger_share() -> None:
    budget = ConnectionBudget.split(10)
    assert (budget.store, budget.sql, budget.listen, budget.leases) == (6, 2, 1, 1)
    assert budget.total == 10
    assert budget.describe() == "10 (store 6, sql 2, listen 1, leases 1)"


@pytest.mark.parametrize("total", range(4, 40))
def test_every_split_adds_up_and_leaves_each_user_a_connection(total: int) -> None:
    budget = ConnectionBudget.split(total)
    assert budget.total == total
    assert min(budget.store, budget.sql) >= 1


def test_fewer_than_four_connections_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 4"):
        ConnectionBudget.split(3)


def test_the_store_share_goes_into_the_url_unless_it_sets_its_own() -> None:
    budget = ConnectionBudget.split(10)
    url = budget.store_url("postgresql://u@h/db?sslmode=disable")
    assert pool_size(url).min == 1
    assert pool_size(url).max == 6
    assert "sslmode=disable" in url
    own = "postgresql://u@h/db?pool_max=16"
    assert budget.store_url(own) == own
    described = ConnectionBudget.for_url(own, 10).describe()
    assert described == "20 (store 16, sql 2, listen 1, leases 1)"
    assert budget.store_url("sqlite:///x.db") == "sqlite:///x.db"
