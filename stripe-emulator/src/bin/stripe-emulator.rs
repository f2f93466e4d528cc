//! The standalone emulator binary (no dev-dependencies, unlike the `serve` example):
//! `cargo run --release -p stripe-emulator -- [ADDR] [API_KEY...]`
//! (default `127.0.0.1:12111` and the key `sk_test_emulator`; meterpay's `emulate-stripe`
//! command does the same through `stripe_emulator::serve`).

use stripe_emulator::{EmulatorConfig, serve};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:12111".to_string())
        .parse()
        .map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("bad address: {e}"),
            )
        })?;
    let keys: Vec<String> = args.collect();
    let mut config = EmulatorConfig::default();
    if !keys.is_empty() {
        config.api_keys = keys;
    }
    serve(addr, config).await
}
