"""A real ``cairn serve`` refuses a 1 MB request header (431 or a closed connection) without
holding it, and keeps answering."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from e2e_server import Server


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_one_megabyte_header_is_refused_and_the_server_stays_up(
    database_url: str, tmp_path: Path
) -> None:
    srv = Server(database_url, tmp_path)
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
            sent = 0
            try:
                sock.sendall(head)
                chunk = b"a" * 65_536
                while sent < 1_048_576:
                    sock.sendall(chunk)
                    sent += len(chunk)
                sock.sendall(b"\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server closed the connection on us: refused
            try:
                answer = sock.recv(65_536)
            except ConnectionResetError:
                answer = b""
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        if answer:
            assert b"application/problem+json" in answer
        assert httpx.get(f"{srv.url}/healthz", timeout=10).status_code == 200
    finally:
        assert srv.stop() == 0, srv.log()
