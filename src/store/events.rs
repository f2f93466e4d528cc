//! Exactly-once handling of Stripe events, and the writes their effects make.

use sqlx::Row;
use time::Duration;

use super::Store;
use crate::billing::app::App;
use crate::billing::checkout::CheckoutSessionStatus;
use crate::error::{Error, Result};
use crate::ids::{AppId, CustomerId, StripeCustomerId};
use crate::timestamp;

/// What a delivery of an event may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This delivery processes the event.
    Claimed,
    /// Processed before: acknowledge, change nothing.
    Done,
    /// Another delivery is processing it right now.
    Busy,
}

/// A claim older than this is considered abandoned (its process died).
const STALE_CLAIM: Duration = Duration::minutes(2);

impl Store {
    /// An app by id in any namespace (the webhook route knows only the id).
    pub async fn app_by_id(&self, id: AppId) -> Result<Option<App>> {
        let row = sqlx::query("SELECT namespace FROM apps WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let namespace: String = row.try_get("namespace")?;
        self.get_app(&namespace, id).await
    }

    pub async fn claim_event(&self, app_id: AppId, event_id: &str, kind: &str) -> Result<Claim> {
        let now = timestamp::now();
        let inserted = sqlx::query(
            "INSERT INTO stripe_events (app_id, event_id, type, state, claimed_at) \
             VALUES ($1, $2, $3, 'processing', $4) ON CONFLICT (app_id, event_id) DO NOTHING",
        )
        .bind(app_id.to_string())
        .bind(event_id)
        .bind(kind)
        .bind(timestamp::format(now))
        .execute(&self.writer)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(Claim::Claimed);
        }
        // Take over an abandoned claim (compare-and-set on claimed_at).
        let taken = sqlx::query(
            "UPDATE stripe_events SET claimed_at = $3 WHERE app_id = $1 AND event_id = $2 \
             AND state = 'processing' AND claimed_at < $4",
        )
        .bind(app_id.to_string())
        .bind(event_id)
        .bind(timestamp::format(now))
        .bind(timestamp::format(now - STALE_CLAIM))
        .execute(&self.writer)
        .await?;
        if taken.rows_affected() == 1 {
            return Ok(Claim::Claimed);
        }
        let state: Option<String> =
            sqlx::query("SELECT state FROM stripe_events WHERE app_id = $1 AND event_id = $2")
                .bind(app_id.to_string())
                .bind(event_id)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get("state"))
                .transpose()?;
        Ok(match state.as_deref() {
            Some("processed") => Claim::Done,
            _ => Claim::Busy,
        })
    }

    pub async fn finish_event(&self, app_id: AppId, event_id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE stripe_events SET state = 'processed', processed_at = $3 \
             WHERE app_id = $1 AND event_id = $2",
        )
        .bind(app_id.to_string())
        .bind(event_id)
        .bind(timestamp::format(timestamp::now()))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Gives a claim up so Stripe's next delivery processes the event.
    pub async fn release_event(&self, app_id: AppId, event_id: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM stripe_events WHERE app_id = $1 AND event_id = $2 AND state = 'processing'",
        )
        .bind(app_id.to_string())
        .bind(event_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Records the customer's default payment method for an app.
    pub async fn set_default_payment_method(
        &self,
        namespace: &str,
        app_id: AppId,
        customer_id: CustomerId,
        stripe_customer_id: &StripeCustomerId,
        payment_method_id: &str,
    ) -> Result<()> {
        let mapping = self
            .ensure_customer_stripe(namespace, app_id, customer_id, stripe_customer_id)
            .await?;
        if mapping.stripe_customer_id != *stripe_customer_id {
            return Err(Error::Conflict {
                field: None,
                detail: format!(
                    "customer [{customer_id}] is linked to Stripe customer [{}], not [{stripe_customer_id}]",
                    mapping.stripe_customer_id
                ),
            });
        }
        sqlx::query(
            "UPDATE customer_stripe SET default_payment_method_id = $4, updated_at = $5 \
             WHERE namespace = $1 AND app_id = $2 AND customer_id = $3",
        )
        .bind(namespace)
        .bind(app_id.to_string())
        .bind(customer_id.to_string())
        .bind(payment_method_id)
        .bind(timestamp::format(timestamp::now()))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Updates recorded sessions by session id or setup intent id; returns
    /// how many sessions matched. A completed session stays complete: a late
    /// `expired` or `setup_failed` (Stripe does not order deliveries) does not
    /// undo it. `updated_at` moves only when something changed, so the two
    /// events of one completion (`checkout.session.completed` and
    /// `setup_intent.succeeded`, in either order) or a redelivery leave the
    /// session as the first one made it.
    pub async fn update_session_status(
        &self,
        namespace: &str,
        session_id: Option<&str>,
        setup_intent_id: Option<&str>,
        status: CheckoutSessionStatus,
        payment_method_id: Option<&str>,
        failure_reason: Option<&str>,
    ) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE checkout_sessions SET status = $4, \
             payment_method_id = COALESCE($5, payment_method_id), \
             failure_reason = COALESCE($6, failure_reason), \
             updated_at = CASE WHEN status <> $4 \
                 OR ($5 IS NOT NULL AND COALESCE(payment_method_id, '') <> $5) \
                 OR ($6 IS NOT NULL AND COALESCE(failure_reason, '') <> $6) \
                 THEN $7 ELSE updated_at END \
             WHERE namespace = $1 AND (id = $2 OR setup_intent_id = $3) \
             AND (status <> 'complete' OR $4 = 'complete') \
             AND ($4 <> 'requires_action' OR status IN ('open', 'failed'))",
        )
        .bind(namespace)
        .bind(session_id.map(str::to_owned))
        .bind(setup_intent_id.map(str::to_owned))
        .bind(status.as_str())
        .bind(payment_method_id.map(str::to_owned))
        .bind(failure_reason.map(str::to_owned))
        .bind(timestamp::format(timestamp::now()))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }
}
