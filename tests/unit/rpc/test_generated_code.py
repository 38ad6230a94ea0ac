"""The committed ``cairn.v1`` package is exactly what ``proto/`` compiles to: compiling the
protos again (``cairn.rpc.codegen``, the command that wrote it) gives the same files, so a
``.proto`` edited without regenerating, or generated code edited by hand, fails here."""

from __future__ import annotations

from pathlib import Path

from cairn.rpc import codegen

COMMITTED = codegen.SOURCE_ROOT / codegen.PACKAGE_DIR


def test_the_committed_generated_code_matches_the_proto_files(tmp_path: Path) -> None:
    written = codegen.generate(tmp_path)
    committed = sorted(
        p.relative_to(codegen.SOURCE_ROOT)
        for p in COMMITTED.iterdir()
        if p.is_file() and p.suffix in (".py", ".pyi")
    )
    assert written == committed
    for path in written:
        fresh = (tmp_path / path).read_text(encoding="utf-8")
        assert fresh == (codegen.SOURCE_ROOT / path).read_text(encoding="utf-8"), (
            f"{path} differs from what proto/ compiles to: run python -m cairn.rpc.codegen"
        )


def test_both_services_are_compiled() -> None:
    assert [p.as_posix() for p in codegen.proto_files()] == [
        "cairn/v1/event_store.proto",
        "cairn/v1/orders.proto",
    ]


def test_an_edited_proto_file_is_caught(tmp_path: Path) -> None:
    """The comparison above can fail: a changed .proto compiles to other code."""
    root = tmp_path / "proto"
    for path in codegen.proto_files():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text((codegen.PROTO_ROOT / path).read_text(encoding="utf-8"))
    edited = root / "cairn" / "v1" / "orders.proto"
    edited.write_text(edited.read_text().replace("string reason = 2;", "string why = 2;"))
    out = tmp_path / "out"
    codegen.generate(out, root)
    name = codegen.PACKAGE_DIR / "orders_pb2.py"
    assert (out / name).read_text() != (codegen.SOURCE_ROOT / name).read_text()
