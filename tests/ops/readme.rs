//! The README's configuration reference is complete: every long flag and
//! every environment variable the binary's `--help` lists (of the program
//! and of each subcommand) appears in README.md.

use std::collections::BTreeSet;
use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_meterpay"))
        .args(args)
        .arg("--help")
        .env("NO_COLOR", "1")
        .output()
        .expect("run meterpay --help");
    assert!(out.status.success(), "meterpay {args:?} --help failed");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The `--long` flags and `[env: NAME…]` variables of one help text.
fn flags_and_variables(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut flags = BTreeSet::new();
    let mut variables = BTreeSet::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        // An option line: `-h, --help …` or `--listen <LISTEN> …`.
        let option = trimmed
            .strip_prefix("--")
            .or_else(|| trimmed.split_once(", --").map(|(_, rest)| rest));
        if let Some(rest) = option {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            flags.insert(format!("--{name}"));
        }
        let mut rest = line;
        while let Some(at) = rest.find("[env: ") {
            rest = &rest[at + "[env: ".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            variables.insert(name);
        }
    }
    (flags, variables)
}

#[test]
fn the_readme_lists_every_flag_and_variable() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let mut flags = BTreeSet::new();
    let mut variables = BTreeSet::new();
    for command in [&[][..], &["serve"], &["migrate"], &["emulate-stripe"]] {
        let (f, v) = flags_and_variables(&help(command));
        flags.extend(f);
        variables.extend(v);
    }
    for builtin in ["--help", "--version"] {
        flags.remove(builtin);
    }
    // The parse found what it should (a flag of each subcommand).
    for known in [
        "--log-format",
        "--listen",
        "--metrics-listen",
        "--state-file",
    ] {
        assert!(flags.contains(known), "{known} not parsed: {flags:?}");
    }
    assert!(
        variables.contains("METERPAY_METRICS_LISTEN"),
        "{variables:?}"
    );
    let missing: Vec<&String> = flags
        .iter()
        .chain(&variables)
        .filter(|name| !readme.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md does not list (in backticks): {missing:?}"
    );
    // METERPAY_LOG is read by the logger, not by clap.
    assert!(readme.contains("`METERPAY_LOG`"));
}

#[test]
fn the_parser_reads_clap_help() {
    let (flags, variables) = flags_and_variables(
        "Options:\n      --listen <LISTEN>\n          Address [env: METERPAY_LISTEN=] [default: x]\n  \
         -h, --help\n          Print help\n      --api-key <API_KEYS>  Keys [env: METERPAY_EMULATOR_API_KEYS]\n",
    );
    assert_eq!(
        flags,
        ["--api-key", "--help", "--listen"]
            .map(str::to_owned)
            .into()
    );
    assert_eq!(
        variables,
        ["METERPAY_EMULATOR_API_KEYS", "METERPAY_LISTEN"]
            .map(str::to_owned)
            .into()
    );
}
