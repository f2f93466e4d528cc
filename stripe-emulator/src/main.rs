//! The standalone emulator binary:
//! `stripe-emulator [--listen ADDR] [--api-key KEY]... [--fault RULE]...`
//! (positional `ADDR KEY...` also work, like the `serve` example). Runs until
//! ctrl-c/SIGTERM; the benchmark (`meterpay-bench`) starts it this way.

use stripe_emulator::{EmulatorConfig, FaultRule, serve};

const USAGE: &str = "usage: stripe-emulator [--listen ADDR] [--api-key KEY]... [--fault RULE]...\n\
  --listen ADDR   address to listen on (default 127.0.0.1:12111)\n\
  --api-key KEY   an API key to accept, each its own account (repeatable; default sk_test_emulator)\n\
  --fault RULE    a fault rule active from start, e.g. '*:latency_ms=200' (repeatable)";

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{message}\n{USAGE}"),
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut listen = None;
    let mut keys = Vec::new();
    let mut config = EmulatorConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .ok_or_else(|| invalid(format!("{flag} needs a value")))
        };
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            "--listen" => listen = Some(value("--listen")?),
            "--api-key" => keys.push(value("--api-key")?),
            "--fault" => {
                let rule = value("--fault")?;
                let rule: FaultRule = rule
                    .parse()
                    .map_err(|e| invalid(format!("bad fault rule {rule:?}: {e}")))?;
                config.faults.push(rule);
            }
            flag if flag.starts_with('-') => return Err(invalid(format!("unknown flag {flag}"))),
            _ if listen.is_none() => listen = Some(arg),
            _ => keys.push(arg),
        }
    }
    let addr = listen
        .as_deref()
        .unwrap_or("127.0.0.1:12111")
        .parse()
        .map_err(|e| invalid(format!("bad address: {e}")))?;
    if !keys.is_empty() {
        config.api_keys = keys;
    }
    serve(addr, config).await
}
