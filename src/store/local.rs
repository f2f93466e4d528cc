//! SQLite reads on the calling thread.
//!
//! sqlx runs every SQLite connection on a thread of its own, so each
//! statement is a handoff to that thread and back: a channel send, a futex
//! wake and a context switch each way. For the hot path's point reads (one
//! row by primary key, from the page cache) the handoff costs several times
//! the read: skipping the warm checkout's one read took meterpay's CPU per
//! request from about 0.25 ms to 0.17 ms and its context switches from 4.7
//! to 1.4 (README, "Measured").
//!
//! So those reads run here, synchronously, on read-only rusqlite connections
//! to the same file (one SQLite library: rusqlite and sqlx link the same
//! `libsqlite3-sys`). In WAL mode a reader does not wait for the writer. The
//! connections have no busy timeout: a read that would have to wait (another
//! process holding the file in exclusive locking mode, WAL recovery) comes
//! back as [`Busy`] at once and the caller reads through the pool instead,
//! so a runtime thread never sleeps on a lock here.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::Columns;
use crate::error::{Error, Result};

/// Idle connections kept: about one per thread that reads at the same time.
const MAX_IDLE: usize = 8;

/// `$1…$n`, the store's placeholders, bound by name.
const PLACEHOLDERS: [&str; 4] = ["$1", "$2", "$3", "$4"];

/// The read would have waited for a lock: read through the pool.
#[derive(Debug)]
pub(super) struct Busy;

/// Read-only connections to one SQLite file, taken by whichever thread reads.
pub(super) struct LocalReaders {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Reads run here, and of them those that found a lock ([`Busy`]).
    reads: AtomicU64,
    busy: AtomicU64,
}

/// What the local readers did since the store connected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalReads {
    /// Reads run on the calling thread.
    pub reads: u64,
    /// Of those, reads that found the database locked and went through the
    /// pool instead.
    pub busy: u64,
}

impl LocalReaders {
    /// Readers of the database file at `path`; opens one to check it can.
    pub(super) fn open(path: PathBuf) -> anyhow::Result<LocalReaders> {
        let first = connect(&path)?;
        Ok(LocalReaders {
            path,
            idle: Mutex::new(vec![first]),
            reads: AtomicU64::new(0),
            busy: AtomicU64::new(0),
        })
    }

    pub(super) fn counts(&self) -> LocalReads {
        LocalReads {
            reads: self.reads.load(Ordering::Relaxed),
            busy: self.busy.load(Ordering::Relaxed),
        }
    }

    /// At most one row of `sql` (`$1…` bound to `args`), decoded on this thread.
    pub(super) fn read_row<T>(
        &self,
        sql: &str,
        args: &[&str],
        decode: impl FnOnce(&dyn Columns) -> Result<T>,
    ) -> std::result::Result<Result<Option<T>>, Busy> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let taken = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match taken {
            Some(conn) => conn,
            None => match connect(&self.path) {
                Ok(conn) => conn,
                Err(err) => return Ok(Err(Error::Internal(err))),
            },
        };
        let outcome = query_row(&conn, sql, args, decode);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(conn);
        }
        match outcome {
            Err(Failure::Sqlite(err)) if is_busy(&err) => {
                self.busy.fetch_add(1, Ordering::Relaxed);
                Err(Busy)
            }
            Err(Failure::Sqlite(err)) => Ok(Err(Error::Internal(
                anyhow::Error::new(err).context("database error"),
            ))),
            Err(Failure::Decode(err)) => Ok(Err(err)),
            Ok(found) => Ok(Ok(found)),
        }
    }

    /// Closes the idle connections.
    pub(super) fn close(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

enum Failure {
    Sqlite(rusqlite::Error),
    Decode(Error),
}

impl From<rusqlite::Error> for Failure {
    fn from(err: rusqlite::Error) -> Self {
        Failure::Sqlite(err)
    }
}

fn query_row<T>(
    conn: &Connection,
    sql: &str,
    args: &[&str],
    decode: impl FnOnce(&dyn Columns) -> Result<T>,
) -> std::result::Result<Option<T>, Failure> {
    let mut statement = conn.prepare_cached(sql)?;
    for (name, value) in PLACEHOLDERS.iter().zip(args) {
        if let Some(index) = statement.parameter_index(name)? {
            statement.raw_bind_parameter(index, value)?;
        }
    }
    debug_assert!(
        args.len() <= PLACEHOLDERS.len(),
        "more arguments than placeholders"
    );
    let mut rows = statement.raw_query();
    match rows.next()? {
        Some(row) => decode(&LocalRow::new(row))
            .map(Some)
            .map_err(Failure::Decode),
        None => Ok(None),
    }
}

fn connect(path: &std::path::Path) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {} to read", path.display()))?;
    // No busy timeout (see the module's comment): never wait for a lock.
    conn.busy_timeout(std::time::Duration::ZERO)?;
    Ok(conn)
}

fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// A row with its statement's column names read once: rusqlite finds a
/// column by name by asking SQLite for every column's name and comparing
/// without case, which for the checkout's ~35 columns read by name was most
/// of the decoding's time.
struct LocalRow<'r, 's> {
    row: &'r rusqlite::Row<'s>,
    names: Vec<&'r str>,
}

impl<'r, 's> LocalRow<'r, 's> {
    fn new(row: &'r rusqlite::Row<'s>) -> Self {
        let names = row.as_ref().column_names();
        LocalRow { row, names }
    }

    fn value(&self, column: &str) -> anyhow::Result<ValueRef<'_>> {
        let index = self
            .names
            .iter()
            .position(|name| *name == column)
            .with_context(|| format!("no column {column}"))?;
        self.row
            .get_ref(index)
            .with_context(|| format!("reading column {column}"))
    }
}

