"""A gRPC client of cairn built from ``proto/`` alone, as a user of the API would build one.

:func:`compile_proto` runs grpcio-tools' ``protoc`` on the repository's ``.proto`` files into a
directory of the test's, and loads the message modules from there; :class:`Stub` makes a
method for every RPC of a service from the compiled descriptors. Nothing here imports cairn's
own generated package, so these tests fail when the ``.proto`` files are not enough.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"


@dataclass(frozen=True)
class Proto:
    """The compiled ``cairn.v1`` message modules."""

    orders: ModuleType
    event_store: ModuleType


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def compile_proto(out: Path) -> Proto:
    """``protoc -I proto --python_out=out proto/cairn/v1/*.proto``, then load the modules
    (under names of their own: the ``cairn`` package of the server is not used)."""
    files = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    assert files, f"no .proto files under {PROTO_ROOT}"
    out.mkdir(parents=True, exist_ok=True)
    code = protoc.main(["grpc_tools.protoc", f"-I{PROTO_ROOT}", f"--python_out={out}", *files])
    assert code == 0, f"protoc failed ({code})"
    package = out / "cairn" / "v1"
    return Proto(
        orders=_load(package / "orders_pb2.py", "client_cairn_v1_orders_pb2"),
        event_store=_load(package / "event_store_pb2.py", "client_cairn_v1_event_store_pb2"),
    )


class Stub:
    """One callable attribute per RPC of ``service`` (``stub.CreateOrder(request, ...)``),
    built from the service's descriptor in ``module``."""

    def __init__(self, channel: grpc.Channel, module: ModuleType, service: str) -> None:
        descriptor = module.DESCRIPTOR.services_by_name[service]
        self.methods: dict[str, Callable[..., Any]] = {}
        for method in descriptor.methods:
            request = getattr(module, method.input_type.name)
            response = getattr(module, method.output_type.name)
            factory = channel.unary_stream if method.server_streaming else channel.unary_unary
            self.methods[method.name] = factory(
                f"/{descriptor.full_name}/{method.name}",
                request_serializer=request.SerializeToString,
                response_deserializer=response.FromString,
            )

    def __getattr__(self, name: str) -> Callable[..., Any]:
        try:
            return self.methods[name]
        except KeyError:
            raise AttributeError(name) from None


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying ``token``."""
    return (("authorization", f"Bearer {token}"),)


def cairn_code(error: grpc.RpcError) -> str | None:
    """The stable cairn error code of a refused call (trailing metadata ``cairn-code``)."""
    for key, value in error.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "cairn-code":
            return str(value)
    return None
