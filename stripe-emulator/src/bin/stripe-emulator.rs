//! The standalone emulator binary (no dev-dependencies, unlike the `serve` example):
//! `cargo run --release -p stripe-emulator -- [--request-log-capacity N] [ADDR] [API_KEY...]`
//! (or `--listen ADDR` and `--api-key KEY`, repeatable, as `meterpay emulate-stripe` takes them)
//! (default `127.0.0.1:12111` and the key `sk_test_emulator`; meterpay's `emulate-stripe`
//! command does the same through `stripe_emulator::serve`). The environment variable
//! `STRIPE_EMULATOR_REQUEST_LOG_CAPACITY` sets the request log's capacity too (the flag wins).
//! `--state-file PATH` keeps the emulator's state in PATH across restarts (see the README);
//! without it the state lives in memory only.

use stripe_emulator::{EmulatorConfig, serve};

/// glibc's allocator slows down as the emulator's heap grows (every request allocates and
/// frees a few hundred short-lived blocks between the long-lived stored objects: CPU per
/// checkout session rose from ~0.09 to ~0.15 ms between 50,000 and 280,000 stored sessions,
/// most of it in `_int_malloc`); mimalloc stays flat.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, message)
}

#[tokio::main]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("stripe-emulator: {error}");
        std::process::exit(1);
    }
}

async fn run() -> std::io::Result<()> {
    let mut config = EmulatorConfig::default().with_env().map_err(invalid)?;
    let mut positional = Vec::new();
    let mut listen = None;
    let mut keys = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if let Some(value) = arg.strip_prefix("--request-log-capacity") {
            let value = match value.strip_prefix('=') {
                Some(value) => value.to_string(),
                None => args.next().unwrap_or_default(),
            };
            config.request_log_capacity = value
                .parse()
                .map_err(|e| invalid(format!("bad --request-log-capacity {value:?}: {e}")))?;
        } else if let Some(value) = arg.strip_prefix("--state-file") {
            let value = match value.strip_prefix('=') {
                Some(value) => value.to_string(),
                None if value.is_empty() => args
                    .next()
                    .ok_or_else(|| invalid("--state-file needs a path".to_string()))?,
                None => {
                    positional.push(arg);
                    continue;
                }
            };
            config.state_file = Some(value.into());
        } else if arg == "--listen" || arg == "--api-key" {
            let value = args
                .next()
                .ok_or_else(|| invalid(format!("{arg} needs a value")))?;
            if arg == "--listen" {
                listen = Some(value);
            } else {
                keys.push(value);
            }
        } else if arg == "-h" || arg == "--help" {
            println!(
                "usage: stripe-emulator [--request-log-capacity N] [--state-file PATH] [--listen ADDR | ADDR (127.0.0.1:12111)] [--api-key KEY... | API_KEY...]"
            );
            return Ok(());
        } else {
            positional.push(arg);
        }
    }
    let mut positional = positional.into_iter();
    let addr = listen
        .or_else(|| positional.next())
        .unwrap_or_else(|| "127.0.0.1:12111".to_string())
        .parse()
        .map_err(|e| invalid(format!("bad address: {e}")))?;
    keys.extend(positional);
    if !keys.is_empty() {
        config.api_keys = keys;
    }
    serve(addr, config).await
}
