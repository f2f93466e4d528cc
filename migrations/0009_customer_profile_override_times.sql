-- When a customer's billing profile override (its pinned profile) was set
-- first and last: the v1 API's customer override carries both. NULL when the
-- customer has no override. Overrides set before this migration get the
-- customer's last change, the best moment known.

ALTER TABLE customers ADD COLUMN billing_profile_set_at TEXT;
ALTER TABLE customers ADD COLUMN billing_profile_changed_at TEXT;

UPDATE customers SET billing_profile_set_at = updated_at, billing_profile_changed_at = updated_at
WHERE billing_profile_id IS NOT NULL;
