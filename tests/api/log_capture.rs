//! Every log line of every server in this test binary (meterpay and its
//! emulators, at debug level) is kept in memory, and each test's servers are
//! checked when the test ends: no secret the test used appears — not its API
//! tokens, not the Stripe keys or webhook signing secrets the emulator handed
//! out, not the encryption key, not a full card number.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

/// The formatted lines so far (all tests of the binary, interleaved).
static LINES: Mutex<String> = Mutex::new(String::new());

/// The card numbers tests type: never to be logged in full.
pub const CARD_NUMBERS: &[&str] = &[
    "4242424242424242",
    "4000000000000002",
    "4000000000000341",
    "4000002760003184",
    "4000000000009995",
];

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
        lines.push_str(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber (once per binary) and returns where the
/// log stands now: a test checks what was written from there on.
pub fn start() -> usize {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let filter = tracing_subscriber::EnvFilter::new(
            "debug,sqlx=warn,hyper=info,hyper_util=info,h2=info,rustls=info,reqwest=info",
        );
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init();
    });
    LINES.lock().unwrap_or_else(|e| e.into_inner()).len()
}

/// The secrets of `secrets` found in the log after `from`, each with the
/// first line showing it.
pub fn leaks(from: usize, secrets: &[String]) -> Vec<String> {
    let lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
    let text = lines.get(from..).unwrap_or_default();
    secrets
        .iter()
        .filter(|s| s.len() >= 8)
        .filter_map(|secret| {
            let at = text.find(secret.as_str())?;
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
            Some(format!("{secret}: {}", &text[line_start..line_end]))
        })
        .collect()
}

#[test]
fn a_secret_written_to_the_log_is_found() {
    let from = start();
    tracing::warn!(key = "sk_test_leak_check_0123456789", "a careless line");
    let found = leaks(from, &["sk_test_leak_check_0123456789".to_owned()]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("a careless line"), "{found:?}");
    assert!(leaks(from, &["sk_test_never_logged_000000".to_owned()]).is_empty());
}

/// The servers' own lines are captured (else the check at each test's end
/// would pass on an empty log).
#[tokio::test]
async fn the_servers_lines_are_captured() {
    let app = crate::harness::TestApp::start(crate::harness::Backend::Sqlite).await;
    let from = start();
    let resp = app
        .get("/api/v3/openmeter/customers/log-capture-probe")
        .await;
    assert_eq!(resp.status, 400, "{}", resp.body);
    let lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
    let text = lines.get(from..).unwrap_or_default();
    assert!(
        text.lines()
            .any(|l| l.contains("/api/v3/openmeter/customers/log-capture-probe")),
        "meterpay's request lines are not in the captured log:\n{text}"
    );
}
