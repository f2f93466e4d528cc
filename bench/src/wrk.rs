//! Driving `wrk`: the Lua scripts the bench writes, the command line, and
//! the JSON line the scripts' `done()` prints (parsed here).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

/// The prefix of the line our `done()` writes; everything else wrk prints is ignored.
pub const MARKER: &str = "meterpay-bench-wrk:";

/// Placeholder replaced, per request, with a key unique to the run.
pub const UNIQUE: &str = "{{UNIQUE}}";
/// Placeholder replaced with the Stripe customer created by the previous call (pair scripts).
pub const CUSTOMER: &str = "{{CUSTOMER}}";

/// One HTTP request template. `{{UNIQUE}}` may appear in the path, header
/// values and body; `{{CUSTOMER}}` in the second request of a pair.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

/// What the script sends.
#[derive(Debug, Clone)]
pub enum Load {
    /// The same request (with a fresh `{{UNIQUE}}`) every time.
    Single(Request),
    /// First creates a Stripe customer, then a request for it (with the
    /// `cus_…` id taken from the first answer in place of `{{CUSTOMER}}`);
    /// the unit counted is the second request.
    Pair { first: Request, second: Request },
}

/// Writes `s` as a Lua string literal.
pub fn lua_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\{:03}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn lua_request(name: &str, r: &Request) -> String {
    let headers: Vec<String> = r
        .headers
        .iter()
        .map(|(k, v)| format!("[{}] = {}", lua_str(k), lua_str(v)))
        .collect();
    format!(
        "local {name} = {{ method = {}, path = {}, headers = {{ {} }}, body = {} }}\n",
        lua_str(r.method),
        lua_str(&r.path),
        headers.join(", "),
        r.body.as_deref().map_or_else(|| "nil".to_owned(), lua_str),
    )
}

/// Reads a child's pipe to the end in a task.
fn read_all<R>(pipe: Option<R>) -> tokio::task::JoinHandle<Vec<u8>>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut pipe, &mut buf).await;
        }
        buf
    })
}

/// The Lua script for `load`. With `stops`, each thread stops once it has
/// counted the responses given as wrk's second script argument (for a
/// single request this adds a `response()`, which makes wrk hand every body to
/// Lua, so runs measured for time leave it out).
pub fn script(load: &Load, stops: bool) -> String {
    let mut s = String::from(LUA_PRELUDE);
    match load {
        Load::Single(r) => {
            s.push_str(&lua_request("req1", r));
            s.push_str(LUA_SINGLE);
            if stops {
                s.push_str(LUA_SINGLE_STOPS);
            }
        }
        Load::Pair { first, second } => {
            s.push_str(&lua_request("req1", first));
            s.push_str(&lua_request("req2", second));
            s.push_str(LUA_PAIR);
        }
    }
    s.push_str(LUA_DONE);
    s
}

const LUA_PRELUDE: &str = r#"-- Written by meterpay-bench; run by wrk.
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

units = 0
local counter = 0
local prefix = "run"
local quota = 0

function init(args)
  prefix = (args[1] or "run") .. "-" .. tostring(tid) .. "-"
  quota = tonumber(args[2] or "0") or 0
end

local function uniq()
  counter = counter + 1
  return prefix .. counter
end

local function fill(s, key, customer)
  s = s:gsub("{{UNIQUE}}", key)
  if customer then
    s = s:gsub("{{CUSTOMER}}", customer)
  end
  return s
end

local function build(r, customer)
  local key = uniq()
  local h = {}
  for k, v in pairs(r.headers) do
    h[k] = fill(v, key, customer)
  end
  local body = nil
  if r.body then
    body = fill(r.body, key, customer)
  end
  return wrk.format(r.method, fill(r.path, key, customer), h, body)
end

-- At the quota this thread stops; the bench sees wrk's workers gone and
-- sends wrk SIGINT, which ends the run early with the usual report.
local function count()
  units = units + 1
  if quota > 0 and units >= quota then
    wrk.thread:stop()
  end
end

"#;

const LUA_SINGLE: &str = r#"
local counts_units = false

function request()
  return build(req1, nil)
end
"#;

const LUA_SINGLE_STOPS: &str = r#"
function response(status, headers, body)
  count()
end
"#;

const LUA_PAIR: &str = r#"
local counts_units = true
local pending = {}

function request()
  local customer = table.remove(pending)
  if customer then
    return build(req2, customer)
  end
  return build(req1, nil)
end

function response(status, headers, body)
  if status >= 300 then
    return
  end
  if body:find('"object"%s*:%s*"customer"') then
    local id = body:match('"id"%s*:%s*"(cus_[%w_]+)"')
    if id then
      table.insert(pending, id)
    end
  else
    count()
  end
