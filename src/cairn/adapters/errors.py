"""Errors an adapter raises. A step that gets :class:`TransientAdapterError` is retried with
backoff; :class:`PermanentAdapterError` (e.g. a carrier refusing an address) fails the step at
once. A payment decline is an *answer*, not an error (see ``Authorization``)."""

from __future__ import annotations

from cairn.errors import CairnError


class AdapterError(CairnError):
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
