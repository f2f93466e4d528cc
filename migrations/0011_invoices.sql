-- Invoices and their lines (charges). A customer's pending lines gather on
-- its `gathering` invoice of their currency; invoicing moves them onto a
-- draft invoice. Amounts are decimal text (`Numeric`), each line's amount
-- already rounded to the currency's minor unit; the invoice's amount is the
-- sum of its live lines'. Timestamps are fixed-width RFC 3339 text, JSON is
-- text, as everywhere.

CREATE TABLE invoices (
    id                  TEXT PRIMARY KEY,
    namespace           TEXT NOT NULL,
    customer_id         TEXT NOT NULL REFERENCES customers (id),
    -- The customer as the invoice shows it (JSON), and its name for ordering.
    customer            TEXT NOT NULL,
    customer_name       TEXT NOT NULL,
    number              TEXT NOT NULL,
    currency            TEXT NOT NULL,
    -- The extended status (`draft.manual_approval_needed`) and the short
    -- status it belongs to (`draft`), which lists filter by.
    status              TEXT NOT NULL,
    status_group        TEXT NOT NULL,
    description         TEXT,
    metadata            TEXT,
    supplier            TEXT NOT NULL,
    -- The workflow snapshot: the profile it came from, its apps, its workflow (JSON).
    profile_id          TEXT NOT NULL,
    tax_app_id          TEXT NOT NULL,
    invoicing_app_id    TEXT NOT NULL,
    payment_app_id      TEXT NOT NULL,
    workflow            TEXT NOT NULL,
    period_from         TEXT,
    period_to           TEXT,
    amount              TEXT NOT NULL,
    issued_at           TEXT,
    draft_until         TEXT,
    due_at              TEXT,
    voided_at           TEXT,
    sent_to_customer_at TEXT,
    validation_issues   TEXT,
    -- The invoicing app's side (Stripe): its invoice, number and pages, and
    -- the payment (intent) it collects with, with the last payment outcome
    -- it reported (JSON: status, failure code and message).
    stripe_invoice_id      TEXT,
    stripe_invoice_number  TEXT,
    hosted_invoice_url     TEXT,
    invoice_pdf_url        TEXT,
    payment_id             TEXT,
    payment_status_details TEXT,
    -- The sync to the invoicing app, step by step: the last step whose
    -- outcome is stored (NULL: none yet), attempts made, when to try next,
    -- and the process working on it now (a lease: owner and expiry).
    sync_step           TEXT,
    sync_attempts       BIGINT NOT NULL,
    sync_error          TEXT,
    next_attempt_at     TEXT,
    lease_owner         TEXT,
    lease_expires_at    TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    deleted_at          TEXT
);

-- One live gathering invoice per customer and currency: the index, not a check, decides.
CREATE UNIQUE INDEX invoices_live_gathering ON invoices (namespace, customer_id, currency) WHERE status = 'gathering' AND deleted_at IS NULL;
CREATE INDEX invoices_namespace_created ON invoices (namespace, created_at, id);
CREATE INDEX invoices_customer ON invoices (namespace, customer_id, status_group);
-- The background worker's queue: invoices with work due.
CREATE INDEX invoices_next_attempt ON invoices (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
-- A Stripe invoice belongs to one meterpay invoice (webhooks find it by id).
CREATE UNIQUE INDEX invoices_stripe_invoice ON invoices (invoicing_app_id, stripe_invoice_id) WHERE stripe_invoice_id IS NOT NULL;

CREATE TABLE invoice_lines (
    id             TEXT PRIMARY KEY,
    namespace      TEXT NOT NULL,
    invoice_id     TEXT NOT NULL REFERENCES invoices (id),
    name           TEXT NOT NULL,
    description    TEXT,
    metadata       TEXT,
    currency       TEXT NOT NULL,
    period_from    TEXT NOT NULL,
    period_to      TEXT NOT NULL,
    invoice_at     TEXT NOT NULL,
    -- The price (JSON, amounts as decimal text), the quantity billed and the
    -- amount (rounded once to the currency's minor unit).
    price          TEXT NOT NULL,
    quantity       TEXT,
    tax_config     TEXT,
    amount         TEXT NOT NULL,
    -- The Stripe invoice item this line became.
    stripe_item_id TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    deleted_at     TEXT
);

CREATE INDEX invoice_lines_invoice ON invoice_lines (invoice_id, created_at, id);
