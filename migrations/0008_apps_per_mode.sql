-- A Stripe account's test and live modes are separate worlds (customers and
-- payment methods of one do not exist in the other), so a namespace may
-- install both side by side: one live app per account and mode.
DROP INDEX apps_live_stripe_account;
CREATE UNIQUE INDEX apps_live_stripe_account_mode ON apps (namespace, stripe_account_id, livemode) WHERE deleted_at IS NULL;
