"""Crypto-shredding (SPEC §1 "personal data"): personal fields are stored sealed with a key of
their data subject, and forgetting the subject deletes that key.

Why in the store, beside upcasting: every reader (aggregates, projections and their rebuilds,
the relay, the admin browser, replays) reads through :class:`~cairn.store.base.EventStore`, so
none of them can forget to decrypt, and after a subject is forgotten none of them can show the
plaintext again. Stored events are never rewritten: the ciphertext stays, unreadable.

The store knows nothing of customers. A :class:`PersonalDataPolicy` says, per event type, which
field names the subject and which fields are personal; the order domain supplies its own.

Sealed value, in place of the field's JSON value::

    {"$sealed": "<key id>:<base64url(nonce ‖ AES-256-GCM ciphertext ‖ tag)>"}

The key id (not the subject) selects the key, so a subject forgotten and later seen again gets a
new key, and its old events stay redacted rather than failing to decrypt. Subject and field are
the associated data: a sealed value copied into another subject's event or field does not open.

Keys for reading are looked up every time: a cached key would keep revealing what another
process has forgotten. A key for writing may be cached (the PostgreSQL key store does: one
round trip less per event that carries personal data), because the append then checks it: the
events are written only while every key they were sealed with still exists
(``cairn_append_sealed``), else the store drops those keys and seals again
(:class:`SubjectKeyGone`). A forget racing an append either comes first
(the append seals with a new key) or waits for it (and shreds what it wrote).
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final, TypeGuard

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cairn.errors import InvalidEventError, PersonalDataError
from cairn.store.base import AppendResult, NewEvent, RecordedEvent
from cairn.store.encoding import NUL_ESCAPE
from cairn.store.transfer import SubjectKeyRecord

#: What a personal field reads back as once its subject is forgotten.
REDACTED: Final = "[redacted]"
SEALED: Final = "$sealed"
KEY_BYTES: Final = 32
_NONCE_BYTES: Final = 12


@dataclass(frozen=True, slots=True)
class PersonalFields:
    """The personal fields of one event type and the field that names their subject."""

    subject: str
    fields: frozenset[str]


@dataclass(frozen=True, slots=True)
class PersonalDataPolicy:
    """Which event types carry personal data. Types not listed are stored as they are."""

    by_type: Mapping[str, PersonalFields]

    def of(self, event_type: str) -> PersonalFields | None:
        return self.by_type.get(event_type)

    def types_by_subject_field(self) -> dict[str, list[str]]:
        """The event types carrying personal data, grouped by the field naming their subject."""
        by_field: dict[str, list[str]] = {}
        for event_type, spec in sorted(self.by_type.items()):
            by_field.setdefault(spec.subject, []).append(event_type)
        return by_field


@dataclass(frozen=True, slots=True)
class SubjectKey:
    key_id: uuid.UUID
    key: bytes


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


class KeyStore(ABC):
    """Where subject keys live: beside the events, in the same database, so that a store
    backup restores them together (and a forget is one DELETE)."""

    @abstractmethod
    async def key_for_writing(self, subject: str) -> SubjectKey:
        """The subject's current key, created if it has none (concurrent callers agree)."""

    @abstractmethod
    async def keys(self, key_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, bytes]:
        """The keys that still exist among ``key_ids``."""

    @abstractmethod
    async def forget(self, subject: str) -> bool:
        """Delete every key of ``subject``; whether there was one."""

    def drop_cached(self, key_ids: Collection[uuid.UUID]) -> None:  # noqa: B027 - optional
        """Stop writing with ``key_ids`` from memory: the store found one of them deleted. A
        key store that caches no key for writing has nothing to drop."""


