"""Catch-up raises the collector's young threshold for the process, and gives it back."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from cairn.projections.gc_relief import CATCH_UP_THRESHOLD, CatchUpRelief


@pytest.fixture(autouse=True)
def thresholds() -> Iterator[tuple[int, int, int]]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        yield gc.get_threshold()
    finally:
        gc.set_threshold(*saved)


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
