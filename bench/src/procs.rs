//! The processes under test: starting them, waiting until they answer, and
//! reading their CPU time and memory from `/proc`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A child process, killed when dropped; its output goes to `log`.
pub struct Proc {
    pub name: &'static str,
    pub pid: u32,
    pub log: PathBuf,
    child: tokio::process::Child,
}

impl Proc {
    /// Starts `bin args…` with `env` (and no inherited `METERPAY_*` variables).
    pub fn spawn(
        name: &'static str,
        bin: &Path,
        args: &[String],
        env: &[(&str, String)],
        log: PathBuf,
    ) -> anyhow::Result<Proc> {
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let mut command = tokio::process::Command::new(bin);
        command
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("METERPAY_") {
                command.env_remove(key);
            }
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {name} ({})", bin.display()))?;
        let pid = child.id().context("the child has no pid")?;
        Ok(Proc {
            name,
            pid,
            log,
            child,
        })
    }

    /// Polls `url` until it answers 200; fails when the process exits or
    /// after `timeout`, showing the end of its log.
    pub async fn wait_ready(
        &mut self,
        http: &reqwest::Client,
        url: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before answering {url}; its log ({}):\n{}",
                    self.name,
                    self.log.display(),
                    self.log_tail()
                );
            }
            if let Ok(resp) = http.get(url).send().await
                && resp.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not answer {url} within {timeout:?}; its log ({}):\n{}",
                    self.name,
                    self.log.display(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// User plus system CPU time so far.
    pub fn cpu(&self) -> anyhow::Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .with_context(|| format!("reading /proc/{}/stat of {}", self.pid, self.name))?;
        let ticks = parse_stat_cpu_ticks(&stat)
            .with_context(|| format!("unexpected /proc/{}/stat: {stat}", self.pid))?;
        Ok(Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
    }

    /// Resident and peak resident memory.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .with_context(|| format!("reading /proc/{}/status of {}", self.pid, self.name))?;
        Ok(Memory {
            rss_kib: parse_status_kib(&status, "VmRSS").unwrap_or(0),
            peak_kib: parse_status_kib(&status, "VmHWM").unwrap_or(0),
        })
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss_kib: u64,
    /// VmHWM: the peak resident set since the process started.
    pub peak_kib: u64,
}

/// Busy time of all the machine's CPUs so far: every column of `/proc/stat`'s
/// `cpu` line but idle and iowait.
pub fn machine_busy() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let ticks = parse_machine_busy_ticks(&stat).context("unexpected /proc/stat")?;
    Ok(Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
}

/// User plus system CPU time of every running process whose command name is
/// `comm` (the PostgreSQL server's processes are all `postgres`); processes
/// that ended meanwhile are not counted.
pub fn processes_cpu(comm: &str) -> Duration {
    let mut ticks = 0;
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let is_pid = entry
                .file_name()
                .to_str()
                .is_some_and(|name| name.bytes().all(|b| b.is_ascii_digit()));
            if !is_pid {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            if stat_comm(&stat) == Some(comm) {
                ticks += parse_stat_cpu_ticks(&stat).unwrap_or(0);
            }
        }
    }
    Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64)
}

/// Field 2 of `/proc/PID/stat`, without its parentheses.
fn stat_comm(stat: &str) -> Option<&str> {
    Some(&stat[stat.find('(')? + 1..stat.rfind(')')?])
}

/// The first line of `/proc/stat`: `cpu user nice system idle iowait irq
/// softirq steal …`, in clock ticks; busy is all but idle and iowait.
pub fn parse_machine_busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().next()?;
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let values: Vec<u64> = fields.map(|f| f.parse().ok()).collect::<Option<_>>()?;
    if values.len() < 4 {
        return None;
    }
    let busy: u64 = values
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    Some(busy)
}

/// `sysconf(_SC_CLK_TCK)`, asked of `getconf` once (100 on Linux).
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// utime + stime (fields 14 and 15 of `/proc/PID/stat`, in clock ticks). The
/// command name (field 2) may contain spaces and parentheses, so fields are
/// counted from its closing parenthesis.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): field n is fields[n - 3].
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// A `Key:   123 kB` line of `/proc/PID/status`, in KiB.
pub fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    parse_status_count(status, key)
}

/// The number on a `Key:   123…` line of `/proc/PID/status`.
pub fn parse_status_count(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// A port free right now on 127.0.0.1 (the child binds it a moment later).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_busy_from_proc_stat() {
        let stat = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n";
        assert_eq!(
            parse_machine_busy_ticks(stat),
            Some(100 + 5 + 50 + 3 + 2 + 1)
        );
        assert_eq!(parse_machine_busy_ticks("cpu0 1 2 3 4\n"), None);
        assert_eq!(parse_machine_busy_ticks("cpu 1 x 3 4\n"), None);
        assert_eq!(stat_comm("42 (postgres) S 1"), Some("postgres"));
        assert_eq!(stat_comm("7 (a (b) c) R 1"), Some("a (b) c"));
    }

    #[test]
    fn cpu_ticks_from_stat() {
        let stat =
            "4242 (meterpay) S 1 4242 4242 0 -1 4194560 2000 0 0 0 150 37 0 0 20 0 9 0 123 0 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(187));
        let odd = "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 5 6 0 0";
        assert_eq!(parse_stat_cpu_ticks(odd), Some(11));
        assert_eq!(parse_stat_cpu_ticks("7 (short) R 1"), None);
        assert_eq!(parse_stat_cpu_ticks("no parens"), None);
    }

    #[test]
    fn kib_from_status() {
        let status =
            "Name:\tmeterpay\nVmPeak:\t  900000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40960 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(51234));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(40960));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        assert_eq!(parse_status_kib("VmRSSX:\t1 kB\n", "VmRSS"), None);
        assert_eq!(parse_status_count("Threads:\t2\n", "Threads"), Some(2));
    }
}
