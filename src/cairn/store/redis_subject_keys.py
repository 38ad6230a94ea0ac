"""The Redis key store of crypto-shredding (see :mod:`cairn.store.personal`).

Keys live beside the events, under the store's prefix: a key id → ``[subject, key, created]``
hash and a subject → key ids hash. Creating a subject's key and forgetting it are each one Lua
script (:mod:`cairn.store.redis_scripts`), so concurrent writers agree on one key per subject.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from cairn.store.encoding import to_micros
from cairn.store.personal import KeyStore, SubjectKey, new_key
from cairn.store.redis_keys import RedisKeys, decode_key, encode_key, reachable
from cairn.store.redis_scripts import FORGET, KEY_FOR_WRITING


class RedisKeyStore(KeyStore):
    def __init__(self, client: Any, keys: RedisKeys, *, where: str) -> None:
        self.where = where
        self._client = client
        self._keys = keys
        self._key_for_writing = client.register_script(KEY_FOR_WRITING)
        self._forget = client.register_script(FORGET)

    @reachable
    async def key_for_writing(self, subject: str) -> SubjectKey:
        fresh = SubjectKey(uuid.uuid4(), new_key())
        created = to_micros(datetime.now(UTC))
        key_id = await self._key_for_writing(
            keys=[self._keys.subject_keys, self._keys.subjects],
            args=[subject, str(fresh.key_id), encode_key(fresh, subject, created)],
        )
        if key_id == str(fresh.key_id):
            return fresh
        stored = await self._client.hget(self._keys.subject_keys, key_id)
        return SubjectKey(uuid.UUID(key_id), decode_key(stored)[1])

    @reachable
    async def keys(self, key_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, bytes]:
        if not key_ids:
            return {}
        wanted = list(key_ids)
        found = await self._client.hmget(self._keys.subject_keys, [str(k) for k in wanted])
        return {k: decode_key(text)[1] for k, text in zip(wanted, found, strict=True) if text}

    @reachable
    async def forget(self, subject: str) -> bool:
        deleted = await self._forget(
            keys=[self._keys.subject_keys, self._keys.subjects], args=[subject]
        )
        return int(deleted) > 0
