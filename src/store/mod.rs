//! Persistence behind one interface, on SQLite (the embedded default) or
//! PostgreSQL. Both run through sqlx's `Any` driver with one set of portable
//! SQL, so there is a single code path to test rather than two to keep equal.
//! The one exception is speed, not SQL: on an SQLite file the hot path's
//! point reads (`Store::read_row`) run the same statements on the calling
//! thread through rusqlite (module `local`), and decode through the same
//! `Columns` functions.
//!
//! Rules: queries use `$1…$n` placeholders (both backends accept them;
//! [`Sql::in_order`] writes `?` on SQLite for a statement of many);
//! transactions start with a write, so SQLite takes its write lock up front
//! instead of failing a lock upgrade under concurrency; writes and
//! transactions go through the store's writer pool (on SQLite one
//! connection, so writers queue instead of contending for the file lock); the
//! checkout path's session inserts, one per request, are written together by
//! one task ([`checkout_sessions`]' `SessionRecorder`: a statement and a
//! commit for what has queued); and no transaction or pooled connection is
//! ever held across a call to Stripe.

pub mod apps;
pub mod checkout_sessions;
pub mod customer_stripe;
pub mod customers;
pub mod events;
pub mod invoices;
mod local;
pub use local::LocalReads;
pub mod profiles;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use crate::error::Error;

/// One page of a page-numbered list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// 1-based.
    pub number: u64,
    pub size: u64,
}

impl Page {
    pub fn offset(&self) -> u64 {
        self.number.saturating_sub(1).saturating_mul(self.size)
    }
}

