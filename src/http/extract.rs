//! Request extractors whose failures are 4xx problems naming the field:
//! JSON bodies (with the path of the offending value) and ULID path
//! parameters; query strings are [`super::query`]'s.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;
use ulid::Ulid;

use crate::error::{Error, FieldError, Rule, Source};

/// Largest JSON body meterpay reads.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON body deserialised into `T`; a failure names the field at fault.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
            let essence = content_type
                .to_str()
                .unwrap_or("")
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if essence != "application/json" && !essence.ends_with("+json") {
                return Err(Error::UnsupportedMediaType(format!(
                    "The request body must be JSON: send it with [Content-Type: application/json], not [{essence}]"
                )));
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge(format!(
                    "The request body is larger than {MAX_BODY_BYTES} bytes"
                ))
            } else {
                Error::field("body", Rule::Invalid, rejection.body_text())
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::field(
            "body",
            Rule::Required,
            "the request body is empty; send a JSON object",
        ));
    }
    // Syntax first (with serde_json's position); then the shape, where an
    // array is never taken for an object (see `strict_json`); then the text
    // once more for what only serde_json's own reading sees (a field given twice).
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|err| Error::Invalid(vec![json_error("", &err)]))?;
    from_value::<T>(value)?;
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(de);
    result.map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        Error::Invalid(vec![json_error(&path, &inner)])
    })
}

/// Deserialises an already-parsed JSON value (e.g. after reading a `oneOf`
/// discriminator), naming the field at fault like [`parse_json`].
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Error> {
    let result: Result<T, _> =
        serde_path_to_error::deserialize(super::strict_json::StrictValue(&value));
    result.map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        Error::Invalid(vec![json_error(&path, &inner)])
    })
}

/// Translates serde's message into the contract's field / rule / reason.
fn json_error(path: &str, err: &serde_json::Error) -> FieldError {
    use serde_json::error::Category;
    let message = err.to_string();
    // serde_json appends " at line L column C"; keep the position only for syntax errors.
    let bare = message
        .rsplit_once(" at line ")
        .map(|(m, _)| m.to_owned())
        .unwrap_or_else(|| message.clone());
    if matches!(err.classify(), Category::Syntax | Category::Eof) {
        return FieldError::new("body", Rule::Invalid, format!("malformed JSON: {message}"));
    }
    let join = |name: &str| {
        if path == "." || path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    let field_here = if path == "." || path.is_empty() {
        "body".to_owned()
    } else {
        path.to_owned()
    };
    if let Some(name) = between(&bare, "missing field `", "`") {
        return FieldError::new(join(name), Rule::Required, "is a required field");
    }
    if let Some(name) = between(&bare, "unknown field `", "`") {
        // The path already ends with the unknown member.
        let field = if path.ends_with(name) {
            path.to_owned()
        } else {
            join(name)
        };
        let expected = bare
            .split_once(", expected ")
            .map(|(_, e)| format!("; expected {e}"))
            .unwrap_or_default();
        return FieldError::new(
            field,
            Rule::UnknownProperty,
            format!("is not a known property{expected}"),
        );
    }
    if let Some(variant) = between(&bare, "unknown variant `", "`") {
        let choices: Vec<String> = bare
            .split_once("expected ")
            .map(|(_, rest)| {
                rest.split(['`', ',', ' '])
                    .filter(|s| !s.is_empty() && *s != "or" && *s != "one" && *s != "of")
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        return FieldError::new(
            field_here,
            if choices.is_empty() {
                Rule::Invalid
            } else {
                Rule::Enum(choices)
            },
            format!("[{variant}] is not one of the allowed values"),
        );
    }
    if bare.starts_with("invalid type") {
        return FieldError::new(field_here, Rule::Type, bare);
    }
    FieldError::new(field_here, Rule::Invalid, bare)
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

/// Parses a path parameter that must be a ULID (upper-case canonical or
/// lower-case, as the v1 contract allows), as the id type `T` it names.
pub fn path_ulid<T: From<Ulid>>(name: &str, value: &str) -> Result<T, Error> {
    parse_ulid(value).map(T::from).ok_or_else(|| {
        Error::Invalid(vec![
            FieldError::new(
                name,
                Rule::MatchesRegex,
                format!("[{value}] is not a ULID (26 characters, e.g. 01G65Z755AFWAKHE12NY0CQ9FH)"),
            )
            .in_source(Source::Path),
        ])
    })
}

pub fn parse_ulid(value: &str) -> Option<Ulid> {
    let bytes = value.as_bytes();
    if bytes.len() != 26 || !matches!(bytes[0], b'0'..=b'7') {
        return None;
    }
    // Crockford's alphabet without I, L, O, U; either case.
    let valid = bytes.iter().all(|b| {
        b.is_ascii_digit()
            || (b.is_ascii_alphabetic()
                && !matches!(b.to_ascii_uppercase(), b'I' | b'L' | b'O' | b'U'))
    });
    if !valid {
        return None;
    }
    Ulid::from_string(&value.to_ascii_uppercase()).ok()
}

pub fn query_error(name: &str, rule: Rule, reason: impl Into<String>) -> FieldError {
    FieldError::new(name, rule, reason).in_source(Source::Query)
}

/// A query parameter that is a whole number within `min..=max`.
pub fn query_int(name: &str, value: &str, min: u64, max: u64) -> Result<u64, FieldError> {
    let n: u64 = value
        .parse()
        .map_err(|_| query_error(name, Rule::Type, format!("[{value}] is not a whole number")))?;
    if n < min {
        return Err(query_error(
            name,
            Rule::Min(min),
            format!("must be at least {min}"),
        ));
    }
    if n > max {
        return Err(query_error(
            name,
            Rule::Max(max),
            format!("must be at most {max}"),
        ));
    }
    Ok(n)
}

/// A query parameter that is `true` or `false`.
pub fn query_bool(name: &str, value: &str) -> Result<bool, FieldError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(query_error(name, Rule::Type, "must be true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        country: Option<String>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        address: Option<Inner>,
    }

    fn first(body: &str) -> FieldError {
        match parse_json::<Outer>(body.as_bytes()) {
            Err(Error::Invalid(mut errors)) => errors.remove(0),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn names_the_field() {
        let e = first(r#"{}"#);
        assert_eq!((e.field.as_str(), e.rule), ("name", Rule::Required));
        let e = first(r#"{"name": 1}"#);
        assert_eq!((e.field.as_str(), e.rule), ("name", Rule::Type));
        let e = first(r#"{"name": "a", "address": {"contry": "US"}}"#);
        assert_eq!(
            (e.field.as_str(), e.rule),
            ("address.contry", Rule::UnknownProperty)
        );
        let e = first(r#"{"name": "a", "#);
        assert_eq!((e.field.as_str(), e.rule), ("body", Rule::Invalid));
        let e = first("");
        assert_eq!((e.field.as_str(), e.rule), ("body", Rule::Required));
    }

    #[test]
    fn ulids() {
        assert!(parse_ulid("01G65Z755AFWAKHE12NY0CQ9FH").is_some());
        assert!(parse_ulid("01g65z755afwakhe12ny0cq9fh").is_some());
        assert!(parse_ulid("81G65Z755AFWAKHE12NY0CQ9FH").is_none());
        assert!(parse_ulid("01G65Z755AFWAKHE12NY0CQ9FU").is_none());
        assert!(parse_ulid("nope").is_none());
    }
}
