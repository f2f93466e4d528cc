//! A customer's Stripe data per Stripe app.

use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{OnUnique, Store, Unique, get_json, get_ts, to_json};
use crate::error::{Error, Result};
use crate::ids::{AppId, CustomerId, ProfileId, StripeCustomerId};
use crate::timestamp;

#[derive(Debug, Clone, PartialEq)]
pub struct CustomerStripe {
    pub app_id: AppId,
    pub customer_id: CustomerId,
    pub stripe_customer_id: StripeCustomerId,
    pub default_payment_method_id: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "app_id, customer_id, stripe_customer_id, default_payment_method_id, \
     labels, created_at, updated_at";

/// Sets the override (`$3`, NULL clears it) at `$4`; the override's first
/// moment is kept while it stays set.
const SET_PROFILE: &str = "UPDATE customers SET billing_profile_id = $3, updated_at = $4, \
     billing_profile_set_at = CASE WHEN $3 IS NULL THEN NULL \
       ELSE COALESCE(billing_profile_set_at, $4) END, \
     billing_profile_changed_at = CASE WHEN $3 IS NULL THEN NULL ELSE $4 END \
     WHERE namespace = $1 AND id = $2 AND deleted_at IS NULL";

/// A customer's billing profile override with when it was first set and
/// last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileOverride {
    pub customer_id: CustomerId,
    pub profile_id: ProfileId,
    pub created_at: time::OffsetDateTime,
    pub updated_at: time::OffsetDateTime,
}

impl Store {
    /// The customer's billing profile override, if it has one.
    pub async fn customer_profile_override(
        &self,
        namespace: &str,
        customer_id: CustomerId,
    ) -> Result<Option<ProfileOverride>> {
        let row = sqlx::query(
            "SELECT billing_profile_id, billing_profile_set_at, billing_profile_changed_at, \
             updated_at FROM customers WHERE namespace = $1 AND id = $2",
        )
        .bind(namespace)
        .bind(customer_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let parse = || -> anyhow::Result<Option<ProfileOverride>> {
            let Some(profile) = row.try_get::<Option<String>, _>("billing_profile_id")? else {
                return Ok(None);
            };
            let changed = super::get_ts(&row, "updated_at")?;
            Ok(Some(ProfileOverride {
                customer_id,
                profile_id: profile.parse()?,
                created_at: super::get_opt_ts(&row, "billing_profile_set_at")?.unwrap_or(changed),
                updated_at: super::get_opt_ts(&row, "billing_profile_changed_at")?
                    .unwrap_or(changed),
            }))
        };
        parse().map_err(Error::Internal)
    }
}

impl Store {
    pub async fn get_customer_stripe(
        &self,
        namespace: &str,
        app_id: AppId,
        customer_id: CustomerId,
    ) -> Result<Option<CustomerStripe>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM customer_stripe \
             WHERE namespace = $1 AND app_id = $2 AND customer_id = $3"
        )))
        .bind(namespace)
        .bind(app_id.to_string())
        .bind(customer_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| from_row(&r)).transpose()
    }

    /// The meterpay customer an app links to a Stripe customer (unique per app).
    pub async fn customer_by_stripe_id(
        &self,
        namespace: &str,
        app_id: AppId,
        stripe_customer_id: &StripeCustomerId,
    ) -> Result<Option<CustomerStripe>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM customer_stripe \
             WHERE namespace = $1 AND app_id = $2 AND stripe_customer_id = $3"
        )))
        .bind(namespace)
        .bind(app_id.to_string())
        .bind(stripe_customer_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| from_row(&r)).transpose()
    }

    /// The customer's Stripe data for every live app, oldest first.
    pub async fn list_customer_stripe(
        &self,
        namespace: &str,
        customer_id: CustomerId,
    ) -> Result<Vec<CustomerStripe>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM customer_stripe cs \
             WHERE cs.namespace = $1 AND cs.customer_id = $2 AND EXISTS \
             (SELECT 1 FROM apps a WHERE a.id = cs.app_id AND a.deleted_at IS NULL) \
             ORDER BY cs.created_at, cs.app_id"
        )))
        .bind(namespace)
        .bind(customer_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Sets the customer's Stripe data for an app (insert or replace).
    pub async fn upsert_customer_stripe(
        &self,
        namespace: &str,
        data: &CustomerStripe,
    ) -> Result<CustomerStripe> {
        let mut conn = self.writer.acquire().await?;
        upsert(&mut conn, namespace, data).await?;
        drop(conn);
        self.get_customer_stripe(namespace, data.app_id, data.customer_id)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("customer_stripe row vanished")))
    }

    /// Sets a customer's billing profile override and, when given, its
    /// Stripe data, in one transaction.
    pub async fn set_customer_billing(
        &self,
        namespace: &str,
        customer_id: CustomerId,
        profile_id: Option<ProfileId>,
        stripe: Option<&CustomerStripe>,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(SET_PROFILE)
            .bind(namespace)
            .bind(customer_id.to_string())
            .bind(profile_id.map(|p| p.to_string()))
            .bind(timestamp::format(timestamp::now()))
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            drop(tx);
            let customer = self
                .get_customer(namespace, customer_id)
                .await?
                .ok_or_else(|| Error::not_found("customer", customer_id))?;
            customer.ensure_live()?;
            return Err(Error::Internal(anyhow::anyhow!(
                "customer update matched no row"
            )));
        }
        if let Some(data) = stripe {
            upsert(&mut tx, namespace, data).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Maps a customer to a Stripe customer unless it is mapped already, and
    /// returns the mapping that holds (the first writer's under races).
    pub async fn ensure_customer_stripe(
        &self,
        namespace: &str,
        app_id: AppId,
        customer_id: CustomerId,
        stripe_customer_id: &StripeCustomerId,
    ) -> Result<CustomerStripe> {
        let now = timestamp::format(timestamp::now());
        let inserted = sqlx::query(
            "INSERT INTO customer_stripe (namespace, app_id, customer_id, stripe_customer_id, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (app_id, customer_id) DO NOTHING",
        )
        .bind(namespace)
        .bind(app_id.to_string())
        .bind(customer_id.to_string())
        .bind(stripe_customer_id.as_str())
        .bind(&now)
        .execute(&self.writer)
        .await;
        if let Err(err) = inserted {
            if !Unique::STRIPE_CUSTOMER.violated_by(&err) {
                return Err(err.into());
            }
            // PostgreSQL: an insert racing another one of the same mapping
            // can fail on the Stripe-customer index instead of being skipped
            // (ON CONFLICT skips conflicts on the primary key, its arbiter,
            // only). The mapping is then this customer's all the same.
            return match self
                .get_customer_stripe(namespace, app_id, customer_id)
                .await?
            {
                Some(mapping) if mapping.stripe_customer_id == *stripe_customer_id => Ok(mapping),
                _ => Err(taken(stripe_customer_id, app_id)),
            };
        }
        self.get_customer_stripe(namespace, app_id, customer_id)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("customer_stripe row vanished")))
    }

    /// Removes the customer's data for an app; false if there was none.
    pub async fn delete_customer_stripe(
        &self,
        namespace: &str,
        app_id: AppId,
        customer_id: CustomerId,
    ) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM customer_stripe WHERE namespace = $1 AND app_id = $2 AND customer_id = $3",
        )
        .bind(namespace)
        .bind(app_id.to_string())
        .bind(customer_id.to_string())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets (or clears) a customer's billing profile override.
    pub async fn set_customer_billing_profile(
        &self,
        namespace: &str,
        customer_id: CustomerId,
        profile_id: Option<ProfileId>,
    ) -> Result<()> {
        let done = sqlx::query(SET_PROFILE)
            .bind(namespace)
            .bind(customer_id.to_string())
            .bind(profile_id.map(|p| p.to_string()))
            .bind(timestamp::format(timestamp::now()))
            .execute(&self.writer)
            .await?;
        if done.rows_affected() == 0 {
            let customer = self
                .get_customer(namespace, customer_id)
                .await?
                .ok_or_else(|| Error::not_found("customer", customer_id))?;
            customer.ensure_live()?;
        }
        Ok(())
    }

    /// A customer's billing profile override.
    pub async fn customer_billing_profile(
        &self,
        namespace: &str,
        customer_id: CustomerId,
    ) -> Result<Option<ProfileId>> {
        let row = sqlx::query(
            "SELECT billing_profile_id FROM customers WHERE namespace = $1 AND id = $2",
        )
        .bind(namespace)
        .bind(customer_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let id: Option<String> = row.try_get("billing_profile_id")?;
        id.map(|id| {
            id.parse()
                .map_err(|e: ulid::DecodeError| Error::Internal(e.into()))
        })
        .transpose()
    }
}

