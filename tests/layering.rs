//! Dependencies run one way: `http` → `service` → (`billing`, `store`,
//! `stripe`). This test reads the sources and fails when a lower layer names a
//! higher one, so a shortcut cannot land unnoticed.

use std::path::{Path, PathBuf};

/// Each layer and the crate modules it must never name.
const RULES: &[(&str, &[&str])] = &[
    ("service", &["http"]),
    ("store", &["http", "service", "stripe"]),
    ("stripe", &["http", "service", "store"]),
    // billing holds domain rules only: errors, ids and time, nothing else of ours.
    (
        "billing",
        &["http", "service", "store", "stripe", "secrets", "config"],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::<module>` a file names, with its line number; comments count
/// too, since a doc link to a higher layer is a dependency in prose.
fn named_modules(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let module: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push((number + 1, module));
            rest = after;
        }
    }
    found
}

#[test]
fn lower_layers_never_name_higher_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    for (layer, forbidden) in RULES {
        let mut files = Vec::new();
        rust_files(&src.join(layer), &mut files);
        assert!(!files.is_empty(), "src/{layer} has no Rust files");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read source");
            for (line, module) in named_modules(&text) {
                if forbidden.contains(&module.as_str()) {
                    violations.push(format!(
                        "{}:{line}: src/{layer} names crate::{module}",
                        file.strip_prefix(&src).unwrap_or(&file).display()
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "dependencies must run http → service → (billing, store, stripe):\n{}",
        violations.join("\n")
    );
}

#[test]
fn only_the_composition_root_knows_the_emulator() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap_or(&file).to_path_buf();
        if relative == Path::new("lib.rs") || relative == Path::new("main.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read source");
        // Unit tests may sign payloads the way the emulator does.
        let production = text.split("#[cfg(test)]").next().unwrap_or("");
        if production.contains("stripe_emulator") {
            violations.push(relative.display().to_string());
        }
    }
    assert!(
        violations.is_empty(),
        "production code outside lib.rs/main.rs uses the emulator: {violations:?}"
    );
}

#[test]
fn the_checker_sees_a_violation() {
    assert_eq!(
        named_modules("use crate::http::AppState; // see crate::service::Context"),
        vec![(1, "http".to_owned()), (1, "service".to_owned())]
    );
}
