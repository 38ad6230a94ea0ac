"""Docs that run: every Python block of README.md and docs/**/*.md is executed here.

Conventions (what a writer of the docs needs to know):

- Every fence opened with ```python is a test, with id ``<file>:<line>`` (the line of the fence).
  Other fences (```sh, ```text, ```json, ```graphql, ```pycon, a bare ```) are not executed.
- The blocks of one file run in document order, in one namespace and on one event loop: a
  later block may use the names an earlier block of the same file defined (``store``,
  ``container``…). Selecting one block (``-k``) first runs the blocks before it in its file.
  Each file starts from an empty namespace; files never share names.
  (Under xdist a worker that draws a later block runs the earlier ones itself, so the split
  of blocks between workers never changes a result.)
- Top-level ``await``, ``async with`` and ``async for`` are allowed (the block is compiled with
  ``ast.PyCF_ALLOW_TOP_LEVEL_AWAIT``). A block must end: bound any subscription (``break``).
  A block that opens a store, engine or runner closes it.
- Each file runs in its own fresh temporary working directory, so ``sqlite:///orders.db``
  lands there and nothing is left in the repository.
- Services: the URL ``postgresql://postgres@127.0.0.1:5432/cairn`` written in a block is
  replaced by a fresh, empty PostgreSQL database of the test server (one per file, dropped
  afterwards; ``tests/conftest.py``). Redis, NATS and RabbitMQ blocks use the services' local
  default URLs as written, and keys or topics of their own.
- A block that is deliberately not runnable is preceded by ``<!-- not-run: reason -->`` on the
  line right before its fence: it is reported as skipped with that reason. Keep them few.
- ```sh blocks are not executed, but every ``cairn <command> [<subcommand>]`` they mention must
  exist in the CLI (``test_shell_blocks_name_real_cli_commands``).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import typer

ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

#: The test server, as in tests/conftest.py (same variable, same default).
PG_ADMIN_URL = os.environ.get("CAIRN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
#: Written in a block, this URL stands for a fresh PostgreSQL database.
PG_PLACEHOLDER = "postgresql://postgres@127.0.0.1:5432/cairn"
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(?P<reason>.+?)\s*-->")
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
#: A block may take this long (the whole module must stay well under 30 s).
BLOCK_TIMEOUT = 20.0


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    language: str
    source: str
    not_run: str | None
    #: The line that ended the block: a bare fence; None when the file ended first.
    closing: str | None = None

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def extract_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a markdown file, with the not-run marker before each."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        fence, language = match["fence"], match["info"].strip().split(" ")[0].lower()
        previous = lines[i - 1].strip() if i > 0 else ""
        marker = NOT_RUN.fullmatch(previous)
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j])
            j += 1
        source = "\n".join(body) + "\n"
        closing = lines[j].strip() if j < len(lines) else None
        reason = marker["reason"] if marker else None
        blocks.append(Block(path, i + 1, language, source, reason, closing))
        i = j + 1
    return blocks


ALL_BLOCKS = [block for path in DOC_FILES for block in extract_blocks(path)]
PYTHON_BLOCKS = [block for block in ALL_BLOCKS if block.language == "python"]
SHELL_BLOCKS = [block for block in ALL_BLOCKS if block.language in {"sh", "bash", "shell"}]


@dataclass
class FileRun:
    """The shared state of one markdown file's blocks: namespace, loop, working directory."""

    directory: Path
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    namespace: dict[str, Any] = field(default_factory=lambda: {"__name__": "__docs__"})
    done: dict[int, BaseException | None] = field(default_factory=dict)
    pg_database: str | None = None

    def pg_url(self) -> str:
        if self.pg_database is None:
            name = f"cairn_docs_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            self.pg_database = name
        return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{self.pg_database}"

    def close(self) -> None:
        pending = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()
        if self.pg_database is not None:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_database}" WITH (FORCE)')


@pytest.fixture(scope="module")
def file_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[Path, FileRun]]:
    runs: dict[Path, FileRun] = {}
    yield runs
    for run in runs.values():
        run.close()


