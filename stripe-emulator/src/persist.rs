//! The state file: the emulator's state kept on disk so that a restart continues where the
//! last run stopped ([`crate::EmulatorConfig::state_file`]).
//!
//! What is kept: the API keys and their accounts with everything an [`Account`] holds (every
//! object and list, deleted customers, idempotent responses, webhook endpoints' secrets — and
//! whatever fields are added to `Account` later: it is saved with serde as a whole), the clock
//! offset and the request log's `seq` counter. The expiry queue is rebuilt from the open
//! checkout sessions on load. Not kept: the request log's entries, the webhook delivery
//! attempt log, fault rules (they come from the configuration) and deliveries still queued or
//! being retried when the emulator stopped.
//!
//! Format: one JSON object, `{"format": "stripe-emulator-state", "version": 1, "saved_at",
//! "clock_offset", "log_seq", "keys": {key: account id}, "accounts": {id: Account}}`; each
//! stored object is `{"json": "<its compact JSON text>", "nulls": [names of its null fields]}`
//! (text copied as a string: saving and loading never parse an object). [`VERSION`] changes
//! whenever a file written by the new code could not be read correctly by the old one or the
//! other way round (a field added with a usable default does not need a new version); a file
//! of another version is refused with an error naming the file and both versions, never
//! guessed at.
//!
//! Writing: requests only count changes ([`State::touch`]: one increment under the lock they
//! hold anyway). A background task wakes every [`WRITE_INTERVAL`]; if the count moved it takes
//! a snapshot under the lock — a clone of the maps, where a stored object's clone copies no
//! text (its text is an `Arc<str>`) — and serialises and writes it on a blocking thread without
//! the lock. For big states the interval stretches so that the copy holds the lock at most ~2%
//! of the time and the writes use at most a quarter of a core (up to 30 s between writes).
//! The copy is still proportional to what is stored (a key and an `Arc` per object and list
//! entry, mostly cache misses): with 20,000 checkout sessions (60,000 objects, 48 MB of text)
//! the release binary held the lock ~45 ms per snapshot and wrote the 84 MB file in ~200 ms
//! (so it writes every ~2.3 s while changes keep coming); loading that file took ~0.9 s. An
//! append-only journal of changed objects would make the lock-held work proportional to the
//! changes instead; not done. Each write goes to a temporary
//! file in the same directory, is fsynced, renamed over the state file and the directory is
//! fsynced: the file on disk is always a complete snapshot, and a crash loses at most the
//! changes of the last interval. The emulator writes once more when it shuts down.
//!
//! One emulator per state file: a lock on `<state file>.lock` is held while it runs.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::Shared;
use crate::state::{Account, ScheduledInvoiceWork, State, real_now};

/// The `format` marker of a state file.
pub const FORMAT: &str = "stripe-emulator-state";
/// The state file format this emulator reads and writes.
pub const VERSION: u32 = 1;
/// How often the writer looks for changes (at the least; see the module docs).
pub const WRITE_INTERVAL: Duration = Duration::from_millis(500);
/// The longest the writer waits between snapshots of a changing state, however big (what a
/// crash can lose at most).
const MAX_WRITE_INTERVAL: Duration = Duration::from_secs(30);

/// Everything the state file keeps.
#[derive(Serialize, Deserialize)]
pub(crate) struct Snapshot {
    format: String,
    version: u32,
    /// Real Unix time of the write (for people reading the file).
    #[serde(default)]
    saved_at: i64,
    #[serde(default)]
    clock_offset: i64,
    #[serde(default)]
    log_seq: u64,
    #[serde(default)]
    keys: HashMap<String, String>,
    #[serde(default)]
    accounts: HashMap<String, Account>,
    /// Invoice work waiting for the clock (finalization, collection, overdue).
    #[serde(default)]
    invoice_schedule: BTreeSet<ScheduledInvoiceWork>,
    #[serde(default)]
    invoice_schedule_seq: u64,
}

impl Snapshot {
    /// A copy of what the file keeps (done under the state's lock; copies no object text).
    pub(crate) fn take(state: &State) -> Snapshot {
        Snapshot {
            format: FORMAT.to_string(),
            version: VERSION,
            saved_at: real_now(),
            clock_offset: state.clock_offset,
            log_seq: state.log_seq,
            keys: state.keys.clone(),
            accounts: state.accounts.clone(),
            invoice_schedule: state.invoice_schedule.clone(),
            invoice_schedule_seq: state.invoice_schedule_seq,
        }
    }

    /// Puts the snapshot into a fresh state and rebuilds the expiry queue from the open
    /// checkout sessions (in each account's creation order).
    pub(crate) fn restore(self, state: &mut State) {
        state.clock_offset = self.clock_offset;
        state.log_seq = self.log_seq;
        state.keys = self.keys;
        state.accounts = self.accounts;
        state.invoice_schedule = self.invoice_schedule;
        state.invoice_schedule_seq = self.invoice_schedule_seq;
        let mut open: Vec<(String, String, i64)> = Vec::new();
        let mut account_ids: Vec<&String> = state.accounts.keys().collect();
        account_ids.sort();
        for account_id in account_ids {
            let account = &state.accounts[account_id];
            for id in account.lists.get("checkout.session").into_iter().flatten() {
                let Some(session) = account.objects.get(id).map(|stored| stored.value()) else {
                    continue;
                };
                if session["status"] == "open"
                    && let Some(expires_at) = session["expires_at"].as_i64()
                {
                    open.push((account_id.clone(), id.clone(), expires_at));
                }
            }
        }
        for (account, id, expires_at) in open {
            state.schedule_expiry(&account, &id, expires_at);
        }
    }
}

