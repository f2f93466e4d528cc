//! Installed apps. Secrets arrive here already encrypted; this module never
//! sees a plaintext key.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::Page;
use super::{Columns, OnUnique, Store, Unique, get_json, get_opt_ts, get_ts, to_json};
use crate::billing::app::{App, AppStatus};
use crate::billing::customer::Customer;
use crate::error::{Error, Result};
use crate::ids::{AppId, CustomerId, ProfileId, StripeCustomerId};
use crate::timestamp;

/// A Stripe app to insert, secrets encrypted.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub id: AppId,
    pub name: String,
    pub description: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub stripe_account_id: String,
    pub livemode: bool,
    pub masked_api_key: String,
    pub api_key_encrypted: String,
    pub webhook_endpoint_id: Option<String>,
    pub webhook_secret_encrypted: Option<String>,
    /// The Stripe API version the endpoint sends events in.
    pub webhook_api_version: Option<String>,
    /// The events the endpoint is subscribed to, comma-separated.
    pub webhook_events: Option<String>,
}

/// The encrypted secrets of an app.
#[derive(Debug, Clone)]
pub struct AppSecrets {
    pub api_key_encrypted: String,
    pub webhook_secret_encrypted: Option<String>,
    /// The signing secret of an endpoint being replaced, until it is deleted.
    pub previous_webhook_secret_encrypted: Option<String>,
}

/// What a checkout needs of the Stripe app, read in one statement: the
/// app, its encrypted key and the customer's Stripe customer in it.
#[derive(Debug, Clone)]
pub struct CheckoutApp {
    pub app: App,
    /// Empty once the app is uninstalled.
    pub api_key_encrypted: String,
    /// The customer's Stripe customer in this app, when already known.
    pub stripe_customer_id: Option<StripeCustomerId>,
}

/// A webhook endpoint replacing an app's current one.
#[derive(Debug, Clone, Copy)]
pub struct NewWebhook<'a> {
    pub endpoint_id: &'a str,
    pub secret_encrypted: &'a str,
    pub api_version: &'a str,
    /// Comma-separated.
    pub events: &'a str,
}

/// A live app whose webhook endpoint is not of the pinned API version, or
/// whose replaced endpoint is still to be deleted.
#[derive(Debug, Clone)]
pub struct UnpinnedWebhook {
    pub namespace: String,
    pub id: AppId,
    pub endpoint_id: String,
    pub api_version: Option<String>,
    /// The subscribed events, comma-separated, if known.
    pub events: Option<String>,
    pub previous_endpoint_id: Option<String>,
}

const COLUMNS: &str = "id, namespace, name, description, labels, status, stripe_account_id, \
     livemode, masked_api_key, webhook_endpoint_id, created_at, updated_at, deleted_at";

impl Store {
    /// Inserts a Stripe app. A live app of the same Stripe account in the
    /// namespace makes this a 409 (decided by a unique index, so two racing
    /// installs cannot both succeed).
    pub async fn insert_app(&self, namespace: &str, app: NewApp) -> Result<App> {
        let now = timestamp::now();
        let inserted = sqlx::query(
            "INSERT INTO apps (id, namespace, type, name, description, labels, status, \
             stripe_account_id, livemode, masked_api_key, api_key_encrypted, \
             webhook_endpoint_id, webhook_secret_encrypted, webhook_api_version, webhook_events, \
             created_at, updated_at) \
             VALUES ($1, $2, 'stripe', $3, $4, $5, 'ready', $6, $7, $8, $9, $10, $11, $12, $13, \
             $14, $14)",
        )
        .bind(app.id.to_string())
        .bind(namespace)
        .bind(&app.name)
        .bind(app.description.clone())
        .bind(app.labels.as_ref().map(to_json))
        .bind(&app.stripe_account_id)
        .bind(i64::from(app.livemode))
        .bind(&app.masked_api_key)
        .bind(&app.api_key_encrypted)
        .bind(app.webhook_endpoint_id.clone())
        .bind(app.webhook_secret_encrypted.clone())
        .bind(app.webhook_api_version.clone())
        .bind(app.webhook_events.clone())
        .bind(timestamp::format(now))
        .execute(&self.writer)
        .await;
        inserted.on_unique(Unique::APP_STRIPE_ACCOUNT, || {
            duplicate_account(&app.stripe_account_id, app.livemode)
        })?;
        Ok(App {
            id: app.id,
            namespace: namespace.to_owned(),
            name: app.name,
            description: app.description,
            labels: app.labels,
            status: AppStatus::Ready,
            stripe_account_id: app.stripe_account_id,
            livemode: app.livemode,
            masked_api_key: app.masked_api_key,
            webhook_endpoint_id: app.webhook_endpoint_id,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        })
    }

