"""All configuration, from ``CAIRN_*`` environment variables (and CLI flags that override them),
validated once into one typed object. Nothing reads the environment anywhere else, and nothing
builds a Settings at import time."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAIRN_", extra="ignore", frozen=True)

    #: Where the event store, read models, saga state and checkpoints live.
    database_url: str = "sqlite:///./cairn.db"
    #: Where read models, saga state, relay checkpoints and idempotency records live when the
    #: event store is not a SQL database (``redis://``); ignored otherwise (see ``sql_url``).
    read_model_url: str = "sqlite:///./cairn-read.db"
    #: Every PostgreSQL connection one process may hold: the event store's pool, the SQL
    #: layer's pool, the store's LISTEN connection and the lease connection (cairn.sql.budget).
    db_max_connections: int = Field(default=10, ge=4)
    #: Apply migrations when a store is opened (``cairn migrate`` does it explicitly).
    auto_migrate: bool = True
    #: A PostgreSQL streaming replica of ``database_url`` that read-model queries read
    #: (a query process's); ``min_position`` waits until the replica has replayed the read
    #: model's checkpoint. Everything that writes stays on ``database_url``.
    read_database_url: str | None = None
    #: Optional cache of hot order views; every answer stays correct without it.
    redis_url: str | None = None
    #: ``nats://``, ``amqp://`` or ``redis://``; the relay runs whenever it is set.
    broker_url: str | None = None
    broker_topic: str = "cairn.events"

    #: ``token=admin,token=operator,token=customer:<id>``.
    tokens: str = ""
    #: A file of ``<sha256 hex of the token> <role>`` lines (``cairn tokens hash``), so that no
    #: plaintext token sits in configuration; used together with ``tokens``.
    tokens_file: Path | None = None
    #: Auth is on unless this is explicitly ``disabled``.
    auth: str = "enabled"

    host: str = "127.0.0.1"
    port: int = 8000
    #: ``cairn serve`` also serves gRPC (``cairn.v1``, docs/grpc.md) on this port when set.
    grpc_port: int | None = Field(default=None, ge=0, le=65_535)
    #: ``cairn worker`` serves /metrics, /healthz and /readyz on this port (on ``host``); 0: off.
    worker_metrics_port: int = Field(default=0, ge=0, le=65_535)
    #: gRPC calls in progress at once (live subscriptions included); one more is refused with
    #: RESOURCE_EXHAUSTED, so clients cannot hold unbounded streams and buffers.
    grpc_max_concurrent_calls: int = Field(default=1000, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    #: A request whose head (request line and headers) is larger, or that has more header
    #: fields, gets 431 before auth and before its body is read.
    max_header_bytes: int = Field(default=16_384, ge=1024)
    max_headers: int = Field(default=100, ge=8)
    #: Seconds an Idempotency-Key record is kept: an older key is new again (24 h).
    idempotency_ttl: float = Field(default=86_400.0, gt=0)
    #: The largest page of ``GET /orders/{id}/history`` (``?limit=``; 100 by default).
    history_max_page: int = Field(default=1000, ge=1)
    #: How long a query with ``min_position`` waits for the read model before answering 503.
    read_your_writes_timeout: float = Field(default=5.0, gt=0)
    #: Requests of one principal waiting on ``min_position`` at once; one more gets 503.
    max_waiters_per_client: int = Field(default=32, ge=1)

    #: Seconds a request may take before its answer starts; a slower one is cancelled and
    #: answered 503 ``app.request_timeout`` with Retry-After (SPEC §12: never a hang).
    request_timeout: float = Field(default=30.0, gt=0)
    #: Connections ``cairn serve`` handles at once; one more is answered 503 at once (uvicorn's
    #: ``limit_concurrency``), so a flood cannot grow the server's memory without bound.
    max_connections: int = Field(default=1000, ge=1)
    #: Connections the kernel queues before ``cairn serve`` accepts them (listen backlog).
    backlog: int = Field(default=2048, ge=1)
    #: PostgreSQL session limits, set on every connection cairn opens (cairn.sql.postgres_connect):
    #: a statement running longer, a lock waited for longer, a transaction left idle longer is
    #: ended by the server (seconds; 0 turns one off).
    db_statement_timeout: float = Field(default=30.0, ge=0)
    db_lock_timeout: float = Field(default=10.0, ge=0)
    db_idle_in_transaction_timeout: float = Field(default=60.0, ge=0)

    #: Snapshot every N events per aggregate stream (0 disables).
    snapshot_every: int = Field(default=100, ge=0)

    #: Fake payment gateway: decline amounts above this limit (no limit by default).
    gateway_amount_limit: Decimal | None = None
    #: Per-step timeout and retry policy of the fulfilment saga.
    saga_step_timeout: float = Field(default=5.0, gt=0)
    saga_step_attempts: int = Field(default=3, ge=1)
    saga_retry_backoff: float = Field(default=0.2, ge=0)
    saga_deadline: float = Field(default=60.0, gt=0)

    #: Circuit breakers (payment gateway, carrier, broker; cairn.breakers): a call taking
    #: longer than the timeout fails; this many failures in a row open the breaker, and calls
    #: then fail at once for the reset time before one is let through again.
    breaker_call_timeout: float = Field(default=4.0, gt=0)
    breaker_threshold: int = Field(default=5, ge=1)
    breaker_reset_seconds: float = Field(default=5.0, gt=0)

    projection_batch_size: int = Field(default=500, ge=1)
    #: At most one live batch transaction per projection per this many seconds (see
    #: ``RunnerConfig.live_interval``): fewer, larger transactions under load; 0 turns it off.
    projection_live_interval: float = Field(default=0.05, ge=0, le=5)
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("read_database_url")
    @classmethod
    def _replica_is_postgres(cls, url: str | None) -> str | None:
        """A replica is a PostgreSQL hot standby (an empty value means none)."""
        if not url:
            return None
        from cairn.errors import UnsupportedStoreURL
        from cairn.store.urls import postgres_conninfo

        try:
            postgres_conninfo(url)
        except UnsupportedStoreURL as exc:
            raise ValueError(f"a read replica is a PostgreSQL database: {exc}") from None
        return url

    @property
    def sql_url(self) -> str:
        """The SQL database of everything but the events: the store's own database, or
        ``read_model_url`` when the store keeps its events elsewhere (Redis)."""
        from cairn.store.urls import Backend, backend_of

        if backend_of(self.database_url) is Backend.REDIS:
            return self.read_model_url
        return self.database_url

    @property
    def auth_enabled(self) -> bool:
        return self.auth.strip().lower() != "disabled"