def _compile(block: Block, source: str) -> Any:
    # Leading newlines keep the markdown's line numbers in tracebacks.
    padded = "\n" * block.line + source
    return compile(padded, str(block.path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def _execute(block: Block, run: FileRun) -> None:
    source = block.source
    if PG_PLACEHOLDER in source:
        source = source.replace(PG_PLACEHOLDER, run.pg_url())
    code = _compile(block, source)
    previous = Path.cwd()
    os.chdir(run.directory)
    try:
        result = eval(code, run.namespace)  # the docs' own code is the test
        if inspect.iscoroutine(result):
            run.loop.run_until_complete(asyncio.wait_for(result, BLOCK_TIMEOUT))
    finally:
        os.chdir(previous)


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[block.id for block in PYTHON_BLOCKS])
def test_python_block_runs(
    block: Block, file_runs: dict[Path, FileRun], tmp_path_factory: pytest.TempPathFactory
) -> None:
    if block.not_run is not None:
        pytest.skip(f"not-run: {block.not_run}")
    run = file_runs.get(block.path)
    if run is None:
        run = file_runs[block.path] = FileRun(tmp_path_factory.mktemp(block.path.stem))
    earlier = [b for b in PYTHON_BLOCKS if b.path == block.path and b.line < block.line]
    for before in earlier:
        if before.not_run is None and before.line not in run.done:
            try:
                _execute(before, run)
            except BaseException as exc:  # recorded, reported below
                run.done[before.line] = exc
            else:
                run.done[before.line] = None
        if run.done.get(before.line) is not None:
            pytest.fail(f"an earlier block of this file failed: {before.id}")
    try:
        _execute(block, run)
    except BaseException as exc:
        run.done[block.line] = exc
        raise
    run.done[block.line] = None


def test_every_doc_has_blocks_found() -> None:
    """The extractor sees the blocks: a broken fence would silently drop the rest of a file."""
    assert PYTHON_BLOCKS, "no python block found"
    for block in ALL_BLOCKS:
        assert "```" not in block.source, f"{block.id}: a fence inside a block (unclosed fence?)"


def test_not_run_blocks_are_few() -> None:
    skipped = [block.id for block in PYTHON_BLOCKS if block.not_run is not None]
    assert len(skipped) <= 3, f"too many not-run blocks; make them runnable: {skipped}"


# --- shell blocks ----------------------------------------------------------------------------

CAIRN_CALL = re.compile(r"(?:^|[\s/;(`])cairn((?:\s+--?[\w-]+(?:[ =](?!-)[^\s|;]+)?)*)\s+([\w|-]+)")
SUBCOMMAND = re.compile(r"\s*([a-z][\w|-]*)")


def _commands(command: Any) -> dict[str, Any]:
    """The subcommands of a Typer/Click group ({} for a plain command)."""
    return dict(getattr(command, "commands", {}))


def _cli() -> dict[str, Any]:
    from cairn.cli.main import app

    return _commands(typer.main.get_command(app))


def cli_calls(block: Block) -> list[tuple[str, str | None]]:
    """``(command, subcommand-or-None)`` for each ``cairn …`` the block mentions."""
    calls: list[tuple[str, str | None]] = []
    for match in CAIRN_CALL.finditer(block.source):
        rest = block.source[match.end() :].split("\n", 1)[0]
        for name in match[2].split("|"):
            sub = SUBCOMMAND.match(rest)
            calls.append((name, sub[1] if sub else None))
    return calls


@pytest.mark.parametrize("path", DOC_FILES, ids=[str(p.relative_to(ROOT)) for p in DOC_FILES])
def test_every_code_block_is_closed_by_a_bare_fence(path: Path) -> None:
    """A fence left open swallows the text after it, and pairs every later fence wrongly: the
    blocks after it would go untested (a closing fence never names a language)."""
    for block in extract_blocks(path):
        assert block.closing is not None, f"{block.id}: not closed before the end of the file"
        closing = FENCE.match(block.closing)
        assert closing is not None, block.id
        assert not closing["info"].strip(), f"{block.id}: closed by {block.closing!r}"


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=[block.id for block in SHELL_BLOCKS])
def test_shell_blocks_name_real_cli_commands(block: Block) -> None:
    cli = _cli()
    for name, sub in cli_calls(block):
        command = cli.get(name)
        assert command is not None, f"{block.id}: `cairn {name}` is not a CLI command"
        subcommands = _commands(command)
        if subcommands and sub is not None:
            for each in sub.split("|"):
                assert each in subcommands, f"{block.id}: `cairn {name} {each}` not found"


def test_not_run_marker_and_languages_are_read(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# t\n\n<!-- not-run: never ends -->\n```python\nwhile True: pass\n```\n\n"
        "```pycon\n>>> 1\n```\n```sh\ncairn migrate\n```\n",
        encoding="utf-8",
    )
    blocks = extract_blocks(page)
    assert [(b.line, b.language, b.not_run) for b in blocks] == [
        (4, "python", "never ends"),
        (8, "pycon", None),
        (11, "sh", None),
    ]
    assert cli_calls(blocks[2]) == [("migrate", None)]