    /// An app by id, uninstalled or not.
    pub async fn get_app(&self, namespace: &str, id: AppId) -> Result<Option<App>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM apps WHERE namespace = $1 AND id = $2"
        )))
        .bind(namespace)
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| app_from_row(&r)).transpose()
    }

    /// The app (uninstalled or not), or the 404 that names it.
    pub async fn require_app(&self, namespace: &str, id: AppId) -> Result<App> {
        self.get_app(namespace, id)
            .await?
            .ok_or_else(|| Error::not_found("app", id))
    }

    /// A live app by id, or 404 (unknown) / 410 (uninstalled).
    pub async fn live_app(&self, namespace: &str, id: AppId) -> Result<App> {
        let app = self.require_app(namespace, id).await?;
        app.ensure_live()?;
        Ok(app)
    }

    /// The live app connected to `stripe_account_id`'s test or live mode in the namespace.
    pub async fn app_for_account(
        &self,
        namespace: &str,
        stripe_account_id: &str,
        livemode: bool,
    ) -> Result<Option<App>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM apps WHERE namespace = $1 AND stripe_account_id = $2 \
             AND livemode = $3 AND deleted_at IS NULL"
        )))
        .bind(namespace)
        .bind(stripe_account_id)
        .bind(i64::from(livemode))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| app_from_row(&r)).transpose()
    }

    /// Live apps, oldest first.
    pub async fn list_apps(&self, namespace: &str, page: Page) -> Result<(Vec<App>, u64)> {
        let total: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM apps WHERE namespace = $1 AND deleted_at IS NULL",
        )
        .bind(namespace)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM apps WHERE namespace = $1 AND deleted_at IS NULL \
             ORDER BY created_at, id LIMIT $2 OFFSET $3"
        )))
        .bind(namespace)
        .bind(clamp(page.size))
        .bind(clamp(page.offset()))
        .fetch_all(&self.pool)
        .await?;
        let apps = rows.iter().map(app_from_row).collect::<Result<Vec<_>>>()?;
        Ok((apps, u64::try_from(total).unwrap_or(0)))
    }

    /// Renames / relabels a live app.
    pub async fn update_app(
        &self,
        namespace: &str,
        id: AppId,
        name: &str,
        description: Option<&str>,
        labels: Option<&BTreeMap<String, String>>,
    ) -> Result<App> {
        let done = sqlx::query(
            "UPDATE apps SET name = $3, description = $4, labels = $5, updated_at = $6 \
             WHERE namespace = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(namespace)
        .bind(id.to_string())
        .bind(name)
        .bind(description.map(str::to_owned))
        .bind(labels.map(to_json))
        .bind(timestamp::format(timestamp::now()))
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            self.live_app(namespace, id).await?;
        }
        self.live_app(namespace, id).await
    }

    /// Stores a rotated (already verified) API key and marks the app ready.
    pub async fn set_app_api_key(
        &self,
        namespace: &str,
        id: AppId,
        masked: &str,
        encrypted: &str,
    ) -> Result<App> {
        let done = sqlx::query(
            "UPDATE apps SET masked_api_key = $3, api_key_encrypted = $4, status = 'ready', \
             updated_at = $5 WHERE namespace = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(namespace)
        .bind(id.to_string())
        .bind(masked)
        .bind(encrypted)
        .bind(timestamp::format(timestamp::now()))
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            self.live_app(namespace, id).await?;
        }
        self.live_app(namespace, id).await
    }

    /// Records a (re-)registered webhook endpoint, its encrypted secret and
    /// the API version it sends events in.
    pub async fn set_app_webhook(
        &self,
        namespace: &str,
        id: AppId,
        endpoint_id: &str,
        secret_encrypted: &str,
        api_version: &str,
        events: &str,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE apps SET webhook_endpoint_id = $3, webhook_secret_encrypted = $4, \
             webhook_api_version = $5, webhook_events = $6, updated_at = $7 \
             WHERE namespace = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(namespace)
        .bind(id.to_string())
        .bind(endpoint_id)
        .bind(secret_encrypted)
        .bind(api_version)
        .bind(events)
        .bind(timestamp::format(timestamp::now()))
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            self.live_app(namespace, id).await?;
        }
        Ok(())
    }

    /// Live, working apps whose endpoint sends events in another API version
    /// than `api_version` (or an unknown one) or is subscribed to other events
    /// than `events`, or whose replaced endpoint is still to be deleted.
    pub async fn unpinned_webhooks(
        &self,
        api_version: &str,
        events: &str,
    ) -> Result<Vec<UnpinnedWebhook>> {
        let rows = sqlx::query(
            "SELECT namespace, id, webhook_endpoint_id, webhook_api_version, webhook_events, \
             previous_webhook_endpoint_id FROM apps \
             WHERE deleted_at IS NULL AND status = 'ready' AND webhook_endpoint_id IS NOT NULL \
             AND (webhook_api_version IS NULL OR webhook_api_version <> $1 \
                  OR webhook_events IS NULL OR webhook_events <> $2 \
                  OR previous_webhook_endpoint_id IS NOT NULL) \
             ORDER BY id",
        )
        .bind(api_version)
        .bind(events)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| -> Result<UnpinnedWebhook> {
                let parse = || -> anyhow::Result<UnpinnedWebhook> {
                    let id: String = row.try_get("id")?;
                    Ok(UnpinnedWebhook {
                        namespace: row.try_get("namespace")?,
                        id: id.parse()?,
                        endpoint_id: row.try_get("webhook_endpoint_id")?,
                        api_version: row.try_get("webhook_api_version")?,
                        events: row.try_get("webhook_events")?,
                        previous_endpoint_id: row.try_get("previous_webhook_endpoint_id")?,
                    })
                };
                parse().map_err(Error::Internal)
            })
            .collect()
    }

    /// Makes `new` the app's endpoint when `old_endpoint` still is,
    /// keeping the old endpoint and secret as the previous ones (still
    /// accepted) until [`Store::forget_previous_webhook`]. `false` when the
    /// app's endpoint is no longer `old_endpoint` (another process replaced it).
    pub async fn replace_app_webhook(
        &self,
        namespace: &str,
        id: AppId,
        old_endpoint: &str,
        new: &NewWebhook<'_>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE apps SET previous_webhook_endpoint_id = webhook_endpoint_id, \
             previous_webhook_secret_encrypted = webhook_secret_encrypted, \
             webhook_endpoint_id = $4, webhook_secret_encrypted = $5, \
             webhook_api_version = $6, webhook_events = $8, updated_at = $7 \
             WHERE namespace = $1 AND id = $2 AND deleted_at IS NULL \
             AND webhook_endpoint_id = $3",
        )
        .bind(namespace)
        .bind(id.to_string())
        .bind(old_endpoint)
        .bind(new.endpoint_id)
        .bind(new.secret_encrypted)
        .bind(new.api_version)
        .bind(timestamp::format(timestamp::now()))
        .bind(new.events)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records the events endpoint `endpoint` (still the app's) now receives.
    pub async fn set_app_webhook_events(
        &self,
        namespace: &str,
        id: AppId,
        endpoint: &str,
        events: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE apps SET webhook_events = $4 \
             WHERE namespace = $1 AND id = $2 AND webhook_endpoint_id = $3",
        )
        .bind(namespace)
        .bind(id.to_string())
        .bind(endpoint)
        .bind(events)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Forgets a replaced endpoint (deleted in Stripe) and its secret.
    pub async fn forget_previous_webhook(
        &self,
        namespace: &str,
        id: AppId,
        previous_endpoint: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE apps SET previous_webhook_endpoint_id = NULL, \
             previous_webhook_secret_encrypted = NULL \
             WHERE namespace = $1 AND id = $2 AND previous_webhook_endpoint_id = $3",
        )
        .bind(namespace)
        .bind(id.to_string())
        .bind(previous_endpoint)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Marks an app whose key Stripe rejected (until the key is rotated).
    pub async fn set_app_status(
        &self,
        namespace: &str,
        id: AppId,
        status: AppStatus,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE apps SET status = $3, updated_at = $4 \
             WHERE namespace = $1 AND id = $2 AND deleted_at IS NULL AND status <> $3",
        )
        .bind(namespace)
        .bind(id.to_string())
        .bind(status.as_str())
        .bind(timestamp::format(timestamp::now()))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Soft-deletes (uninstalls) a live app.
    pub async fn delete_app(&self, namespace: &str, id: AppId) -> Result<()> {
        let now = timestamp::format(timestamp::now());
        let mut tx = self.writer.begin().await?;
        // Uninstalling forgets the secrets (not only hides the row) and the
        // customers' links to Stripe customers of this app.
        let done = sqlx::query(
            "UPDATE apps SET deleted_at = $3, updated_at = $3, api_key_encrypted = '', \
             webhook_secret_encrypted = NULL, previous_webhook_secret_encrypted = NULL \
             WHERE namespace = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(namespace)
        .bind(id.to_string())
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            drop(tx);
            self.live_app(namespace, id).await?;
            return Ok(());
        }
        sqlx::query("DELETE FROM customer_stripe WHERE namespace = $1 AND app_id = $2")
            .bind(namespace)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The live Stripe app customer `customer_id` pays through: the payment
    /// app of the billing profile pinned to the customer while that profile
    /// is live, else the namespace default's; `None` when there is no such
    /// profile or its app was uninstalled. One query (the checkout path).
    pub async fn payment_app_for_customer(
        &self,
        namespace: &str,
        customer_id: CustomerId,
    ) -> Result<Option<App>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            payment_app_sql(
                "(SELECT c.billing_profile_id FROM customers c \
                 WHERE c.namespace = $1 AND c.id = $2)",
                Select::App,
            )
        });
        self.payment_app(&SQL, namespace, Some(customer_id.to_string()))
            .await
    }

    /// The same for a customer pinned to `pinned` (`None`: not pinned), as
    /// it would be after a change not yet stored.
    pub async fn payment_app_for_profile(
        &self,
        namespace: &str,
        pinned: Option<ProfileId>,
    ) -> Result<Option<App>> {
        static SQL: LazyLock<String> = LazyLock::new(|| payment_app_sql("$2", Select::App));
        self.payment_app(&SQL, namespace, pinned.map(|id| id.to_string()))
            .await
    }

    async fn payment_app(
        &self,
        sql: &'static str,
        namespace: &str,
        pinned: Option<String>,
    ) -> Result<Option<App>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(namespace)
            .bind(pinned)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| app_from_row(&r)).transpose()
    }

    /// The checkout's one read: customer `customer_id`'s payment app (as
    /// [`Store::payment_app_for_customer`] resolves it), or app `explicit`
    /// (uninstalled or not, as [`Store::get_app`]), with the app's encrypted
    /// key and the customer's Stripe customer in that app.
    pub async fn checkout_app(
        &self,
        namespace: &str,
        customer_id: CustomerId,
        explicit: Option<AppId>,
    ) -> Result<Option<CheckoutApp>> {
        static BY_CUSTOMER: LazyLock<String> = LazyLock::new(|| {
            payment_app_sql(
                "(SELECT c.billing_profile_id FROM customers c \
                 WHERE c.namespace = $1 AND c.id = $2)",
                Select::Checkout,
            )
        });
        static EXPLICIT: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} WHERE a.namespace = $1 AND a.id = $3",
                Select::Checkout.from("apps a"),
            )
        });
        let customer_id = customer_id.to_string();
        let decode = |row: &dyn Columns| checkout_app_from_columns(row, false);
        match explicit {
            Some(id) => {
                self.read_row(
                    EXPLICIT.as_str(),
                    &[namespace, &customer_id, &id.to_string()],
                    decode,
                )
                .await
            }
            None => {
                self.read_row(BY_CUSTOMER.as_str(), &[namespace, &customer_id], decode)
                    .await
            }
        }
    }

    /// Customer `customer_id` (deleted or not) and, as
    /// [`Store::checkout_app`] finds it without an explicit app, what its
    /// checkout needs of its payment app: the v3 checkout's one read.
    pub async fn customer_checkout(
        &self,
        namespace: &str,
        customer_id: CustomerId,
    ) -> Result<Option<(Customer, Option<CheckoutApp>)>> {
        // Joins only (a derived table would make SQLite materialise it, an
        // ephemeral table per call): the profile by the rule, its app unless
        // uninstalled, the customer's Stripe customer in that app.
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {}, {} WHERE c.namespace = $1 AND c.id = $2",
                super::customers::COLUMNS,
                Select::CheckoutPrefixed.from(&format!(
                    "customers c LEFT JOIN billing_profiles p ON p.namespace = c.namespace \
                     AND p.id = {} \
                     LEFT JOIN apps a ON a.id = p.payment_app_id AND a.deleted_at IS NULL",
                    payment_profile_sql("c.namespace", "c.billing_profile_id"),
                )),
            )
        });
        self.read_row(
            SQL.as_str(),
            &[namespace, &customer_id.to_string()],
            |row| {
                let customer = super::customers::customer_from_row(row)?;
                if row.text("app_id").map_err(Error::Internal)?.is_none() {
                    return Ok((customer, None));
                }
                Ok((customer, Some(checkout_app_from_columns(row, true)?)))
            },
        )
        .await
    }

    /// The encrypted secrets of an app (uninstalled apps included).
    pub async fn app_secrets(&self, namespace: &str, id: AppId) -> Result<Option<AppSecrets>> {
        let row = sqlx::query(
            "SELECT api_key_encrypted, webhook_secret_encrypted, \
             previous_webhook_secret_encrypted FROM apps \
             WHERE namespace = $1 AND id = $2",
        )
        .bind(namespace)
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> Result<AppSecrets> {
            Ok(AppSecrets {
                api_key_encrypted: r.try_get("api_key_encrypted")?,
                webhook_secret_encrypted: r.try_get("webhook_secret_encrypted")?,
                previous_webhook_secret_encrypted: r
                    .try_get("previous_webhook_secret_encrypted")?,
            })
        })
        .transpose()
    }
}

