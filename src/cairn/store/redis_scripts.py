"""The server-side Lua scripts of the Redis event store (:mod:`cairn.store.redis_store`).

Redis runs a script atomically: no other command runs between its first and last call. That is
what makes an append's checks and writes one step (the version check cannot interleave with
another writer, positions are taken from the counter and written in the same step, so ``$all``
never shows a hole that fills later), and what keeps a subject's key unique.

Numbers pass through Lua as doubles and are written with ``%.14g``: exact for positions and
versions below 10^14.
"""

from __future__ import annotations

from typing import Final

#: KEYS: ``$all`` stream, the stream's stream, event ids hash, head counter, deleted hash.
#: ARGV: expected version (``any``, ``exists`` or a number), recorded-at micros, stream id,
#: event count, then per event: its id, the JSON of ``"id","stream","type"`` and the JSON of
#: ``schema_version,data,metadata``. The entry is ``[id,stream,type,version,position,at,
#: schema_version,data,metadata]``, one JSON text, so a reader decodes a batch in one call.
#: Replies: ``{"ok", version, position}``, ``{"retry", "<version> <stream>"}`` when the first id
#: is stored (the caller checks the batch is the same), ``{"taken", id}``, ``{"deleted"}``,
#: ``{"conflict", actual}``.
APPEND: Final = """
local n = tonumber(ARGV[4])
local first = redis.call('HGET', KEYS[3], ARGV[5])
if first then return {'retry', first} end
for i = 1, n - 1 do
  local id = ARGV[5 + i * 3]
  if redis.call('HEXISTS', KEYS[3], id) == 1 then return {'taken', id} end
end
if redis.call('HEXISTS', KEYS[5], ARGV[3]) == 1 then return {'deleted'} end
local actual = redis.call('XLEN', KEYS[2])
local expected = ARGV[1]
if expected == 'exists' then
  if actual == 0 then return {'conflict', actual} end
elseif expected ~= 'any' and tonumber(expected) ~= actual then
  return {'conflict', actual}
end
local head = tonumber(redis.call('GET', KEYS[4]) or '0')
for i = 0, n - 1 do
  local base = 5 + i * 3
  local version = actual + i + 1
  local position = head + i + 1
  local entry = '[' .. ARGV[base + 1] .. ',' .. version .. ',' .. position .. ',' .. ARGV[2]
    .. ',' .. ARGV[base + 2] .. ']'
  redis.call('XADD', KEYS[1], position .. '-0', 'e', entry)
  redis.call('XADD', KEYS[2], version .. '-0', 'e', entry)
  redis.call('HSET', KEYS[3], ARGV[base], version .. ' ' .. ARGV[3])
end
redis.call('SET', KEYS[4], head + n)
return {'ok', actual + n, head + n}
"""

#: KEYS: snapshots hash, snapshot versions hash. ARGV: stream id, version, snapshot JSON.
#: The latest version wins: an older snapshot saved late never replaces a newer one.
SAVE_SNAPSHOT: Final = """
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current and tonumber(current) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""

#: KEYS: keys hash (key id → JSON ``[subject, base64 key, created_at]``), subjects hash
#: (subject → its key ids, space-separated, the current one last). ARGV: subject, a new key id,
#: the new key's JSON. Replies the subject's current key id, creating it if it has none.
KEY_FOR_WRITING: Final = """
local ids = redis.call('HGET', KEYS[2], ARGV[1])
if ids then
  local current = string.match(ids, '(%S+)$')
  if redis.call('HEXISTS', KEYS[1], current) == 1 then return current end
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return ARGV[2]
"""

#: KEYS: keys hash, subjects hash. ARGV: subject. Deletes every key of the subject; replies
#: how many there were.
FORGET: Final = """
local ids = redis.call('HGET', KEYS[2], ARGV[1])
if not ids then return 0 end
local deleted = 0
for id in string.gmatch(ids, '%S+') do
  deleted = deleted + redis.call('HDEL', KEYS[1], id)
end
redis.call('HDEL', KEYS[2], ARGV[1])
return deleted
"""
