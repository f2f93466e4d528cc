#![recursion_limit = "256"]
//! A faithful, stateful emulator of the slice of Stripe's API that meterpay uses.
//!
//! Start one with [`Emulator::start`] (tests) or [`serve`] (the `meterpay emulate-stripe`
//! command). Stripe's API lives under `/v1/`, the hosted checkout page under `/c/pay/{id}`, the
//! billing portal under `/p/session/{id}`, the hosted invoice page under `/i/{id}`, and the emulator's control API under `/_emulator/`
//! (see `README.md`).
//!
//! Memory: objects are stored as compact JSON text (see `state::StoredObject`); a checkout
//! session with its setup intent and `setup_intent.created` event costs ~2.5 KB of text and
//! ~4.9 KB of RSS in the release binary. The request log is a ring of
//! [`EmulatorConfig::request_log_capacity`] entries. Expiry works from a queue ordered by
//! `expires_at`, so the work of a request does not grow with what is stored.
//!
//! With [`EmulatorConfig::state_file`] the state survives restarts: requests only count their
//! changes, and a background task writes snapshots atomically (`persist.rs`, README).

mod api;
mod cards;
mod error;
mod expand;
/// Stripe's form decoding (public for the property tests and other clients).
pub mod form;
mod hosted;
mod hosted_invoice;
mod ids;
/// Stripe's money arithmetic (public for the property tests).
pub mod money;
mod pagination;
mod params;
mod persist;
mod resources;
mod spec;
#[rustfmt::skip]
mod spec_gen;
mod state;
mod webhooks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

pub use cards::{BillingAddress, CardInput};
pub use persist::{VERSION as STATE_FILE_VERSION, WRITE_INTERVAL as STATE_FILE_WRITE_INTERVAL};
pub use state::{API_VERSION, DeliveryAttempt, FaultRule, RequestLogEntry};
pub use webhooks::{signature_header, verify_signature};

/// Emulator settings.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// API keys accepted at start, each creating its own emulated account (stable acct_ id derived from the key).
    pub api_keys: Vec<String>,
    /// Base URL at which the emulator is reachable from outside if different from its bound address (for `url` of hosted sessions); None = http://{bound addr}
    pub public_url: Option<String>,
    /// Webhook delivery attempts per event and endpoint (first attempt included).
    pub webhook_max_attempts: u32,
    /// Delay before the first retry; doubles for each further retry.
    pub webhook_retry_base_ms: u64,
    /// Per-attempt timeout of a webhook delivery.
    pub webhook_timeout_ms: u64,
    /// Fault rules active from the start (see [`FaultRule`]).
    pub faults: Vec<FaultRule>,
    /// How many entries the request log keeps (a ring: the oldest fall off, `seq` keeps
    /// counting). Default 10,000; environment `STRIPE_EMULATOR_REQUEST_LOG_CAPACITY` through
    /// [`EmulatorConfig::with_env`].
    pub request_log_capacity: usize,
    /// Where the emulator keeps its state between runs (see `persist.rs` and the README):
    /// loaded on start if the file exists (a file that cannot be read is a start error naming
    /// it), written within [`STATE_FILE_WRITE_INTERVAL`] of a change and on shutdown. None =
    /// in memory only.
    pub state_file: Option<PathBuf>,
}

impl EmulatorConfig {
    /// Applies settings from the environment: `STRIPE_EMULATOR_REQUEST_LOG_CAPACITY`.
    pub fn with_env(mut self) -> Result<Self, String> {
        if let Ok(value) = std::env::var("STRIPE_EMULATOR_REQUEST_LOG_CAPACITY") {
            self.request_log_capacity = value.trim().parse().map_err(|error| {
                format!("STRIPE_EMULATOR_REQUEST_LOG_CAPACITY={value:?}: {error}")
            })?;
        }
        Ok(self)
    }
}