class MemoryKeyStore(KeyStore):
    def __init__(self) -> None:
        self._current: dict[str, SubjectKey] = {}
        self._keys: dict[uuid.UUID, tuple[str, bytes]] = {}
        self._created: dict[uuid.UUID, datetime] = {}

    async def key_for_writing(self, subject: str) -> SubjectKey:
        current = self._current.get(subject)
        if current is None:
            current = self._current[subject] = SubjectKey(uuid.uuid4(), new_key())
            self._keys[current.key_id] = (subject, current.key)
            self._created[current.key_id] = datetime.now(UTC)
        return current

    def records(self) -> list[SubjectKeyRecord]:
        """Every key, as an export carries it."""
        return [
            SubjectKeyRecord(k, subject, key, self._created[k])
            for k, (subject, key) in self._keys.items()
        ]

    def load(self, records: Iterable[SubjectKeyRecord]) -> None:
        """Restore exported keys (into an empty key store)."""
        for r in records:
            self._current[r.subject] = SubjectKey(r.key_id, r.key)
            self._keys[r.key_id] = (r.subject, r.key)
            self._created[r.key_id] = r.created_at

    async def keys(self, key_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, bytes]:
        return {k: self._keys[k][1] for k in key_ids if k in self._keys}

    async def forget(self, subject: str) -> bool:
        found = self._current.pop(subject, None) is not None
        for key_id in [k for k, (s, _) in self._keys.items() if s == subject]:
            del self._keys[key_id]
            del self._created[key_id]
            found = True
        return found


def refuse_nul(event_type: str, plaintexts: Mapping[str, str]) -> None:
    """Refuse a NUL (U+0000) in a personal field before it is sealed: the store's own NUL check
    (:func:`cairn.store.encoding.encode_json`) sees only the sealed value, and a NUL that reaches
    a read model stops it on PostgreSQL."""
    for field in sorted(plaintexts):
        text = plaintexts[field]
        if "\\u0000" in text and NUL_ESCAPE.search(text):
            raise InvalidEventError(
                f"{event_type}: personal field {field!r} contains a NUL character (U+0000)"
            )


class SubjectKeyGone(Exception):
    """An append refused because a subject key it was sealed with no longer exists (another
    process forgot the subject after this one cached the key). Nothing was written; the events
    are sealed again with fresh keys (:meth:`PersonalData.sealed_append`), so this never leaves
    :mod:`cairn.store`."""


@dataclass(frozen=True, slots=True)
class JustSealed:
    """What one :meth:`PersonalData.seal` used, for its caller to open what it has just written
    with neither a key lookup nor a decryption: the keys, and each sealed value's plaintext
    JSON by the sealed text (its nonce is new, so no other stored value has that text)."""

    keys: dict[uuid.UUID, bytes]
    plaintexts: dict[str, str]


def _associated(subject: str, field: str) -> bytes:
    return f"{subject}\x00{field}".encode()


def _subject_of(data: Mapping[str, Any], spec: PersonalFields, event_type: str) -> str:
    subject = data.get(spec.subject)
    if not isinstance(subject, str) or not subject:
        raise InvalidEventError(
            f"{event_type} carries personal data but no subject in {spec.subject!r}"
        )
    return subject


def _is_sealed(value: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict) and len(value) == 1 and SEALED in value


