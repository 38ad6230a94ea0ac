"""Start the real ``cairn serve`` in a subprocess on a free port and talk to it over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

CAIRN = str(Path(sys.executable).with_name("cairn"))
TOKENS = "adm=admin,ops=operator,c1=customer:c-1,c2=customer:c-2"
ADMIN = {"Authorization": "Bearer adm"}
OPERATOR = {"Authorization": "Bearer ops"}
CUSTOMER_1 = {"Authorization": "Bearer c1"}
CUSTOMER_2 = {"Authorization": "Bearer c2"}


#: Ports this process has handed out: the system may offer a port again as soon as the probe
#: closes it, and a test asking for two (HTTP and gRPC of one server) must get two.
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, never one this process handed out before."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def cairn_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    env.update(
        {
            "CAIRN_DATABASE_URL": database_url,
            "CAIRN_TOKENS": TOKENS,
            "CAIRN_LOG_LEVEL": os.environ.get("CAIRN_E2E_LOG_LEVEL", "INFO"),
        }
    )
    env.update(extra)
    return env


class Server:
    """One ``cairn serve`` process."""

    def __init__(
        self, database_url: str, workdir: Path, *, args: tuple[str, ...] = (), **env: str
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"serve-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [CAIRN, "serve", "--port", str(self.port), *args],
            cwd=workdir,
            env=cairn_env(database_url, **env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.close()  # a server that never started leaves no open file behind
                raise RuntimeError(f"cairn serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"cairn serve did not become ready:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: the process dies at once, mid-whatever it was doing."""
        self.proc.kill()
        self.proc.wait()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)


def problem(r: httpx.Response) -> Mapping[str, Any]:
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    body: Mapping[str, Any] = r.json()
    assert body["status"] == r.status_code
    assert isinstance(body["code"], str)
    assert body["code"]
    return body


MUG = {"sku": "MUG-1", "name": "Mug", "price": "12.50", "currency": "EUR", "initial_stock": 10}


def order_body(customer_id: str = "c-1", country: str = "FR", **extra: Any) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "customer_name": "Ada",
        "customer_email": "ada@example.com",
        "currency": "EUR",
        "shipping_address": {
            "line1": "1 Main St",
            "city": "Paris",
            "postal_code": "75001",
            "country": country,
        },
        "items": [{"sku": "MUG-1", "quantity": 2}],
        **extra,
    }


def wait_for(
    client: httpx.Client,
    path: str,
    predicate: Any,
    *,
    timeout: float = 30.0,
    headers: Mapping[str, str] = ADMIN,
) -> dict[str, Any]:
    """Poll ``path`` until ``predicate(json)`` holds; return the last body."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = client.get(path, headers=dict(headers))
        if r.status_code == 200:
            body = r.json()
            if predicate(body):
                return body
        time.sleep(0.1)
    raise AssertionError(f"{path} never satisfied the condition; last: {body}")