pub(crate) fn duplicate_account(account: &str, livemode: bool) -> Error {
    let mode = if livemode { "live" } else { "test" };
    Error::conflict(
        "api_key",
        format!(
            "a Stripe app for Stripe account [{account}] ({mode} mode) is already installed in \
             this namespace; update that app (its key, name) instead of installing another"
        ),
    )
}

/// The app's columns, qualified by `a.`.
fn app_columns() -> String {
    let columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("a.{c}")).collect();
    columns.join(", ")
}

/// What a query over one app `a` selects: the app's columns, or the
/// checkout's (adding the app's encrypted key and customer `$2`'s Stripe
/// customer in the app, joined as `cs`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Select {
    App,
    /// Named as [`App`](Select::App) plus `api_key_encrypted` and `stripe_customer_id`.
    Checkout,
    /// The same, every column named `app_<column>`.
    CheckoutPrefixed,
}

impl Select {
    /// `columns FROM <from> [join]`.
    fn from(self, from: &str) -> String {
        const JOIN: &str = "LEFT JOIN customer_stripe cs ON cs.namespace = $1 \
                            AND cs.app_id = a.id AND cs.customer_id = $2";
        match self {
            Select::App => format!("{} FROM {from}", app_columns()),
            Select::Checkout => format!(
                "{}, a.api_key_encrypted, cs.stripe_customer_id FROM {from} {JOIN}",
                app_columns()
            ),
            Select::CheckoutPrefixed => {
                format!("{} FROM {from} {JOIN}", prefixed_checkout_columns())
            }
        }
    }
}