/// The API key seeded by [`EmulatorConfig::default`].
pub const DEFAULT_API_KEY: &str = "sk_test_emulator";

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            api_keys: vec![DEFAULT_API_KEY.to_string()],
            public_url: None,
            webhook_max_attempts: 5,
            webhook_retry_base_ms: 200,
            webhook_timeout_ms: 5_000,
            faults: Vec::new(),
            request_log_capacity: 10_000,
            state_file: None,
        }
    }
}

pub(crate) struct Shared {
    state: Mutex<state::State>,
    config: EmulatorConfig,
    /// TCP connections accepted since start.
    connections_accepted: AtomicU64,
    /// Base URL of hosted pages (a copy of the state's, readable without the lock).
    public_url: String,
    /// Snapshots written to the state file since start.
    state_writes: AtomicU64,
    /// Microseconds the last snapshot held the lock to copy the state.
    state_last_copy_us: AtomicU64,
    /// Microseconds the last snapshot took to serialise, write and fsync (without the lock).
    state_last_write_us: AtomicU64,
}

impl Shared {
    /// Locks the state. A panic while holding the lock cannot leave it half-updated in a way
    /// that matters for an emulator, so a poisoned lock is recovered rather than propagated.
    pub(crate) fn lock(&self) -> MutexGuard<'_, state::State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Per-connection handle that lets a handler drop its connection without responding.
#[derive(Clone)]
pub(crate) struct Killer(pub Arc<Notify>);

/// A running emulator. Dropping it (or calling [`Emulator::shutdown`]) stops the server.
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    base_url: String,
    shutdown_tx: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// The state file's writer (with [`EmulatorConfig::state_file`]).
    persister: Option<tokio::task::JoinHandle<()>>,
}