end
"#;

const LUA_DONE: &str = r#"
function done(summary, latency, requests)
  local n = summary.requests
  if counts_units then
    n = 0
    for _, t in ipairs(threads) do
      n = n + (t:get("units") or 0)
    end
  end
  local e = summary.errors
  io.write(string.format(
    '%s {"requests":%d,"units":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    "meterpay-bench-wrk:", summary.requests, n, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, latency.mean))
end
"#;

/// What one wrk run measured (latencies in microseconds).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WrkResult {
    /// HTTP responses received.
    pub requests: u64,
    /// The unit the rate is about: requests, or completed pairs for [`Load::Pair`].
    pub units: u64,
    pub duration_us: u64,
    pub bytes: u64,
    pub connect_errors: u64,
    pub read_errors: u64,
    pub write_errors: u64,
    /// Responses with status ≥ 400 (wrk's "Non-2xx or 3xx responses").
    pub status_errors: u64,
    pub timeouts: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl WrkResult {
    /// Units per second.
    pub fn rate(&self) -> f64 {
        if self.duration_us == 0 {
            return 0.0;
        }
        self.units as f64 / (self.duration_us as f64 / 1e6)
    }

    /// Socket errors, timeouts and error statuses together.
    pub fn errors(&self) -> u64 {
        self.connect_errors
            + self.read_errors
            + self.write_errors
            + self.status_errors
            + self.timeouts
    }
}

/// Finds our JSON line in wrk's standard output.
pub fn parse_output(stdout: &str) -> anyhow::Result<WrkResult> {
    let line = stdout
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix(MARKER))
        .with_context(|| format!("wrk printed no `{MARKER}` line; its output:\n{stdout}"))?;
    serde_json::from_str(line.trim()).with_context(|| format!("wrk's summary line: {line}"))
}

/// wrk's `-d`/`--timeout` take whole seconds (`5s`); rounds up, at least 1 s.
pub fn wrk_seconds(d: Duration) -> String {
    let secs = d.as_millis().div_ceil(1000).max(1);
    format!("{secs}s")
}

pub struct Wrk {
    pub bin: PathBuf,
    pub threads: u32,
    pub dir: PathBuf,
}

/// One wrk invocation.
pub struct Run<'a> {
    /// Scheme, host and port (the script's paths are absolute).
    pub base_url: &'a str,
    pub load: &'a Load,
    pub connections: u32,
    pub duration: Duration,
    /// Unique per run: prefixes every `{{UNIQUE}}`.
    pub run_key: &'a str,
    /// Stop each thread after this many counted responses, and wrk when
    /// they all have (0: run for `duration`).
    pub quota_per_thread: u64,
}

impl Wrk {
    /// Fails with install instructions when `wrk` is not runnable.
    pub fn check(&self) -> anyhow::Result<()> {
        let found = std::process::Command::new(&self.bin)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        if found.is_err() {
            bail!(
                "`{}` is not installed or not runnable: the benchmark's load generator is wrk.\n\
                 Install it (Debian/Ubuntu: apt-get install -y wrk; macOS: brew install wrk) \
                 or pass --wrk PATH.",
                self.bin.display()
            );
        }
        Ok(())
    }

