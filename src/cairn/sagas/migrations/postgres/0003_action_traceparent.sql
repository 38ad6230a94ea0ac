-- The W3C trace context of the message that sent each step (the event's ``traceparent``, or
-- the span of the step whose answer sent it), so running the step continues the order's
-- trace and the events its command appends carry it (SPEC §16). NULL: the step runs in a
-- trace of its own (steps written before this column, timers).
ALTER TABLE saga_actions ADD COLUMN traceparent TEXT;