/// A database that cannot be reached right now is a 503 the client may retry;
/// anything else from the database is an internal error, logged in full.
impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                tracing::error!(error = %err, "database unavailable");
                Error::Unavailable {
                    detail: "The database is unavailable; try again shortly.".into(),
                    retry_after_secs: Some(1),
                }
            }
            _ => Error::Internal(anyhow::Error::new(err).context("database error")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    /// Reads (and, on PostgreSQL, everything).
    pool: AnyPool,
    /// Writes and transactions: on SQLite a pool of one connection, on
    /// PostgreSQL the same pool as `pool`.
    writer: AnyPool,
    backend: Backend,
    /// Connections taken from the pool so far (see [`Store::acquisitions`]).
    acquisitions: Arc<AtomicU64>,
    /// The checkout path's session inserts, written together.
    sessions: checkout_sessions::SessionRecorder,
    /// SQLite file databases: the hot path's reads on the calling thread
    /// (see [`Store::read_row`]).
    local: Option<Arc<local::LocalReaders>>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`), creating an SQLite
    /// file (and its directory) when it does not exist yet.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            anyhow::bail!(
                "unsupported database URL [{}]: use sqlite://PATH or postgres://…",
                redact_url(url)
            );
        };
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .with_context(|| format!("invalid database URL [{}]", redact_url(&url)))?;
        let acquisitions = Arc::new(AtomicU64::new(0));
        let pool = pool_options(
            backend,
            match backend {
                // Readers beside the one writer: plenty for SQLite.
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            },
            &acquisitions,
        )
        .connect_with(options.clone())
        .await
        .with_context(|| format!("cannot connect to [{}]", redact_url(&url)))?;
        let writer = match backend {
            // SQLite lets one connection write at a time. Writers on several
            // connections wait for each other by sleeping and retrying
            // (busy_timeout) and each write throws away every other
            // connection's page cache; one writing connection, waited for in
            // the pool's queue, does neither (with no mmap_size, the warm checkout
            // took about 40% less CPU in the benchmark; see the README).
            Backend::Sqlite => pool_options(backend, 1, &acquisitions)
                .connect_with(options)
                .await
                .with_context(|| format!("cannot connect to [{}]", redact_url(&url)))?,
            Backend::Postgres => pool.clone(),
        };
        let local = match backend {
            Backend::Sqlite => sqlite_file(&url)
                .map(|path| local::LocalReaders::open(path).map(Arc::new))
                .transpose()?,
            Backend::Postgres => None,
        };
        Ok(Store {
            pool,
            sessions: checkout_sessions::SessionRecorder::start(writer.clone(), backend),
            writer,
            backend,
            acquisitions,
            local,
        })
    }

    /// At most one row of a read by key (`sql` with `$1…` bound to `args`),
    /// decoded. On an SQLite file it runs on the calling thread ([`local`]:
    /// no handoff to a connection thread), unless that would wait for a
    /// lock; otherwise through the pool. Counted as one acquisition either way.
    pub(crate) async fn read_row<T>(
        &self,
        sql: &'static str,
        args: &[&str],
        decode: impl Fn(&dyn Columns) -> crate::error::Result<T>,
    ) -> crate::error::Result<Option<T>> {
        if let Some(local) = &self.local {
            self.acquisitions.fetch_add(1, Ordering::Relaxed);
            match local.read_row(sql, args, &decode) {
                Ok(outcome) => return outcome,
                Err(local::Busy) => {
                    tracing::debug!(
                        "the database is locked for a local read; reading through the pool"
                    );
                }
            }
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for arg in args {
            query = query.bind(*arg);
        }
        let row = query.fetch_optional(&self.pool).await?;
        row.map(|row| decode(&row)).transpose()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// How many connections the store has taken from its pool since it
    /// connected: one per statement sent outside a transaction, one per
    /// transaction. Each is a round trip (SQLite: a handoff to the
    /// connection's worker thread and back), so tests count them for a
    /// request instead of timing it.
    pub fn acquisitions(&self) -> u64 {
        self.acquisitions.load(Ordering::Relaxed)
    }

    /// What the SQLite reads on the calling thread did ([`Store::read_row`];
    /// all zero on PostgreSQL and in-memory SQLite).
    pub fn local_reads(&self) -> LocalReads {
        self.local
            .as_ref()
            .map(|local| local.counts())
            .unwrap_or_default()
    }

    /// Connections open in the pool writes go through (on SQLite never more
    /// than one; on PostgreSQL the whole pool's).
    pub fn write_connections(&self) -> u32 {
        self.writer.size()
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR
            .run(&self.writer)
            .await
            .context("applying database migrations")
    }

    /// Ready means: the database answers and every migration this binary
    /// knows has been applied.
    pub async fn ready(&self) -> anyhow::Result<()> {
        let applied: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE success = $1")
                .bind(true)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        let known = MIGRATOR.iter().count() as i64;
        anyhow::ensure!(
            applied >= known,
            "{applied} of {known} migrations applied; run `meterpay migrate`"
        );
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        if let Some(local) = &self.local {
            local.close();
        }
        self.pool.close().await;
        self.writer.close().await;
    }
}

/// A pool of at most `max` connections, counting every acquisition.
fn pool_options(backend: Backend, max: u32, acquisitions: &Arc<AtomicU64>) -> AnyPoolOptions {
    let counted = acquisitions.clone();
    let counted_new = acquisitions.clone();
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(5))
        // sqlx pings every idle connection before handing it out (and
        // again when it comes back). On SQLite each ping is a round trip
        // to the connection's worker thread, on PostgreSQL one to the
        // server: a third of the warm checkout's handoffs. A connection
        // that died meanwhile fails its statement instead (a 503 the
        // client retries) and is dropped by the pool.
        .test_before_acquire(false)
        .before_acquire(move |_, _| {
            counted.fetch_add(1, Ordering::Relaxed);
            Box::pin(async { Ok(true) })
        })
        .after_connect(move |conn, _| {
            counted_new.fetch_add(1, Ordering::Relaxed);
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    // No mmap_size: after each write every other connection
                    // unmaps and maps the file again (munmap, TLB shootdowns,
                    // page faults), which cost more than the pread copies it
                    // saves (measured with perf and strace on the warm
                    // checkout).
                }
                Ok(())
            })
        })
}

/// The file of an SQLite database URL (as [`prepare_sqlite_url`] made it),
/// `None` for an in-memory database.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename();
    path.is_file().then(|| path.to_path_buf())
}

/// `sqlite://path` → an absolute-or-relative file URL in read-write-create
/// mode, with the parent directory created.
fn prepare_sqlite_url(url: &str) -> anyhow::Result<String> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path != ":memory:"
        && let Some(parent) = Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating the data directory {}", parent.display()))?;
    }
    let query = if query.contains("mode=") {
        query.to_owned()
    } else if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{path}?{query}"))
}

/// Hides the password of a database URL for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A value to bind; the `Any` driver takes a handful of primitive types.
#[derive(Debug, Clone)]
pub enum Arg {
    Text(String),
    OptText(Option<String>),
    Int(i64),
}