async fn upsert(
    conn: &mut sqlx::AnyConnection,
    namespace: &str,
    data: &CustomerStripe,
) -> Result<()> {
    let now = timestamp::format(timestamp::now());
    let done = sqlx::query(
        "INSERT INTO customer_stripe (namespace, app_id, customer_id, stripe_customer_id, \
         default_payment_method_id, labels, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
         ON CONFLICT (app_id, customer_id) DO UPDATE SET \
         stripe_customer_id = excluded.stripe_customer_id, \
         default_payment_method_id = excluded.default_payment_method_id, \
         labels = excluded.labels, updated_at = excluded.updated_at",
    )
    .bind(namespace)
    .bind(data.app_id.to_string())
    .bind(data.customer_id.to_string())
    .bind(data.stripe_customer_id.as_str())
    .bind(data.default_payment_method_id.clone())
    .bind(data.labels.as_ref().map(to_json))
    .bind(&now)
    .execute(&mut *conn)
    .await;
    done.on_unique(Unique::STRIPE_CUSTOMER, || {
        taken(&data.stripe_customer_id, data.app_id)
    })?;
    Ok(())
}

/// The 409 when a Stripe customer is already linked to another customer.
fn taken(stripe_customer_id: &StripeCustomerId, app_id: AppId) -> Error {
    Error::conflict(
        "stripe_customer_id",
        format!(
            "Stripe customer [{stripe_customer_id}] already belongs to another customer of app [{app_id}]"
        ),
    )
}

fn from_row(row: &AnyRow) -> Result<CustomerStripe> {
    let parse = || -> anyhow::Result<CustomerStripe> {
        let app_id: String = row.try_get("app_id")?;
        let customer_id: String = row.try_get("customer_id")?;
        Ok(CustomerStripe {
            app_id: app_id.parse()?,
            customer_id: customer_id.parse()?,
            stripe_customer_id: row.try_get::<String, _>("stripe_customer_id")?.into(),
            default_payment_method_id: row.try_get("default_payment_method_id")?,
            labels: get_json(row, "labels")?,
            created_at: get_ts(row, "created_at")?,
            updated_at: get_ts(row, "updated_at")?,
        })
    };
    parse().map_err(Error::Internal)
}
