//! Customers: one table read by both the v1 and the v3 API.

use sqlx::Row;

use super::{Arg, Backend, Columns, Sql, Store, Unique, get_json, get_opt_ts, get_ts, to_json};
use crate::billing::currency::CurrencyCode;
use crate::billing::customer::{Address, Customer, ValidCustomer};
use crate::error::{Error, Result};
use crate::ids::CustomerId;
use crate::timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    Id,
    Name,
    CreatedAt,
    Key,
    PrimaryEmail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

impl Direction {
    fn sql(self) -> &'static str {
        match self {
            Direction::Asc => "ASC",
            Direction::Desc => "DESC",
        }
    }
}

/// The customer fields a list can be filtered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterField {
    Id,
    Key,
    Name,
    PrimaryEmail,
    SubjectKey,
    /// Customers have no subscriptions in meterpay, so every plan key is absent.
    PlanKey,
    BillingProfileId,
}

/// The contract's `StringFieldFilter` operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StringFilter {
    Eq(String),
    Neq(String),
    /// Case-insensitive substring match.
    Contains(String),
    /// Contains any of the comma-separated phrases.
    OContains(Vec<String>),
    /// Equals any of the comma-separated values.
    OEq(Vec<String>),
    Gt(String),
    Gte(String),
    Lt(String),
    Lte(String),
    Exists(bool),
}

#[derive(Debug, Clone)]
pub struct CustomerQuery {
    /// 1-based.
    pub page: u64,
    pub size: u64,
    /// Sort attributes in priority order; the id breaks remaining ties.
    pub sort: Vec<(SortField, Direction)>,
    pub include_deleted: bool,
    pub filters: Vec<(FilterField, StringFilter)>,
}

pub struct CustomerPage {
    pub items: Vec<Customer>,
    pub total: u64,
}

/// The selected columns, as a macro so queries stay `&'static str`.
macro_rules! columns {
    () => {
        "c.id, c.namespace, c.key, c.name, c.description, c.labels, c.subject_keys, \
         c.primary_email, c.currency, c.billing_address, c.created_at, c.updated_at, c.deleted_at"
    };
}

/// The selected columns of customer `c`.
pub(crate) const COLUMNS: &str = columns!();

