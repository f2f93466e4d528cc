-- A customer's Stripe side, per Stripe app: which Stripe customer it is and
-- its default payment method. The primary key makes "one Stripe customer per
-- (app, customer)" a constraint, so concurrent first checkouts cannot map a
-- customer twice; the unique index keeps two customers off one Stripe customer.

CREATE TABLE customer_stripe (
    namespace                 TEXT NOT NULL,
    app_id                    TEXT NOT NULL REFERENCES apps (id),
    customer_id               TEXT NOT NULL REFERENCES customers (id),
    stripe_customer_id        TEXT NOT NULL,
    default_payment_method_id TEXT,
    labels                    TEXT,
    created_at                TEXT NOT NULL,
    updated_at                TEXT NOT NULL,
    PRIMARY KEY (app_id, customer_id)
);

CREATE UNIQUE INDEX customer_stripe_stripe_customer ON customer_stripe (app_id, stripe_customer_id);
CREATE INDEX customer_stripe_customer ON customer_stripe (namespace, customer_id);