/// Builds SQL with numbered placeholders. (sqlx's `QueryBuilder` emits `?`
/// for `Any`, which PostgreSQL rejects.)
#[derive(Debug, Default)]
pub struct Sql {
    text: String,
    args: Vec<Arg>,
    /// Placeholders are `?`, bound in order (see [`Sql::in_order`]).
    anonymous: bool,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            args: Vec::new(),
            anonymous: false,
        }
    }

    /// A statement whose placeholders are written in argument order and
    /// never renumbered ([`Sql::push_parts`]): on SQLite they are `?`. sqlx
    /// looks up each numbered SQLite placeholder by name, a scan of the
    /// statement's names, so a many-row insert of n placeholders costs n²
    /// steps; `?` has no name and binds in one. PostgreSQL keeps `$n`.
    pub fn in_order(backend: Backend, text: &str) -> Self {
        Self {
            anonymous: backend == Backend::Sqlite,
            ..Self::new(text)
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `arg`.
    pub fn bind(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        if self.anonymous {
            self.text.push('?');
        } else {
            self.text.push_str(&format!("${}", self.args.len()));
        }
        self
    }

    pub fn bind_text(&mut self, value: impl Into<String>) -> &mut Self {
        self.bind(Arg::Text(value.into()))
    }

    /// The text and arguments, to reuse (a filter shared by a count and a page).
    pub fn into_parts(self) -> (String, Vec<Arg>) {
        (self.text, self.args)
    }

    /// Appends text built by another `Sql` with its arguments, renumbering
    /// its placeholders after this one's.
    pub fn push_parts(&mut self, text: &str, args: &[Arg]) -> &mut Self {
        debug_assert!(!self.anonymous, "in-order statements are not renumbered");
        let offset = self.args.len();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            self.text.push_str(&rest[..at]);
            let digits: String = rest[at + 1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            match digits.parse::<usize>() {
                Ok(n) => self.text.push_str(&format!("${}", n + offset)),
                Err(_) => self.text.push('$'),
            }
            rest = &rest[at + 1 + digits.len()..];
        }
        self.text.push_str(rest);
        self.args.extend(args.iter().cloned());
        self
    }

    pub fn query(&self) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
        Sql {
            text: self.text.clone(),
            args: self.args.clone(),
            anonymous: self.anonymous,
        }
        .into_query()
    }

    /// The query, moving the text and arguments into it (no copies).
    pub fn into_query(self) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
        // Safe: the text is built only from `&'static str` fragments and
        // numbered placeholders; every value travels as a bound argument.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(self.text));
        for arg in self.args {
            query = match arg {
                Arg::Text(v) => query.bind(v),
                Arg::OptText(v) => query.bind(v),
                Arg::Int(v) => query.bind(v),
            };
        }
        query
    }
}

/// A unique index (or primary key) as each backend names it when it is
/// violated: PostgreSQL by the index's name, SQLite by its columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unique {
    pub postgres: &'static str,
    pub sqlite: &'static str,
}

impl Unique {
    /// Live customers' keys (0001).
    pub const CUSTOMER_KEY: Unique = Unique {
        postgres: "customers_live_key",
        sqlite: "customers.namespace, customers.key",
    };
    /// Live customers' subject keys (0001).
    pub const SUBJECT_KEY: Unique = Unique {
        postgres: "customer_subject_keys_live",
        sqlite: "customer_subject_keys.namespace, customer_subject_keys.subject_key",
    };
    /// One live app per Stripe account and mode in a namespace (0008).
    pub const APP_STRIPE_ACCOUNT: Unique = Unique {
        postgres: "apps_live_stripe_account_mode",
        sqlite: "apps.namespace, apps.stripe_account_id, apps.livemode",
    };
    /// One live default billing profile per namespace (0003).
    pub const DEFAULT_PROFILE: Unique = Unique {
        postgres: "billing_profiles_live_default",
        sqlite: "billing_profiles.namespace",
    };
    /// One customer per Stripe customer in an app (0004).
    pub const STRIPE_CUSTOMER: Unique = Unique {
        postgres: "customer_stripe_stripe_customer",
        sqlite: "customer_stripe.app_id, customer_stripe.stripe_customer_id",
    };

    /// Whether `err` is a violation of this index.
    pub fn violated_by(self, err: &sqlx::Error) -> bool {
        let Some(db) = err.as_database_error() else {
            return false;
        };
        if !matches!(db.kind(), sqlx::error::ErrorKind::UniqueViolation) {
            return false;
        }
        match db.constraint() {
            Some(name) => name == self.postgres,
            // SQLite: "UNIQUE constraint failed: table.a, table.b".
            None => db
                .message()
                .rsplit_once(": ")
                .is_some_and(|(_, columns)| columns == self.sqlite),
        }
    }
}