/// The payment app rule, in one query: the profile `pinned_id` names (an SQL
/// expression over `$1` namespace and `$2`) while it is live, else the
/// namespace's default profile; that profile's payment app unless uninstalled.
fn payment_app_sql(pinned_id: &str, select: Select) -> String {
    format!(
        "SELECT {} WHERE p.namespace = $1 AND a.deleted_at IS NULL AND p.id = {}",
        select.from("billing_profiles p JOIN apps a ON a.id = p.payment_app_id"),
        payment_profile_sql("$1", pinned_id),
    )
}

/// The billing profile whose payment app a customer uses: the profile
/// `pinned_id` names while it is live, else namespace `namespace`'s default
/// (SQL expressions both).
fn payment_profile_sql(namespace: &str, pinned_id: &str) -> String {
    format!(
        "COALESCE( \
           (SELECT pinned.id FROM billing_profiles pinned \
            WHERE pinned.namespace = {namespace} AND pinned.id = {pinned_id} \
            AND pinned.deleted_at IS NULL), \
           (SELECT d.id FROM billing_profiles d \
            WHERE d.namespace = {namespace} AND d.is_default = 1 AND d.deleted_at IS NULL))"
    )
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn app_from_row(row: &AnyRow) -> Result<App> {
    app_from_columns(row, false)
}

/// An app from columns named `{prefix}{column}`.
/// `prefixed`: the columns are named `app_<column>` (see
/// [`prefixed_checkout_columns`]). The names are literals: nothing is built
/// per column and row.
fn app_from_columns(row: &dyn Columns, prefixed: bool) -> Result<App> {
    macro_rules! name {
        ($column:literal) => {
            if prefixed {
                concat!("app_", $column)
            } else {
                $column
            }
        };
    }
    let parse = || -> anyhow::Result<App> {
        let id = row.req_text(name!("id"))?;
        let status = row.req_text(name!("status"))?;
        let livemode = row.req_int(name!("livemode"))?;
        Ok(App {
            id: id.parse()?,
            namespace: row.req_text(name!("namespace"))?,
            name: row.req_text(name!("name"))?,
            description: row.text(name!("description"))?,
            labels: get_json(row, name!("labels"))?,
            status: AppStatus::parse(&status)
                .ok_or_else(|| anyhow::anyhow!("unknown app status {status}"))?,
            stripe_account_id: row.req_text(name!("stripe_account_id"))?,
            livemode: livemode != 0,
            masked_api_key: row.req_text(name!("masked_api_key"))?,
            webhook_endpoint_id: row.text(name!("webhook_endpoint_id"))?,
            created_at: get_ts(row, name!("created_at"))?,
            updated_at: get_ts(row, name!("updated_at"))?,
            deleted_at: get_opt_ts(row, name!("deleted_at"))?,
        })
    };
    parse().map_err(Error::Internal)
}

/// What a checkout needs of an app, from the columns [`Select::Checkout`]
/// (or, `prefixed`, [`Select::CheckoutPrefixed`]) names.
fn checkout_app_from_columns(row: &dyn Columns, prefixed: bool) -> Result<CheckoutApp> {
    let (key_column, stripe_customer_column) = if prefixed {
        ("app_api_key_encrypted", "app_stripe_customer_id")
    } else {
        ("api_key_encrypted", "stripe_customer_id")
    };
    let parse = || -> anyhow::Result<(String, Option<String>)> {
        Ok((row.req_text(key_column)?, row.text(stripe_customer_column)?))
    };
    let (api_key_encrypted, stripe_customer_id) = parse().map_err(Error::Internal)?;
    Ok(CheckoutApp {
        app: app_from_columns(row, prefixed)?,
        api_key_encrypted,
        stripe_customer_id: stripe_customer_id.map(StripeCustomerId::from),
    })
}

/// The checkout's columns of app `a` (and customer_stripe `cs`), each named
/// `app_<column>`: beside a customer's columns, names must not collide.
fn prefixed_checkout_columns() -> String {
    let mut columns: Vec<String> = COLUMNS
        .split(", ")
        .map(|c| format!("a.{c} AS app_{c}"))
        .collect();
    columns.push("a.api_key_encrypted AS app_api_key_encrypted".to_owned());
    columns.push("cs.stripe_customer_id AS app_stripe_customer_id".to_owned());
    columns.join(", ")
}
