"""The process's garbage collector: a server settles its heap, a page of events is built with
the collector paused, and catch-up raises the young threshold for the process; each gives back
what it changed."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from cairn.gc_tuning import (
    CATCH_UP_THRESHOLD,
    SERVER_YOUNG_THRESHOLD,
    CatchUpRelief,
    paused_gc,
    settle_heap,
)


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    was_enabled, saved = gc.isenabled(), gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.unfreeze()
    gc.set_threshold(*saved)
    if was_enabled:
        gc.enable()
    else:
        gc.disable()


def test_a_settled_heap_is_frozen_and_young_objects_are_collected_less_often() -> None:
    settle_heap()

    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (SERVER_YOUNG_THRESHOLD, 10, 10)


# --- paused_gc -------------------------------------------------------------------------------


def test_the_collector_is_off_inside_and_on_again_after() -> None:
    gc.enable()
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_is_on_again_after_an_error() -> None:
    gc.enable()
    with pytest.raises(ValueError, match="boom"), paused_gc():
        raise ValueError("boom")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with paused_gc():
        assert not gc.isenabled()
    assert not gc.isenabled()


# --- CatchUpRelief ---------------------------------------------------------------------------


def test_thresholds_are_raised_while_any_runner_catches_up_and_restored_after_the_last() -> None:
    orders, inventory = CatchUpRelief(), CatchUpRelief()

    orders.hold()
    inventory.hold()
    orders.release()
    during = gc.get_threshold()
    inventory.release()

    assert during == (CATCH_UP_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_holding_or_releasing_twice_counts_once() -> None:
    orders, inventory = CatchUpRelief(), CatchUpRelief()

    orders.hold()
    orders.hold()
    inventory.hold()
    inventory.release()
    inventory.release()

    assert gc.get_threshold()[0] == CATCH_UP_THRESHOLD
    orders.release()
    assert gc.get_threshold() == (700, 10, 10)


def test_a_process_that_turned_automatic_collection_off_keeps_it_off() -> None:
    gc.set_threshold(0, 10, 10)
    relief = CatchUpRelief()

    relief.hold()

    assert gc.get_threshold()[0] == 0
    relief.release()


def test_thresholds_set_by_someone_else_while_catching_up_are_kept() -> None:
    relief = CatchUpRelief()

    relief.hold()
    gc.set_threshold(10_000, 10, 10)  # e.g. a server settling its heap once started
    relief.release()

    assert gc.get_threshold() == (10_000, 10, 10)
