"""The states a projection reports (``ProjectionStatus.state``), and how the API reads them.

``catching_up``: running, but further behind than one batch; ``rebuilding``: a rebuild into
fresh tables is under way (queries still read the old ones); ``stopped``: no process runs it;
``failed``: its runner stopped on an error it could not park.
"""

from __future__ import annotations

from typing import Final, Literal

ProjectionState = Literal["running", "catching_up", "rebuilding", "stopped", "failed"]

#: Applying the log (the ``running`` flag of the projection metrics).
ACTIVE_STATES: Final[frozenset[ProjectionState]] = frozenset(
    {"running", "catching_up", "rebuilding"}
)
#: Not applying it: health reports the read models degraded.
INACTIVE_STATES: Final[frozenset[ProjectionState]] = frozenset({"stopped", "failed"})
