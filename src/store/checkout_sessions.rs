//! Recorded checkout sessions.

use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{Store, get_json, get_opt_ts, get_ts, to_json};
use crate::billing::checkout::CheckoutSessionStatus;
use crate::error::{Error, Result};
use crate::ids::{AppId, CustomerId, StripeCustomerId};
use crate::timestamp;

#[derive(Debug, Clone, PartialEq)]
pub struct CheckoutSessionRecord {
    pub id: String,
    pub app_id: AppId,
    pub customer_id: CustomerId,
    pub stripe_customer_id: StripeCustomerId,
    pub setup_intent_id: Option<String>,
    pub status: CheckoutSessionStatus,
    /// Upstream name: `hosted` | `embedded`.
    pub ui_mode: String,
    pub currency: Option<String>,
    pub url: Option<String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub return_url: Option<String>,
    pub client_reference_id: Option<String>,
    pub customer_email: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub payment_method_id: Option<String>,
    pub failure_reason: Option<String>,
    pub expires_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, app_id, customer_id, stripe_customer_id, setup_intent_id, status, \
     ui_mode, currency, url, success_url, cancel_url, return_url, client_reference_id, \
     customer_email, metadata, payment_method_id, failure_reason, expires_at, created_at, updated_at";

impl Store {
    /// Records a session; a session already recorded (e.g. from a webhook
    /// that arrived first) is left as it is.
    pub async fn record_checkout_session(
        &self,
        namespace: &str,
        s: &CheckoutSessionRecord,
    ) -> Result<()> {
        self.insert_session(namespace, s, "DO NOTHING").await
    }

    /// Records a session learned of from a `checkout.session.*` event (e.g.
    /// meterpay stopped between Stripe creating it and recording it). A row
    /// the create path records later is left alone; a row it recorded first
    /// takes the event's status, unless it is already complete; a row already
    /// in that status is left untouched.
    pub async fn record_session_from_event(
        &self,
        namespace: &str,
        s: &CheckoutSessionRecord,
    ) -> Result<()> {
        self.insert_session(
            namespace,
            s,
            "DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at \
             WHERE checkout_sessions.status <> excluded.status \
             AND (checkout_sessions.status <> 'complete' OR excluded.status = 'complete')",
        )
        .await
    }

