"""The read models cairn ships: orders (+ search), inventory, customers, analytics."""

from __future__ import annotations

from cairn.orders.read_models.analytics import AnalyticsModel
from cairn.orders.read_models.customers import CustomersModel
from cairn.orders.read_models.inventory import InventoryModel
from cairn.orders.read_models.orders import OrdersModel
from cairn.projections.read_model import ReadModel, Rows, Table

__all__ = [
    "AnalyticsModel",
    "CustomersModel",
    "InventoryModel",
    "OrdersModel",
    "ReadModel",
    "Rows",
    "Table",
    "default_models",
]


def default_models() -> list[ReadModel]:
    return [OrdersModel(), InventoryModel(), CustomersModel(), AnalyticsModel()]
