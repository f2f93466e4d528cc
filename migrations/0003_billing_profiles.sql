-- Billing profiles: the supplier, the billing workflow and the apps (tax,
-- invoicing, payment) a namespace bills with. Supplier and workflow are JSON
-- text with every default filled in; is_default is a 0/1 BIGINT.

CREATE TABLE billing_profiles (
    id               TEXT PRIMARY KEY,
    namespace        TEXT NOT NULL,
    name             TEXT NOT NULL,
    description      TEXT,
    labels           TEXT,
    supplier         TEXT NOT NULL,
    workflow         TEXT NOT NULL,
    -- Set at creation and never changed.
    tax_app_id       TEXT NOT NULL REFERENCES apps (id),
    invoicing_app_id TEXT NOT NULL REFERENCES apps (id),
    payment_app_id   TEXT NOT NULL REFERENCES apps (id),
    is_default       BIGINT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    deleted_at       TEXT
);

-- At most one live default profile per namespace: the index, not a check, decides.
CREATE UNIQUE INDEX billing_profiles_live_default ON billing_profiles (namespace) WHERE is_default = 1 AND deleted_at IS NULL;
CREATE INDEX billing_profiles_namespace_created ON billing_profiles (namespace, created_at, id);

-- One row per namespace that has had a profile change. Every transaction that
-- writes profiles upserts its namespace's row first: on PostgreSQL that row
-- lock serialises the namespace's profile writes (so switching the default
-- never trips the unique index above, and checks such as "is there a default
-- yet?" see every earlier commit); on SQLite it is the write that takes the
-- database's write lock up front.
CREATE TABLE billing_profile_locks (
    namespace TEXT PRIMARY KEY,
    version   BIGINT NOT NULL
);