    /// `on_conflict` is one of the two fixed clauses above, never input.
    async fn insert_session(
        &self,
        namespace: &str,
        s: &CheckoutSessionRecord,
        on_conflict: &'static str,
    ) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO checkout_sessions (id, namespace, app_id, customer_id, stripe_customer_id, \
             setup_intent_id, status, ui_mode, currency, url, success_url, cancel_url, return_url, \
             client_reference_id, customer_email, metadata, payment_method_id, failure_reason, \
             expires_at, created_at, updated_at, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, \
             $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) \
             ON CONFLICT (id) {on_conflict}"
        )))
        .bind(&s.id)
        .bind(namespace)
        .bind(s.app_id.to_string())
        .bind(s.customer_id.to_string())
        .bind(s.stripe_customer_id.as_str())
        .bind(s.setup_intent_id.clone())
        .bind(s.status.as_str())
        .bind(&s.ui_mode)
        .bind(s.currency.clone())
        .bind(s.url.clone())
        .bind(s.success_url.clone())
        .bind(s.cancel_url.clone())
        .bind(s.return_url.clone())
        .bind(s.client_reference_id.clone())
        .bind(s.customer_email.clone())
        .bind(s.metadata.as_ref().map(to_json))
        .bind(s.payment_method_id.clone())
        .bind(s.failure_reason.clone())
        .bind(s.expires_at.map(timestamp::format))
        .bind(timestamp::format(s.created_at))
        .bind(timestamp::format(s.updated_at))
        .bind(timestamp::format(timestamp::now()))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn get_checkout_session(
        &self,
        namespace: &str,
        id: &str,
    ) -> Result<Option<CheckoutSessionRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM checkout_sessions WHERE namespace = $1 AND id = $2"
        )))
        .bind(namespace)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| from_row(&r)).transpose()
    }

    /// A customer's sessions, newest first, optionally only those in one of
    /// `statuses`; with the total count for the page's meta.
    pub async fn list_checkout_sessions(
        &self,
        namespace: &str,
        customer_id: CustomerId,
        statuses: &[CheckoutSessionStatus],
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<CheckoutSessionRecord>, u64)> {
        // $1 namespace, $2 customer, then one placeholder per status.
        let status_clause = if statuses.is_empty() {
            String::new()
        } else {
            let marks: Vec<String> = (0..statuses.len()).map(|i| format!("${}", i + 3)).collect();
            format!(" AND status IN ({})", marks.join(", "))
        };
        let filter = format!("WHERE namespace = $1 AND customer_id = $2{status_clause}");
        let count_sql = format!("SELECT COUNT(*) AS n FROM checkout_sessions {filter}");
        let mut count = sqlx::query(sqlx::AssertSqlSafe(count_sql))
            .bind(namespace)
            .bind(customer_id.to_string());
        for s in statuses {
            count = count.bind(s.as_str());
        }
        let total: i64 = count.fetch_one(&self.pool).await?.try_get("n")?;

        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let n = statuses.len();
        let list_sql = format!(
            "SELECT {COLUMNS} FROM checkout_sessions {filter} \
             ORDER BY created_at DESC, recorded_at DESC, id DESC LIMIT ${} OFFSET ${}",
            n + 3,
            n + 4
        );
        let mut list = sqlx::query(sqlx::AssertSqlSafe(list_sql))
            .bind(namespace)
            .bind(customer_id.to_string());
        for s in statuses {
            list = list.bind(s.as_str());
        }
        let rows = list.bind(limit).bind(offset).fetch_all(&self.pool).await?;
        let items = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
        Ok((items, u64::try_from(total).unwrap_or(0)))
    }

    /// How many sessions a customer has (tests count them; the history's
    /// total comes from `list_checkout_sessions`).
    pub async fn count_checkout_sessions(
        &self,
        namespace: &str,
        customer_id: CustomerId,
    ) -> Result<u64> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM checkout_sessions WHERE namespace = $1 AND customer_id = $2",
        )
        .bind(namespace)
        .bind(customer_id.to_string())
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

fn from_row(row: &AnyRow) -> Result<CheckoutSessionRecord> {
    let parse = || -> anyhow::Result<CheckoutSessionRecord> {
        let app_id: String = row.try_get("app_id")?;
        let customer_id: String = row.try_get("customer_id")?;
        let status: String = row.try_get("status")?;
        Ok(CheckoutSessionRecord {
            id: row.try_get("id")?,
            app_id: app_id.parse()?,
            customer_id: customer_id.parse()?,
            stripe_customer_id: row.try_get::<String, _>("stripe_customer_id")?.into(),
            setup_intent_id: row.try_get("setup_intent_id")?,
            status: CheckoutSessionStatus::parse(&status)
                .ok_or_else(|| anyhow::anyhow!("unknown checkout session status [{status}]"))?,
            ui_mode: row.try_get("ui_mode")?,
            currency: row.try_get("currency")?,
            url: row.try_get("url")?,
            success_url: row.try_get("success_url")?,
            cancel_url: row.try_get("cancel_url")?,
            return_url: row.try_get("return_url")?,
            client_reference_id: row.try_get("client_reference_id")?,
            customer_email: row.try_get("customer_email")?,
            metadata: get_json(row, "metadata")?,
            payment_method_id: row.try_get("payment_method_id")?,
            failure_reason: row.try_get("failure_reason")?,
            expires_at: get_opt_ts(row, "expires_at")?,
            created_at: get_ts(row, "created_at")?,
            updated_at: get_ts(row, "updated_at")?,
        })
    };
    parse().map_err(Error::Internal)
}
