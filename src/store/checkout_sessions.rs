//! Recorded checkout sessions.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use super::{Arg, Backend, Sql, Store, get_json, get_opt_ts, get_ts, to_json};
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
    ///
    /// Concurrent calls are written together: the record joins the queue of
    /// [`SessionRecorder`], which inserts what has queued in one statement
    /// (one round trip, one commit). The call returns once its row is
    /// committed, or with its own error.
    pub async fn record_checkout_session(
        &self,
        namespace: &str,
        s: CheckoutSessionRecord,
    ) -> Result<()> {
        self.sessions.record(namespace, s).await
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
        insert_sessions(
            &self.writer,
            self.backend,
            &[(namespace, s)],
            "DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at \
             WHERE checkout_sessions.status <> excluded.status \
             AND (checkout_sessions.status <> 'complete' OR excluded.status = 'complete')",
        )
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

/// The most sessions one statement records (22 placeholders each): enough
/// that one commit serves a full queue under load, a statement of a few
/// hundred placeholders (on SQLite `?`, bound in order: see `Sql::in_order`).
const MAX_BATCH: usize = 32;

/// What the checkout path does when the session is already recorded.
const KEEP_EXISTING: &str = "DO NOTHING";

/// Inserts `rows` in one statement. `on_conflict` is [`KEEP_EXISTING`] or the
/// event path's fixed clause above, never input.
async fn insert_sessions(
    writer: &AnyPool,
    backend: Backend,
    rows: &[(&str, &CheckoutSessionRecord)],
    on_conflict: &'static str,
) -> std::result::Result<(), sqlx::Error> {
    let recorded_at = timestamp::now();
    let mut sql = Sql::in_order(
        backend,
        "INSERT INTO checkout_sessions (id, namespace, app_id, customer_id, stripe_customer_id, \
         setup_intent_id, status, ui_mode, currency, url, success_url, cancel_url, return_url, \
         client_reference_id, customer_email, metadata, payment_method_id, failure_reason, \
         expires_at, created_at, updated_at, recorded_at) VALUES ",
    );
    for (i, (namespace, s)) in rows.iter().enumerate() {
        sql.push(if i == 0 { "(" } else { ", (" });
        let values = [
            Arg::Text(s.id.clone()),
            Arg::Text((*namespace).to_owned()),
            Arg::Text(s.app_id.to_string()),
            Arg::Text(s.customer_id.to_string()),
            Arg::Text(s.stripe_customer_id.as_str().to_owned()),
            Arg::OptText(s.setup_intent_id.clone()),
            Arg::Text(s.status.as_str().to_owned()),
            Arg::Text(s.ui_mode.clone()),
            Arg::OptText(s.currency.clone()),
            Arg::OptText(s.url.clone()),
            Arg::OptText(s.success_url.clone()),
            Arg::OptText(s.cancel_url.clone()),
            Arg::OptText(s.return_url.clone()),
            Arg::OptText(s.client_reference_id.clone()),
            Arg::OptText(s.customer_email.clone()),
            Arg::OptText(s.metadata.as_ref().map(to_json)),
            Arg::OptText(s.payment_method_id.clone()),
            Arg::OptText(s.failure_reason.clone()),
            Arg::OptText(s.expires_at.map(timestamp::format)),
            Arg::Text(timestamp::format(s.created_at)),
            Arg::Text(timestamp::format(s.updated_at)),
            // The history's order within a second: a microsecond apart
            // per row, so a batch keeps its queue's order.
            Arg::Text(timestamp::format(
                recorded_at + time::Duration::microseconds(i as i64),
            )),
        ];
        for (j, value) in values.into_iter().enumerate() {
            if j > 0 {
                sql.push(", ");
            }
            sql.bind(value);
        }
        sql.push(")");
    }
    sql.push(" ON CONFLICT (id) ").push(on_conflict);
    sql.into_query().execute(writer).await?;
    Ok(())
}

/// A session waiting in [`SessionRecorder`]'s queue, with where its outcome goes.
struct Queued {
    namespace: String,
    record: CheckoutSessionRecord,
    done: oneshot::Sender<Result<()>>,
}

/// Group commit for the checkout path's one write. Under load many checkouts
/// finish their Stripe call at once; each waiting for its own insert (a
/// handoff to SQLite's writer thread or a round trip to PostgreSQL, and a
/// commit) cost more than the insert itself. One task takes what has queued
/// (up to [`MAX_BATCH`]) and writes it in one statement, so a busy server
/// commits once for many sessions, and an idle one writes a lone session
/// at once (no waiting for company). If a statement fails, each of its
/// sessions is written alone, so every caller gets its own outcome and one
/// bad row fails no other.
#[derive(Clone)]
pub(super) struct SessionRecorder {
    queue: mpsc::Sender<Queued>,
}

impl SessionRecorder {
    /// Starts the task that writes through `writer`; it ends when the last
    /// clone of the recorder (of the store) is dropped.
    pub(super) fn start(writer: AnyPool, backend: Backend) -> SessionRecorder {
        let (queue, mut incoming) = mpsc::channel::<Queued>(4 * MAX_BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while incoming.recv_many(&mut batch, MAX_BATCH).await > 0 {
                write_batch(&writer, backend, &mut batch).await;
            }
        });
        SessionRecorder { queue }
    }

    async fn record(&self, namespace: &str, record: CheckoutSessionRecord) -> Result<()> {
        let (done, outcome) = oneshot::channel();
        let queued = Queued {
            namespace: namespace.to_owned(),
            record,
            done,
        };
        let stopped = || Error::Unavailable {
            detail: "The database writer has stopped; try again shortly.".into(),
            retry_after_secs: Some(1),
        };
        // Only a panic in the writer task closes the queue early.
        self.queue.send(queued).await.map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

async fn write_batch(writer: &AnyPool, backend: Backend, batch: &mut Vec<Queued>) {
    let rows: Vec<(&str, &CheckoutSessionRecord)> = batch
        .iter()
        .map(|q| (q.namespace.as_str(), &q.record))
        .collect();
    let together = insert_sessions(writer, backend, &rows, KEEP_EXISTING).await;
    drop(rows);
    match together {
        Ok(()) => {
            for queued in batch.drain(..) {
                let _ = queued.done.send(Ok(()));
            }
        }
        Err(err) if batch.len() == 1 => {
            if let Some(queued) = batch.pop() {
                let _ = queued.done.send(Err(err.into()));
            }
        }
        Err(err) => {
            tracing::warn!(
                sessions = batch.len(),
                error = %err,
                "recording checkout sessions together failed; recording each alone"
            );
            for queued in batch.drain(..) {
                let alone = insert_sessions(
                    writer,
                    backend,
                    &[(&queued.namespace, &queued.record)],
                    KEEP_EXISTING,
                )
                .await
                .map_err(Error::from);
                let _ = queued.done.send(alone);
            }
        }
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