/// `ResultExt::on_constraint` in the realworld-axum-sqlx manner: a named
/// unique index turns into a precise client error in one line, every other
/// database error converts as usual.
pub(crate) trait OnUnique<T> {
    fn on_unique(self, index: Unique, error: impl FnOnce() -> Error) -> crate::error::Result<T>;
}

impl<T> OnUnique<T> for std::result::Result<T, sqlx::Error> {
    fn on_unique(self, index: Unique, error: impl FnOnce() -> Error) -> crate::error::Result<T> {
        self.map_err(|err| {
            if index.violated_by(&err) {
                error()
            } else {
                err.into()
            }
        })
    }
}

/// A result row's columns by name, whichever driver read it: sqlx's rows and
/// the local reader's ([`local`]) decode through the same functions.
pub(crate) trait Columns {
    /// A text column, `None` for NULL.
    fn text(&self, column: &str) -> anyhow::Result<Option<String>>;
    /// An integer column, `None` for NULL.
    fn int(&self, column: &str) -> anyhow::Result<Option<i64>>;

    /// A text column that is never NULL.
    fn req_text(&self, column: &str) -> anyhow::Result<String> {
        self.text(column)?
            .with_context(|| format!("column {column} is NULL"))
    }

    /// An integer column that is never NULL.
    fn req_int(&self, column: &str) -> anyhow::Result<i64> {
        self.int(column)?
            .with_context(|| format!("column {column} is NULL"))
    }
}

impl Columns for AnyRow {
    fn text(&self, column: &str) -> anyhow::Result<Option<String>> {
        Ok(self.try_get(column)?)
    }

    fn int(&self, column: &str) -> anyhow::Result<Option<i64>> {
        Ok(self.try_get(column)?)
    }
}

pub(crate) fn get_ts(row: &dyn Columns, column: &str) -> anyhow::Result<time::OffsetDateTime> {
    let text = row.req_text(column)?;
    crate::timestamp::parse(&text).with_context(|| format!("bad timestamp in {column}: {text}"))
}

pub(crate) fn get_opt_ts(
    row: &dyn Columns,
    column: &str,
) -> anyhow::Result<Option<time::OffsetDateTime>> {
    let text = row.text(column)?;
    text.map(|t| crate::timestamp::parse(&t).with_context(|| format!("bad timestamp in {column}")))
        .transpose()
}

pub(crate) fn get_json<T: serde::de::DeserializeOwned>(
    row: &dyn Columns,
    column: &str,
) -> anyhow::Result<Option<T>> {
    let text = row.text(column)?;
    text.map(|t| serde_json::from_str(&t).with_context(|| format!("bad JSON in {column}")))
        .transpose()
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serialising plain data structs (maps of strings, addresses) cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact_url("sqlite://data/m.db"), "sqlite://data/m.db");
    }

    #[test]
    fn in_order_statements_use_anonymous_placeholders_on_sqlite_only() {
        let build = |backend| {
            let mut sql = Sql::in_order(backend, "INSERT INTO t VALUES (");
            sql.bind_text("a").push(", ").bind_text("b").push(")");
            sql.into_parts()
        };
        let (sqlite, args) = build(Backend::Sqlite);
        assert_eq!(sqlite, "INSERT INTO t VALUES (?, ?)");
        assert_eq!(args.len(), 2);
        let (postgres, _) = build(Backend::Postgres);
        assert_eq!(postgres, "INSERT INTO t VALUES ($1, $2)");
    }

    #[test]
    fn shared_filters_are_renumbered() {
        let mut filter = Sql::new(" WHERE a = ");
        filter.bind_text("x").push(" AND b = ").bind_text("y");
        let (text, args) = filter.into_parts();
        let mut query = Sql::new("SELECT 1 WHERE z = ");
        query
            .bind_text("z")
            .push_parts(&text, &args)
            .push(" LIMIT ");
        query.bind(Arg::Int(3));
        assert_eq!(
            query.text,
            "SELECT 1 WHERE z = $1 WHERE a = $2 AND b = $3 LIMIT $4"
        );
        assert_eq!(query.args.len(), 4);
    }

    #[test]
    fn sqlite_urls_create_files() {
        assert_eq!(
            prepare_sqlite_url("sqlite://:memory:").unwrap(),
            "sqlite://:memory:?mode=rwc"
        );
    }
}
