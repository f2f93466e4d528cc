//! Invoices and their lines.
//!
//! Every write that touches more than one row runs in one transaction whose
//! first statement is a write: adding pending lines and invoicing them first
//! "touch" the customer's row (`lock_customer`), which on PostgreSQL is a row
//! lock serialising one customer's invoicing (so two requests cannot gather
//! onto two new gathering invoices or invoice one line twice) and on SQLite
//! takes the write lock up front. State changes of one invoice are
//! compare-and-set on its stored status: a change computed from a stale read
//! matches no row and is reported, never applied over a newer one.

use std::collections::BTreeMap;

use anyhow::Context as _;
use rust_decimal::Decimal;
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{Arg, Page, Sql, Store, get_json, get_opt_ts, get_ts, to_json};
use crate::billing::currency::CurrencyCode;
use crate::billing::invoice::{
    ExtendedStatus, External, Invoice, InvoiceCustomer, Line, Period, Status, Totals, ValidLine,
    WorkflowSnapshot,
};
use crate::billing::money;
use crate::billing::profile::Party;
use crate::error::{Error, Result};
use crate::ids::{CustomerId, InvoiceId, LineId};
use crate::{telemetry, timestamp};

/// The metrics' status of an invoice before it existed and after deletion.
const NONE: &str = "none";
const DELETED: &str = "deleted";

/// Counts a stored status change (a save that kept the status is none).
fn transition(from: ExtendedStatus, to: ExtendedStatus) {
    if from != to {
        telemetry::invoice_transition(from.as_str(), to.as_str());
    }
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

const COLUMNS: &str = "id, namespace, customer_id, customer, number, currency, status, \
     description, metadata, supplier, profile_id, tax_app_id, invoicing_app_id, payment_app_id, \
     workflow, period_from, period_to, amount, issued_at, draft_until, due_at, voided_at, \
     sent_to_customer_at, validation_issues, stripe_invoice_id, stripe_invoice_number, \
     hosted_invoice_url, invoice_pdf_url, payment_id, created_at, updated_at, deleted_at";

const LINE_COLUMNS: &str = "id, invoice_id, name, description, metadata, currency, period_from, \
     period_to, invoice_at, price, quantity, tax_config, amount, stripe_item_id, created_at, \
     updated_at, deleted_at";

/// What an invoice list can be ordered by (`InvoiceOrderBy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceOrder {
    CustomerName,
    IssuedAt,
    Status,
    CreatedAt,
    UpdatedAt,
    PeriodStart,
}

impl InvoiceOrder {
    fn column(self) -> &'static str {
        match self {
            InvoiceOrder::CustomerName => "customer_name",
            InvoiceOrder::IssuedAt => "issued_at",
            InvoiceOrder::Status => "status",
            InvoiceOrder::CreatedAt => "created_at",
            InvoiceOrder::UpdatedAt => "updated_at",
            InvoiceOrder::PeriodStart => "period_from",
        }
    }
}

/// A time range, either end open; ends are inclusive unless marked exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    pub from_exclusive: bool,
    pub to_exclusive: bool,
}

/// A page of invoices.
#[derive(Debug, Clone)]
pub struct InvoiceQuery {
    pub page: Page,
    /// Short statuses (any of).
    pub statuses: Vec<Status>,
    /// Short statuses the list must leave out.
    pub not_statuses: Vec<Status>,
    /// Extended statuses (any of).
    pub extended_statuses: Vec<String>,
    pub customers: Vec<CustomerId>,
    /// Customers the list must leave out.
    pub not_customers: Vec<CustomerId>,
    pub issued: TimeRange,
    pub created: TimeRange,
    pub period_start: TimeRange,
    pub include_deleted: bool,
    pub include_gathering: bool,
    /// (field, descending); the id breaks ties.
    pub order: (InvoiceOrder, bool),
    pub with_lines: bool,
}

impl InvoiceQuery {
    pub fn new(page: Page) -> InvoiceQuery {
        InvoiceQuery {
            page,
            statuses: Vec::new(),
            not_statuses: Vec::new(),
            extended_statuses: Vec::new(),
            customers: Vec::new(),
            not_customers: Vec::new(),
            issued: TimeRange::default(),
            created: TimeRange::default(),
            period_start: TimeRange::default(),
            include_deleted: false,
            include_gathering: true,
            order: (InvoiceOrder::CreatedAt, false),
            with_lines: false,
        }
    }
}

/// A new invoice's header, as the service makes it.
#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub id: InvoiceId,
    pub customer: InvoiceCustomer,
    pub number: String,
    pub currency: CurrencyCode,
    pub status: ExtendedStatus,
    pub supplier: Party,
    pub workflow: WorkflowSnapshot,
}

