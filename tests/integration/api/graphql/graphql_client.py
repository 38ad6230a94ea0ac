"""cairn's app served by a real uvicorn on a free port, in the test's event loop, and a client
for it: GraphQL over HTTP (httpx) and over websockets (the ``websockets`` client), as a client
would drive it. (A module of its own, not conftest: test modules import these helpers.)"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from cairn.api.app import create_app
from cairn.settings import Settings

TOKENS = "adm=admin,ops=operator,c1=customer:c-1,c2=customer:c-2"
ADMIN, OPERATOR, CUSTOMER_1, CUSTOMER_2 = "adm", "ops", "c1", "c2"

ADDRESS = {"line1": "1 Main St", "city": "Paris", "postalCode": "75001", "country": "FR"}

CREATE_ORDER = """
mutation Create($input: CreateOrderInput!) {
  createOrder(input: $input) { orderId orderNumber version position }
}"""


def order_input(customer_id: str = "c-1", **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "customerId": customer_id,
        "customerName": "Ada",
        "customerEmail": "ada@example.com",
        "currency": "EUR",
        "shippingAddress": ADDRESS,
        "items": [{"sku": "MUG-1", "quantity": 2}],
    }
    return data | changes


@dataclass
class GraphQLServer:
    url: str
    http: httpx.AsyncClient
    app: Any

    async def post(self, body: Any, token: str | None = ADMIN) -> httpx.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return await self.http.post("/graphql", json=body, headers=headers)

    async def run(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = ADMIN
    ) -> dict[str, Any]:
        """The response body of one operation (``data`` and maybe ``errors``)."""
        response = await self.post({"query": query, "variables": variables or {}}, token)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = ADMIN
    ) -> dict[str, Any]:
        """``data`` of an operation that must succeed."""
        body = await self.run(query, variables, token)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def rest(self, method: str, path: str, token: str = ADMIN, **kw: Any) -> httpx.Response:
        return await self.http.request(
            method, path, headers={"Authorization": f"Bearer {token}"}, **kw
        )

    async def register_product(self, sku: str = "MUG-1", stock: int = 100) -> None:
        body = {"sku": sku, "name": "Mug", "price": "12.50", "currency": "EUR"}
        response = await self.rest("POST", "/api/v1/products", json=body | {"initial_stock": stock})
        assert response.status_code == 201, response.text

    async def create_order(self, token: str = ADMIN, **changes: Any) -> dict[str, Any]:
        customer = {CUSTOMER_2: "c-2"}.get(token, "c-1")
        data = await self.data(CREATE_ORDER, {"input": order_input(customer, **changes)}, token)
        created: dict[str, Any] = data["createOrder"]
        return created

    def websocket(self, token: str | None = ADMIN, **kw: Any) -> Any:
        return connect(
            self.url.replace("http", "ws", 1) + "/graphql",
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            **kw,
        )


async def ws_init(ws: ClientConnection, token: str | None = ADMIN) -> dict[str, Any]:
    payload = {} if token is None else {"Authorization": f"Bearer {token}"}
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return message


async def ws_subscribe(
    ws: ClientConnection, query: str, variables: dict[str, Any], id: str = "1"
) -> None:
    await ws.send(
        json.dumps(
            {"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}}
        )
    )


async def ws_next(ws: ClientConnection, timeout: float = 20.0) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def serve(database_url: str, **settings: Any) -> AsyncIterator[GraphQLServer]:
    app = create_app(Settings(database_url=database_url, tokens=TOKENS, **settings))
    sock = _free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
            yield GraphQLServer(url, http, app)
    finally:
        server.should_exit = True
        await task
        sock.close()
