"""A server process settles its start-up heap out of the cyclic collector's way."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from cairn.api.app import create_app
from cairn.gc_tuning import SERVER_YOUNG_THRESHOLD
from cairn.orders.bootstrap import bootstrap
from cairn.settings import Settings


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
async def test_a_server_app_freezes_its_start_up_heap_and_collects_young_objects_less_often() -> (
    None
):
    settings = Settings(database_url="memory://")
    container = await bootstrap(settings)
    app = create_app(settings, container, run_workers=False, freeze_heap=True)

    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == SERVER_YOUNG_THRESHOLD
    await container.close()


async def test_an_app_leaves_the_collector_alone_by_default() -> None:
    settings = Settings(database_url="memory://")
    container = await bootstrap(settings)
    app = create_app(settings, container, run_workers=False)
    frozen, threshold = gc.get_freeze_count(), gc.get_threshold()

    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() == frozen
        assert gc.get_threshold() == threshold
    await container.close()