/// A draft made of pending lines: its header (status and validation
/// decided) and the lines it takes, each with the gathering invoice it
/// leaves.
#[derive(Debug, Clone)]
pub struct DraftFromLines {
    pub invoice: Invoice,
    pub lines: Vec<(LineId, InvoiceId)>,
}

/// Why a compare-and-set write matched nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// Written.
    Yes,
    /// The invoice is no longer in the expected state (or was deleted).
    Moved,
}

impl Store {
    /// Adds lines to the customer's gathering invoice of `currency`, making
    /// that invoice when there is none. Returns the invoice (with its live
    /// lines), the new lines and whether the invoice is new.
    pub async fn add_pending_lines(
        &self,
        namespace: &str,
        template: NewInvoice,
        lines: Vec<ValidLine>,
        now: OffsetDateTime,
    ) -> Result<(Invoice, Vec<LineId>, bool)> {
        let customer_id = template.customer.id;
        let mut tx = self.writer.begin().await?;
        lock_customer(&mut tx, namespace, customer_id).await?;
        let existing: Option<String> = sqlx::query(
            "SELECT id FROM invoices WHERE namespace = $1 AND customer_id = $2 AND currency = $3 \
             AND status = 'gathering' AND deleted_at IS NULL",
        )
        .bind(namespace)
        .bind(customer_id.to_string())
        .bind(template.currency.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get("id"))
        .transpose()?;
        let (invoice_id, is_new) = match existing {
            Some(id) => (parse_id(&id)?, false),
            None => {
                insert_header(&mut tx, namespace, &template, now).await?;
                (template.id, true)
            }
        };
        let mut ids = Vec::with_capacity(lines.len());
        for line in lines {
            let id = LineId::new();
            insert_line(
                &mut tx,
                namespace,
                invoice_id,
                &template.currency,
                id,
                &line,
                now,
            )
            .await?;
            ids.push(id);
        }
        refresh_totals(&mut tx, invoice_id, now).await?;
        tx.commit().await?;
        if is_new {
            telemetry::invoice_transition(NONE, ExtendedStatus::Gathering.as_str());
        }
        let invoice = self
            .get_invoice(namespace, invoice_id, true)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("invoice {invoice_id} vanished")))?;
        Ok((invoice, ids, is_new))
    }

    /// The customer's pending lines: the live lines of its live gathering
    /// invoices, oldest first.
    pub async fn pending_lines(&self, namespace: &str, customer: CustomerId) -> Result<Vec<Line>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id \
             WHERE i.namespace = $1 AND i.customer_id = $2 AND i.status = 'gathering' \
             AND i.deleted_at IS NULL AND l.deleted_at IS NULL ORDER BY l.created_at, l.id",
            prefixed(LINE_COLUMNS, "l.")
        )))
        .bind(namespace)
        .bind(customer.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(line_from_row).collect()
    }

    /// Makes the drafts of a customer in one transaction: inserts each
    /// draft, moves its lines off their gathering invoices (each line only
    /// if still pending there) and recomputes the gathering invoices,
    /// deleting those left without lines. `Changed::Moved` (and nothing
    /// written) when a line was invoiced or deleted meanwhile.
    pub async fn create_drafts(
        &self,
        namespace: &str,
        customer: CustomerId,
        drafts: &[DraftFromLines],
        now: OffsetDateTime,
    ) -> Result<Changed> {
        let mut tx = self.writer.begin().await?;
        lock_customer(&mut tx, namespace, customer).await?;
        let mut gathering = Vec::new();
        let mut emptied = 0;
        for draft in drafts {
            insert_invoice(&mut tx, namespace, &draft.invoice).await?;
            for (line, from) in &draft.lines {
                let done = sqlx::query(
                    "UPDATE invoice_lines SET invoice_id = $1, updated_at = $2 \
                     WHERE id = $3 AND invoice_id = $4 AND deleted_at IS NULL",
                )
                .bind(draft.invoice.id.to_string())
                .bind(timestamp::format(now))
                .bind(line.to_string())
                .bind(from.to_string())
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(Changed::Moved);
                }
                if !gathering.contains(from) {
                    gathering.push(*from);
                }
            }
            refresh_totals(&mut tx, draft.invoice.id, now).await?;
        }
        for id in gathering {
            let live = refresh_totals(&mut tx, id, now).await?;
            if live == 0 {
                sqlx::query("UPDATE invoices SET deleted_at = $2, updated_at = $2 WHERE id = $1")
                    .bind(id.to_string())
                    .bind(timestamp::format(now))
                    .execute(&mut *tx)
                    .await?;
                emptied += 1;
            }
        }
        tx.commit().await?;
        for draft in drafts {
            telemetry::invoice_transition(NONE, draft.invoice.status.as_str());
        }
        for _ in 0..emptied {
            telemetry::invoice_transition(ExtendedStatus::Gathering.as_str(), DELETED);
        }
        Ok(Changed::Yes)
    }

    /// An invoice by id (deleted ones too), with its lines when asked.
    pub async fn get_invoice(
        &self,
        namespace: &str,
        id: InvoiceId,
        with_lines: bool,
    ) -> Result<Option<Invoice>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM invoices WHERE namespace = $1 AND id = $2"
        )))
        .bind(namespace)
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut invoice = invoice_from_row(&row)?;
        if with_lines {
            let mut lines = self.lines_of(&[id]).await?;
            invoice.lines = Some(lines.remove(&id).unwrap_or_default());
        }
        Ok(Some(invoice))
    }

    /// The invoice or the 404 naming it.
    pub async fn require_invoice(
        &self,
        namespace: &str,
        id: InvoiceId,
        with_lines: bool,
    ) -> Result<Invoice> {
        self.get_invoice(namespace, id, with_lines)
            .await?
            .ok_or_else(|| Error::not_found("invoice", id))
    }

    /// The lines of the given invoices (deleted ones too), oldest first.
    async fn lines_of(&self, ids: &[InvoiceId]) -> Result<BTreeMap<InvoiceId, Vec<Line>>> {
        let mut out: BTreeMap<InvoiceId, Vec<Line>> = BTreeMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let mut sql = Sql::new(&format!(
            "SELECT {LINE_COLUMNS} FROM invoice_lines WHERE invoice_id IN ("
        ));
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind_text(id.to_string());
        }
        sql.push(") ORDER BY created_at, id");
        let rows = sql.query().fetch_all(&self.pool).await?;
        for row in &rows {
            let line = line_from_row(row)?;
            out.entry(line.invoice_id).or_default().push(line);
        }
        Ok(out)
    }

    /// A page of invoices and how many match in all.
    pub async fn list_invoices(
        &self,
        namespace: &str,
        q: &InvoiceQuery,
    ) -> Result<(Vec<Invoice>, u64)> {
        let mut filter = Sql::new(" WHERE namespace = ");
        filter.bind_text(namespace);
        if !q.include_deleted {
            filter.push(" AND deleted_at IS NULL");
        }
        if !q.include_gathering {
            filter.push(" AND status <> 'gathering'");
        }
        any_of(
            &mut filter,
            "status_group",
            q.statuses.iter().map(|s| s.as_str().to_owned()),
        );
        any_of(&mut filter, "status", q.extended_statuses.iter().cloned());
        any_of(
            &mut filter,
            "customer_id",
            q.customers.iter().map(|c| c.to_string()),
        );
        for st in &q.not_statuses {
            filter.push(" AND status_group <> ");
            filter.bind_text(st.as_str());
        }
        for c in &q.not_customers {
            filter.push(" AND customer_id <> ");
            filter.bind_text(c.to_string());
        }
        for (column, range) in [
            ("issued_at", q.issued),
            ("created_at", q.created),
            ("period_from", q.period_start),
        ] {
            if let Some(from) = range.from {
                let op = if range.from_exclusive { ">" } else { ">=" };
                filter.push(&format!(" AND {column} {op} "));
                filter.bind_text(timestamp::format(from));
            }
            if let Some(to) = range.to {
                let op = if range.to_exclusive { "<" } else { "<=" };
                filter.push(&format!(" AND {column} {op} "));
                filter.bind_text(timestamp::format(to));
            }
        }
        let (where_text, args) = filter.into_parts();
        let mut count = Sql::new("SELECT COUNT(*) AS n FROM invoices");
        count.push_parts(&where_text, &args);
        let total: i64 = count.query().fetch_one(&self.pool).await?.try_get("n")?;

        let (field, descending) = q.order;
        let direction = if descending { "DESC" } else { "ASC" };
        // NULLs (not yet issued, no period) sort last either way.
        let column = field.column();
        let mut select = Sql::new(&format!("SELECT {COLUMNS} FROM invoices"));
        select.push_parts(&where_text, &args);
        select.push(&format!(
            " ORDER BY CASE WHEN {column} IS NULL THEN 1 ELSE 0 END, {column} {direction}, \
             id {direction} LIMIT "
        ));
        select.bind(Arg::Int(clamp(q.page.size)));
        select.push(" OFFSET ");
        select.bind(Arg::Int(clamp(q.page.offset())));
        let rows = select.query().fetch_all(&self.pool).await?;
        let mut invoices = rows
            .iter()
            .map(invoice_from_row)
            .collect::<Result<Vec<_>>>()?;
        // A gathering invoice's lines decide whether it can be invoiced now,
        // so they come along even when the list shows no lines.
        let ids: Vec<InvoiceId> = invoices
            .iter()
            .filter(|i| q.with_lines || i.status == ExtendedStatus::Gathering)
            .map(|i| i.id)
            .collect();
        let mut lines = self.lines_of(&ids).await?;
        for invoice in &mut invoices {
            if let Some(found) = lines.remove(&invoice.id) {
                invoice.lines = Some(found);
            } else if q.with_lines || invoice.status == ExtendedStatus::Gathering {
                invoice.lines = Some(Vec::new());
            }
        }
        Ok((invoices, u64::try_from(total).unwrap_or(0)))
    }

    /// Writes the header of `invoice` (status, validation issues, dates,
    /// the invoicing app's ids) if its stored status is still `expected`.
    pub async fn save_invoice(
        &self,
        namespace: &str,
        invoice: &Invoice,
        expected: ExtendedStatus,
    ) -> Result<Changed> {
        let mut tx = self.writer.begin().await?;
        let changed = update_header(&mut tx, namespace, invoice, expected).await?;
        if changed == Changed::Yes {
            tx.commit().await?;
            transition(expected, invoice.status);
        }
        Ok(changed)
    }

    /// Replaces a draft's header and lines (if its stored status is still
    /// `expected`): lines of `invoice.lines` are updated or added, the
    /// invoice's other live lines deleted, and the totals recomputed.
    pub async fn replace_invoice(
        &self,
        namespace: &str,
        invoice: &Invoice,
        expected: ExtendedStatus,
    ) -> Result<Changed> {
        let now = invoice.updated_at;
        let mut tx = self.writer.begin().await?;
        if update_header(&mut tx, namespace, invoice, expected).await? == Changed::Moved {
            return Ok(Changed::Moved);
        }
        let lines = invoice.lines.as_deref().unwrap_or_default();
        let mut keep = Sql::new("UPDATE invoice_lines SET deleted_at = ");
        keep.bind_text(timestamp::format(now));
        keep.push(", updated_at = ");
        keep.bind_text(timestamp::format(now));
        keep.push(" WHERE invoice_id = ");
        keep.bind_text(invoice.id.to_string());
        keep.push(" AND deleted_at IS NULL");
        for line in lines {
            keep.push(" AND id <> ");
            keep.bind_text(line.id.to_string());
        }
        keep.query().execute(&mut *tx).await?;
        for line in lines {
            let done = sqlx::query(
                "UPDATE invoice_lines SET name = $3, description = $4, metadata = $5, \
                 period_from = $6, period_to = $7, invoice_at = $8, price = $9, quantity = $10, \
                 tax_config = $11, amount = $12, updated_at = $13 \
                 WHERE id = $1 AND invoice_id = $2 AND deleted_at IS NULL",
            )
            .bind(line.id.to_string())
            .bind(invoice.id.to_string())
            .bind(&line.name)
            .bind(line.description.clone())
            .bind(line.metadata.as_ref().map(to_json))
            .bind(timestamp::format(line.period.from))
            .bind(timestamp::format(line.period.to))
            .bind(timestamp::format(line.invoice_at))
            .bind(to_json(&line.price))
            .bind(line.quantity.map(money::format))
            .bind(line.tax_config.as_ref().map(to_json))
            .bind(money::format(line.amount))
            .bind(timestamp::format(now))
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                let valid = ValidLine {
                    name: line.name.clone(),
                    description: line.description.clone(),
                    metadata: line.metadata.clone(),
                    period: line.period,
                    invoice_at: line.invoice_at,
                    price: line.price.clone(),
                    quantity: line.quantity,
                    tax_config: line.tax_config.clone(),
                    amount: line.amount,
                };
                insert_line(
                    &mut tx,
                    namespace,
                    invoice.id,
                    &invoice.currency,
                    line.id,
                    &valid,
                    now,
                )
                .await?;
            }
        }
        refresh_totals(&mut tx, invoice.id, now).await?;
        tx.commit().await?;
        transition(expected, invoice.status);
        Ok(Changed::Yes)
    }

    /// Deletes an invoice and its lines (soft: they stay readable) if its
    /// stored status is still `expected`.
    pub async fn delete_invoice(
        &self,
        namespace: &str,
        id: InvoiceId,
        expected: ExtendedStatus,
        now: OffsetDateTime,
    ) -> Result<Changed> {
        let now = timestamp::format(now);
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "UPDATE invoices SET deleted_at = $4, updated_at = $4 \
             WHERE namespace = $1 AND id = $2 AND status = $3 AND deleted_at IS NULL",
        )
        .bind(namespace)
        .bind(id.to_string())
        .bind(expected.as_str())
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(Changed::Moved);
        }
        sqlx::query(
            "UPDATE invoice_lines SET deleted_at = $2, updated_at = $2 \
             WHERE invoice_id = $1 AND deleted_at IS NULL",
        )
        .bind(id.to_string())
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        telemetry::invoice_transition(expected.as_str(), DELETED);
        Ok(Changed::Yes)
    }

    /// Takes the lease on an invoice for `owner` until `until` when nobody
    /// else holds an unexpired one (the background worker's claim).
    pub async fn claim_invoice(
        &self,
        id: InvoiceId,
        owner: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let free = sqlx::query(
            "UPDATE invoices SET lease_owner = $2, lease_expires_at = $3 \
             WHERE id = $1 AND (lease_owner IS NULL OR lease_owner = $2)",
        )
        .bind(id.to_string())
        .bind(owner)
        .bind(timestamp::format(until))
        .execute(&self.writer)
        .await?;
        if free.rows_affected() > 0 {
            return Ok(true);
        }
        // Held by another: taken over only once its lease has expired.
        let taken = sqlx::query(
            "UPDATE invoices SET lease_owner = $2, lease_expires_at = $3 \
             WHERE id = $1 AND lease_owner IS NOT NULL AND lease_owner <> $2 \
             AND lease_expires_at < $4",
        )
        .bind(id.to_string())
        .bind(owner)
        .bind(timestamp::format(until))
        .bind(timestamp::format(now))
        .execute(&self.writer)
        .await?;
        let taken = taken.rows_affected() > 0;
        if taken {
            telemetry::invoice_lease_takeover();
        }
        Ok(taken)
    }

    /// Gives the lease back (only the owner can).
    pub async fn release_invoice(&self, id: InvoiceId, owner: &str) -> Result<()> {
        sqlx::query(
            "UPDATE invoices SET lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id.to_string())
        .bind(owner)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}

/// The first write of an invoicing transaction: touches the live customer's
/// row (a row lock on PostgreSQL, the write lock on SQLite).
async fn lock_customer(tx: &mut Tx, namespace: &str, customer: CustomerId) -> Result<()> {
    let done = sqlx::query(
        "UPDATE customers SET updated_at = updated_at \
         WHERE namespace = $1 AND id = $2 AND deleted_at IS NULL",
    )
    .bind(namespace)
    .bind(customer.to_string())
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::Gone(format!(
            "customer [{customer}] was deleted; it can be read but not changed or billed"
        )));
    }
    Ok(())
}