    pub async fn run(&self, run: &Run<'_>) -> anyhow::Result<WrkResult> {
        let script_path = self.write_script(run.load, run.run_key, run.quota_per_thread > 0)?;
        let threads = self.threads.min(run.connections).max(1);
        let mut child = tokio::process::Command::new(&self.bin)
            .arg("-t")
            .arg(threads.to_string())
            .arg("-c")
            .arg(run.connections.max(1).to_string())
            .arg("-d")
            .arg(wrk_seconds(run.duration))
            .args(["--timeout", "60s", "--latency", "-s"])
            .arg(&script_path)
            .arg(run.base_url)
            .arg("--")
            .arg(run.run_key)
            .arg(run.quota_per_thread.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("running {}", self.bin.display()))?;
        let stdout = read_all(child.stdout.take());
        let stderr = read_all(child.stderr.take());
        let status = if run.quota_per_thread > 0 {
            // wrk's main thread sleeps for -d whatever its workers do; once
            // every worker has stopped at its quota, SIGINT (then handled by
            // the main thread, the only one left) ends the run.
            let pid = child.id().unwrap_or_default();
            let mut seen_workers = false;
            loop {
                if let Some(status) = child.try_wait()? {
                    break status;
                }
                let threads = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .ok()
                    .and_then(|s| crate::procs::parse_status_count(&s, "Threads"));
                match threads {
                    Some(n) if n > 1 => seen_workers = true,
                    Some(1) if seen_workers => {
                        let _ = std::process::Command::new("kill")
                            .args(["-INT", &pid.to_string()])
                            .status();
                        break child.wait().await?;
                    }
                    _ => {}
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        } else {
            child.wait().await?
        };
        let stdout = String::from_utf8_lossy(&stdout.await.unwrap_or_default()).into_owned();
        if !status.success() {
            let stderr = stderr.await.unwrap_or_default();
            bail!(
                "wrk failed ({status}): {stdout}{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        parse_output(&stdout)
    }

    fn write_script(&self, load: &Load, run_key: &str, stops: bool) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(format!("{run_key}.lua"));
        std::fs::write(&path, script(load, stops))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK_STDOUT: &str = "Running 5s test @ http://127.0.0.1:40001
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    10.52ms    3.01ms  41.20ms   80.00%
    Req/Sec     3.04k   120.00     3.20k    70.00%
  Latency Distribution
     50%   10.10ms
     75%   11.90ms
     90%   13.80ms
     99%   22.40ms
  15200 requests in 5.00s, 9.80MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   3040.00
Transfer/sec:      1.96MB
meterpay-bench-wrk: {\"requests\":15200,\"units\":15200,\"duration_us\":5000123,\"bytes\":10276044,\"connect_errors\":0,\"read_errors\":1,\"write_errors\":0,\"status_errors\":3,\"timeouts\":2,\"p50_us\":10100,\"p99_us\":22400,\"max_us\":41200,\"mean_us\":10520.4}
";

    #[test]
    fn parses_the_done_line() {
        let r = parse_output(WRK_STDOUT).unwrap();
        assert_eq!(r.requests, 15200);
        assert_eq!(r.units, 15200);
        assert_eq!(r.duration_us, 5_000_123);
        assert_eq!((r.p50_us, r.p99_us, r.max_us), (10_100, 22_400, 41_200));
        assert_eq!(r.status_errors, 3);
        assert_eq!(r.errors(), 6);
        assert!((r.rate() - 3039.925).abs() < 0.01, "{}", r.rate());
        assert!((r.mean_us - 10520.4).abs() < 1e-9);
    }

    #[test]
    fn a_missing_done_line_is_an_error_showing_the_output() {
        let err = parse_output("unable to connect to 127.0.0.1:1 Connection refused\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no `meterpay-bench-wrk:` line"), "{err}");
        assert!(err.contains("Connection refused"), "{err}");
    }

    #[test]
    fn a_malformed_done_line_is_an_error() {
        assert!(parse_output("meterpay-bench-wrk: {\"requests\": 1}\n").is_err());
    }

    #[test]
    fn zero_duration_has_zero_rate() {
        let mut r = parse_output(WRK_STDOUT).unwrap();
        r.duration_us = 0;
        assert_eq!(r.rate(), 0.0);
    }

    #[test]
    fn wrk_durations_are_whole_seconds_rounded_up() {
        assert_eq!(wrk_seconds(Duration::from_secs(5)), "5s");
        assert_eq!(wrk_seconds(Duration::from_millis(1500)), "2s");
        assert_eq!(wrk_seconds(Duration::ZERO), "1s");
    }

    #[test]
    fn lua_strings_are_escaped() {
        assert_eq!(lua_str(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(lua_str("x\ny\u{1}"), r#""x\ny\001""#);
        assert_eq!(lua_str("{{UNIQUE}}"), r#""{{UNIQUE}}""#);
    }

    #[test]
    fn scripts_carry_the_requests_and_the_done_line() {
        let req = Request {
            method: "POST",
            path: "/v1/customers".into(),
            headers: vec![("Idempotency-Key".into(), format!("k-{UNIQUE}"))],
            body: Some("email=a%40b".into()),
        };
        let single = script(&Load::Single(req.clone()), false);
        assert!(single.contains(r#"local req1 = { method = "POST", path = "/v1/customers", headers = { ["Idempotency-Key"] = "k-{{UNIQUE}}" }, body = "email=a%40b" }"#), "{single}");
        assert!(single.contains("local counts_units = false"));
        assert!(single.contains(MARKER));
        assert!(!single.contains("function response"));
        assert!(script(&Load::Single(req.clone()), true).contains("function response"));
        let pair = script(
            &Load::Pair {
                first: req.clone(),
                second: Request { body: None, ..req },
            },
            false,
        );
        assert!(pair.contains("local req2 = {"));
        assert!(pair.contains("body = nil"));
        assert!(pair.contains("local counts_units = true"));
    }
}