impl Columns for LocalRow<'_, '_> {
    fn text(&self, column: &str) -> anyhow::Result<Option<String>> {
        match self.value(column)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(text) => std::str::from_utf8(text)
                .map(|text| Some(text.to_owned()))
                .with_context(|| format!("column {column} is not UTF-8")),
            other => anyhow::bail!("column {column} is {}, not text", other.data_type()),
        }
    }

    fn int(&self, column: &str) -> anyhow::Result<Option<i64>> {
        match self.value(column)? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(n) => Ok(Some(n)),
            other => anyhow::bail!("column {column} is {}, not an integer", other.data_type()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(row: &dyn Columns) -> Result<String> {
        row.text("v")?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("NULL")))
    }

    #[test]
    fn reads_a_row_by_named_placeholders_and_returns_the_connection() {
        let (writer, readers) = database(
            "CREATE TABLE t (k TEXT, n TEXT, v TEXT); \
             INSERT INTO t VALUES ('a', 'x', 'one'), ('b', 'x', 'two');",
        );
        let sql = "SELECT v FROM t WHERE n = $1 AND k = $2";
        let found = readers.read_row(sql, &["x", "b"], text).unwrap().unwrap();
        assert_eq!(found.as_deref(), Some("two"));
        let none = readers.read_row(sql, &["y", "b"], text).unwrap().unwrap();
        assert_eq!(none, None);
        // A write committed after the reader's last read is seen.
        writer
            .execute("UPDATE t SET v = 'three' WHERE k = 'b'", [])
            .unwrap();
        let found = readers.read_row(sql, &["x", "b"], text).unwrap().unwrap();
        assert_eq!(found.as_deref(), Some("three"));
        assert_eq!(
            readers.idle.lock().unwrap().len(),
            1,
            "one connection, reused"
        );
    }

    #[test]
    fn columns_are_found_by_exact_name_and_checked_for_their_type() {
        let (_writer, readers) = database(
            "CREATE TABLE t (v TEXT, n INTEGER, z TEXT); INSERT INTO t VALUES ('one', 7, NULL);",
        );
        let read = |decode: fn(&dyn Columns) -> anyhow::Result<String>| {
            readers
                .read_row("SELECT v, n, z AS alias FROM t", &[], |row| {
                    decode(row).map_err(Error::Internal)
                })
                .unwrap()
                .map(Option::unwrap)
                .map_err(|err| format!("{err:?}"))
        };
        assert_eq!(
            read(|row| Ok(format!(
                "{:?} {:?} {:?}",
                row.text("v")?,
                row.int("n")?,
                row.text("alias")?
            ))),
            Ok(r#"Some("one") Some(7) None"#.to_owned())
        );
        let wrong_type = read(|row| Ok(format!("{:?}", row.text("n")?))).unwrap_err();
        assert!(
            wrong_type.contains("column n is Integer, not text"),
            "{wrong_type}"
        );
        let missing = read(|row| Ok(format!("{:?}", row.text("z")?))).unwrap_err();
        assert!(missing.contains("no column z"), "{missing}");
    }

    #[test]
    fn a_read_that_would_wait_for_a_lock_is_busy_at_once() {
        let (writer, readers) = database("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('a');");
        // Exclusive locking mode: after its next write the writer keeps the
        // file locked, and WAL readers have to wait for it.
        writer
            .execute_batch("PRAGMA locking_mode = EXCLUSIVE; UPDATE t SET v = 'b';")
            .unwrap();
        let outcome = readers.read_row("SELECT v FROM t", &[], text);
        assert!(matches!(outcome, Err(Busy)), "{:?}", outcome.map(|_| ()));
        drop(writer);
        let found = readers
            .read_row("SELECT v FROM t", &[], text)
            .unwrap()
            .unwrap();
        assert_eq!(found.as_deref(), Some("b"));
    }

    /// The store's side: a read the local readers find locked is read
    /// through the pool. (Here the two point at different files, so the
    /// answer shows which one read it: with the server's own connections open
    /// on one file, none can take it in exclusive mode.)
    #[tokio::test]
    async fn the_store_reads_through_its_pool_when_a_local_read_is_busy() {
        let pooled = tempdir().join("pooled.db");
        let mut store = super::super::Store::connect(&format!("sqlite://{}", pooled.display()))
            .await
            .unwrap();
        sqlx::raw_sql("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('from the pool');")
            .execute(&store.writer)
            .await
            .unwrap();
        let (writer, readers) =
            database("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('local');");
        store.local = Some(std::sync::Arc::new(readers));
        let read = |store: &super::super::Store| {
            let store = store.clone();
            async move { store.read_row("SELECT v FROM t", &[], text).await.unwrap() }
        };
        writer
            .execute_batch("PRAGMA locking_mode = EXCLUSIVE; UPDATE t SET v = 'locked';")
            .unwrap();
        assert_eq!(read(&store).await.as_deref(), Some("from the pool"));
        assert_eq!(store.local_reads(), LocalReads { reads: 1, busy: 1 });
        drop(writer);
        assert_eq!(read(&store).await.as_deref(), Some("locked"));
        assert_eq!(store.local_reads(), LocalReads { reads: 2, busy: 1 });
        store.close().await;
    }

    /// A WAL database made by `schema` through a writing connection, and
    /// local readers of it.
    fn database(schema: &str) -> (Connection, LocalReaders) {
        let path = tempdir().join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(&format!("PRAGMA journal_mode = WAL; {schema}"))
            .unwrap();
        let readers = LocalReaders::open(path).unwrap();
        (writer, readers)
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("meterpay-local-{}", ulid::Ulid::generate()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
