//! Small assertions shared by the black-box tests.

use serde_json::{Value, json};

use crate::harness::Resp;

/// Asserts `value` is a canonical ULID string and returns it.
pub fn assert_ulid(value: &Value) -> String {
    let s = value
        .as_str()
        .unwrap_or_else(|| panic!("expected a ULID string, got {value}"));
    assert!(
        s.len() == 26 && ulid::Ulid::from_string(s).is_ok() && s == s.to_uppercase(),
        "not a canonical ULID: {s}"
    );
    s.to_owned()
}

/// Asserts `value` is an RFC 3339 UTC timestamp and returns it.
pub fn assert_rfc3339(value: &Value) -> String {
    let s = value
        .as_str()
        .unwrap_or_else(|| panic!("expected a timestamp string, got {value}"));
    let parsed = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("not RFC 3339 ({e}): {s}"));
    assert_eq!(parsed.offset(), time::UtcOffset::UTC, "not UTC: {s}");
    assert!(s.ends_with('Z'), "not in Z form: {s}");
    s.to_owned()
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        other => panic!("add a reason phrase for {other}"),
    }
}

/// The whole problem document expected for `status` (instance blanked, see `Resp::problem`).
pub fn problem_of(status: u16, detail: &str) -> Value {
    json!({
        "type": format!("https://httpstatuses.com/{status}"),
        "title": reason(status),
        "status": status,
        "detail": detail,
        "instance": "urn:request:…",
    })
}

pub fn problem_400(detail: &str, invalid_parameters: Value) -> Value {
    let mut p = problem_of(400, detail);
    p["invalid_parameters"] = invalid_parameters;
    p
}

/// Asserts `resp` is exactly the problem document `expected`: every member
/// (type, title, status, detail, invalid_parameters with each field, source,
/// rule and reason, …) compared whole. Only `instance`, which carries the
/// per-request id, is normalised (see `Resp::problem`).
#[track_caller]
pub fn assert_problem(resp: &Resp, expected: Value) {
    let actual = resp.problem();
    assert_eq!(
        actual,
        expected,
        "\nthe whole problem body differs; actual:\n{}",
        serde_json::to_string_pretty(&actual).unwrap()
    );
}

/// The whole 400 problem for `invalid_parameters` (each with its field,
/// source, rule and reason): its detail names the one invalid parameter and
/// why (`Invalid body [name]: …`), or counts and lists them all.
pub fn invalid_problem(invalid_parameters: Value) -> Value {
    let params = invalid_parameters
        .as_array()
        .expect("an array of parameters");
    let detail = match params.as_slice() {
        [one] => format!(
            "Invalid {} [{}]: {}",
            one["source"].as_str().unwrap(),
            one["field"].as_str().unwrap(),
            one["reason"].as_str().unwrap()
        ),
        many => format!(
            "{} invalid parameters: {}",
            many.len(),
            many.iter()
                .map(|p| format!(
                    "[{}] {}",
                    p["field"].as_str().unwrap(),
                    p["reason"].as_str().unwrap()
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    problem_400(&detail, invalid_parameters)
}

/// `problem` with the extra `members` (such as a conflict's `field`).
pub fn with_members(mut problem: Value, members: Value) -> Value {
    for (name, value) in members.as_object().expect("an object of members") {
        problem[name] = value.clone();
    }
    problem
}
