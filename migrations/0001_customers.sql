-- Portable SQL: the same migrations run on SQLite and PostgreSQL.
-- Timestamps are fixed-width RFC 3339 text (see src/timestamp.rs), JSON is text.

CREATE TABLE customers (
    id              TEXT PRIMARY KEY,
    namespace       TEXT NOT NULL,
    key             TEXT NOT NULL,
    name            TEXT NOT NULL,
    description     TEXT,
    labels          TEXT,
    subject_keys    TEXT NOT NULL,
    primary_email   TEXT,
    currency        TEXT,
    billing_address TEXT,
    -- The customer's billing profile override (NULL: the namespace default).
    billing_profile_id TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    deleted_at      TEXT
);

-- A key names one live customer per namespace; a deleted customer frees it.
CREATE UNIQUE INDEX customers_live_key ON customers (namespace, key) WHERE deleted_at IS NULL;
CREATE INDEX customers_namespace_created ON customers (namespace, created_at, id);

-- One row per (customer, subject key): the partial unique index makes "a subject
-- belongs to at most one live customer" a constraint, not a check-then-insert.
-- Rows of deleted customers stay (with deleted_at) so filters still find them.
-- customers.subject_keys keeps the ordered list for reads.
CREATE TABLE customer_subject_keys (
    namespace   TEXT NOT NULL,
    subject_key TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    deleted_at  TEXT
);
CREATE UNIQUE INDEX customer_subject_keys_live ON customer_subject_keys (namespace, subject_key) WHERE deleted_at IS NULL;
CREATE INDEX customer_subject_keys_customer ON customer_subject_keys (customer_id);
