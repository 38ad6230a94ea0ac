"""Example gRPC consumer: tails cairn's event log (``cairn.v1.EventStore/SubscribeAll``) and keeps
its place in a checkpoint file, so that a restart resumes after the last event it handled.

    CAIRN_GRPC_PORT=50051 cairn serve &
    python examples/grpc_tail.py 127.0.0.1:50051 --token <admin token> --checkpoint tail.pos

It prints one line per event (``position stream_id version type``). The checkpoint (the last
handled position) is written after each event, atomically (a temporary file renamed over it):
a crash at any instant leaves either the old position or the new one, so an event is handled at
least once, never skipped; make the handling idempotent (or record the position in the same
transaction as its effect) for exactly-once. While the server is unreachable the consumer waits
and reconnects, resuming after its checkpoint. ``--limit N`` stops after N events (demos, tests).

The token needs the ``admin`` role (``CAIRN_TOKENS``). The client code is generated from
``proto/cairn/v1/*.proto``; cairn ships it as ``cairn.v1`` (any gRPC language can compile the
same files).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc

from cairn.v1 import event_store_pb2, event_store_pb2_grpc

#: Seconds between reconnection attempts while the server is unreachable.
RECONNECT_DELAY = 1.0


class Checkpoint:
    """The last handled position, in a file (0, from the start, when there is no file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> int:
        try:
            return int(self.path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def save(self, position: int) -> None:
        partial = self.path.with_name(self.path.name + ".tmp")
        with partial.open("w") as file:
            file.write(f"{position}\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, self.path)  # atomic: the old position or the new one, never half


Handler = Callable[[event_store_pb2.Event], Awaitable[None]]


async def print_event(event: event_store_pb2.Event) -> None:
    print(event.position, event.stream_id, event.version, event.type, flush=True)


async def tail(
    target: str,
    token: str,
    checkpoint: Checkpoint,
    handle: Handler = print_event,
    *,
    limit: int | None = None,
) -> int:
    """Handle the events after the checkpoint, then live ones, forever (or ``limit`` of them),
    reconnecting while the server is unavailable. Returns the number handled."""
    handled = 0
    metadata = (("authorization", f"Bearer {token}"),)
    while limit is None or handled < limit:
        after = checkpoint.load()
        try:
            async with grpc.aio.insecure_channel(target) as channel:
                stub = event_store_pb2_grpc.EventStoreStub(channel)
                call = stub.SubscribeAll(
                    event_store_pb2.SubscribeAllRequest(after=after), metadata=metadata
                )
                async for event in call:
                    await handle(event)
                    checkpoint.save(event.position)
                    handled += 1
                    if limit is not None and handled >= limit:
                        call.cancel()
                        break
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise  # a bad token or role will not get better by retrying
            print(f"server unavailable ({exc.details()}); retrying", file=sys.stderr)
            await asyncio.sleep(RECONNECT_DELAY)
    return handled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="host:port of cairn's gRPC server (CAIRN_GRPC_PORT)")
    parser.add_argument("--token", default=os.environ.get("CAIRN_TOKEN", ""), help="admin token")
    parser.add_argument("--checkpoint", type=Path, default=Path("grpc_tail.checkpoint"))
    parser.add_argument("--limit", type=int, default=None, help="stop after this many events")
    args = parser.parse_args(argv)
    try:
        asyncio.run(tail(args.target, args.token, Checkpoint(args.checkpoint), limit=args.limit))
    except grpc.aio.AioRpcError as exc:
        print(f"{exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
