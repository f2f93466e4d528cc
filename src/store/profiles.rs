//! Billing profiles.
//!
//! Every transaction that writes profiles first upserts its namespace's row
//! in `billing_profile_locks`. That write is the transaction's first (SQLite
//! takes its write lock up front) and, on PostgreSQL, a row lock that
//! serialises the namespace's profile writes: switching the default unsets
//! the old default and sets the new one after every earlier switch has
//! committed, so the one-default index never trips and "is there a default
//! yet?" is answered race-free.
//!
//! Every other condition (live, not the default, apps installed) sits in the
//! WHERE clause of the write it guards, and a write that matched nothing rolls
//! the transaction back before the reason is looked up.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::Page;
use super::{Store, Unique, get_json, get_opt_ts, get_ts, to_json};
use crate::billing::profile::{
    AppRefs, BillingProfile, Party, ValidProfile, Workflow, app_ref_error,
};
use crate::error::{Error, FieldError, Result, Violations};
use crate::ids::{AppId, ProfileId};
use crate::timestamp;

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// What a profile list can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileOrder {
    CreatedAt,
    UpdatedAt,
    Default,
    Name,
}

/// A page of profiles: `order` is (field, descending).
#[derive(Debug, Clone, Copy)]
pub struct ProfileQuery {
    pub page: Page,
    pub include_deleted: bool,
    pub order: Option<(ProfileOrder, bool)>,
}

const COLUMNS: &str = "id, namespace, name, description, labels, supplier, workflow, tax_app_id, \
     invoicing_app_id, payment_app_id, is_default, created_at, updated_at, deleted_at";

