"""Fault tests: real ``cairn serve`` processes under load while a fault is injected (SPEC §12).

They reuse the end-to-end helpers (``tests/e2e/e2e_server.py``) and share their scenario with
``python -m bench faults`` (:mod:`scenario`). Each prints its figures (run with ``-s``) and
writes them to ``bench/results/faults-<test>.txt``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
