"""The read models cairn ships: orders (+ search), inventory, customers, analytics."""

from __future__ import annotations

from cairn.projections.read_models.analytics import AnalyticsModel
from cairn.projections.read_models.base import ReadModel, Rows, Table
from cairn.projections.read_models.customers import CustomersModel
from cairn.projections.read_models.inventory import InventoryModel
from cairn.projections.read_models.orders import OrdersModel

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