impl Store {
    pub async fn insert_customer(&self, namespace: &str, input: ValidCustomer) -> Result<Customer> {
        let now = timestamp::now();
        let id = CustomerId::new();
        let customer = Customer {
            id,
            namespace: namespace.to_owned(),
            key: input.key.unwrap_or_else(|| id.to_string()),
            name: input.name,
            description: input.description,
            labels: input.labels,
            subject_keys: input.subject_keys,
            primary_email: input.primary_email,
            currency: input.currency,
            billing_address: input.billing_address,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        let mut tx = self.writer.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO customers (id, namespace, key, name, description, labels, subject_keys, \
             primary_email, currency, billing_address, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
        )
        .bind(id.to_string())
        .bind(namespace)
        .bind(&customer.key)
        .bind(&customer.name)
        .bind(customer.description.clone())
        .bind(customer.labels.as_ref().map(to_json))
        .bind(to_json(&customer.subject_keys))
        .bind(customer.primary_email.clone())
        .bind(customer.currency.as_ref().map(|c| c.as_str().to_owned()))
        .bind(customer.billing_address.as_ref().map(to_json))
        .bind(timestamp::format(now))
        .execute(&mut *tx)
        .await;
        if let Err(err) = inserted {
            drop(tx);
            return Err(self.customer_conflict(err, namespace, &customer).await);
        }
        if let Err(err) = insert_subject_keys(&mut tx, namespace, id, &customer.subject_keys).await
        {
            drop(tx);
            return Err(self.customer_conflict(err, namespace, &customer).await);
        }
        tx.commit().await?;
        Ok(customer)
    }

    /// Replaces the client-settable fields of a live customer. `key: None`
    /// keeps the stored key.
    pub async fn update_customer(
        &self,
        namespace: &str,
        id: CustomerId,
        input: ValidCustomer,
    ) -> Result<Customer> {
        let now = timestamp::now();
        let mut tx = self.writer.begin().await?;
        let updated = sqlx::query(
            "UPDATE customers SET key = COALESCE($3, key), name = $4, description = $5, \
             labels = $6, subject_keys = $7, primary_email = $8, currency = $9, \
             billing_address = $10, updated_at = $11 \
             WHERE namespace = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(namespace)
        .bind(id.to_string())
        .bind(input.key.clone())
        .bind(&input.name)
        .bind(input.description.clone())
        .bind(input.labels.as_ref().map(to_json))
        .bind(to_json(&input.subject_keys))
        .bind(input.primary_email.clone())
        .bind(input.currency.as_ref().map(|c| c.as_str().to_owned()))
        .bind(input.billing_address.as_ref().map(to_json))
        .bind(timestamp::format(now))
        .execute(&mut *tx)
        .await;
        let probe = Customer {
            id,
            namespace: namespace.to_owned(),
            key: input.key.clone().unwrap_or_default(),
            name: input.name.clone(),
            description: None,
            labels: None,
            subject_keys: input.subject_keys.clone(),
            primary_email: None,
            currency: None,
            billing_address: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        match updated {
            Err(err) => {
                drop(tx);
                return Err(self.customer_conflict(err, namespace, &probe).await);
            }
            Ok(done) if done.rows_affected() == 0 => {
                drop(tx);
                // Not live: tell "never existed" (404) from "deleted" (410).
                return match self.get_customer(namespace, id).await? {
                    Some(existing) => existing.ensure_live().map(|_| existing),
                    None => Err(Error::not_found("customer", id)),
                };
            }
            Ok(_) => {}
        }
        let replaced = async {
            sqlx::query("DELETE FROM customer_subject_keys WHERE customer_id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            insert_subject_keys(&mut tx, namespace, id, &input.subject_keys).await
        }
        .await;
        if let Err(err) = replaced {
            drop(tx);
            return Err(self.customer_conflict(err, namespace, &probe).await);
        }
        tx.commit().await?;
        self.get_customer(namespace, id)
            .await?
            .ok_or_else(|| Error::not_found("customer", id))
    }

    /// Soft delete: the row stays readable by id; key and subject keys are freed.
    pub async fn delete_customer(&self, namespace: &str, id: CustomerId) -> Result<()> {
        let now = timestamp::format(timestamp::now());
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "UPDATE customers SET deleted_at = $3, updated_at = $3 \
             WHERE namespace = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(namespace)
        .bind(id.to_string())
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            drop(tx);
            return match self.get_customer(namespace, id).await? {
                Some(existing) => existing.ensure_live(),
                None => Err(Error::not_found("customer", id)),
            };
        }
        sqlx::query(
            "UPDATE customer_subject_keys SET deleted_at = $2 \
             WHERE customer_id = $1 AND deleted_at IS NULL",
        )
        .bind(id.to_string())
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets the billing address of a live customer that has none (never
    /// overwrites one set through the API); `true` when it was set.
    pub async fn fill_billing_address(
        &self,
        namespace: &str,
        id: CustomerId,
        address: &Address,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE customers SET billing_address = $3, updated_at = $4 \
             WHERE namespace = $1 AND id = $2 AND billing_address IS NULL AND deleted_at IS NULL",
        )
        .bind(namespace)
        .bind(id.to_string())
        .bind(to_json(address))
        .bind(timestamp::format(timestamp::now()))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The customer (deleted or not), or the 404 that names it.
    pub async fn require_customer(&self, namespace: &str, id: CustomerId) -> Result<Customer> {
        self.get_customer(namespace, id)
            .await?
            .ok_or_else(|| Error::not_found("customer", id))
    }

    /// A customer by id, deleted or not.
    pub async fn get_customer(&self, namespace: &str, id: CustomerId) -> Result<Option<Customer>> {
        self.read_row(
            concat!(
                "SELECT ",
                columns!(),
                " FROM customers c WHERE c.namespace = $1 AND c.id = $2"
            ),
            &[namespace, &id.to_string()],
            customer_from_row,
        )
        .await
    }

    /// The live customer with `key`, or else the most recently deleted one.
    pub async fn get_customer_by_key(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<Customer>> {
        self.read_row(
            concat!(
                "SELECT ",
                columns!(),
                " FROM customers c WHERE c.namespace = $1 AND c.key = $2 \
                 ORDER BY CASE WHEN c.deleted_at IS NULL THEN 0 ELSE 1 END, c.deleted_at DESC LIMIT 1"
            ),
            &[namespace, key],
            customer_from_row,
        )
        .await
    }

    pub async fn list_customers(&self, namespace: &str, q: &CustomerQuery) -> Result<CustomerPage> {
        let mut filter = Sql::new(" FROM customers c WHERE c.namespace = ");
        filter.bind_text(namespace);
        if !q.include_deleted {
            filter.push(" AND c.deleted_at IS NULL");
        }
        for (field, f) in &q.filters {
            filter.push(" AND ");
            push_filter(&mut filter, *field, f);
        }

        let mut count = Sql::new("SELECT COUNT(*) AS n");
        count.text.push_str(&filter.text);
        count.args = filter.args.clone();
        let total: i64 = count.query().fetch_one(&self.pool).await?.try_get("n")?;

        let mut select = Sql::new(concat!("SELECT ", columns!()));
        select.text.push_str(&filter.text);
        select.args = filter.args;
        let mut order = Vec::new();
        for (field, direction) in &q.sort {
            let column = match (field, self.backend) {
                (SortField::Id, _) => "c.id",
                // Byte order on both backends, whatever PostgreSQL's database collation.
                (SortField::Name, Backend::Postgres) => "c.name COLLATE \"C\"",
                (SortField::Name, Backend::Sqlite) => "c.name",
                (SortField::CreatedAt, _) => "c.created_at",
                (SortField::Key, Backend::Postgres) => "c.key COLLATE \"C\"",
                (SortField::Key, Backend::Sqlite) => "c.key",
                (SortField::PrimaryEmail, Backend::Postgres) => "c.primary_email COLLATE \"C\"",
                (SortField::PrimaryEmail, Backend::Sqlite) => "c.primary_email",
            };
            order.push(format!("{column} {}", direction.sql()));
        }
        let last = q.sort.last().map_or(Direction::Asc, |(_, d)| *d);
        order.push(format!("c.id {}", last.sql()));
        select.push(&format!(" ORDER BY {} LIMIT ", order.join(", ")));
        select.bind(Arg::Int(clamp_i64(q.size)));
        select.push(" OFFSET ");
        select.bind(Arg::Int(clamp_i64(
            q.page.saturating_sub(1).saturating_mul(q.size),
        )));
        let rows = select.query().fetch_all(&self.pool).await?;
        let items = rows
            .iter()
            .map(|row| customer_from_row(row))
            .collect::<Result<Vec<_>>>()?;
        Ok(CustomerPage {
            items,
            total: u64::try_from(total).unwrap_or(0),
        })
    }

    /// Turns a unique violation into a 409 naming the field and the customer
    /// that holds the value; anything else is an internal error.
    async fn customer_conflict(&self, err: sqlx::Error, namespace: &str, c: &Customer) -> Error {
        if Unique::CUSTOMER_KEY.violated_by(&err) {
            let holder = match self.get_customer_by_key(namespace, &c.key).await {
                Ok(Some(other)) => format!(" by customer [{}]", other.id),
                _ => String::new(),
            };
            return Error::conflict("key", format!("key [{}] is already used{holder}", c.key));
        }
        if Unique::SUBJECT_KEY.violated_by(&err) {
            for subject in &c.subject_keys {
                let holder: Option<String> = sqlx::query(
                    "SELECT customer_id FROM customer_subject_keys \
                     WHERE namespace = $1 AND subject_key = $2 AND deleted_at IS NULL AND customer_id <> $3",
                )
                .bind(namespace)
                .bind(subject)
                .bind(c.id.to_string())
                .fetch_optional(&self.pool)
                .await
                .ok()
                .flatten()
                .and_then(|row| row.try_get("customer_id").ok());
                if let Some(holder) = holder {
                    return Error::conflict(
                        "usage_attribution.subject_keys",
                        format!(
                            "subject key [{subject}] is already attributed to customer [{holder}]"
                        ),
                    );
                }
            }
            return Error::conflict(
                "usage_attribution.subject_keys",
                "a subject key is already attributed to another customer",
            );
        }
        err.into()
    }
}

async fn insert_subject_keys(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    namespace: &str,
    id: CustomerId,
    subject_keys: &[String],
) -> std::result::Result<(), sqlx::Error> {
    for subject in subject_keys {
        sqlx::query(
            "INSERT INTO customer_subject_keys (namespace, subject_key, customer_id) VALUES ($1, $2, $3)",
        )
        .bind(namespace)
        .bind(subject)
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

fn clamp_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{}%", escaped.to_lowercase())
}

/// Appends one filter condition. Subject keys live in their own table, so
/// their condition is an EXISTS over it with the same operators.
fn push_filter(sql: &mut Sql, field: FilterField, filter: &StringFilter) {
    let column = match field {
        FilterField::Id => "c.id",
        FilterField::Key => "c.key",
        FilterField::Name => "c.name",
        FilterField::PrimaryEmail => "c.primary_email",
        FilterField::SubjectKey => {
            if let StringFilter::Exists(exists) = filter {
                sql.push(if *exists { "EXISTS" } else { "NOT EXISTS" });
                sql.push(" (SELECT 1 FROM customer_subject_keys s WHERE s.customer_id = c.id)");
                return;
            }
            if let StringFilter::Neq(value) = filter {
                sql.push(
                    "NOT EXISTS (SELECT 1 FROM customer_subject_keys s WHERE s.customer_id = c.id AND s.subject_key = ",
                );
                sql.bind_text(value.clone()).push(")");
                return;
            }
            sql.push(
                "EXISTS (SELECT 1 FROM customer_subject_keys s WHERE s.customer_id = c.id AND ",
            );
            push_condition(sql, "s.subject_key", filter);
            sql.push(")");
            return;
        }
        FilterField::PlanKey => "CAST(NULL AS TEXT)",
        FilterField::BillingProfileId => "c.billing_profile_id",
    };
    push_condition(sql, column, filter);
}

fn push_condition(sql: &mut Sql, column: &str, filter: &StringFilter) {
    let compare = |sql: &mut Sql, op: &str, value: &String| {
        sql.push(&format!("{column} {op} "));
        sql.bind_text(value.clone());
    };
    match filter {
        StringFilter::Eq(v) => compare(sql, "=", v),
        StringFilter::Gt(v) => compare(sql, ">", v),
        StringFilter::Gte(v) => compare(sql, ">=", v),
        StringFilter::Lt(v) => compare(sql, "<", v),
        StringFilter::Lte(v) => compare(sql, "<=", v),
        StringFilter::Neq(v) => {
            sql.push(&format!("({column} IS NULL OR {column} <> "));
            sql.bind_text(v.clone()).push(")");
        }
        StringFilter::Contains(v) => {
            sql.push(&format!("LOWER({column}) LIKE "));
            sql.bind_text(like_pattern(v)).push(" ESCAPE '\\'");
        }
        StringFilter::OContains(values) | StringFilter::OEq(values) => {
            sql.push("(");
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    sql.push(" OR ");
                }
                if matches!(filter, StringFilter::OEq(_)) {
                    compare(sql, "=", v);
                } else {
                    sql.push(&format!("LOWER({column}) LIKE "));
                    sql.bind_text(like_pattern(v)).push(" ESCAPE '\\'");
                }
            }
            if values.is_empty() {
                sql.push("1 = 0");
            }
            sql.push(")");
        }
        StringFilter::Exists(true) => {
            sql.push(&format!("{column} IS NOT NULL"));
        }
        StringFilter::Exists(false) => {
            sql.push(&format!("{column} IS NULL"));
        }
    }
}

pub(crate) fn customer_from_row(row: &dyn Columns) -> Result<Customer> {
    let parse = || -> anyhow::Result<Customer> {
        let id = row.req_text("id")?;
        let currency = row.text("currency")?;
        Ok(Customer {
            id: id.parse()?,
            namespace: row.req_text("namespace")?,
            key: row.req_text("key")?,
            name: row.req_text("name")?,
            description: row.text("description")?,
            labels: get_json(row, "labels")?,
            subject_keys: get_json(row, "subject_keys")?.unwrap_or_default(),
            primary_email: row.text("primary_email")?,
            currency: currency.map(|c| CurrencyCode::parse(&c)).transpose()?,
            billing_address: get_json(row, "billing_address")?,
            created_at: get_ts(row, "created_at")?,
            updated_at: get_ts(row, "updated_at")?,
            deleted_at: get_opt_ts(row, "deleted_at")?,
        })
    };
    parse().map_err(Error::Internal)
}
