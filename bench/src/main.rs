//! meterpay-bench: measures meterpay's checkout and read paths with `wrk`,
//! next to the floor (the same Stripe calls sent straight to the emulator).
//! See `--help` and the README's "Benchmark" section.

mod floor;
mod procs;
mod report;
mod wrk;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};

use crate::floor::{LoggedCall, RequestLog};
use crate::procs::{Proc, free_port};
use crate::report::Table;
use crate::wrk::{Load, Request, UNIQUE, Wrk, WrkResult};

const API_TOKEN: &str = "bench-token";
const NAMESPACE: &str = "bench";
const STRIPE_KEY: &str = "sk_test_meterpaybench";
const SUCCESS_URL: &str = "https://example.com/done?session={CHECKOUT_SESSION_ID}";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

const ABOUT: &str = "Benchmarks meterpay (release binaries) with wrk, next to the floor: the same Stripe calls sent straight to the Stripe emulator";

const LONG_ABOUT: &str = "\
Benchmarks meterpay (release binaries) with wrk, next to the floor: the same
Stripe calls sent straight to the Stripe emulator.

It starts the standalone stripe-emulator and meterpay on free local ports, on a
fresh SQLite file in a temporary directory and, when PostgreSQL answers at
--postgres-url, on a throwaway schema there (dropped at the end). Needs wrk
(Debian: apt-get install -y wrk). Build the binaries first:

    cargo build --release -p meterpay -p stripe-emulator
    cargo run --release -p meterpay-bench -- --scenario all

