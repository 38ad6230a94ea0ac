"""Every error cairn raises, in one tree, each with a stable ``code``.

Codes are part of the public contract: never rename one. An error says *what* went wrong, never
how a transport answers it: the HTTP API maps each class to a status in one table
(``cairn.api.problems``), and the CLI prints ``message [code]`` on one line.

    CairnError                      code
    ├── StoreError                  store.*
    │   ├── ConcurrencyError        store.concurrency          bad expected_version, writes nothing
    │   ├── StaleRowError           store.stale_row            a guarded row changed, writes nothing
    │   ├── InvalidEventError       store.invalid_event        empty batch, non-JSON payload…
    │   ├── InvalidStreamIdError    store.invalid_stream_id    empty, overlong or control characters
    │   ├── InvalidExpectedVersion  store.invalid_expected_version
    │   ├── StreamDeletedError      store.stream_deleted       append to a soft-deleted stream
    │   ├── RetentionRefusedError   store.retention_refused    truncating a protected category
    │   ├── UnsupportedStoreURL     store.unsupported_url      unknown scheme or malformed URL
    │   ├── StoreUnavailableError   store.unavailable          database cannot be reached
    │   ├── SchemaMissingError      store.schema_missing       schema not applied, migrate off
    │   ├── MigrationChecksumError  store.migration_checksum   an applied migration's file changed
    │   └── PersonalDataError       store.personal_data        a sealed field was altered
    ├── CodecError                  codec.*
    │   ├── UnknownEventTypeError   codec.unknown_event_type   no class / upcaster for a stored type
    │   └── UpcastError             codec.upcast_failed
    ├── DomainError                 <aggregate>.<rule>         a business rule refused a command
    │   └── NotFoundError           <thing>.not_found          the command's target does not exist
    ├── ApplicationError            <area>.<reason>            a malformed request above the domain
    │   ├── InvalidCommandError     command.invalid            a command field of the wrong type
    │   ├── PermissionDeniedError   auth.forbidden             the caller may not run this command
    │   └── ConflictError           <area>.<reason>            not now: a command id reused, a saga
    │                                                          that did not fail, a rebuild running
    ├── AdapterError                adapter.error              an external service failed
    │   ├── TransientAdapterError   adapter.transient          retry may succeed
    │   │   └── CircuitOpenError    adapter.circuit_open       failing fast: its breaker is open
    │   └── PermanentAdapterError   adapter.refused            retrying cannot help
    ├── RelayError                  relay.error                the broker side of the relay
    │   ├── UnsupportedBrokerURL    relay.unsupported_broker_url
    │   └── PublishError            relay.publish_failed       a batch was not fully confirmed
    ├── LeaseLostError              lease.lost                 another worker owns the work now
    └── ProblemError                <area>.<reason>            cairn.api.problems: the HTTP layer's
                                                               own refusals (401, 403, 404, 412,
                                                               503 …), which carry their status

``<area>.<reason>`` marks a class whose code is chosen per raise site (``order.empty``,
``saga.not_failed``); the class-level ``code`` (``domain.error``, ``app.error`` …) is only its
family name. ``ProblemError`` is defined in ``cairn.api.problems`` because it is the only error
that *is* an HTTP answer (a missing token, a read model that is behind): it is raised only inside
``cairn.api`` and is the one class allowed to carry a status. It derives from :class:`CairnError`
so that ``except CairnError`` catches everything cairn raises.
"""

from __future__ import annotations

from typing import Any, ClassVar


class CairnError(Exception):
    """Root of the tree. ``code`` is stable; ``message`` is for humans."""

    code: ClassVar[str] = "cairn.error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def __str__(self) -> str:
        return self.message


# --- store -----------------------------------------------------------------------------------


class StoreError(CairnError):
    code = "store.error"


class ConcurrencyError(StoreError):
    """The stream was not at the expected version. Nothing was written."""

    code = "store.concurrency"

    def __init__(self, stream_id: str, expected: object, actual: int) -> None:
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, expected {expected}",
            stream_id=stream_id,
            expected=str(expected),
            actual=actual,
        )
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class StaleRowError(StoreError):
    """A write guarded by the version a process last wrote found another version: someone else
    changed the row since. The transaction was rolled back; read the row again and retry."""

    code = "store.stale_row"


class InvalidEventError(StoreError):
    code = "store.invalid_event"


