-- The Stripe API version an app's webhook endpoint sends events in (NULL:
-- created before meterpay pinned it, so the account's default version) and
-- the events it is subscribed to (comma-separated; NULL: unknown). While
-- an endpoint is replaced by one of the pinned version, the old endpoint and
-- its signing secret are kept: events signed by either are accepted until the
-- old endpoint is deleted.
ALTER TABLE apps ADD COLUMN webhook_api_version TEXT;
ALTER TABLE apps ADD COLUMN webhook_events TEXT;
ALTER TABLE apps ADD COLUMN previous_webhook_endpoint_id TEXT;
ALTER TABLE apps ADD COLUMN previous_webhook_secret_encrypted TEXT;
