//! Recorded checkout sessions.

use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;
use ulid::Ulid;

use super::{Store, get_json, get_opt_ts, get_ts, to_json};
use crate::error::{Error, Result};
use crate::timestamp;

#[derive(Debug, Clone, PartialEq)]
pub struct CheckoutSessionRecord {
    pub id: String,
    pub app_id: Ulid,
    pub customer_id: Ulid,
    pub stripe_customer_id: String,
    pub setup_intent_id: Option<String>,
    pub status: String,
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
        sqlx::query(
            "INSERT INTO checkout_sessions (id, namespace, app_id, customer_id, stripe_customer_id, \
             setup_intent_id, status, ui_mode, currency, url, success_url, cancel_url, return_url, \
             client_reference_id, customer_email, metadata, payment_method_id, failure_reason, \
             expires_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&s.id)
        .bind(namespace)
        .bind(s.app_id.to_string())
        .bind(s.customer_id.to_string())
        .bind(&s.stripe_customer_id)
        .bind(s.setup_intent_id.clone())
        .bind(&s.status)
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
        .execute(&self.pool)
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

    /// How many sessions a customer has (for tests and history).
    pub async fn count_checkout_sessions(&self, namespace: &str, customer_id: Ulid) -> Result<u64> {
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
        Ok(CheckoutSessionRecord {
            id: row.try_get("id")?,
            app_id: Ulid::from_string(&app_id)?,
            customer_id: Ulid::from_string(&customer_id)?,
            stripe_customer_id: row.try_get("stripe_customer_id")?,
            setup_intent_id: row.try_get("setup_intent_id")?,
            status: row.try_get("status")?,
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
