"""Inventory view: per SKU ``on_hand``, ``reserved`` and ``available`` (= on_hand − reserved)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cairn.projections.read_model import Key, ReadModel, Rows, Table, iso
from cairn.store.base import RecordedEvent

INVENTORY = Table(
    base="inventory_view",
    key=("sku",),
    columns=(
        ("sku", "TEXT NOT NULL"),
        ("name", "TEXT"),
        ("unit_price", "TEXT"),
        ("currency", "TEXT"),
        ("on_hand", "BIGINT NOT NULL"),
        ("reserved", "BIGINT NOT NULL"),
        ("version", "BIGINT NOT NULL"),
        ("position", "BIGINT NOT NULL"),
        ("updated_at", "TEXT NOT NULL"),
    ),
)


def _sku_of(event: RecordedEvent) -> str:
    sku = event.data.get("sku")
    if isinstance(sku, str) and sku:
        return sku
    return event.stream_id.split("-", 1)[1]


class InventoryModel(ReadModel):
    name = "inventory"
    tables = (INVENTORY,)
    event_types = frozenset(
        {
            "ProductRegistered",
            "StockReplenished",
            "InventoryReserved",
            "InventoryReservationFailed",
            "InventoryReleased",
            "StockCommitted",
        }
    )

    def prefetch(self, event: RecordedEvent) -> Iterable[tuple[str, Key]]:
        return [(INVENTORY.base, (_sku_of(event),))]

    async def apply(self, rows: Rows, event: RecordedEvent) -> None:
        sku = _sku_of(event)
        d = event.data
        row = await rows.get(INVENTORY.base, (sku,))
        if row is None:
            if event.type != "ProductRegistered":
                raise LookupError(f"{event.type} for unknown sku {sku}")
            row = {"sku": sku, "on_hand": 0, "reserved": 0}
        quantity = int(d.get("quantity") or 0)
        if event.type == "ProductRegistered":
            row = {
                **row,
                "name": d.get("name"),
                "unit_price": None if d.get("unit_price") is None else str(d["unit_price"]),
                "currency": d.get("currency"),
            }
        elif event.type == "StockReplenished":
            row = {**row, "on_hand": row["on_hand"] + quantity}
        elif event.type == "InventoryReserved":
            row = {**row, "reserved": row["reserved"] + quantity}
        elif event.type == "InventoryReleased":
            row = {**row, "reserved": row["reserved"] - quantity}
        elif event.type == "StockCommitted":
            row = {
                **row,
                "on_hand": row["on_hand"] - quantity,
                "reserved": row["reserved"] - quantity,
            }
        row["version"] = event.version
        row["position"] = event.position
        row["updated_at"] = iso(event.recorded_at)
        rows.put(INVENTORY.base, (sku,), row)


def public_inventory(row: dict[str, Any]) -> dict[str, Any]:
    on_hand = int(row["on_hand"])
    reserved = int(row["reserved"])
    return {
        "sku": row["sku"],
        "name": row["name"],
        "on_hand": on_hand,
        "reserved": reserved,
        "available": on_hand - reserved,
        "version": int(row["version"]),
    }
