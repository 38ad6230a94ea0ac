"""Automatic persisted queries (Apollo's APQ protocol, version 1).

A client sends ``extensions.persistedQuery.sha256Hash`` instead of the query text; the first
time the server answers ``PERSISTED_QUERY_NOT_FOUND`` and the client sends both, which the
server remembers. Large queries then cross the network once. The queries are kept in a bounded
LRU per process (another process or a restart just asks again), and a query whose hash does not
match its text is refused, so nobody can store a query under someone else's hash.
"""

from __future__ import annotations

import hashlib

from cachetools import LRUCache
from cross_web import HTTPException
from strawberry.http import GraphQLRequestData

#: Strawberry's refusal reasons of these two cases (router.py maps them to codes).
NOT_FOUND = "PersistedQueryNotFound"
MISMATCH = "provided sha256Hash does not match the query"
UNSUPPORTED = "unsupported persistedQuery extension (version 1 with a sha256Hash is)"


class PersistedQueries:
    def __init__(self, size: int = 1000) -> None:
        self._queries: LRUCache[str, str] = LRUCache(maxsize=size)

    def resolve(self, request: GraphQLRequestData) -> GraphQLRequestData:
        """``request`` with its query filled in from (or remembered under) its hash."""
        persisted = (request.extensions or {}).get("persistedQuery")
        if persisted is None:
            return request
        digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        if not isinstance(digest, str) or persisted.get("version") != 1:
            raise HTTPException(400, UNSUPPORTED)
        if request.query is None:
            query = self._queries.get(digest)
            if query is None:
                raise HTTPException(200, NOT_FOUND)
            request.query = query
            return request
        if hashlib.sha256(request.query.encode()).hexdigest() != digest:
            raise HTTPException(400, MISMATCH)
        self._queries[digest] = request.query
        return request