impl Emulator {
    /// Bind `addr` (use "127.0.0.1:0" in tests), spawn the server on the current tokio runtime, return at once.
    ///
    /// With [`EmulatorConfig::state_file`] the state is loaded from it first (an error naming
    /// the file if it cannot be read or is another emulator's) and written to it at once, so a
    /// file that cannot be written is a start error too.
    pub async fn start(addr: SocketAddr, config: EmulatorConfig) -> std::io::Result<Emulator> {
        let stored = match &config.state_file {
            Some(path) => {
                let lock = persist::lock(path)?;
                let read = path.clone();
                let snapshot = tokio::task::spawn_blocking(move || persist::load(&read))
                    .await
                    .map_err(std::io::Error::other)??;
                Some((path.clone(), lock, snapshot))
            }
            None => None,
        };
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let base_url = format!("http://{local}");
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| base_url.clone());
        let public_url = public_url.trim_end_matches('/').to_string();
        let mut state = state::State::new(public_url.clone());
        let mut stored = stored;
        if let Some(snapshot) = stored.as_mut().and_then(|(_, _, snapshot)| snapshot.take()) {
            snapshot.restore(&mut state);
        }
        for key in &config.api_keys {
            state.add_key(key);
        }
        state.faults = config.faults.clone();
        state.log_capacity = config.request_log_capacity;
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            config,
            connections_accepted: AtomicU64::new(0),
            public_url,
            state_writes: AtomicU64::new(0),
            state_last_copy_us: AtomicU64::new(0),
            state_last_write_us: AtomicU64::new(0),
        });
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let persister = match stored {
            Some((path, lock, _)) => {
                // Written at once: the file exists from the start, and a path that cannot be
                // written fails the start rather than the first save.
                // u64::MAX: a change count the new state has not reached, so this writes.
                let saved = persist::save_if_changed(&shared, &path, u64::MAX)
                    .await?
                    .map(|(changes, _)| changes)
                    .unwrap_or_default();
                Some(tokio::spawn(persist::run(
                    shared.clone(),
                    path,
                    saved,
                    lock,
                    shutdown_rx.clone(),
                )))
            }
            None => None,
        };
        let delivery_tx = webhooks::start(shared.clone());
        shared.lock().delivery_tx = Some(delivery_tx);
        let app = api::router(shared.clone());
        // Sessions also expire in real time without any request arriving.
        let ticker_shared = shared.clone();
        let mut ticker_stop = shutdown_rx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let mut state = ticker_shared.lock();
                        state.current_request = None;
                        state.sweep_expired();
                    }
                    _ = ticker_stop.changed() => break,
                }
            }
        });
        let task = tokio::spawn(api::accept_loop(listener, app, shared.clone(), shutdown_rx));
        Ok(Emulator {
            shared,
            addr: local,
            base_url,
            shutdown_tx,
            task,
            persister,
        })
    }

    /// "http://127.0.0.1:PORT"
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Create a new account with a fresh `sk_test_…` key; returns (account_id, secret_key).
    pub async fn create_account(&self) -> (String, String) {
        api::create_account(&self.shared)
    }

    /// Adds an API key (creating its account if new); returns the account id.
    pub fn add_api_key(&self, key: &str) -> String {
        self.shared.lock().add_key(key)
    }

    /// Adds another API key to an existing account, as rolling a key in the
    /// Stripe dashboard does; false if the account does not exist.
    pub fn add_api_key_to_account(&self, account: &str, key: &str) -> bool {
        let mut state = self.shared.lock();
        if !state.accounts.contains_key(account) {
            return false;
        }
        state.touch();
        state.keys.insert(key.to_string(), account.to_string());
        true
    }

    /// Revokes an API key: later requests with it get Stripe's 401.
    pub fn revoke_api_key(&self, key: &str) -> bool {
        let mut state = self.shared.lock();
        state.touch();
        state.keys.remove(key).is_some()
    }

    /// Every secret the emulator handed out: each account's API keys and each
    /// webhook endpoint's signing secret (for tests that check logs never show one).
    pub fn secrets(&self) -> Vec<String> {
        let state = self.shared.lock();
        state
            .keys
            .keys()
            .chain(
                state
                    .accounts
                    .values()
                    .flat_map(|account| account.webhook_secrets.values()),
            )
            .cloned()
            .collect()
    }

    /// The account id an API key belongs to.
    pub fn account_for_key(&self, key: &str) -> Option<String> {
        self.shared.lock().keys.get(key).cloned()
    }

    /// Stripe API requests received with `seq > since` (0 = all) that are still in the log
    /// (it keeps the latest [`EmulatorConfig::request_log_capacity`] entries).
    pub fn requests(&self, since: u64) -> Vec<RequestLogEntry> {
        self.shared.lock().log_since(since).cloned().collect()
    }

    /// TCP connections the emulator has accepted since it started (API, control and hosted
    /// pages alike). Also `GET /_emulator/connections` → `{"accepted": N}`.
    pub fn connections_accepted(&self) -> u64 {
        self.shared.connections_accepted.load(Ordering::Relaxed)
    }

    pub fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }

    /// The emulator's current Unix time (real time plus advances).
    pub fn now(&self) -> i64 {
        self.shared.lock().now()
    }

    /// Moves the clock forward; open checkout sessions past `expires_at` expire (with events).
    pub fn advance_clock(&self, seconds: i64) -> i64 {
        let mut state = self.shared.lock();
        state.touch();
        state.clock_offset += seconds;
        state.current_request = None;
        state.sweep_expired();
        state.now()
    }

    /// How many checkout sessions the expiry step has examined since start (each stored session
    /// at most once, when its `expires_at` passes): a work counter showing that requests do not
    /// scan what is stored. Also `GET /_emulator/stats` (`expiry_sessions_examined`).
    pub fn expiry_sessions_examined(&self) -> u64 {
        self.shared.lock().expiry_examined
    }

    /// Replaces the fault rules.
    pub fn set_faults(&self, rules: Vec<FaultRule>) {
        self.shared.lock().faults = rules;
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Completes an open embedded (or hosted) setup session with a card, as Stripe.js would.
    /// `Ok(session)` on success; `Err(error body)` (Stripe's error shape) on decline or misuse.
    pub fn complete_checkout_session(
        &self,
        session_id: &str,
        card: &CardInput,
        authenticate: bool,
    ) -> Result<Value, Value> {
        api::complete_session(&self.shared, session_id, card, authenticate)
            .map_err(|error| error.body())
    }

    /// Pays invoice `id` now, off-session, with a card giving `outcome` (`"succeed"` 4242…,
    /// `"decline"` 0341, `"requires_action"` 3184); a draft is finalized first. Returns
    /// `{"invoice", "outcome", "error"}` or Stripe's error body. Also
    /// `POST /_emulator/invoices/{id}/pay`.
    pub fn pay_invoice(&self, id: &str, outcome: &str) -> Result<Value, Value> {
        api::invoice_command(
            &self.shared,
            id,
            api::InvoiceCommand::Pay {
                outcome: Some(outcome.to_string()),
                payment_method: None,
            },
        )
        .map_err(|error| error.body())
    }

    /// Answers the 3D Secure step of invoice `id`'s payment (as the hosted invoice page does).
    pub fn authenticate_invoice_payment(&self, id: &str, succeed: bool) -> Result<Value, Value> {
        api::invoice_command(&self.shared, id, api::InvoiceCommand::Authenticate(succeed))
            .map_err(|error| error.body())
    }

    /// Does invoice `id`'s next automatic step now (finalize a draft; collect an open
    /// `charge_automatically` invoice). Also `POST /_emulator/invoices/{id}/advance`.
    pub fn advance_invoice(&self, id: &str) -> Result<Value, Value> {
        api::invoice_command(&self.shared, id, api::InvoiceCommand::Advance)
            .map_err(|error| error.body())
    }

    /// Every event of every account, oldest first.
    pub fn events(&self) -> Vec<Value> {
        api::all_events(&self.shared, None)
    }

    /// Every webhook delivery attempt, oldest first.
    pub fn webhook_deliveries(&self) -> Vec<DeliveryAttempt> {
        self.shared.lock().deliveries.clone()
    }

    /// Looks up any object by id across accounts (as stored, unexpanded).
    pub fn object(&self, id: &str) -> Option<Value> {
        self.shared
            .lock()
            .accounts
            .values()
            .find_map(|account| account.objects.get(id).map(state::StoredObject::value))
    }

    /// Snapshots written to the state file since start (0 without one). Also
    /// `GET /_emulator/stats` (`state_file_writes`).
    pub fn state_file_writes(&self) -> u64 {
        self.shared.state_writes.load(Ordering::Relaxed)
    }

    /// Stops accepting connections, closes open ones and stops webhook delivery; with a state
    /// file, writes the last changes and releases the file.
    pub async fn shutdown(mut self) {
        self.stop();
        let _ = (&mut self.task).await;
        if let Some(persister) = self.persister.take() {
            let _ = persister.await;
        }
    }

    fn stop(&self) {
        let _ = self.shutdown_tx.send(true);
        // Dropping the sender ends the delivery dispatcher and its per-endpoint workers
        // (after the events already queued).
        self.shared.lock().delivery_tx = None;
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Run until ctrl-c / SIGTERM (used by `meterpay emulate-stripe --listen ADDR`); print the base URL and the seeded API key(s) on start.
pub async fn serve(addr: SocketAddr, config: EmulatorConfig) -> std::io::Result<()> {
    let emulator = Emulator::start(addr, config.clone()).await?;
    println!("Stripe emulator listening on {}", emulator.base_url());
    println!(
        "  Stripe API base: {}/v1/ (Stripe-Version {})",
        emulator.base_url(),
        API_VERSION
    );
    println!("  control API:     {}/_emulator/", emulator.base_url());
    match &config.state_file {
        Some(path) => println!(
            "  state file:      {} (delete it while stopped to start empty)",
            path.display()
        ),
        None => println!("  state:           in memory only (--state-file PATH keeps it)"),
    }
    for key in &config.api_keys {
        let account = emulator.account_for_key(key).unwrap_or_default();
        println!("  API key: {key}  (account {account})");
    }
    if config.api_keys.is_empty() {
        let (account, key) = emulator.create_account().await;
        println!("  API key: {key}  (account {account})");
    }
    shutdown_signal().await;
    emulator.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
