"""``python -m bench [name [args ...]]``: run benchmark modules, write JSON, print results.

* ``python -m bench [--quick]`` runs every module of ``bench/`` (``bench/<name>.py``) with its
  defaults.
* ``python -m bench store`` runs one; ``python -m bench aggregates --clients 4`` passes the
  remaining arguments to that module.

A module takes part in one of two ways:

* ``async def run(quick: bool) -> Report`` (see ``bench/common.py``): the runner writes the
  report to ``bench/results/<name>.json`` and prints it as a table (``--quick`` is passed on).
  A module that sets ``SERVICE_LOOP = True`` runs on the event loop of ``cairn worker`` and
  ``cairn serve`` (uvloop, :func:`cairn.cli.main.run_service`) instead of asyncio's own.
* ``def main(argv: list[str] | None) -> int``: the runner calls it with the remaining
  arguments, echoes and captures what it prints, and writes ``bench/results/<name>.json`` with
  that output and the exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import io
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bench.common import RESULTS_DIR, Report, format_table, reference_loop_ms, write_results
from cairn.cli.main import run_service

NOT_BENCHMARKS = {"__init__", "__main__", "common"}


def available() -> list[str]:
    return sorted(
        p.stem
        for p in Path(__file__).parent.glob("*.py")
        if p.stem not in NOT_BENCHMARKS and not p.stem.startswith("_")
    )


class Tee(io.TextIOBase):
    def __init__(self, *targets: TextIO) -> None:
        self.targets = targets

    def write(self, text: str) -> int:
        for target in self.targets:
            target.write(text)
        return len(text)

    def flush(self) -> None:
        for target in self.targets:
            target.flush()


def run_one(name: str, args: list[str], quick: bool = False) -> int:
    module: Any = importlib.import_module(f"bench.{name}")
    if hasattr(module, "run") and asyncio.iscoroutinefunction(module.run):
        loop = run_service if getattr(module, "SERVICE_LOOP", False) else asyncio.run
        report: Report = loop(module.run(quick or "--quick" in args))
        loop_ms = reference_loop_ms()
        path = write_results(report, loop_ms=loop_ms)
        print(format_table(report))
        print(f"host: a fixed pure-Python loop took {loop_ms} ms (lower is faster)")
        print(f"results: {path}", flush=True)
        return 0
    captured = io.StringIO()
    with contextlib.redirect_stdout(Tee(sys.stdout, captured)):
        code = int(module.main(args) or 0)
        loop_ms = reference_loop_ms()
        print(f"host: a fixed pure-Python loop took {loop_ms} ms (lower is faster)")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {
        "benchmark": name,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "argv": args,
        "exit_code": code,
        "reference_loop_ms": loop_ms,
        "output": captured.getvalue().splitlines(),
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"results: {path}", flush=True)
    return code


def main(argv: list[str]) -> int:
    names = available()
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print("benchmarks:", ", ".join(names))
        return 0
    if argv and not argv[0].startswith("-"):
        if argv[0] not in names:
            print(f"unknown benchmark {argv[0]!r}; known: {', '.join(names)}", file=sys.stderr)
            return 2
        return run_one(argv[0], argv[1:])
    failures = 0
    for name in names:
        print(f"\n### {name}", flush=True)
        failures += run_one(name, [], quick="--quick" in argv) != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
