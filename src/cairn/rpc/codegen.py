"""Compiles ``proto/cairn/v1/*.proto`` into the committed package ``cairn.v1``.

    python -m cairn.rpc.codegen            # after changing a .proto file (needs the dev extras)

The generated modules are committed, so installing cairn needs no compiler; a test
(``tests/unit/rpc/test_generated_code.py``) compiles the protos again into a temporary
directory and fails when anything differs, so the ``.proto`` files and the code cannot drift.

The Python package mirrors the proto package (``cairn.v1`` in ``cairn/v1/``): the imports
protoc writes (``from cairn.v1 import orders_pb2``) then work as generated, with no rewriting,
and the descriptors keep their canonical file names (``cairn/v1/orders.proto``), which is what
a client's reflection sees. ``.pyi`` stubs come from mypy-protobuf, for ``mypy --strict``.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: ``proto/`` at the root of the repository (the import root of every ``.proto`` file).
PROTO_ROOT = Path(__file__).resolve().parents[3] / "proto"
#: Where ``cairn/v1/*.py`` is written: the ``src`` directory.
SOURCE_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = Path("cairn") / "v1"


def proto_files(root: Path = PROTO_ROOT) -> list[Path]:
    """The ``.proto`` files of ``cairn.v1``, relative to ``root``, in a stable order."""
    return sorted(p.relative_to(root) for p in (root / PACKAGE_DIR).glob("*.proto"))


def generate(out: Path, root: Path = PROTO_ROOT) -> list[Path]:
    """Compile every ``cairn.v1`` proto under ``root`` into ``out``; the files written
    (relative to ``out``). Raises RuntimeError with protoc's exit code when it fails."""
    from grpc_tools import protoc  # the dev extras: only needed to regenerate

    out.mkdir(parents=True, exist_ok=True)
    files = [str(p) for p in proto_files(root)]
    bin_dir = Path(sys.executable).parent  # mypy-protobuf's plugins sit beside the interpreter
    args = [
        "grpc_tools.protoc",
        f"-I{root}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *files,
    ]
    code = protoc.main(args)
    if code != 0:
        raise RuntimeError(f"protoc failed with exit code {code}")
    package = out / PACKAGE_DIR
    init = package / "__init__.py"
    init.write_text('"""Generated from proto/cairn/v1 by cairn.rpc.codegen; do not edit."""\n')
    return sorted(p.relative_to(out) for p in package.iterdir() if p.is_file())


def main() -> int:
    for path in generate(SOURCE_ROOT):
        print(SOURCE_ROOT / path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
