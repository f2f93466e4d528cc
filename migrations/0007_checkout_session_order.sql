-- Stripe's `created` has one-second resolution, so sessions created in the
-- same second need another key for "newest first" in the history: the
-- moment meterpay recorded the row (microseconds, fixed width, sorts as text).

ALTER TABLE checkout_sessions ADD COLUMN recorded_at TEXT;

CREATE INDEX checkout_sessions_history ON checkout_sessions (namespace, customer_id, created_at, recorded_at);