/// Just the header, read first so that a file of another version is refused by its version
/// rather than by whatever field it lacks.
#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    version: Option<serde_json::Value>,
}

fn refused(path: &Path, why: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "the Stripe emulator's state file {} {why}; the emulator did not start (move the file away, or delete it to start with an empty emulator)",
            path.display()
        ),
    )
}

/// Reads the state file; `Ok(None)` when there is none yet. An unreadable, corrupt or
/// unknown-version file is an error naming the file.
pub(crate) fn load(path: &Path) -> io::Result<Option<Snapshot>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(io::Error::new(
                error.kind(),
                format!(
                    "cannot read the Stripe emulator's state file {}: {error}",
                    path.display()
                ),
            ));
        }
    };
    let header: Header = serde_json::from_slice(&bytes)
        .map_err(|error| refused(path, format!("is not a valid state file ({error})")))?;
    if header.format.as_deref() != Some(FORMAT) {
        return Err(refused(
            path,
            format!("is not a state file (it has no \"format\": \"{FORMAT}\")"),
        ));
    }
    match header.version {
        Some(version) if version == VERSION => {}
        Some(version) => {
            return Err(refused(
                path,
                format!(
                    "has format version {version}, and this emulator reads only version {VERSION}"
                ),
            ));
        }
        None => return Err(refused(path, "has no format version")),
    }
    let snapshot = serde_json::from_slice(&bytes)
        .map_err(|error| refused(path, format!("cannot be read ({error})")))?;
    Ok(Some(snapshot))
}

/// Writes `snapshot` atomically: temporary file in the same directory, fsync, rename, fsync
/// of the directory.
pub(crate) fn write(path: &Path, snapshot: &Snapshot) -> io::Result<()> {
    let context = |error: io::Error| {
        io::Error::new(
            error.kind(),
            format!(
                "writing the Stripe emulator's state file {}: {error}",
                path.display()
            ),
        )
    };
    let dir = directory_of(path);
    let name = path
        .file_name()
        .ok_or_else(|| context(io::Error::other("the path names no file")))?;
    let temporary = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let written = (|| {
        let mut writer = BufWriter::with_capacity(1 << 16, File::create(&temporary)?);
        serde_json::to_writer(&mut writer, snapshot)?;
        writer.write_all(b"\n")?;
        let file = writer.into_inner().map_err(|error| error.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temporary, path)?;
        sync_directory(&dir)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written.map_err(context)
}

fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(unix)]
fn sync_directory(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_directory(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Takes `<state file>.lock` for this emulator (released when the returned file is dropped).
pub(crate) fn lock(path: &Path) -> io::Result<File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|error| {
            io::Error::new(
                error.kind(),
                format!(
                    "cannot use the Stripe emulator's state file {} (creating its lock {}: {error})",
                    path.display(),
                    lock_path.display()
                ),
            )
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "the Stripe emulator's state file {} is in use by another running emulator (it holds {})",
                path.display(),
                lock_path.display()
            ),
        )),
        Err(std::fs::TryLockError::Error(error)) => Err(io::Error::new(
            error.kind(),
            format!("locking {}: {error}", lock_path.display()),
        )),
    }
}

/// Saves a snapshot if the state changed since the change count `saved`; returns the count
/// saved now, or None when nothing changed.
pub(crate) async fn save_if_changed(
    shared: &Arc<Shared>,
    path: &Path,
    saved: u64,
) -> io::Result<Option<(u64, Duration)>> {
    let (snapshot, changes, copy) = {
        let state = shared.lock();
        if state.changes() == saved {
            return Ok(None);
        }
        let started = Instant::now();
        let snapshot = Snapshot::take(&state);
        (snapshot, state.changes(), started.elapsed())
    };
    let started = Instant::now();
    let target = path.to_path_buf();
    tokio::task::spawn_blocking(move || write(&target, &snapshot))
        .await
        .map_err(io::Error::other)??;
    let took = started.elapsed();
    shared.state_writes.fetch_add(1, Ordering::Relaxed);
    shared
        .state_last_copy_us
        .store(copy.as_micros() as u64, Ordering::Relaxed);
    shared
        .state_last_write_us
        .store(took.as_micros() as u64, Ordering::Relaxed);
    // The next wait: the copy holds the lock ≤ ~2% of the time, writing uses ≤ ~25% of a core.
    let wait = WRITE_INTERVAL
        .max(copy * 50)
        .max(took * 4)
        .min(MAX_WRITE_INTERVAL);
    Ok(Some((changes, wait)))
}

/// The writer: saves changes every interval until `stop` fires, then once more; holds the
/// file's lock until it ends.
pub(crate) async fn run(
    shared: Arc<Shared>,
    path: PathBuf,
    mut saved: u64,
    lock: File,
    mut stop: watch::Receiver<bool>,
) {
    let mut wait = WRITE_INTERVAL;
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(wait) => false,
            _ = stop.changed() => true,
        };
        match save_if_changed(&shared, &path, saved).await {
            Ok(Some((changes, next_wait))) => {
                saved = changes;
                wait = next_wait;
            }
            Ok(None) => wait = WRITE_INTERVAL,
            Err(error) => {
                tracing::error!("{error}; trying again");
                wait = WRITE_INTERVAL;
            }
        }
        if stopping {
            break;
        }
    }
    drop(lock);
}