async fn insert_header(
    tx: &mut Tx,
    namespace: &str,
    t: &NewInvoice,
    now: OffsetDateTime,
) -> Result<()> {
    let invoice = Invoice {
        id: t.id,
        namespace: namespace.to_owned(),
        customer: t.customer.clone(),
        number: t.number.clone(),
        currency: t.currency.clone(),
        status: t.status,
        description: None,
        metadata: None,
        supplier: t.supplier.clone(),
        workflow: t.workflow.clone(),
        period: None,
        totals: Totals::default(),
        issued_at: None,
        draft_until: None,
        due_at: None,
        voided_at: None,
        sent_to_customer_at: None,
        validation_issues: Vec::new(),
        external: External::default(),
        lines: None,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    insert_invoice(tx, namespace, &invoice).await
}

async fn insert_invoice(tx: &mut Tx, namespace: &str, i: &Invoice) -> Result<()> {
    sqlx::query(
        "INSERT INTO invoices (id, namespace, customer_id, customer, customer_name, number, \
         currency, status, status_group, description, metadata, supplier, profile_id, tax_app_id, \
         invoicing_app_id, payment_app_id, workflow, period_from, period_to, amount, issued_at, \
         draft_until, due_at, voided_at, sent_to_customer_at, validation_issues, sync_attempts, \
         created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21, $22, $23, $24, $25, $26, 0, $27, $28)",
    )
    .bind(i.id.to_string())
    .bind(namespace)
    .bind(i.customer.id.to_string())
    .bind(to_json(&i.customer))
    .bind(&i.customer.name)
    .bind(&i.number)
    .bind(i.currency.as_str())
    .bind(i.status.as_str())
    .bind(i.status.status().as_str())
    .bind(i.description.clone())
    .bind(i.metadata.as_ref().map(to_json))
    .bind(to_json(&i.supplier))
    .bind(i.workflow.source_profile_id.to_string())
    .bind(i.workflow.tax_app_id.to_string())
    .bind(i.workflow.invoicing_app_id.to_string())
    .bind(i.workflow.payment_app_id.to_string())
    .bind(to_json(&i.workflow.workflow))
    .bind(i.period.map(|p| timestamp::format(p.from)))
    .bind(i.period.map(|p| timestamp::format(p.to)))
    .bind(money::format(i.totals.amount))
    .bind(i.issued_at.map(timestamp::format))
    .bind(i.draft_until.map(timestamp::format))
    .bind(i.due_at.map(timestamp::format))
    .bind(i.voided_at.map(timestamp::format))
    .bind(i.sent_to_customer_at.map(timestamp::format))
    .bind(issues_json(i))
    .bind(timestamp::format(i.created_at))
    .bind(timestamp::format(i.updated_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn issues_json(i: &Invoice) -> Option<String> {
    (!i.validation_issues.is_empty()).then(|| to_json(&i.validation_issues))
}

async fn update_header(
    tx: &mut Tx,
    namespace: &str,
    i: &Invoice,
    expected: ExtendedStatus,
) -> Result<Changed> {
    let done = sqlx::query(
        "UPDATE invoices SET status = $4, status_group = $5, description = $6, metadata = $7, \
         issued_at = $8, draft_until = $9, due_at = $10, voided_at = $11, \
         sent_to_customer_at = $12, validation_issues = $13, stripe_invoice_id = $14, \
         stripe_invoice_number = $15, hosted_invoice_url = $16, invoice_pdf_url = $17, \
         payment_id = $18, updated_at = $19, customer = $20, customer_name = $21, \
         supplier = $22, workflow = $23 \
         WHERE namespace = $1 AND id = $2 AND status = $3 AND deleted_at IS NULL",
    )
    .bind(namespace)
    .bind(i.id.to_string())
    .bind(expected.as_str())
    .bind(i.status.as_str())
    .bind(i.status.status().as_str())
    .bind(i.description.clone())
    .bind(i.metadata.as_ref().map(to_json))
    .bind(i.issued_at.map(timestamp::format))
    .bind(i.draft_until.map(timestamp::format))
    .bind(i.due_at.map(timestamp::format))
    .bind(i.voided_at.map(timestamp::format))
    .bind(i.sent_to_customer_at.map(timestamp::format))
    .bind(issues_json(i))
    .bind(i.external.invoice_id.clone())
    .bind(i.external.number.clone())
    .bind(i.external.hosted_url.clone())
    .bind(i.external.pdf_url.clone())
    .bind(i.external.payment_id.clone())
    .bind(timestamp::format(i.updated_at))
    .bind(to_json(&i.customer))
    .bind(&i.customer.name)
    .bind(to_json(&i.supplier))
    .bind(to_json(&i.workflow.workflow))
    .execute(&mut **tx)
    .await?;
    Ok(if done.rows_affected() == 0 {
        Changed::Moved
    } else {
        Changed::Yes
    })
}

async fn insert_line(
    tx: &mut Tx,
    namespace: &str,
    invoice: InvoiceId,
    currency: &CurrencyCode,
    id: LineId,
    line: &ValidLine,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO invoice_lines (id, namespace, invoice_id, name, description, metadata, \
         currency, period_from, period_to, invoice_at, price, quantity, tax_config, amount, \
         created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)",
    )
    .bind(id.to_string())
    .bind(namespace)
    .bind(invoice.to_string())
    .bind(&line.name)
    .bind(line.description.clone())
    .bind(line.metadata.as_ref().map(to_json))
    .bind(currency.as_str())
    .bind(timestamp::format(line.period.from))
    .bind(timestamp::format(line.period.to))
    .bind(timestamp::format(line.invoice_at))
    .bind(to_json(&line.price))
    .bind(line.quantity.map(money::format))
    .bind(line.tax_config.as_ref().map(to_json))
    .bind(money::format(line.amount))
    .bind(timestamp::format(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Recomputes an invoice's amount (the sum of its live lines' rounded
/// amounts) and period; returns how many live lines it has.
async fn refresh_totals(tx: &mut Tx, id: InvoiceId, now: OffsetDateTime) -> Result<usize> {
    let rows = sqlx::query(
        "SELECT amount, period_from, period_to FROM invoice_lines \
         WHERE invoice_id = $1 AND deleted_at IS NULL",
    )
    .bind(id.to_string())
    .fetch_all(&mut **tx)
    .await?;
    let mut amount = Decimal::ZERO;
    let mut from: Option<String> = None;
    let mut to: Option<String> = None;
    for row in &rows {
        let text: String = row.try_get("amount")?;
        amount += money::parse_numeric(&text)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("bad line amount {text}")))?;
        let f: String = row.try_get("period_from")?;
        let t: String = row.try_get("period_to")?;
        // Fixed-width timestamps order as text.
        if from.as_ref().is_none_or(|x| f < *x) {
            from = Some(f);
        }
        if to.as_ref().is_none_or(|x| t > *x) {
            to = Some(t);
        }
    }
    sqlx::query(
        "UPDATE invoices SET amount = $2, period_from = $3, period_to = $4, updated_at = $5 \
         WHERE id = $1",
    )
    .bind(id.to_string())
    .bind(money::format(amount))
    .bind(from)
    .bind(to)
    .bind(timestamp::format(now))
    .execute(&mut **tx)
    .await?;
    Ok(rows.len())
}

/// `AND column IN (…)` for a non-empty list.
fn any_of(sql: &mut Sql, column: &str, values: impl Iterator<Item = String>) {
    let values: Vec<String> = values.collect();
    if values.is_empty() {
        return;
    }
    sql.push(&format!(" AND {column} IN ("));
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind_text(value);
    }
    sql.push(")");
}

fn prefixed(columns: &str, prefix: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn parse_id<T: std::str::FromStr<Err = ulid::DecodeError>>(text: &str) -> Result<T> {
    text.parse()
        .map_err(|e: ulid::DecodeError| Error::Internal(anyhow::anyhow!("bad id {text}: {e}")))
}

fn decimal(row: &AnyRow, column: &str) -> anyhow::Result<Decimal> {
    let text: String = row.try_get(column)?;
    money::parse_numeric(&text).with_context(|| format!("bad decimal in {column}: {text}"))
}

fn invoice_from_row(row: &AnyRow) -> Result<Invoice> {
    let parse = || -> anyhow::Result<Invoice> {
        let text = |c: &str| -> anyhow::Result<String> { Ok(row.try_get::<String, _>(c)?) };
        let opt = |c: &str| -> anyhow::Result<Option<String>> {
            Ok(row.try_get::<Option<String>, _>(c)?)
        };
        let status = text("status")?;
        let period = match (
            get_opt_ts(row, "period_from")?,
            get_opt_ts(row, "period_to")?,
        ) {
            (Some(from), Some(to)) => Some(Period { from, to }),
            _ => None,
        };
        Ok(Invoice {
            id: text("id")?.parse()?,
            namespace: text("namespace")?,
            customer: get_json(row, "customer")?.context("customer snapshot missing")?,
            number: text("number")?,
            currency: CurrencyCode::parse(&text("currency")?)?,
            status: ExtendedStatus::parse(&status)
                .with_context(|| format!("unknown invoice status {status}"))?,
            description: opt("description")?,
            metadata: get_json(row, "metadata")?,
            supplier: get_json(row, "supplier")?.unwrap_or_default(),
            workflow: WorkflowSnapshot {
                source_profile_id: text("profile_id")?.parse()?,
                tax_app_id: text("tax_app_id")?.parse()?,
                invoicing_app_id: text("invoicing_app_id")?.parse()?,
                payment_app_id: text("payment_app_id")?.parse()?,
                workflow: get_json(row, "workflow")?.context("workflow missing")?,
            },
            period,
            totals: Totals {
                amount: decimal(row, "amount")?,
            },
            issued_at: get_opt_ts(row, "issued_at")?,
            draft_until: get_opt_ts(row, "draft_until")?,
            due_at: get_opt_ts(row, "due_at")?,
            voided_at: get_opt_ts(row, "voided_at")?,
            sent_to_customer_at: get_opt_ts(row, "sent_to_customer_at")?,
            validation_issues: get_json(row, "validation_issues")?.unwrap_or_default(),
            external: External {
                invoice_id: opt("stripe_invoice_id")?,
                number: opt("stripe_invoice_number")?,
                hosted_url: opt("hosted_invoice_url")?,
                pdf_url: opt("invoice_pdf_url")?,
                payment_id: opt("payment_id")?,
            },
            lines: None,
            created_at: get_ts(row, "created_at")?,
            updated_at: get_ts(row, "updated_at")?,
            deleted_at: get_opt_ts(row, "deleted_at")?,
        })
    };
    parse().map_err(Error::Internal)
}

fn line_from_row(row: &AnyRow) -> Result<Line> {
    let parse = || -> anyhow::Result<Line> {
        let text = |c: &str| -> anyhow::Result<String> { Ok(row.try_get::<String, _>(c)?) };
        let quantity: Option<String> = row.try_get("quantity")?;
        Ok(Line {
            id: text("id")?.parse()?,
            invoice_id: text("invoice_id")?.parse()?,
            name: text("name")?,
            description: row.try_get("description")?,
            metadata: get_json(row, "metadata")?,
            currency: CurrencyCode::parse(&text("currency")?)?,
            period: Period {
                from: get_ts(row, "period_from")?,
                to: get_ts(row, "period_to")?,
            },
            invoice_at: get_ts(row, "invoice_at")?,
            price: get_json(row, "price")?.context("price missing")?,
            quantity: quantity
                .map(|q| money::parse_numeric(&q).with_context(|| format!("bad quantity {q}")))
                .transpose()?,
            tax_config: get_json(row, "tax_config")?,
            amount: decimal(row, "amount")?,
            external_id: row.try_get("stripe_item_id")?,
            created_at: get_ts(row, "created_at")?,
            updated_at: get_ts(row, "updated_at")?,
            deleted_at: get_opt_ts(row, "deleted_at")?,
        })
    };
    parse().map_err(Error::Internal)
}

/// Where an invoice's sync to its invoicing app (Stripe) stands: the last
/// step whose outcome is stored, attempts, the last failure, and when the
/// background worker should try again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncState {
    pub step: Option<String>,
    pub attempts: i64,
    pub error: Option<String>,
    pub next_attempt_at: Option<OffsetDateTime>,
}

/// An invoice the background worker should look at now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueInvoice {
    pub namespace: String,
    pub id: InvoiceId,
    pub status: ExtendedStatus,
}

impl Store {
    pub async fn sync_state(&self, id: InvoiceId) -> Result<SyncState> {
        let row = sqlx::query(
            "SELECT sync_step, sync_attempts, sync_error, next_attempt_at FROM invoices WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(SyncState::default());
        };
        Ok(SyncState {
            step: row.try_get("sync_step")?,
            attempts: row.try_get("sync_attempts")?,
            error: row.try_get("sync_error")?,
            next_attempt_at: get_opt_ts(&row, "next_attempt_at").map_err(Error::Internal)?,
        })
    }

    pub async fn set_sync_state(&self, id: InvoiceId, state: &SyncState) -> Result<()> {
        sqlx::query(
            "UPDATE invoices SET sync_step = $2, sync_attempts = $3, sync_error = $4, \
             next_attempt_at = $5 WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(state.step.clone())
        .bind(state.attempts)
        .bind(state.error.clone())
        .bind(state.next_attempt_at.map(timestamp::format))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Records the Stripe invoice item a line became.
    pub async fn set_line_external_id(&self, line: LineId, item_id: &str) -> Result<()> {
        sqlx::query("UPDATE invoice_lines SET stripe_item_id = $2 WHERE id = $1")
            .bind(line.to_string())
            .bind(item_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// The meterpay invoice a Stripe invoice of `app_id` belongs to.
    pub async fn invoice_by_stripe_id(
        &self,
        app_id: crate::ids::AppId,
        stripe_invoice_id: &str,
    ) -> Result<Option<(String, InvoiceId)>> {
        let row = sqlx::query(
            "SELECT namespace, id FROM invoices \
             WHERE invoicing_app_id = $1 AND stripe_invoice_id = $2",
        )
        .bind(app_id.to_string())
        .bind(stripe_invoice_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> Result<(String, InvoiceId)> {
            let id: String = r.try_get("id")?;
            Ok((
                r.try_get("namespace")?,
                id.parse()
                    .map_err(|e| Error::Internal(anyhow::anyhow!("invoice id {id}: {e}")))?,
            ))
        })
        .transpose()
    }

    /// Invoices with work due at `now` that nobody holds a live lease on:
    /// drafts whose draft period is over, and syncs due (new, interrupted by a
    /// crash, or waiting for their retry time). Oldest first, at most `limit`.
    pub async fn due_invoices(&self, now: OffsetDateTime, limit: i64) -> Result<Vec<DueInvoice>> {
        let now = timestamp::format(now);
        let rows = sqlx::query(
            "SELECT namespace, id, status FROM invoices \
             WHERE deleted_at IS NULL \
               AND (lease_expires_at IS NULL OR lease_expires_at < $1) \
               AND ((status = 'draft.waiting_auto_approval' AND draft_until <= $1) \
                 OR (status = 'issuing.syncing' \
                     AND (next_attempt_at IS NULL OR next_attempt_at <= $1))) \
             ORDER BY updated_at, id LIMIT $2",
        )
        .bind(&now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| -> Result<DueInvoice> {
                let id: String = r.try_get("id")?;
                let status: String = r.try_get("status")?;
                Ok(DueInvoice {
                    namespace: r.try_get("namespace")?,
                    id: id
                        .parse()
                        .map_err(|e| Error::Internal(anyhow::anyhow!("invoice id {id}: {e}")))?,
                    status: ExtendedStatus::parse(&status).ok_or_else(|| {
                        Error::Internal(anyhow::anyhow!("unknown invoice status {status}"))
                    })?,
                })
            })
            .collect()
    }
}
