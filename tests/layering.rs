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

/// The OpenAPI component name each `#[derive(ToSchema)]` type in `text`
/// registers (`#[schema(as = Name)]`, else the type's own name), with its
/// line number.
fn schema_names(text: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if !(trimmed.starts_with("#[derive(") && trimmed.contains("ToSchema")) {
            continue;
        }
        let mut alias = None;
        for (j, next) in lines.iter().enumerate().skip(i + 1).take(40) {
            let next = next.trim_start();
            if let Some(rest) = next.strip_prefix("#[schema(")
                && let Some(at) = rest.find("as = ")
            {
                let name: String = rest[at + "as = ".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                alias = name.rsplit("::").next().map(str::to_owned);
            }
            let item = next.strip_prefix("pub ").unwrap_or(next);
            let item = item.strip_prefix("pub(crate) ").unwrap_or(item);
            if let Some(rest) = item
                .strip_prefix("struct ")
                .or_else(|| item.strip_prefix("enum "))
            {
                let own: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                found.push((j + 1, alias.unwrap_or(own)));
                break;
            }
        }
    }
    // Schema-only types declared by macro: `json_schema_type!(Ty = "Name")`
    // registers "Name", `schema_type!(Name => ...)` registers its type's.
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let declared = |from: usize| {
            lines
                .iter()
                .enumerate()
                .skip(from)
                .take(6)
                .find(|(_, l)| !l.trim_start().starts_with("///"))
                .map(|(j, l)| (j + 1, l.trim()))
        };
        if trimmed.starts_with("json_schema_type!(") {
            if let Some((j, decl)) = declared(i + 1)
                && let Some((_, literal)) = decl.split_once("= \"")
            {
                found.push((j, literal.trim_end_matches('"').to_owned()));
            }
        } else if trimmed.starts_with("schema_type!(")
            && let Some((j, decl)) = declared(i + 1)
            && let Some((name, _)) = decl.split_once(" =>")
        {
            found.push((j, name.trim().to_owned()));
        }
    }
    found
}

/// utoipa keeps one schema per component name and silently drops the
/// other when two types register the same name (it once replaced the
/// customers' `UsageAttribution` with the invoices' and lost its rules).
/// Every derived schema's name must therefore be unique across the crate.
#[test]
fn openapi_component_names_are_unique() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    files.sort();
    let mut seen: std::collections::BTreeMap<String, String> = Default::default();
    let mut clashes = Vec::new();
    let mut count = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read source");
        for (line, name) in schema_names(&text) {
            count += 1;
            let at = format!("{}:{line}", file.display());
            if let Some(first) = seen.insert(name.clone(), at.clone()) {
                clashes.push(format!("{name}: {first} and {at}"));
            }
        }
    }
    assert!(
        count > 100,
        "found only {count} ToSchema types; is the scan broken?"
    );
    assert!(
        clashes.is_empty(),
        "OpenAPI component names registered twice (give one `#[schema(as = ...)]`):\n{}",
        clashes.join("\n")
    );
}

#[test]
fn the_schema_name_scan_sees_a_clash() {
    let text = "#[derive(Serialize, ToSchema)]\npub struct Customer {}\n\
                #[derive(ToSchema)]\n#[schema(as = Customer)]\nstruct V1Customer;\n";
    let names: Vec<String> = schema_names(text).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["Customer", "Customer"]);
    let text = "json_schema_type!(\n    /// Doc.\n    Options = \"CheckoutOptions\"\n);\n\
                schema_type!(\n    /// Doc.\n    AppType => choices()\n);\n";
    let names: Vec<String> = schema_names(text).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["CheckoutOptions", "AppType"]);
}