class InvalidStreamIdError(StoreError):
    code = "store.invalid_stream_id"


class InvalidExpectedVersion(StoreError):
    code = "store.invalid_expected_version"


class StreamDeletedError(StoreError):
    code = "store.stream_deleted"


class RetentionRefusedError(StoreError):
    code = "store.retention_refused"


class UnsupportedStoreURL(StoreError):
    code = "store.unsupported_url"


class StoreUnavailableError(StoreError):
    code = "store.unavailable"


class SchemaMissingError(StoreError):
    code = "store.schema_missing"


class MigrationChecksumError(StoreError):
    """A migration recorded as applied no longer matches its ``.sql`` file: the file was edited
    after it ran, so the database is not what the files describe. Applied migrations are never
    edited; a change is a new file. ``details["migration"]`` names it."""

    code = "store.migration_checksum"


class PersonalDataError(StoreError):
    """A sealed personal field does not open with its subject's key: the stored value was
    altered. (A forgotten subject is not an error: its fields read back redacted.)"""

    code = "store.personal_data"


# --- codec -----------------------------------------------------------------------------------


class CodecError(CairnError):
    code = "codec.error"


class UnknownEventTypeError(CodecError):
    code = "codec.unknown_event_type"


class UpcastError(CodecError):
    code = "codec.upcast_failed"


# --- domain ----------------------------------------------------------------------------------


class DomainError(CairnError):
    """A business rule refused a command. ``code`` is chosen per rule, e.g. ``order.empty``."""

    code = "domain.error"

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = code  # type: ignore[misc]  # per-instance code: one class, many rules


class NotFoundError(DomainError):
    """What the command or query targets does not exist, e.g. ``order.not_found``."""

    code = "domain.not_found"


# --- application -----------------------------------------------------------------------------


class ApplicationError(CairnError):
    """A request the application refuses before the domain sees it: an unknown command or
    query, a bad cursor or limit, a malformed setting. ``code`` is chosen per case. The
    subclasses are the refusals that are not about the request's shape."""

    code = "app.error"

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = code  # type: ignore[misc]  # per-instance code, as for DomainError


class InvalidCommandError(ApplicationError):
    """A field of the command has the wrong type (``details["field"]`` names it)."""

    code = "command.invalid"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(type(self).code, message, **details)


class PermissionDeniedError(ApplicationError):
    """The caller may not run this command (the bus's authorisation hook said no)."""

    code = "auth.forbidden"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(type(self).code, message, **details)


class ConflictError(ApplicationError):
    """Well-formed, but refused in the current state: a command id reused for another stream,
    retrying a saga that did not fail, rebuilding a projection already being rebuilt."""

    code = "app.conflict"


# --- adapters (payment gateways, carriers, any external service a saga step calls) -----------


class AdapterError(CairnError):
    """An external service failed. A saga step that gets :class:`TransientAdapterError` is
    retried with backoff; :class:`PermanentAdapterError` (a carrier refusing an address) fails
    the step at once. A payment decline is an *answer*, not an error."""

    code = "adapter.error"


class TransientAdapterError(AdapterError):
    """Try again later: the same call may well succeed."""

    code = "adapter.transient"


class CircuitOpenError(TransientAdapterError):
    """The service's circuit breaker is open (:mod:`cairn.breakers`): the call was not made."""

    code = "adapter.circuit_open"


class PermanentAdapterError(AdapterError):
    """Retrying the same call cannot help."""

    code = "adapter.refused"


# --- relay -----------------------------------------------------------------------------------


class RelayError(CairnError):
    """The relay could not reach or use its broker."""

    code = "relay.error"


class UnsupportedBrokerURL(RelayError):
    code = "relay.unsupported_broker_url"


class PublishError(RelayError):
    """A batch was not fully confirmed. ``confirmed`` leading messages were."""

    code = "relay.publish_failed"

    def __init__(self, message: str, confirmed: int) -> None:
        super().__init__(message, confirmed=confirmed)
        self.confirmed = confirmed


# --- workers ---------------------------------------------------------------------------------


class LeaseLostError(CairnError):
    """A worker (projection runner, relay) lost the lease on its work, e.g. with its database
    session: another worker owns it now, so this one stops writing and waits for it again."""

    code = "lease.lost"

    def __init__(
        self, message: str = "the lease was lost; another worker owns it", **details: Any
    ) -> None:
        super().__init__(message, **details)
