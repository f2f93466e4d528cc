//! The real `meterpay` binary as a child process (`serve --emulate-stripe`
//! on ephemeral ports and a fresh SQLite file), with every line it writes
//! to stdout and stderr kept for the test to read.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The encryption key the child is given (base64 of 32 bytes); a secret the
/// logs must never show.
pub const ENCRYPTION_KEY: &str = "b3BzLWxvZy10ZXN0LWVuY3J5cHRpb24ta2V5LTMyYiE=";

pub struct Meterpay {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    /// `http://127.0.0.1:PORT` of meterpay.
    pub base: String,
    /// `http://127.0.0.1:PORT` of its in-process Stripe emulator.
    pub emulator: String,
    pub dir: PathBuf,
}

impl Meterpay {
    /// Starts `meterpay --log-format FORMAT serve --emulate-stripe` with
    /// `env` (no inherited `METERPAY_*` variables) and waits until it listens.
    pub fn start(format: &str, env: &[(&str, &str)]) -> Meterpay {
        let dir = std::env::temp_dir().join(format!("meterpay-ops-{}", ulid::Ulid::generate()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let mut command = Command::new(env!("CARGO_BIN_EXE_meterpay"));
        command
            .args([
                "--log-format",
                format,
                "serve",
                "--emulate-stripe",
                "--listen",
                "127.0.0.1:0",
                "--emulator-listen",
                "127.0.0.1:0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("METERPAY_") {
                command.env_remove(key);
            }
        }
        command
            .env("METERPAY_DATA_DIR", &dir)
            .env("METERPAY_ENCRYPTION_KEY", ENCRYPTION_KEY);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start the meterpay binary");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for stream in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let lines = lines.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().unwrap().push(line);
                }
            }));
        }
        let mut meterpay = Meterpay {
            child,
            lines,
            readers,
            base: String::new(),
            emulator: String::new(),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let lines = meterpay.lines();
            let base = lines
                .iter()
                .find(|l| l.contains("meterpay listening"))
                .and_then(|l| local_url(l));
            let emulator = lines
                .iter()
                .find(|l| l.contains("in-process emulator"))
                .and_then(|l| local_url(l));
            if let (Some(base), Some(emulator)) = (base, emulator) {
                meterpay.base = base;
                meterpay.emulator = emulator;
                return meterpay;
            }
            if let Ok(Some(status)) = meterpay.child.try_wait() {
                panic!("meterpay exited ({status}):\n{}", lines.join("\n"));
            }
            assert!(
                Instant::now() < deadline,
                "meterpay did not start within 60 s:\n{}",
                lines.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every line written so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The SQLite URL of its database.
    pub fn database_url(&self) -> String {
        format!("sqlite://{}", self.dir.join("meterpay.db").display())
    }

    /// SIGTERM, then waits for the exit (graceful shutdown) and for its
    /// output to be read to the end; returns every line.
    pub fn stop(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
        for reader in std::mem::take(&mut self.readers) {
            let _ = reader.join();
        }
        self.lines()
    }
}

impl Drop for Meterpay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `http://` + the first `127.0.0.1:PORT` in `line` (text lines show URLs,
/// JSON lines the bare address).
fn local_url(line: &str) -> Option<String> {
    const HOST: &str = "127.0.0.1:";
    let rest = &line[line.find(HOST)? + HOST.len()..];
    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (!port.is_empty()).then(|| format!("http://{HOST}{port}"))
}

/// A client that does not follow redirects (the success URL is not served).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Sends `method path` with the bearer `token` and a JSON body; returns
/// (status, `x-request-id`, body).
pub async fn call(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, String, Value) {
    let mut req = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("request to meterpay");
    let status = resp.status().as_u16();
    let id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = resp.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, id, body)
}