impl Store {
    /// Creates a profile. With `is_default` it replaces the namespace's
    /// default in the same transaction. Every app must be live in the
    /// namespace (checked again here, under the apps' row locks, so an app
    /// uninstalled since the caller's check is refused too).
    pub async fn insert_profile(
        &self,
        namespace: &str,
        input: ValidProfile,
        apps: AppRefs,
    ) -> Result<BillingProfile> {
        let now = timestamp::now();
        let profile = BillingProfile {
            id: ProfileId::new(),
            namespace: namespace.to_owned(),
            name: input.name,
            description: input.description,
            labels: input.labels,
            supplier: input.supplier,
            workflow: input.workflow,
            tax_app_id: apps.tax,
            invoicing_app_id: apps.invoicing,
            payment_app_id: apps.payment,
            is_default: input.is_default,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        let mut tx = self.begin_profiles(namespace).await?;
        let unusable = lock_live_apps(&mut tx, namespace, apps).await?;
        if !unusable.is_empty() {
            drop(tx);
            return Err(self.app_ref_errors(namespace, apps, &unusable).await);
        }
        if profile.is_default {
            demote_default(&mut tx, namespace, None, now).await?;
        }
        insert(&mut tx, &profile).await.map_err(default_race)?;
        tx.commit().await?;
        Ok(profile)
    }

    /// Replaces the settable fields of a live profile (the apps never
    /// change). `is_default: true` takes the default over from the current
    /// one; `false` on the default profile is refused.
    pub async fn update_profile(
        &self,
        namespace: &str,
        id: ProfileId,
        input: ValidProfile,
    ) -> Result<BillingProfile> {
        let now = timestamp::now();
        let mut tx = self.begin_profiles(namespace).await?;
        if input.is_default {
            demote_default(&mut tx, namespace, Some(id), now).await?;
        }
        // The default stays the default: `false` only updates a non-default row.
        let sql = if input.is_default {
            "UPDATE billing_profiles SET name = $3, description = $4, labels = $5, supplier = $6, \
             workflow = $7, is_default = $8, updated_at = $9 \
             WHERE namespace = $1 AND id = $2 AND deleted_at IS NULL"
        } else {
            "UPDATE billing_profiles SET name = $3, description = $4, labels = $5, supplier = $6, \
             workflow = $7, is_default = $8, updated_at = $9 \
             WHERE namespace = $1 AND id = $2 AND deleted_at IS NULL AND is_default = 0"
        };
        let done = sqlx::query(sql)
            .bind(namespace)
            .bind(id.to_string())
            .bind(&input.name)
            .bind(input.description.clone())
            .bind(input.labels.as_ref().map(to_json))
            .bind(to_json(&input.supplier))
            .bind(to_json(&input.workflow))
            .bind(i64::from(input.is_default))
            .bind(timestamp::format(now))
            .execute(&mut *tx)
            .await
            .map_err(default_race)?;
        if done.rows_affected() == 0 {
            drop(tx);
            let existing = self.require_profile(namespace, id).await?;
            existing.ensure_live()?;
            if existing.is_default && !input.is_default {
                return Err(Error::Invalid(vec![BillingProfile::cannot_unset_default(
                    id,
                )]));
            }
            return Err(Error::Internal(anyhow::anyhow!(
                "billing profile {id} matched no row on update"
            )));
        }
        tx.commit().await?;
        self.require_profile(namespace, id).await
    }

    /// Soft delete. The default profile and profiles a live customer is
    /// pinned to are refused (409).
    pub async fn delete_profile(&self, namespace: &str, id: ProfileId) -> Result<()> {
        let now = timestamp::format(timestamp::now());
        let mut tx = self.begin_profiles(namespace).await?;
        // Deleting first takes the profile's row lock, so a customer pinned
        // concurrently (by a writer that locks the live profile row before
        // pinning it) is seen by the check below.
        let done = sqlx::query(
            "UPDATE billing_profiles SET deleted_at = $3, updated_at = $3 \
             WHERE namespace = $1 AND id = $2 AND deleted_at IS NULL AND is_default = 0",
        )
        .bind(namespace)
        .bind(id.to_string())
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            drop(tx);
            let existing = self.require_profile(namespace, id).await?;
            existing.ensure_live()?;
            if existing.is_default {
                return Err(BillingProfile::cannot_delete_default(id));
            }
            return Err(Error::Internal(anyhow::anyhow!(
                "billing profile {id} matched no row on delete"
            )));
        }
        let pinned: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM customers \
             WHERE namespace = $1 AND billing_profile_id = $2 AND deleted_at IS NULL",
        )
        .bind(namespace)
        .bind(id.to_string())
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if pinned > 0 {
            let rows = sqlx::query(
                "SELECT id FROM customers \
                 WHERE namespace = $1 AND billing_profile_id = $2 AND deleted_at IS NULL \
                 ORDER BY created_at, id LIMIT 5",
            )
            .bind(namespace)
            .bind(id.to_string())
            .fetch_all(&mut *tx)
            .await?;
            drop(tx);
            let ids = rows
                .iter()
                .map(|r| r.try_get::<String, _>("id").map(|c| format!("[{c}]")))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let more = if pinned > 5 {
                format!(" and {} more", pinned - 5)
            } else {
                String::new()
            };
            let whom = if pinned == 1 { "customer" } else { "customers" };
            return Err(Error::Conflict {
                field: None,
                detail: format!(
                    "billing profile [{id}] is pinned by {whom} {}{more}; \
                     move them to another billing profile before deleting it",
                    ids.join(", ")
                ),
            });
        }
        tx.commit().await?;
        Ok(())
    }

    /// A profile by id, deleted or not.
    /// The billing profile (deleted or not), or the 404 that names it.
    pub async fn require_profile(&self, namespace: &str, id: ProfileId) -> Result<BillingProfile> {
        self.get_profile(namespace, id)
            .await?
            .ok_or_else(|| Error::not_found("billing profile", id))
    }

    pub async fn get_profile(
        &self,
        namespace: &str,
        id: ProfileId,
    ) -> Result<Option<BillingProfile>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM billing_profiles WHERE namespace = $1 AND id = $2"
        )))
        .bind(namespace)
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| profile_from_row(&r)).transpose()
    }

    /// The namespace's live default profile.
    pub async fn default_profile(&self, namespace: &str) -> Result<Option<BillingProfile>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM billing_profiles \
             WHERE namespace = $1 AND is_default = 1 AND deleted_at IS NULL"
        )))
        .bind(namespace)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| profile_from_row(&r)).transpose()
    }

    /// Live profiles, the default first, then oldest first.
    pub async fn list_profiles(
        &self,
        namespace: &str,
        page: Page,
    ) -> Result<(Vec<BillingProfile>, u64)> {
        let total: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM billing_profiles WHERE namespace = $1 AND deleted_at IS NULL",
        )
        .bind(namespace)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM billing_profiles WHERE namespace = $1 AND deleted_at IS NULL \
             ORDER BY is_default DESC, created_at, id LIMIT $2 OFFSET $3"
        )))
        .bind(namespace)
        .bind(clamp(page.size))
        .bind(clamp(page.offset()))
        .fetch_all(&self.pool)
        .await?;
        let profiles = rows
            .iter()
            .map(profile_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok((profiles, u64::try_from(total).unwrap_or(0)))
    }

    /// Profiles (deleted ones too with `include_deleted`) in the order asked
    /// for (`None`: the default first, then oldest first), the id breaking ties.
    pub async fn query_profiles(
        &self,
        namespace: &str,
        q: &ProfileQuery,
    ) -> Result<(Vec<BillingProfile>, u64)> {
        let live = if q.include_deleted {
            ""
        } else {
            " AND deleted_at IS NULL"
        };
        let total: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM billing_profiles WHERE namespace = $1{live}"
        )))
        .bind(namespace)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let order = match q.order {
            None => "is_default DESC, created_at, id".to_owned(),
            Some((field, descending)) => {
                let dir = if descending { "DESC" } else { "ASC" };
                let column = match (field, self.backend) {
                    (ProfileOrder::CreatedAt, _) => "created_at",
                    (ProfileOrder::UpdatedAt, _) => "updated_at",
                    (ProfileOrder::Default, _) => "is_default",
                    // Byte order on both backends, whatever the database collation.
                    (ProfileOrder::Name, super::Backend::Postgres) => "name COLLATE \"C\"",
                    (ProfileOrder::Name, super::Backend::Sqlite) => "name",
                };
                format!("{column} {dir}, id {dir}")
            }
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM billing_profiles WHERE namespace = $1{live} \
             ORDER BY {order} LIMIT $2 OFFSET $3"
        )))
        .bind(namespace)
        .bind(clamp(q.page.size))
        .bind(clamp(q.page.offset()))
        .fetch_all(&self.pool)
        .await?;
        let profiles = rows
            .iter()
            .map(profile_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok((profiles, u64::try_from(total).unwrap_or(0)))
    }

    /// (id, name) of the live profiles that use `app_id` in any role, oldest first.
    pub async fn profiles_using_app(
        &self,
        namespace: &str,
        app_id: AppId,
    ) -> Result<Vec<(ProfileId, String)>> {
        let rows = sqlx::query(
            "SELECT id, name FROM billing_profiles \
             WHERE namespace = $1 AND deleted_at IS NULL \
             AND (tax_app_id = $2 OR invoicing_app_id = $2 OR payment_app_id = $2) \
             ORDER BY created_at, id",
        )
        .bind(namespace)
        .bind(app_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| -> Result<(ProfileId, String)> {
                let id: String = r.try_get("id")?;
                let id = id
                    .parse::<ProfileId>()
                    .map_err(|e| Error::Internal(anyhow::anyhow!("bad profile id {id}: {e}")))?;
                Ok((id, r.try_get("name")?))
            })
            .collect()
    }

    /// Creates the namespace's default profile with `app_id` as tax,
    /// invoicing and payment app, the default workflow and an empty supplier
    /// — if the namespace has no live default profile yet; `None` if it has.
    /// Race-free: concurrent calls create one profile. `name` must be 1 to
    /// 256 characters; the app must be live (404 / 410 otherwise).
    pub async fn create_default_profile_for_app(
        &self,
        namespace: &str,
        app_id: AppId,
        name: &str,
    ) -> Result<Option<BillingProfile>> {
        let mut v = Violations::default();
        v.len_between("name", name, 1, 256);
        v.into_result()?;
        let now = timestamp::now();
        let mut tx = self.begin_profiles(namespace).await?;
        let existing: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM billing_profiles \
             WHERE namespace = $1 AND is_default = 1 AND deleted_at IS NULL",
        )
        .bind(namespace)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if existing > 0 {
            return Ok(None);
        }
        let apps = AppRefs::single(app_id);
        if !lock_live_apps(&mut tx, namespace, apps).await?.is_empty() {
            drop(tx);
            self.live_app(namespace, app_id).await?;
            return Err(Error::Internal(anyhow::anyhow!(
                "app {app_id} is live but could not be locked"
            )));
        }
        let profile = BillingProfile {
            id: ProfileId::new(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            description: None,
            labels: None,
            supplier: Party::default(),
            workflow: Workflow::default(),
            tax_app_id: app_id,
            invoicing_app_id: app_id,
            payment_app_id: app_id,
            is_default: true,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        match insert(&mut tx, &profile).await {
            Ok(()) => {}
            // Only reachable if a writer bypassed the namespace lock: still no second default.
            Err(err) if Unique::DEFAULT_PROFILE.violated_by(&err) => return Ok(None),
            Err(err) => return Err(err.into()),
        }
        tx.commit().await?;
        Ok(Some(profile))
    }

    /// Begins a profile-writing transaction with the namespace's lock row.
    async fn begin_profiles(&self, namespace: &str) -> Result<Tx> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO billing_profile_locks (namespace, version) VALUES ($1, 1) \
             ON CONFLICT (namespace) DO UPDATE SET version = billing_profile_locks.version + 1",
        )
        .bind(namespace)
        .execute(&mut *tx)
        .await?;
        Ok(tx)
    }

    /// Field errors for the apps in `unusable` (unknown or uninstalled).
    async fn app_ref_errors(&self, namespace: &str, apps: AppRefs, unusable: &[AppId]) -> Error {
        let mut errors: Vec<FieldError> = Vec::new();
        for (field, app) in apps.roles() {
            if !unusable.contains(&app) {
                continue;
            }
            let uninstalled = match self.get_app(namespace, app).await {
                Ok(found) => found.is_some_and(|a| a.deleted_at.is_some()),
                Err(err) => return err,
            };
            errors.push(app_ref_error(field, app, uninstalled));
        }
        Error::Invalid(errors)
    }
}

