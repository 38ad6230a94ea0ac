"""The process's garbage collector: every place cairn changes it, and why.

CPython frees almost all of cairn's garbage by reference counting; the cyclic collector only
looks for reference cycles, of which events, rows and requests make none. But it scans every
tracked container young enough to be in the generation it collects, and cairn's hot paths make
many containers that survive a while (a page of events, a catch-up batch, a server's start-up
heap), so with the default thresholds it runs often and finds nothing. Three policies, each
measured:

- :func:`settle_heap`: a server, once started, freezes its long-lived heap and collects young
  objects less often.
- :func:`paused_gc`: no collection while a page of events is built.
- :class:`CatchUpRelief`: a higher young threshold while any projection runner catches up.

Each restores what it changed, and leaves alone a collector that the process turned off.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = [
    "CATCH_UP_THRESHOLD",
    "SERVER_YOUNG_THRESHOLD",
    "CatchUpRelief",
    "paused_gc",
    "settle_heap",
]

# --- a server's start-up heap ----------------------------------------------------------------

#: Allocations (net of deallocations) between young-generation collections in a server process.
SERVER_YOUNG_THRESHOLD = 10_000


def settle_heap() -> None:
    """Once started, move every object alive (modules, the app, pools, caches: hundreds of
    thousands, living as long as the process) to the collector's permanent generation, and run
    young collections every 10k allocations instead of 700: most of a request's objects are
    freed by reference counting before a collection sees them. The cyclic collector was 9% of
    a busy server's CPU (py-spy); after this it does not show, and CPU per command fell ~15%."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(SERVER_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


# --- a page of events ------------------------------------------------------------------------


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a page of events is built.

    A page creates some 3,000 containers that all survive it (the events and their payload
    dicts), so the collector would run several times per page and find nothing to free; after
    the page it runs once over what is still young. Events hold no cycles; reference counting
    frees them either way. Scans of 100k events ran 6-20% faster with this pause."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# --- projections catching up -----------------------------------------------------------------
#
# A catch-up batch holds thousands of decoded events, shared by every projection and prefetched
# while the one before is applied, so its objects live long enough to reach the collector's
# oldest generation. With the default thresholds a full collection (a scan of every tracked
# object in the process) then runs every couple of batches: about a third of the CPU of the
# projection benchmark's catch-up. While any runner of the process is catching up, the youngest
# generation's threshold is raised, which makes every generation's collections rarer; the
# previous thresholds come back when the last runner is live again. Reference counting still
# frees at once everything that is not in a cycle: only cyclic garbage waits longer, and it is
# bounded by the raised threshold.

#: Allocations (net of deallocations) between young-generation collections while catching up.
CATCH_UP_THRESHOLD = 50_000

_lock = threading.Lock()
_holders = 0
_saved: tuple[int, int, int] | None = None
_raised: tuple[int, int, int] | None = None


class CatchUpRelief:
    """One runner's share of the relief: ``hold()`` while catching up, ``release()`` when live
    or stopped. Both are idempotent; the thresholds change only with the first holder and the
    last release."""

    def __init__(self) -> None:
        self.held = False

    def hold(self) -> None:
        global _holders, _saved, _raised
        if self.held:
            return
        with _lock:
            self.held = True
            if _holders == 0:
                _saved = gc.get_threshold()
                young, older, oldest = _saved
                if young:  # 0 means the process turned automatic collection off: leave it so
                    gc.set_threshold(max(young, CATCH_UP_THRESHOLD), older, oldest)
                _raised = gc.get_threshold()
            _holders += 1

    def release(self) -> None:
        global _holders, _saved, _raised
        if not self.held:
            return
        with _lock:
            self.held = False
            _holders -= 1
            if _holders == 0 and _saved is not None:
                # Thresholds somebody else set meanwhile (a server settling its heap) are theirs.
                if gc.get_threshold() == _raised:
                    gc.set_threshold(*_saved)
                _saved = _raised = None