Scenarios:
  table    One table per backend. Rows: warm (a v3 checkout session for one
           customer whose Stripe customer is known: one Stripe call), cold (a
           v1 checkout with a new inline customer each request: meterpay
           creates it, its Stripe customer, then the session), read (GET a
           customer: no Stripe call). Columns: requests/s, latency
           p50/p99/max, errors, meterpay's CPU ms per request (utime+stime
           from /proc) and peak RSS (VmHWM); then the floor (wrk straight at
           the emulator with the Stripe calls meterpay made, taken from the
           emulator's request log), the emulator's CPU ms per unit, and
           meterpay/floor.
  latency  The emulator answers every /v1/ call after --latency-ms and wrk
           runs --latency-connections: meterpay's warm path vs the floor.
  fill     --fill warm checkout sessions through meterpay in ten steps (rate
           and memory after each); then meterpay's RSS and the emulator's
           throughput straight at it, against the same run before the fill.
  all      table, then latency, then fill.

Other load on the machine shows in the numbers: compare runs on a quiet machine.";

#[derive(Debug, Parser)]
#[command(name = "meterpay-bench", about = ABOUT, long_about = LONG_ABOUT)]
struct Args {
    /// Which scenario to run.
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    scenario: Scenario,

    /// wrk connections for the table and the fill.
    #[arg(long, default_value_t = 32)]
    connections: u32,

    /// Length of each measured wrk run (5s, 500ms, 2m; wrk rounds up to whole seconds).
    #[arg(long, default_value = "5s", value_parser = report::parse_duration)]
    duration: Duration,

    /// Unmeasured wrk run before each measured one (0 for none).
    #[arg(long, default_value = "1s", value_parser = report::parse_duration)]
    warmup: Duration,

    /// wrk threads (the load generator shares the machine with what it measures).
    #[arg(long, default_value_t = 1)]
    threads: u32,

    /// The meterpay binary [default: `meterpay` next to this benchmark's binary,
    /// i.e. target/release/meterpay].
    #[arg(long)]
    meterpay_bin: Option<PathBuf>,

    /// The Stripe emulator binary [default: `stripe-emulator` next to this
    /// benchmark's binary]. A meterpay binary also works (run as `meterpay emulate-stripe`).
    #[arg(long)]
    emulator_bin: Option<PathBuf>,

    /// PostgreSQL to measure on (a throwaway schema is created and dropped);
    /// skipped with a note when it does not answer.
    #[arg(long, env = "METERPAY_BENCH_POSTGRES_URL", default_value = DEFAULT_POSTGRES_URL)]
    postgres_url: String,

    /// Measure SQLite only.
    #[arg(long)]
    no_postgres: bool,

    /// The emulator's added latency in the latency scenario, in milliseconds.
    #[arg(long, default_value_t = 200)]
    latency_ms: u64,

    /// wrk connections in the latency scenario.
    #[arg(long, default_value_t = 256)]
    latency_connections: u32,

    /// Checkout sessions to create in the fill scenario.
    #[arg(long, default_value_t = 100_000)]
    fill: u64,

    /// The wrk binary.
    #[arg(long, default_value = "wrk")]
    wrk: PathBuf,

    /// Keep the temporary directory (databases, logs, wrk scripts).
    #[arg(long)]
    keep_temp: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    All,
    Table,
    Latency,
    Fill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::select! {
        result = run(args) => result,
        _ = tokio::signal::ctrl_c() => {
            // Dropping `run` kills the children (kill_on_drop); a PostgreSQL
            // schema it created stays behind.
            bail!("interrupted")
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let here = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let meterpay_bin = args
        .meterpay_bin
        .clone()
        .unwrap_or_else(|| here.join("meterpay"));
    let emulator_bin = args
        .emulator_bin
        .clone()
        .unwrap_or_else(|| here.join("stripe-emulator"));
    for (what, bin) in [("meterpay", &meterpay_bin), ("emulator", &emulator_bin)] {
        if !bin.is_file() {
            bail!(
                "no {what} binary at {}: build the release binaries first \
                 (cargo build --release -p meterpay -p stripe-emulator) or pass --{what}-bin PATH",
                bin.display()
            );
        }
    }
    let run_id = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default()
            ^ u64::from(std::process::id())
    );
    let dir = TempDir::create(
        std::env::temp_dir().join(format!("meterpay-bench-{run_id}")),
        args.keep_temp,
    )?;
    let wrk = Wrk {
        bin: args.wrk.clone(),
        threads: args.threads,
        dir: dir.path.clone(),
    };
    wrk.check()?;
    let bench = Bench {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?,
        wrk,
        dir: dir.path.clone(),
        run_id,
        runs: AtomicU32::new(0),
        meterpay_bin,
        emulator_bin,
        args,
    };
    println!(
        "meterpay-bench: meterpay {}, emulator {}, wrk {} thread(s); {} per run after {} warm-up",
        bench.meterpay_bin.display(),
        bench.emulator_bin.display(),
        bench.args.threads,
        humane(bench.args.duration),
        humane(bench.args.warmup),
    );
    let scenario = bench.args.scenario;
    if matches!(scenario, Scenario::All | Scenario::Table) {
        bench.table(Backend::Sqlite).await?;
        if bench.args.no_postgres {
            println!("\nPostgreSQL: skipped (--no-postgres)");
        } else {
            bench.table(Backend::Postgres).await?;
        }
    }
    if matches!(scenario, Scenario::All | Scenario::Latency) {
        bench.latency().await?;
    }
    if matches!(scenario, Scenario::All | Scenario::Fill) {
        bench.fill().await?;
    }
    if bench.args.keep_temp {
        println!(
            "\nlogs, databases and wrk scripts kept in {}",
            bench.dir.display()
        );
    }
    Ok(())
}

fn humane(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    fn create(path: PathBuf, keep: bool) -> anyhow::Result<TempDir> {
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir { path, keep })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

struct Bench {
    args: Args,
    http: reqwest::Client,
    wrk: Wrk,
    dir: PathBuf,
    run_id: String,
    runs: AtomicU32,
    meterpay_bin: PathBuf,
    emulator_bin: PathBuf,
}

/// A measured run and where the machine's CPU time went during it.
struct Measured {
    wrk: WrkResult,
    spent: CpuSpent,
}

/// CPU time of meterpay, the emulator, the PostgreSQL server's processes
/// and the whole machine (all CPUs' busy time), so far or during a run.
#[derive(Debug, Clone, Copy, Default)]
struct CpuSpent {
    meterpay: Duration,
    emulator: Duration,
    postgres: Duration,
    machine: Duration,
}

impl CpuSpent {
    fn now(stack: &Stack) -> anyhow::Result<CpuSpent> {
        Ok(CpuSpent {
            meterpay: stack.meterpay.cpu()?,
            emulator: stack.emulator.cpu()?,
            postgres: if stack.postgres.is_some() {
                procs::processes_cpu("postgres")
            } else {
                Duration::ZERO
            },
            machine: procs::machine_busy()?,
        })
    }

    fn since(self, before: CpuSpent) -> CpuSpent {
        CpuSpent {
            meterpay: self.meterpay.saturating_sub(before.meterpay),
            emulator: self.emulator.saturating_sub(before.emulator),
            postgres: self.postgres.saturating_sub(before.postgres),
            machine: self.machine.saturating_sub(before.machine),
        }
    }

    /// What neither meterpay, the emulator nor PostgreSQL spent: wrk, the
    /// kernel's network work outside them, anything else running.
    fn other(&self) -> Duration {
        self.machine
            .saturating_sub(self.meterpay + self.emulator + self.postgres)
    }
}

/// Which side of a row a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Meterpay,
    Floor,
}

struct RowResult {
    name: &'static str,
    meterpay: Measured,
    meterpay_peak_kib: u64,
    floor: Option<Measured>,
}

/// The emulator and meterpay, set up: a Stripe app, a warm customer, and the
/// requests each row sends.
struct Stack {
    emulator: Proc,
    emulator_url: String,
    meterpay: Proc,
    meterpay_url: String,
    loads: Loads,
    postgres: Option<PgSchema>,
}

/// What wrk sends for each row: to meterpay, and the floor to the emulator.
struct Loads {
    warm: Load,
    cold: Load,
    read: Load,
    floor_warm: Load,
    floor_cold: Load,
}

impl Bench {
    fn run_key(&self, what: &str) -> String {
        let n = self.runs.fetch_add(1, Ordering::Relaxed);
        format!("{}{what}{n}", self.run_id)
    }

    async fn measure(
        &self,
        stack: &Stack,
        side: Side,
        load: &Load,
        connections: u32,
    ) -> anyhow::Result<Measured> {
        let url = match side {
            Side::Meterpay => &stack.meterpay_url,
            Side::Floor => &stack.emulator_url,
        };
        if !self.args.warmup.is_zero() {
            self.wrk
                .run(&wrk::Run {
                    base_url: url,
                    load,
                    connections,
                    duration: self.args.warmup,
                    run_key: &self.run_key("w"),
                    quota_per_thread: 0,
                })
                .await?;
        }
        let before = CpuSpent::now(stack)?;
        let result = self
            .wrk
            .run(&wrk::Run {
                base_url: url,
                load,
                connections,
                duration: self.args.duration,
                run_key: &self.run_key("m"),
                quota_per_thread: 0,
            })
            .await?;
        let spent = CpuSpent::now(stack)?.since(before);
        Ok(Measured { wrk: result, spent })
    }

    /// The floor first, then meterpay (so an emulator that slows as it
    /// fills counts against meterpay, not for it).
    async fn row(
        &self,
        stack: &Stack,
        name: &'static str,
        meterpay: &Load,
        floor: Option<&Load>,
        connections: u32,
    ) -> anyhow::Result<RowResult> {
        eprintln!("  {name}: floor …");
        let floor = match floor {
            Some(load) => Some(
                self.measure(stack, Side::Floor, load, connections)
                    .await
                    .with_context(|| format!("{name}: the floor"))?,
            ),
            None => None,
        };
        eprintln!("  {name}: meterpay …");
        let measured = self
            .measure(stack, Side::Meterpay, meterpay, connections)
            .await
            .with_context(|| format!("{name}: meterpay"))?;
        Ok(RowResult {
            name,
            meterpay: measured,
            meterpay_peak_kib: stack.meterpay.memory()?.peak_kib,
            floor,
        })
    }

    async fn table(&self, backend: Backend) -> anyhow::Result<()> {
        let Some(stack) = self.stack(backend, "table").await? else {
            return Ok(());
        };
        let connections = self.args.connections;
        eprintln!("{}: measuring", backend.label());
        let mut rows = Vec::new();
        let result = async {
            rows.push(
                self.row(
                    &stack,
                    "warm",
                    &stack.loads.warm,
                    Some(&stack.loads.floor_warm),
                    connections,
                )
                .await?,
            );
            rows.push(
                self.row(
                    &stack,
                    "cold",
                    &stack.loads.cold,
                    Some(&stack.loads.floor_cold),
                    connections,
                )
                .await?,
            );
            rows.push(
                self.row(&stack, "read", &stack.loads.read, None, connections)
                    .await?,
            );
            anyhow::Ok(())
        }
        .await;
        let emulator_mem = stack.emulator.memory().ok();
        let with_postgres = stack.postgres.is_some();
        self.teardown(stack).await;
        result?;
        println!(
            "\n{} — {connections} connections, {} per run after {} warm-up",
            backend.label(),
            humane(self.args.duration),
            humane(self.args.warmup)
        );
        print!("{}", results_table(&rows).render());
        println!(
            "warm: POST /api/v3/openmeter/customers/{{id}}/billing/stripe/checkout-sessions, \
             Stripe customer known (Stripe: POST /v1/checkout/sessions)\n\
             cold: POST /api/v1/stripe/checkout/sessions with a new inline customer \
             (Stripe: POST /v1/customers, then the session); its floor counts customer+session \
             pairs per second, its floor latencies are per Stripe call\n\
             read: GET /api/v3/openmeter/customers/{{id}} (no Stripe call)\n\
             errors: socket errors, timeouts and answers >= 400; cpu ms/req: utime+stime / \
             requests; peak RSS: meterpay's VmHWM after the row"
        );
        print!("{}", spent_table(&rows, with_postgres).render());
        println!(
            "machine: the busy time of all CPUs (/proc/stat) per request (meterpay) or per unit \
             (floor); other: what the processes named do not account for (wrk, the kernel's \
             network work, anything else running). When the CPUs are saturated, meterpay/floor \
             is about floor machine ÷ meterpay machine."
        );
        if let Some(mem) = emulator_mem {
            println!(
                "emulator at the end: RSS {}, peak {}",
                report::mib(mem.rss_kib),
                report::mib(mem.peak_kib)
            );
        }
        Ok(())
    }

    async fn latency(&self) -> anyhow::Result<()> {
        let Some(stack) = self.stack(Backend::Sqlite, "latency").await? else {
            return Ok(());
        };
        let connections = self.args.latency_connections;
        let ms = self.args.latency_ms;
        let result = async {
            self.emulator_post(&stack, "/_emulator/faults", &json!({"latency_ms": ms}))
                .await?;
            eprintln!("latency: {ms} ms at {connections} connections");
            self.row(
                &stack,
                "warm",
                &stack.loads.warm,
                Some(&stack.loads.floor_warm),
                connections,
            )
            .await
        }
        .await;
        self.teardown(stack).await;
        let row = result?;
        println!(
            "\nLatency — the emulator answers every /v1/ call after {ms} ms; SQLite, \
             {connections} connections, {} per run after {} warm-up",
            humane(self.args.duration),
            humane(self.args.warmup)
        );
        print!("{}", results_table(&[row]).render());
        println!(
            "at most {connections} requests in flight for {ms} ms each: ideal {:.0} req/s",
            f64::from(connections) * 1000.0 / ms.max(1) as f64
        );
        Ok(())
    }

    async fn fill(&self) -> anyhow::Result<()> {
        let Some(stack) = self.stack(Backend::Sqlite, "fill").await? else {
            return Ok(());
        };
        let result = self.fill_on(&stack).await;
        self.teardown(stack).await;
        result
    }

    async fn fill_on(&self, stack: &Stack) -> anyhow::Result<()> {
        let target = self.args.fill;
        let connections = self.args.connections;
        println!(
            "\nFill — {target} warm checkout sessions through meterpay (SQLite, {connections} connections)"
        );
        let floor_run = |what: &'static str| async move {
            let key = self.run_key(what);
            let before = CpuSpent::now(stack)?;
            let result = self
                .wrk
                .run(&wrk::Run {
                    base_url: &stack.emulator_url,
                    load: &stack.loads.floor_warm,
                    connections,
                    duration: self.args.duration,
                    run_key: &key,
                    quota_per_thread: 0,
                })
                .await?;
            let spent = CpuSpent::now(stack)?.since(before);
            anyhow::Ok(Measured { wrk: result, spent })
        };
        eprintln!("fill: the emulator before");
        let first = floor_run("fb").await?;
        let steps = target.clamp(1, 10);
        let threads = u64::from(self.args.threads.min(connections).max(1));
        let mut done = 0u64;
        let mut table = Table {
            groups: vec![
                ("".into(), 1),
                ("meterpay, this step".into(), 4),
                ("memory after the step".into(), 3),
            ],
            headers: vec![
                "sessions".into(),
                "req/s".into(),
                "p99".into(),
                "errors".into(),
                "cpu ms/req".into(),
                "meterpay RSS".into(),
                "meterpay peak".into(),
                "emulator RSS".into(),
            ],
            rows: Vec::new(),
        };
        for step in 0..steps {
            let want = target * (step + 1) / steps - done;
            if want == 0 {
                continue;
            }
            let before = stack.meterpay.cpu()?;
            let result = self
                .wrk
                .run(&wrk::Run {
                    base_url: &stack.meterpay_url,
                    load: &stack.loads.warm,
                    connections,
                    duration: Duration::from_secs(24 * 3600),
                    run_key: &self.run_key("f"),
                    quota_per_thread: want.div_ceil(threads),
                })
                .await?;
            let cpu = stack.meterpay.cpu()?.saturating_sub(before);
            done += result.requests;
            let mem = stack.meterpay.memory()?;
            let emu = stack.emulator.memory()?;
            eprintln!("fill: {done} / {target}");
            table.rows.push(vec![
                done.to_string(),
                report::rate(result.rate()),
                report::latency(result.p99_us),
                result.errors().to_string(),
                report::cpu_per(cpu, result.requests),
                report::mib(mem.rss_kib),
                report::mib(mem.peak_kib),
                report::mib(emu.rss_kib),
            ]);
        }
        eprintln!("fill: the emulator after");
        let last = floor_run("fa").await?;
        print!("{}", table.render());
        println!(
            "sessions: warm checkouts answered (each step may leave up to {connections} more in flight)"
        );
        let mem = stack.meterpay.memory()?;
        let emu = stack.emulator.memory()?;
        println!(
            "meterpay at the end: RSS {}, peak {}; emulator: RSS {}, peak {}",
            report::mib(mem.rss_kib),
            report::mib(mem.peak_kib),
            report::mib(emu.rss_kib),
            report::mib(emu.peak_kib)
        );
        let mut emulator = Table {
            groups: vec![
                ("".into(), 1),
                ("emulator alone: POST /v1/checkout/sessions".into(), 6),
            ],
            headers: vec![
                "".into(),
                "req/s".into(),
                "p50".into(),
                "p99".into(),
                "max".into(),
                "errors".into(),
                "cpu ms/req".into(),
            ],
            rows: Vec::new(),
        };
        for (name, m) in [("before the fill", &first), ("after the fill", &last)] {
            emulator.rows.push(vec![
                name.into(),
                report::rate(m.wrk.rate()),
                report::latency(m.wrk.p50_us),
                report::latency(m.wrk.p99_us),
                report::latency(m.wrk.max_us),
                m.wrk.errors().to_string(),
                report::cpu_per(m.spent.emulator, m.wrk.units),
            ]);
        }
        print!("{}", emulator.render());
        println!(
            "emulator throughput after / before: {} ({} per run, {connections} connections)",
            report::ratio(last.wrk.rate(), first.wrk.rate()),
            humane(self.args.duration)
        );
        Ok(())
    }

    /// Starts the emulator and meterpay on `backend` and sets them up; None
    /// (with a printed note) when PostgreSQL does not answer.
    async fn stack(&self, backend: Backend, what: &str) -> anyhow::Result<Option<Stack>> {
        let label = format!("{what}-{}", backend.label().to_lowercase());
        let data_dir = self.dir.join(&label);
        std::fs::create_dir_all(&data_dir)?;
        let (database_url, postgres) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", data_dir.join("meterpay.db").display()),
                None,
            ),
            Backend::Postgres => {
                match PgSchema::create(&self.args.postgres_url, &self.run_id).await {
                    Ok(schema) => (schema.url.clone(), Some(schema)),
                    Err(why) => {
                        println!(
                            "\nPostgreSQL: skipped — nothing usable at {}: {why:#}",
                            redact(&self.args.postgres_url)
                        );
                        return Ok(None);
                    }
                }
            }
        };
        eprintln!("{}: starting the emulator and meterpay", backend.label());
        let emulator_port = free_port()?;
        let emulator_url = format!("http://127.0.0.1:{emulator_port}");
        let mut emulator_args = Vec::new();
        if self
            .emulator_bin
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("meterpay"))
        {
            emulator_args.push("emulate-stripe".to_owned());
        }
        emulator_args.extend([
            "--listen".to_owned(),
            format!("127.0.0.1:{emulator_port}"),
            "--api-key".to_owned(),
            STRIPE_KEY.to_owned(),
        ]);
        let mut emulator = Proc::spawn(
            "the emulator",
            &self.emulator_bin,
            &emulator_args,
            &[("NO_COLOR", "1".to_owned())],
            data_dir.join("emulator.log"),
        )?;
        emulator
            .wait_ready(
                &self.http,
                &format!("{emulator_url}/_emulator/health"),
                Duration::from_secs(30),
            )
            .await?;
        let meterpay_port = free_port()?;
        let meterpay_url = format!("http://127.0.0.1:{meterpay_port}");
        let mut meterpay = Proc::spawn(
            "meterpay",
            &self.meterpay_bin,
            &[
                "serve".to_owned(),
                "--listen".to_owned(),
                format!("127.0.0.1:{meterpay_port}"),
                "--database-url".to_owned(),
                database_url,
                "--data-dir".to_owned(),
                data_dir.display().to_string(),
                "--stripe-api-base".to_owned(),
                emulator_url.clone(),
            ],
            &[
                ("METERPAY_API_TOKENS", format!("{API_TOKEN}={NAMESPACE}")),
                ("NO_COLOR", "1".to_owned()),
            ],
            data_dir.join("meterpay.log"),
        )?;
        meterpay
            .wait_ready(
                &self.http,
                &format!("{meterpay_url}/readyz"),
                Duration::from_secs(120),
            )
            .await?;
        let loads = match self.set_up(&meterpay_url, &emulator_url).await {
            Ok(loads) => loads,
            Err(err) => {
                meterpay.stop().await;
                emulator.stop().await;
                if let Some(schema) = postgres {
                    let _ = schema.remove().await;
                }
                return Err(err.context("setting up the Stripe app and customers"));
            }
        };
        Ok(Some(Stack {
            emulator,
            emulator_url,
            meterpay,
            meterpay_url,
            loads,
            postgres,
        }))
    }

    /// Installs the Stripe app, creates the warm customer, makes one warm and
    /// one cold checkout, and builds the floor from the Stripe calls they made.
    async fn set_up(&self, meterpay: &str, emulator: &str) -> anyhow::Result<Loads> {
        self.meterpay_call(
            meterpay,
            "POST",
            "/api/v3/openmeter/app-catalog/install",
            Some(json!({"type": "stripe", "name": "Stripe (bench)",
                "create_billing_profile": true, "api_key": STRIPE_KEY})),
            201,
        )
        .await?;
        let customer = self
            .meterpay_call(
                meterpay,
                "POST",
                "/api/v3/openmeter/customers",
                Some(json!({"name": "Warm Co", "key": "warm",
                    "primary_email": "warm@example.com", "currency": "USD"})),
                201,
            )
            .await?;
        let customer_id = customer["id"]
            .as_str()
            .context("the created customer has no id")?
            .to_owned();
        let since = self.request_log(emulator, u64::MAX).await?.last_seq;

        // The warm path's request; its first call also links the Stripe customer.
        let warm_path =
            format!("/api/v3/openmeter/customers/{customer_id}/billing/stripe/checkout-sessions");
        let warm_body = json!({"stripe_options": {"success_url": SUCCESS_URL}});
        self.meterpay_call(meterpay, "POST", &warm_path, Some(warm_body.clone()), 201)
            .await?;
        let warm_log = self.request_log(emulator, since).await?;
        let warm_session = floor::last_call(&warm_log.data, "POST", "/v1/checkout/sessions")
            .context("the warm checkout made no POST /v1/checkout/sessions")?
            .clone();

        // The cold path: a new customer inline.
        let cold_body = |key: &str| {
            json!({"customer": {"name": format!("Cold {key}"), "key": key,
                "primaryEmail": format!("{key}@example.com"), "currency": "USD"},
                "options": {"successURL": SUCCESS_URL}})
        };
        self.meterpay_call(
            meterpay,
            "POST",
            "/api/v1/stripe/checkout/sessions",
            Some(cold_body("cold-probe")),
            201,
        )
        .await?;
        let cold_log = self.request_log(emulator, warm_log.last_seq).await?;
        let cold_customer: LoggedCall = floor::last_call(&cold_log.data, "POST", "/v1/customers")
            .context("the cold checkout made no POST /v1/customers")?
            .clone();
        let cold_session = floor::last_call(&cold_log.data, "POST", "/v1/checkout/sessions")
            .context("the cold checkout made no POST /v1/checkout/sessions")?
            .clone();

        Ok(Loads {
            warm: Load::Single(meterpay_request(
                "POST",
                &warm_path,
                Some(warm_body.to_string()),
            )),
            cold: Load::Single(meterpay_request(
                "POST",
                "/api/v1/stripe/checkout/sessions",
                Some(cold_body(&format!("cold-{UNIQUE}")).to_string()),
            )),
            read: Load::Single(meterpay_request(
                "GET",
                &format!("/api/v3/openmeter/customers/{customer_id}"),
                None,
            )),
            floor_warm: Load::Single(floor::replay(
                &warm_session,
                STRIPE_KEY,
                &warm_session.params,
            )),
            floor_cold: Load::Pair {
                first: floor::replay(&cold_customer, STRIPE_KEY, &cold_customer.params),
                second: floor::replay(
                    &cold_session,
                    STRIPE_KEY,
                    &floor::with_customer_placeholder(&cold_session.params)?,
                ),
            },
        })
    }

    async fn meterpay_call(
        &self,
        meterpay: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        expect: u16,
    ) -> anyhow::Result<Value> {
        let method: reqwest::Method = method.parse()?;
        let mut req = self
            .http
            .request(method.clone(), format!("{meterpay}{path}"))
            .bearer_auth(API_TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        if status != expect {
            bail!("{method} {path}: {status} (expected {expect}): {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn request_log(&self, emulator: &str, since: u64) -> anyhow::Result<RequestLog> {
        let url = format!("{emulator}/_emulator/requests?since={since}");
        let resp = self.http.get(&url).send().await?.error_for_status()?;
        resp.json().await.with_context(|| format!("GET {url}"))
    }

    async fn emulator_post(&self, stack: &Stack, path: &str, body: &Value) -> anyhow::Result<()> {
        self.http
            .post(format!("{}{path}", stack.emulator_url))
            .json(body)
            .send()
            .await?
            .error_for_status()
            .with_context(|| format!("POST {path}"))?;
        Ok(())
    }

    async fn teardown(&self, stack: Stack) {
        stack.meterpay.stop().await;
        stack.emulator.stop().await;
        if let Some(schema) = stack.postgres
            && let Err(err) = schema.remove().await
        {
            eprintln!("could not drop the PostgreSQL schema: {err:#}");
        }
    }
}

fn meterpay_request(method: &'static str, path: &str, body: Option<String>) -> Request {
    let mut headers = vec![("Authorization".to_owned(), format!("Bearer {API_TOKEN}"))];
    if body.is_some() {
        headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
    }
    Request {
        method,
        path: path.to_owned(),
        headers,
        body,
    }
}

fn results_table(rows: &[RowResult]) -> Table {
    let mut table = Table {
        groups: vec![
            ("".into(), 1),
            ("meterpay".into(), 7),
            ("floor (the emulator alone)".into(), 6),
            ("ratio".into(), 1),
        ],
        headers: [
            "row",
            "req/s",
            "p50",
            "p99",
            "max",
            "errors",
            "cpu ms/req",
            "peak RSS",
            "req/s",
            "p50",
            "p99",
            "max",
            "errors",
            "emu cpu ms",
            "meterpay/floor",
        ]
        .map(String::from)
        .to_vec(),
        rows: Vec::new(),
    };
    for row in rows {
        let m = &row.meterpay.wrk;
        let mut cells = vec![
            row.name.to_owned(),
            report::rate(m.rate()),
            report::latency(m.p50_us),
            report::latency(m.p99_us),
            report::latency(m.max_us),
            m.errors().to_string(),
            report::cpu_per(row.meterpay.spent.meterpay, m.requests),
            report::mib(row.meterpay_peak_kib),
        ];
        match &row.floor {
            Some(f) => {
                cells.extend([
                    report::rate(f.wrk.rate()),
                    report::latency(f.wrk.p50_us),
                    report::latency(f.wrk.p99_us),
                    report::latency(f.wrk.max_us),
                    f.wrk.errors().to_string(),
                    report::cpu_per(f.spent.emulator, f.wrk.units),
                    report::ratio(m.rate(), f.wrk.rate()),
                ]);
            }
            None => {
                cells.extend(["n/a", "", "", "", "", "", "n/a"].map(String::from));
            }
        }
        table.rows.push(cells);
    }
    table
}

/// Where the machine's CPU time went per request in each run of the table.
fn spent_table(rows: &[RowResult], with_postgres: bool) -> Table {
    let mut headers = vec!["row", "run", "machine", "meterpay", "emulator"];
    if with_postgres {
        headers.push("PostgreSQL");
    }
    headers.push("other");
    let mut table = Table {
        groups: vec![
            ("".into(), 2),
            ("CPU ms per request".into(), headers.len() - 2),
        ],
        headers: headers.into_iter().map(String::from).collect(),
        rows: Vec::new(),
    };
    for row in rows {
        let runs = [
            (
                Side::Meterpay,
                Some(&row.meterpay),
                row.meterpay.wrk.requests,
            ),
            (
                Side::Floor,
                row.floor.as_ref(),
                row.floor.as_ref().map_or(0, |f| f.wrk.units),
            ),
        ];
        for (side, measured, units) in runs {
            let Some(measured) = measured else { continue };
            let s = &measured.spent;
            let mut cells = vec![
                row.name.to_owned(),
                match side {
                    Side::Meterpay => "meterpay",
                    Side::Floor => "floor",
                }
                .to_owned(),
                report::cpu_per(s.machine, units),
                match side {
                    Side::Meterpay => report::cpu_per(s.meterpay, units),
                    Side::Floor => "-".to_owned(),
                },
                report::cpu_per(s.emulator, units),
            ];
            if with_postgres {
                cells.push(report::cpu_per(s.postgres, units));
            }
            cells.push(report::cpu_per(s.other(), units));
            table.rows.push(cells);
        }
    }
    table
}

/// The URL without its password.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_owned(),
    }
}

