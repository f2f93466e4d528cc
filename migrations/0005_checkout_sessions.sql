-- Every Stripe Checkout Session meterpay created (or learned of from a
-- webhook). The client secret of embedded sessions is never stored.

CREATE TABLE checkout_sessions (
    id                  TEXT PRIMARY KEY,
    namespace           TEXT NOT NULL,
    app_id              TEXT NOT NULL REFERENCES apps (id),
    customer_id         TEXT NOT NULL REFERENCES customers (id),
    stripe_customer_id  TEXT NOT NULL,
    setup_intent_id     TEXT,
    status              TEXT NOT NULL,
    ui_mode             TEXT NOT NULL,
    currency            TEXT,
    url                 TEXT,
    success_url         TEXT,
    cancel_url          TEXT,
    return_url          TEXT,
    client_reference_id TEXT,
    customer_email      TEXT,
    metadata            TEXT,
    payment_method_id   TEXT,
    failure_reason      TEXT,
    expires_at          TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);

CREATE INDEX checkout_sessions_customer ON checkout_sessions (namespace, customer_id, created_at);
CREATE INDEX checkout_sessions_setup_intent ON checkout_sessions (setup_intent_id);