/// Takes a row lock on each referenced app that is live in the namespace
/// (a no-op write) and returns the apps that are not.
async fn lock_live_apps(tx: &mut Tx, namespace: &str, apps: AppRefs) -> Result<Vec<AppId>> {
    let mut unusable = Vec::new();
    for app in apps.distinct() {
        let done = sqlx::query(
            "UPDATE apps SET updated_at = updated_at \
             WHERE namespace = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(namespace)
        .bind(app.to_string())
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() == 0 {
            unusable.push(app);
        }
    }
    Ok(unusable)
}

/// Unsets the namespace's live default (other than `keep`).
async fn demote_default(
    tx: &mut Tx,
    namespace: &str,
    keep: Option<ProfileId>,
    now: time::OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "UPDATE billing_profiles SET is_default = 0, updated_at = $3 \
         WHERE namespace = $1 AND is_default = 1 AND deleted_at IS NULL AND id <> $2",
    )
    .bind(namespace)
    .bind(keep.map(|id| id.to_string()).unwrap_or_default())
    .bind(timestamp::format(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert(tx: &mut Tx, p: &BillingProfile) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO billing_profiles (id, namespace, name, description, labels, supplier, \
         workflow, tax_app_id, invoicing_app_id, payment_app_id, is_default, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
    )
    .bind(p.id.to_string())
    .bind(&p.namespace)
    .bind(&p.name)
    .bind(p.description.clone())
    .bind(p.labels.as_ref().map(to_json))
    .bind(to_json(&p.supplier))
    .bind(to_json(&p.workflow))
    .bind(p.tax_app_id.to_string())
    .bind(p.invoicing_app_id.to_string())
    .bind(p.payment_app_id.to_string())
    .bind(i64::from(p.is_default))
    .bind(timestamp::format(p.created_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The one-default index can only trip if a writer bypassed the namespace
/// lock; answer with a retryable 409 rather than a 500.
fn default_race(err: sqlx::Error) -> Error {
    if Unique::DEFAULT_PROFILE.violated_by(&err) {
        Error::conflict(
            "default",
            "another request changed the default billing profile at the same time; retry",
        )
    } else {
        err.into()
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn profile_from_row(row: &AnyRow) -> Result<BillingProfile> {
    let parse = || -> anyhow::Result<BillingProfile> {
        let ulid = |column: &str| -> anyhow::Result<ulid::Ulid> {
            let text: String = row.try_get(column)?;
            Ok(ulid::Ulid::from_string(&text)?)
        };
        let is_default: i64 = row.try_get("is_default")?;
        Ok(BillingProfile {
            id: ulid("id")?.into(),
            namespace: row.try_get("namespace")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            labels: get_json(row, "labels")?,
            supplier: get_json(row, "supplier")?.unwrap_or_default(),
            workflow: get_json(row, "workflow")?
                .ok_or_else(|| anyhow::anyhow!("billing profile without workflow"))?,
            tax_app_id: ulid("tax_app_id")?.into(),
            invoicing_app_id: ulid("invoicing_app_id")?.into(),
            payment_app_id: ulid("payment_app_id")?.into(),
            is_default: is_default != 0,
            created_at: get_ts(row, "created_at")?,
            updated_at: get_ts(row, "updated_at")?,
            deleted_at: get_opt_ts(row, "deleted_at")?,
        })
    };
    parse().map_err(Error::Internal)
}
