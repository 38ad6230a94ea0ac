"""The toolkit's command and query side: a command bus with middleware, repositories, a query
bus. Knows nothing of HTTP, nor of any application: routes, aggregates and codecs are passed in.

Public names (see docs/command-side.md): :class:`CommandBus`, :class:`CommandContext`,
:class:`CommandResult`, :class:`QueryBus`, :class:`Repository`, :class:`AggregateType`.
"""

from cairn.application.bus import CommandBus, QueryBus, QueryCache
from cairn.application.codec import AggregateCodec
from cairn.application.handlers import Route, Services
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
from cairn.application.repository import (
    AggregateType,
    EveryNEvents,
    Loaded,
    Repositories,
    Repository,
    SnapshotPolicy,
    SnapshotWhen,
)

__all__ = [
    "AggregateCodec",
    "AggregateType",
    "AuthorizationMiddleware",
    "CommandBus",
    "CommandContext",
    "CommandResult",
    "CorrelationMiddleware",
    "Envelope",
    "EveryNEvents",
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
    "event_id_for",
]
