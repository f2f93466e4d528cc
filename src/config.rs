//! Command-line flags, each with an environment twin.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The one namespace served when no API tokens are configured.
pub const DEFAULT_NAMESPACE: &str = "default";

#[derive(Debug, Parser)]
#[command(
    name = "meterpay",
    version,
    about = "Stripe payment-method flow for usage-based billing"
)]
pub struct Cli {
    /// Log line format: `text` (one readable line an event) or `json` (one
    /// JSON object a line, for log collectors). Lines logged while serving a
    /// request carry its `request_id` (the response's `x-request-id`).
    #[arg(
        long,
        global = true,
        env = "METERPAY_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server (applies migrations first).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Run the Stripe emulator alone.
    EmulateStripe(EmulateArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://PATH` or `postgres://USER@HOST/DB`. Default: an
    /// SQLite file in the data directory.
    #[arg(long, env = "METERPAY_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Where the embedded default keeps its SQLite file and generated keys.
    #[arg(long, env = "METERPAY_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
}

impl DatabaseArgs {
    pub fn url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("meterpay.db").display()))
    }
}

/// `Debug` is written by hand below so the encryption key and tokens never reach a log.
#[derive(Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "METERPAY_LISTEN", default_value = "127.0.0.1:8888")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// API tokens as `token=namespace` entries, comma-separated. With none,
    /// meterpay serves the single namespace `default` on loopback only.
    #[arg(long, env = "METERPAY_API_TOKENS", value_delimiter = ',', value_parser = parse_token, hide_env_values = true)]
    pub api_tokens: Vec<(String, String)>,

    /// Start the Stripe emulator in-process, send Stripe calls to it, and on
    /// first start install an emulated Stripe app with a default billing profile.
    #[arg(long, env = "METERPAY_EMULATE_STRIPE")]
    pub emulate_stripe: bool,

    /// How often this process's invoice worker looks for due invoices (drafts
    /// past their draft period, syncs to retry or resume), in milliseconds;
    /// 0 turns the worker off.
    #[arg(
        long,
        env = "METERPAY_INVOICE_WORKER_INTERVAL_MS",
        default_value_t = 5000
    )]
    pub invoice_worker_interval_ms: u64,

    /// How long one process's claim on an invoice it is issuing lasts, in
    /// seconds; if the process dies, another takes the invoice over after this.
    #[arg(long, env = "METERPAY_INVOICE_LEASE_SECS", default_value_t = 60)]
    pub invoice_lease_secs: u64,

    /// Where the in-process emulator listens (with `--emulate-stripe`); its
    /// hosted checkout pages are served from here.
    #[arg(
        long,
        env = "METERPAY_EMULATOR_LISTEN",
        default_value = "127.0.0.1:12111"
    )]
    pub emulator_listen: SocketAddr,

    /// Stripe's API base URL (without `/v1`).
    #[arg(
        long,
        env = "METERPAY_STRIPE_API_BASE",
        default_value = "https://api.stripe.com"
    )]
    pub stripe_api_base: String,

    /// Where Stripe reaches this server (webhook URLs are built from it).
    /// Default: `http://` + the listen address.
    #[arg(long, env = "METERPAY_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Serve `GET /metrics` (Prometheus text format, no token) on this
    /// address instead of on the main listener, which then answers 404 there.
    /// Default: on the main listener.
    #[arg(long, env = "METERPAY_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Key for secrets at rest: 32 bytes, base64. Default: a key generated on
    /// first start and kept in the data directory (mode 0600).
    #[arg(long, env = "METERPAY_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,
}

fn parse_token(entry: &str) -> Result<(String, String), String> {
    match entry.split_once('=') {
        Some((token, ns)) if !token.trim().is_empty() && !ns.trim().is_empty() => {
            Ok((token.trim().to_owned(), ns.trim().to_owned()))
        }
        _ => Err("each API token entry must look like token=namespace".to_owned()),
    }
}

#[derive(Debug, Clone, Args)]
pub struct EmulateArgs {
    /// Address the emulator listens on.
    #[arg(
        long,
        env = "METERPAY_EMULATOR_LISTEN",
        default_value = "127.0.0.1:12111"
    )]
    pub listen: SocketAddr,

    /// API keys to accept (each its own account). Default: `sk_test_emulator`, printed on start.
    #[arg(
        long = "api-key",
        env = "METERPAY_EMULATOR_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,

    /// Keep the emulator's state in this file across restarts (loaded on
    /// start, written in the background soon after changes and on shutdown).
    /// Default: in memory only.
    #[arg(long, env = "METERPAY_EMULATOR_STATE_FILE")]
    pub state_file: Option<PathBuf>,
}

impl ServeArgs {
    /// The namespaces this configuration serves.
    pub fn namespaces(&self) -> Vec<String> {
        let mut namespaces: Vec<String> =
            self.api_tokens.iter().map(|(_, ns)| ns.clone()).collect();
        if namespaces.is_empty() {
            namespaces.push(DEFAULT_NAMESPACE.to_owned());
        }
        namespaces.sort();
        namespaces.dedup();
        namespaces
    }

    /// Refuses a configuration that would expose the unauthenticated
    /// `default` namespace to the network.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.api_tokens.is_empty() && !self.listen.ip().is_loopback() {
            anyhow::bail!(
                "refusing to listen on {} without API tokens: set METERPAY_API_TOKENS=token=namespace, or listen on 127.0.0.1",
                self.listen
            );
        }
        Ok(())
    }
}

impl std::fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeArgs")
            .field("listen", &self.listen)
            .field("database", &self.database)
            .field(
                "api_tokens",
                &format_args!("[{} configured]", self.api_tokens.len()),
            )
            .field("emulate_stripe", &self.emulate_stripe)
            .field(
                "invoice_worker_interval_ms",
                &self.invoice_worker_interval_ms,
            )
            .field("invoice_lease_secs", &self.invoice_lease_secs)
            .field("emulator_listen", &self.emulator_listen)
            .field("stripe_api_base", &self.stripe_api_base)
            .field("public_url", &self.public_url)
            .field("metrics_listen", &self.metrics_listen)
            .field(
                "encryption_key",
                &self.encryption_key.as_ref().map(|_| "***"),
            )
            .finish()
    }
}
