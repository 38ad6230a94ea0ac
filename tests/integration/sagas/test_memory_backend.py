"""The saga runner on ``memory://``: saga state in a private in-memory SQLite database."""

from __future__ import annotations

import pytest
from saga_harness import running

from cairn.errors import ApplicationError, NotFoundError


async def test_the_happy_path_runs_on_the_memory_backend() -> None:
    async with running("memory://") as w:
        await w.product("MUG", 5)
        order = await w.order({"MUG": 2})
        saga = await w.wait(order, "completed")
        assert saga.data["outcome"] == "confirmed"
        assert await w.stock("MUG") == (5, 2)


async def test_only_a_failed_saga_can_be_retried() -> None:
    async with running("memory://") as w:
        await w.product("MUG", 5)
        order = await w.order({"MUG": 1})
        saga = await w.wait(order, "completed")
        with pytest.raises(ApplicationError, match="only a failed saga") as refused:
            await w.runner.retry(saga.saga_id)
        assert refused.value.code == "saga.not_failed"


async def test_retrying_an_unknown_saga_is_not_found() -> None:
    async with running("memory://") as w:
        with pytest.raises(NotFoundError) as missing:
            await w.runner.retry("00000000-0000-0000-0000-000000000000")
        assert missing.value.code == "saga.not_found"


async def test_an_invalid_list_limit_or_status_is_refused() -> None:
    async with running("memory://") as w:
        with pytest.raises(ApplicationError, match="limit"):
            await w.runner.list(limit=0)
        with pytest.raises(ApplicationError, match="unknown saga status"):
            await w.runner.list("nope")


async def test_counts_give_the_number_of_sagas_per_status() -> None:
    async with running("memory://") as w:
        await w.product("MUG", 5)
        for token in ("tok_ok", "tok_decline", "tok_ok"):
            await w.wait(await w.order({"MUG": 1}, token), "completed", step=None)
        assert await w.runner.counts() == {"completed": 3}
