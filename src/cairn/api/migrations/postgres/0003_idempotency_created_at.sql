-- Idempotency records expire (CAIRN_IDEMPOTENCY_TTL): the periodic prune deletes by age.
CREATE INDEX IF NOT EXISTS api_idempotency_created_at ON api_idempotency (created_at);
