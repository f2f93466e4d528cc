//! meterpay: billing customers, their Stripe connection, and Stripe Checkout
//! Sessions in setup mode, behind the OpenMeter / Konnect billing API.
//!
//! Dependencies run one way: `http` (axum, v1/v3 mapping, problem+json) →
//! `service` (the operations, over a `service::Context`) → `billing` (domain
//! rules), `store` (SQL) and `stripe` (the only Stripe translator); each
//! records its metrics through `telemetry`. This file is the composition
//! root: it wires them together (and the emulator, with `--emulate-stripe`).

pub mod billing;
pub mod config;
pub mod error;
pub mod http;
pub mod ids;
pub mod secrets;
pub mod service;
pub mod store;
pub mod stripe;
pub mod telemetry;
pub mod timestamp;

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use config::ServeArgs;
use http::AppState;
use store::Store;

/// The file in the data directory where `serve --emulate-stripe` keeps the
/// emulator's state (delete it, with meterpay stopped, to start the emulator
/// empty).
pub const EMULATOR_STATE_FILE: &str = "stripe-emulator.json";

/// A meterpay server running on the current tokio runtime.
pub struct Server {
    addr: SocketAddr,
    /// Where `GET /metrics` is served when it has its own listener.
    metrics_addr: Option<SocketAddr>,
    metrics_shutdown: Option<oneshot::Sender<()>>,
    metrics_task: Option<JoinHandle<std::io::Result<()>>>,
    /// The in-process Stripe emulator (`--emulate-stripe`).
    emulator: Option<stripe_emulator::Emulator>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    store: Store,
    clock: service::Clock,
    /// The service context (tests run the invoice worker's pass through it).
    ctx: service::Context,
    /// This process's invoice worker.
    worker: Option<JoinHandle<()>>,
}

impl Server {
    /// Connects the store, applies migrations, binds and starts serving.
    pub async fn start(args: &ServeArgs) -> anyhow::Result<Server> {
        args.check()?;
        // First, so that everything from here on is counted.
        let metrics = telemetry::install();
        let store = Store::connect(&args.database.url()).await?;
        store.migrate().await?;
        let secrets = match &args.encryption_key {
            Some(key) => secrets::Secrets::from_base64(key)?,
            None => secrets::Secrets::load_or_create(&args.database.data_dir)?,
        };
        let emulator = if args.emulate_stripe {
            // The emulator keeps its state next to the database, so a restart
            // finds the Stripe customers and sessions meterpay remembers.
            let data_dir = &args.database.data_dir;
            std::fs::create_dir_all(data_dir).with_context(|| {
                format!("cannot create the data directory {}", data_dir.display())
            })?;
            let state_file = data_dir.join(EMULATOR_STATE_FILE);
            let emulator = stripe_emulator::Emulator::start(
                args.emulator_listen,
                stripe_emulator::EmulatorConfig {
                    state_file: Some(state_file.clone()),
                    ..stripe_emulator::EmulatorConfig::default()
                },
            )
            .await
            .with_context(|| {
                format!(
                    "cannot start the Stripe emulator on {} (set --emulator-listen) with its state in {}",
                    args.emulator_listen,
                    state_file.display()
                )
            })?;
            Some(emulator)
        } else {
            None
        };
        let stripe_base = match &emulator {
            Some(emulator) => emulator.base_url(),
            None => args.stripe_api_base.clone(),
        };
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let (metrics_listener, metrics_addr) = match args.metrics_listen {
            Some(at) => {
                let listener = TcpListener::bind(at)
                    .await
                    .with_context(|| format!("cannot listen for metrics on {at}"))?;
                let addr = listener.local_addr()?;
                (Some(listener), Some(addr))
            }
            None => (None, None),
        };
        let public_url = args
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_owned();
        let ctx = service::Context {
            store: store.clone(),
            stripe: stripe::Stripe::new(stripe::StripeConfig::new(stripe_base)),
            secrets,
            public_url,
            clients: service::ClientCache::default(),
            clock: service::Clock::default(),
            invoice_lease: time::Duration::seconds(
                i64::try_from(args.invoice_lease_secs.max(1)).unwrap_or(60),
            ),
        };
        let clock = ctx.clock.clone();
        if let Some(emulator) = &emulator {
            for namespace in args.namespaces() {
                service::apps::bootstrap_emulated(
                    &ctx,
                    &namespace,
                    stripe_emulator::DEFAULT_API_KEY,
                )
                .await
                .with_context(|| {
                    format!("setting up the emulated Stripe app in namespace {namespace}")
                })?;
            }
            tracing::info!(emulator = %emulator.base_url(), "Stripe calls go to the in-process emulator");
        }
        // In the background: Stripe may be slow or down, and serving does
        // not wait for it (events keep arriving at the current endpoints).
        tokio::spawn({
            let ctx = ctx.clone();
            async move {
                let pinned = service::apps::pin_webhook_endpoints(&ctx).await;
                if pinned > 0 {
                    tracing::info!(
                        apps = pinned,
                        "webhook endpoints moved to the pinned Stripe API version"
                    );
                }
            }
        });
        let worker = (args.invoice_worker_interval_ms > 0).then(|| {
            service::invoice_sync::spawn_worker(
                ctx.clone(),
                std::time::Duration::from_millis(args.invoice_worker_interval_ms),
            )
        });
        let (tx, rx) = oneshot::channel::<()>();
        let service_ctx = ctx.clone();
        let app = http::app(AppState::new(
            ctx,
            http::tenancy::Tokens::new(&args.api_tokens),
            // On the main listener unless it has its own.
            metrics_listener.is_none().then(|| metrics.clone()),
        ));
        let (metrics_tx, metrics_task) = match metrics_listener {
            Some(listener) => {
                let (tx, rx) = oneshot::channel::<()>();
                let app = http::metrics::separate_router(metrics);
                let task = tokio::spawn(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = rx.await;
                        })
                        .await
                });
                (Some(tx), Some(task))
            }
            None => (None, None),
        };
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                axum::ServiceExt::<axum::extract::Request>::into_make_service(app),
            )
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
        });
        tracing::info!(%addr, backend = ?store.backend(), "meterpay listening");
        if let Some(metrics_addr) = metrics_addr {
            tracing::info!(%metrics_addr, "metrics served on their own listener");
        }
        Ok(Server {
            addr,
            metrics_addr,
            metrics_shutdown: metrics_tx,
            metrics_task,
            emulator,
            shutdown: Some(tx),
            task,
            store,
            clock,
            ctx: service_ctx,
            worker,
        })
    }

    /// One pass of the invoice worker now (what the background worker does
    /// every interval); returns how many invoices it moved on.
    pub async fn work_invoices_once(&self) -> anyhow::Result<usize> {
        Ok(service::invoice_sync::work_once(&self.ctx).await?)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address of the separate metrics listener (`--metrics-listen`).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The clock invoicing goes by (tests move it ahead).
    pub fn clock(&self) -> &service::Clock {
        &self.clock
    }

    /// The in-process Stripe emulator, when started with `--emulate-stripe`.
    pub fn emulator(&self) -> Option<&stripe_emulator::Emulator> {
        self.emulator.as_ref()
    }

    /// Stops accepting connections, lets in-flight requests finish, closes the pool.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(worker) = self.worker.take() {
            worker.abort();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await??;
        if let Some(tx) = self.metrics_shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.metrics_task.take() {
            task.await??;
        }
        self.store.close().await;
        if let Some(emulator) = self.emulator.take() {
            emulator.shutdown().await;
        }
        Ok(())
    }
}
