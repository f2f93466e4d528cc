-- Stripe events meterpay has acted on, per app: the primary key makes
-- "one effect per event" hold across processes. A row in state 'processing'
-- is a claim; it is deleted when processing fails (so Stripe's retry is
-- processed again) and may be taken over once stale.

CREATE TABLE stripe_events (
    app_id       TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    type         TEXT NOT NULL,
    state        TEXT NOT NULL,
    claimed_at   TEXT NOT NULL,
    processed_at TEXT,
    PRIMARY KEY (app_id, event_id)
);
