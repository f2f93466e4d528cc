//! meterpay: billing customers, their Stripe connection, and Stripe Checkout
//! Sessions in setup mode, behind the OpenMeter / Konnect billing API.
//!
//! Data flows one way: `http` (axum, problem+json) → `billing` (rules) →
//! `store` (SQL).

pub mod billing;
pub mod config;
pub mod error;
pub mod http;
pub mod ids;
pub mod secrets;
pub mod store;
pub mod stripe;
pub mod timestamp;

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use config::ServeArgs;
use http::AppState;
use store::Store;

/// A meterpay server running on the current tokio runtime.
pub struct Server {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    store: Store,
}

impl Server {
    /// Connects the store, applies migrations, binds and starts serving.
    pub async fn start(args: &ServeArgs) -> anyhow::Result<Server> {
        args.check()?;
        let store = Store::connect(&args.database.url()).await?;
        store.migrate().await?;
        let state = AppState {
            store: store.clone(),
            tokens: http::tenancy::Tokens::new(&args.api_tokens),
        };
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let app = http::router(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
        });
        tracing::info!(%addr, backend = ?store.backend(), "meterpay listening");
        Ok(Server {
            addr,
            shutdown: Some(tx),
            task,
            store,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops accepting connections, lets in-flight requests finish, closes the pool.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await??;
        self.store.close().await;
        Ok(())
    }
}
