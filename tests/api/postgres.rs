//! The PostgreSQL the tests run on: the server at `METERPAY_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`) when something answers
//! there, else a throwaway one started from the machine's PostgreSQL binaries
//! in a temporary directory on a free port, shared by the whole test run and
//! stopped (its directory removed) when the test process exits.

use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The base URL every PostgreSQL test connects to (each makes its own schema).
pub fn base_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let url =
            std::env::var("METERPAY_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.into());
        if answers(&url) {
            url
        } else {
            throwaway().unwrap_or_else(|why| {
                panic!(
                    "No PostgreSQL answers at {url}, and no throwaway one could be started: {why}\n\
                     Install PostgreSQL's server binaries (Debian: apt-get install postgresql; \
                     initdb and pg_ctl on PATH or under /usr/lib/postgresql/*/bin), or point \
                     METERPAY_TEST_POSTGRES_URL at a server you may create schemas on."
                )
            })
        }
    })
    .clone()
}

/// Whether something accepts TCP connections at the URL's host and port.
fn answers(url: &str) -> bool {
    let Some(rest) = url.split("://").nth(1) else {
        return false;
    };
    let host_port = rest
        .rsplit_once('@')
        .map_or(rest, |(_, after)| after)
        .split(['/', '?'])
        .next()
        .unwrap_or("");
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    let Ok(mut addrs) = host_port.to_socket_addrs() else {
        return false;
    };
    addrs.any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok())
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
fn bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    });
    if on_path.is_some() {
        return on_path;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL program, as the `postgres` user when we are root
/// (`initdb` refuses to run as root).
fn pg_command(bin: &Path, program: &str, as_postgres: bool) -> Command {
    let path = bin.join(program);
    if as_postgres {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(path);
        command
    } else {
        Command::new(path)
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn throwaway() -> Result<String, String> {
    let bin = bin_dir().ok_or("no PostgreSQL server binaries were found")?;
    let as_postgres = is_root();
    let dir = std::env::temp_dir().join(format!("meterpay-test-pg-{}", ulid::Ulid::generate()));
    let data = dir.join("data");
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    if as_postgres {
        let owned = Command::new("chown")
            .args(["postgres:", dir.to_str().unwrap_or_default()])
            .status()
            .map_err(|e| format!("chown: {e}"))?;
        if !owned.success() {
            return Err("cannot give the data directory to the postgres user".into());
        }
    }
    let init = pg_command(&bin, "initdb", as_postgres)
        .args(["-D", data.to_str().unwrap_or_default()])
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !init.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        ));
    }
    let port = free_port()?;
    // A watchdog shell owns the server: when this test process is gone, it
    // stops PostgreSQL and removes the directory.
    let script = format!(
        "'{postgres}' -D '{data}' -p {port} -k '{dir}' -c listen_addresses=127.0.0.1 \
         -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
         -c max_connections=300 >'{dir}/log' 2>&1 & server=$!; \
         while [ -d /proc/{parent} ] && kill -0 $server 2>/dev/null; do sleep 1; done; \
         kill -INT $server 2>/dev/null; wait $server; rm -rf '{dir}'",
        postgres = bin.join("postgres").display(),
        data = data.display(),
        dir = dir.display(),
        parent = std::process::id(),
    );
    let mut watchdog = if as_postgres {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", "sh", "-c", &script]);
        command
    } else {
        let mut command = Command::new("sh");
        command.args(["-c", &script]);
        command
    };
    watchdog
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start postgres: {e}"))?;
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !answers(&url) {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
            return Err(format!(
                "the throwaway PostgreSQL did not start in 30 s: {log}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "tests use a throwaway PostgreSQL at {url} ({})",
        dir.display()
    );
    Ok(url)
}
