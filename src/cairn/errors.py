"""Every error cairn raises, in one tree, each with a stable ``code``.

The HTTP API maps ``code`` to an RFC 9457 problem response; the CLI prints the message on one
line. Codes are part of the public contract: never rename one.

    CairnError                      code
    ├── StoreError                  store.*
    │   ├── ConcurrencyError        store.concurrency          bad expected_version, writes nothing
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
    ├── DomainError                 <aggregate>.<rule>          a business rule refused a command
    │   └── NotFoundError           <thing>.not_found
    ├── ApplicationError            app.*                       validation, auth, idempotency …
    └── AdapterError                adapter.error               an external service failed
        ├── TransientAdapterError   adapter.transient          retry may succeed
        └── PermanentAdapterError   adapter.refused            retrying cannot help
"""

from __future__ import annotations

from typing import Any, ClassVar


class CairnError(Exception):
    """Root of the tree. ``code`` is stable; ``message`` is for humans."""

    code: ClassVar[str] = "cairn.error"
    status: ClassVar[int] = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def __str__(self) -> str:
        return self.message


# --- store -----------------------------------------------------------------------------------


class StoreError(CairnError):
    code = "store.error"
    status = 500


class ConcurrencyError(StoreError):
    """The stream was not at the expected version. Nothing was written."""

    code = "store.concurrency"
    status = 409

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


class InvalidEventError(StoreError):
    code = "store.invalid_event"
    status = 400


class InvalidStreamIdError(StoreError):
    code = "store.invalid_stream_id"
    status = 400


class InvalidExpectedVersion(StoreError):
    code = "store.invalid_expected_version"
    status = 400


class StreamDeletedError(StoreError):
    code = "store.stream_deleted"
    status = 410


class RetentionRefusedError(StoreError):
    code = "store.retention_refused"
    status = 409


class UnsupportedStoreURL(StoreError):
    code = "store.unsupported_url"
    status = 500


class StoreUnavailableError(StoreError):
    code = "store.unavailable"
    status = 503


class SchemaMissingError(StoreError):
    code = "store.schema_missing"
    status = 503


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
    status = 500


class UnknownEventTypeError(CodecError):
    code = "codec.unknown_event_type"


class UpcastError(CodecError):
    code = "codec.upcast_failed"


# --- domain ----------------------------------------------------------------------------------


class DomainError(CairnError):
    """A business rule refused a command. ``code`` is chosen per rule, e.g. ``order.empty``."""

    status = 422

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = code  # type: ignore[misc]  # per-instance code: one class, many rules


class NotFoundError(DomainError):
    status = 404


# --- application -----------------------------------------------------------------------------


class ApplicationError(CairnError):
    """Validation, authorisation, idempotency and similar refusals above the domain."""

    def __init__(self, code: str, message: str, *, status: int = 400, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = code  # type: ignore[misc]
        self.status = status  # type: ignore[misc]


# --- adapters (payment gateways, carriers, any external service a saga step calls) -----------


class AdapterError(CairnError):
    """An external service failed. A saga step that gets :class:`TransientAdapterError` is
    retried with backoff; :class:`PermanentAdapterError` (a carrier refusing an address) fails
    the step at once. A payment decline is an *answer*, not an error."""

    code = "adapter.error"
    status = 502


class TransientAdapterError(AdapterError):
    """Try again later: the same call may well succeed."""

    code = "adapter.transient"
    status = 503


class PermanentAdapterError(AdapterError):
    """Retrying the same call cannot help."""

    code = "adapter.refused"
    status = 422