class PersonalData:
    """Seals personal fields on append and opens (or redacts) them on read."""

    def __init__(self, policy: PersonalDataPolicy, keys: KeyStore) -> None:
        self.policy = policy
        self.keys = keys

    async def seal(self, events: list[NewEvent]) -> tuple[list[NewEvent], JustSealed]:
        """``events`` with their personal fields sealed, and what sealing them used (so the
        caller can open what it just wrote cheaply: :class:`JustSealed`)."""
        out: list[NewEvent] = []
        used: dict[str, SubjectKey] = {}
        opened: dict[str, str] = {}
        for event in events:
            spec = self.policy.of(event.type)
            present = spec.fields.intersection(event.data) if spec is not None else ()
            if spec is None or not present:
                out.append(event)
                continue
            plaintexts = {f: json.dumps(event.data[f], separators=(",", ":")) for f in present}
            refuse_nul(event.type, plaintexts)
            subject = _subject_of(event.data, spec, event.type)
            key = used.get(subject)
            if key is None:
                key = used[subject] = await self.keys.key_for_writing(subject)
            cipher = AESGCM(key.key)
            data = dict(event.data)
            for name in present:
                nonce = os.urandom(_NONCE_BYTES)
                plaintext = plaintexts[name]
                sealed = cipher.encrypt(nonce, plaintext.encode(), _associated(subject, name))
                text = f"{key.key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"
                data[name] = {SEALED: text}
                opened[text] = plaintext
            out.append(replace(event, data=data))
        return out, JustSealed({k.key_id: k.key for k in used.values()}, opened)

    async def sealed_append(
        self,
        events: list[NewEvent],
        append: Callable[[list[NewEvent], Collection[uuid.UUID]], Awaitable[AppendResult]],
    ) -> tuple[AppendResult, JustSealed]:
        """``append(sealed events, keys used)``'s result, sealing again while it refuses a key
        another process deleted (:class:`SubjectKeyGone`): the key store then drops the keys
        and looks them up afresh."""
        while True:
            sealed, used = await self.seal(events)
            try:
                return await append(sealed, used.keys.keys()), used
            except SubjectKeyGone:
                self.keys.drop_cached(used.keys.keys())

    async def reveal(
        self, events: list[RecordedEvent], known: JustSealed | None = None
    ) -> list[RecordedEvent]:
        """``events`` with personal fields opened, or :data:`REDACTED` where the key is gone.
        One key lookup per batch, and none when the batch holds no sealed field or only fields
        sealed with ``known`` keys; a value ``known`` sealed is not decrypted (see
        :class:`JustSealed`)."""
        sealed = list(self._sealed_events(events))
        if not sealed:
            return events
        wanted = {
            _split(events[i].data[f])[0]
            for i, spec in sealed
            for f in spec.fields
            if _is_sealed(events[i].data.get(f))
        }
        keys = dict(known.keys) if known is not None else {}
        plaintexts = known.plaintexts if known is not None else {}
        missing = wanted - keys.keys()
        if missing:
            keys.update(await self.keys.keys(missing))
        out = list(events)
        for i, spec in sealed:
            event = events[i]
            subject = _subject_of(event.data, spec, event.type)
            data = dict(event.data)
            for name in spec.fields:
                value = data.get(name)
                if not _is_sealed(value):
                    continue
                plaintext = plaintexts.get(value[SEALED])
                if plaintext is not None:
                    data[name] = json.loads(plaintext)
                else:
                    data[name] = _open(value, subject, name, keys, event)
            out[i] = replace(event, data=data)
        return out

    def _sealed_events(
        self, events: Iterable[RecordedEvent]
    ) -> Iterable[tuple[int, PersonalFields]]:
        policy = self.policy
        for index, event in enumerate(events):
            spec = policy.of(event.type)
            if spec is not None and any(_is_sealed(event.data.get(f)) for f in spec.fields):
                yield index, spec


def _split(value: dict[str, Any]) -> tuple[uuid.UUID, str]:
    text = value[SEALED]
    key_id, _, token = text.partition(":") if isinstance(text, str) else ("", "", "")
    try:
        return uuid.UUID(key_id), token
    except ValueError:
        raise PersonalDataError(f"malformed sealed value {text!r}") from None


def _open(
    value: dict[str, Any],
    subject: str,
    field: str,
    keys: Mapping[uuid.UUID, bytes],
    event: RecordedEvent,
) -> Any:
    key_id, token = _split(value)
    key = keys.get(key_id)
    if key is None:
        return REDACTED
    try:
        raw = base64.urlsafe_b64decode(token)
        plaintext = AESGCM(key).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _associated(subject, field)
        )
    except (InvalidTag, ValueError):
        raise PersonalDataError(
            f"field {field!r} of event {event.id} (position {event.position}) does not open "
            "with its subject's key: the stored value was altered"
        ) from None
    return json.loads(plaintext)
