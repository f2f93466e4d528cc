//! Standalone emulator: `cargo run -p stripe-emulator --example serve -- [ADDR] [API_KEY...]`
//! (meterpay's `emulate-stripe` command does the same through `stripe_emulator::serve`).

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