/// A throwaway schema in PostgreSQL; meterpay connects with its search_path.
struct PgSchema {
    base: String,
    name: String,
    url: String,
}

impl PgSchema {
    async fn create(base: &str, run_id: &str) -> anyhow::Result<PgSchema> {
        let name = format!("meterpay_bench_{run_id}");
        let mut conn = pg_connect(base).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut conn)
            .await
            .with_context(|| format!("CREATE SCHEMA {name}"))?;
        let sep = if base.contains('?') { '&' } else { '?' };
        Ok(PgSchema {
            url: format!("{base}{sep}options=-c%20search_path%3D{name}"),
            base: base.to_owned(),
            name,
        })
    }

    async fn remove(self) -> anyhow::Result<()> {
        let mut conn = pg_connect(&self.base).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.name
        )))
        .execute(&mut conn)
        .await?;
        Ok(())
    }
}

async fn pg_connect(url: &str) -> anyhow::Result<sqlx::PgConnection> {
    use sqlx::Connection;
    tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(url))
        .await
        .context("timed out connecting")?
        .context("connecting")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn the_cli_parses() {
        use clap::CommandFactory;
        Args::command().debug_assert();
        let args = Args::parse_from([
            "meterpay-bench",
            "--scenario",
            "fill",
            "--fill",
            "5000",
            "--duration",
            "3s",
        ]);
        assert_eq!(args.scenario, Scenario::Fill);
        assert_eq!(args.fill, 5000);
        assert_eq!(args.duration, Duration::from_secs(3));
        assert_eq!(args.connections, 32);
    }
}
