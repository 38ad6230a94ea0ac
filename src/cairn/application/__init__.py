"""The command and query side of the order domain; knows nothing of HTTP.

Public names (see docs/command-side.md): :class:`CommandBus`, :class:`CommandContext`,
:class:`CommandResult`, :class:`QueryBus`, :class:`Repository`, :func:`domain_upcasters`.
"""

from cairn.application.bus import CommandBus, QueryBus, QueryCache
from cairn.application.codec import domain_upcasters, from_recorded, to_new_events
from cairn.application.handlers import Route, Services, default_routes
from cairn.application.messages import CommandContext, CommandResult, Envelope, event_id_for
from cairn.application.middleware import (
    AuthorizationMiddleware,
    CorrelationMiddleware,
    IdempotencyMiddleware,
    LoggingMiddleware,
    MetricsMiddleware,
    RetryMiddleware,
    RetryPolicy,
    ValidationMiddleware,
    default_middleware,
)
from cairn.application.queries import AggregateView, GetOrder, GetProduct, GetStreamHistory
from cairn.application.repository import (
    EveryNEvents,
    Loaded,
    Repositories,
    Repository,
    SnapshotPolicy,
    SnapshotWhen,
)

__all__ = [
    "AggregateView",
    "AuthorizationMiddleware",
    "CommandBus",
    "CommandContext",
    "CommandResult",
    "CorrelationMiddleware",
    "Envelope",
    "EveryNEvents",
    "GetOrder",
    "GetProduct",
    "GetStreamHistory",
    "IdempotencyMiddleware",
    "Loaded",
    "LoggingMiddleware",
    "MetricsMiddleware",
    "QueryBus",
    "QueryCache",
    "Repositories",
    "Repository",
    "RetryMiddleware",
    "RetryPolicy",
    "Route",
    "Services",
    "SnapshotPolicy",
    "SnapshotWhen",
    "ValidationMiddleware",
    "default_middleware",
    "default_routes",
    "domain_upcasters",
    "event_id_for",
    "from_recorded",
    "to_new_events",
]
