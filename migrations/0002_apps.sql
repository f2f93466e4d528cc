-- Installed apps (meterpay implements the `stripe` type). Secrets are stored
-- only encrypted (AES-256-GCM, see src/secrets.rs); booleans are 0/1 BIGINTs
-- so the same SQL runs on SQLite and PostgreSQL.

CREATE TABLE apps (
    id                       TEXT PRIMARY KEY,
    namespace                TEXT NOT NULL,
    type                     TEXT NOT NULL,
    name                     TEXT NOT NULL,
    description              TEXT,
    labels                   TEXT,
    status                   TEXT NOT NULL,
    stripe_account_id        TEXT NOT NULL,
    livemode                 BIGINT NOT NULL,
    masked_api_key           TEXT NOT NULL,
    api_key_encrypted        TEXT NOT NULL,
    webhook_endpoint_id      TEXT,
    webhook_secret_encrypted TEXT,
    created_at               TEXT NOT NULL,
    updated_at               TEXT NOT NULL,
    deleted_at               TEXT
);

-- One live app per Stripe account and namespace: the constraint, not a check, decides.
CREATE UNIQUE INDEX apps_live_stripe_account ON apps (namespace, stripe_account_id) WHERE deleted_at IS NULL;
CREATE INDEX apps_namespace_created ON apps (namespace, created_at, id);
