"""Fewer garbage collections while a projection catches up.

A catch-up batch holds thousands of decoded events, shared by every projection and prefetched
while the one before is applied, so its objects live long enough to reach the collector's oldest
generation. With the default thresholds a full collection (a scan of every tracked object in the
process) then runs every couple of batches: about a third of the CPU of the projection benchmark's
catch-up. While any runner of the process is catching up, the youngest generation's threshold is
raised, which makes every generation's collections rarer; the previous thresholds come back when
the last runner is live again. Reference counting still frees at once everything that is not in
a cycle: only cyclic garbage waits longer, and it is bounded by the raised threshold.
"""

from __future__ import annotations

import gc
import threading

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
