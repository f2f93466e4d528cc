use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use meterpay::config::{Cli, Command, LogFormat};
use meterpay::store::Store;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Serve(args) => {
            let server = meterpay::Server::start(&args).await?;
            // In JSON mode stdout carries only log objects (the "meterpay
            // listening" line has the address).
            if cli.log_format == LogFormat::Text {
                println!("meterpay listening on {}", server.base_url());
            }
            shutdown_signal().await;
            tracing::info!("shutting down: finishing in-flight requests");
            server.shutdown().await
        }
        Command::Migrate(db) => {
            let store = Store::connect(&db.url()).await?;
            store.migrate().await?;
            println!(
                "migrations applied to {}",
                meterpay::store::redact_url(&db.url())
            );
            Ok(())
        }
        Command::EmulateStripe(args) => {
            let mut config = stripe_emulator::EmulatorConfig {
                state_file: args.state_file,
                ..stripe_emulator::EmulatorConfig::default()
            };
            if !args.api_keys.is_empty() {
                config.api_keys = args.api_keys;
            }
            stripe_emulator::serve(args.listen, config)
                .await
                .with_context(|| format!("Stripe emulator on {}", args.listen))
        }
    }
}

/// Log lines on stdout, filtered by `METERPAY_LOG` (tracing's `EnvFilter`
/// syntax). A request's lines are inside its `request` span (request id,
/// method, path): text shows it as a prefix, JSON as the `span` object.
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("METERPAY_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info,stripe=error"));
    // Colours only for a terminal, never into files or collectors.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
