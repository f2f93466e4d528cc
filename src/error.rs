//! The one error type every layer returns. The HTTP layer renders it as
//! `application/problem+json`; nothing below `http/` knows about status codes.

use std::fmt;

/// Why a single input field was refused. `field` is a dotted path in the v3
/// (snake_case) spelling; the v1 layer re-spells it in camelCase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub source: Source,
    pub rule: Rule,
    pub reason: String,
    /// What the client can do about it; the HTTP layer spells it out.
    pub remedy: Option<Remedy>,
}

/// A way out of an error that involves another API call. Services name it;
/// `http::problem` renders it with the route to call, so no layer below
/// HTTP knows a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remedy {
    /// Install a Stripe app with a default billing profile; where the request
    /// can name its app (`app_id`), that too.
    SetUpStripeApp { or_name_app: bool },
    /// Put a new API key on the app (`None`: the app is named elsewhere).
    RotateApiKey { app_id: Option<crate::ids::AppId> },
    /// Link an existing Stripe customer through the customer's billing data.
    LinkStripeCustomer { customer_id: crate::ids::CustomerId },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Body,
    Query,
    Path,
    Header,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Body => "body",
            Source::Query => "query",
            Source::Path => "path",
            Source::Header => "header",
        }
    }
}

/// The rule a field broke, in the contract's vocabulary (`InvalidRules` and the
/// length / choice variants of `InvalidParameters`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Required,
    UnknownProperty,
    Type,
    MatchesRegex,
    IsDateTime,
    Invalid,
    MinLength(u64),
    MaxLength(u64),
    MinItems(u64),
    MaxItems(u64),
    Min(u64),
    Max(u64),
    Enum(Vec<String>),
}

impl FieldError {
    pub fn new(field: impl Into<String>, rule: Rule, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            source: Source::Body,
            rule,
            reason: reason.into(),
            remedy: None,
        }
    }

    pub fn with_remedy(mut self, remedy: Remedy) -> Self {
        self.remedy = Some(remedy);
        self
    }

    pub fn in_source(mut self, source: Source) -> Self {
        self.source = source;
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// One or more fields are invalid (400, `invalid_parameters`).
    #[error("invalid request: {}", describe(.0))]
    Invalid(Vec<FieldError>),
    #[error("{0}")]
    NotFound(String),
    /// The resource existed and was deleted (410).
    #[error("{0}")]
    Gone(String),
    /// A uniqueness or state conflict (409), naming the field when there is one.
    #[error("{detail}")]
    Conflict {
        field: Option<String>,
        detail: String,
    },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Unauthorized(String),
    /// A dependency (the database, Stripe) is unavailable right now (503).
    #[error("{detail}")]
    Unavailable {
        detail: String,
        retry_after_secs: Option<u64>,
    },
    /// A bug or an infrastructure failure: logged in full, shown to the client
    /// only as a generic message with the request's correlation id.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    pub fn field(field: impl Into<String>, rule: Rule, reason: impl Into<String>) -> Self {
        Error::Invalid(vec![FieldError::new(field, rule, reason)])
    }

    pub fn not_found(what: &str, id: impl fmt::Display) -> Self {
        Error::NotFound(format!("{what} [{id}] not found"))
    }

    pub fn conflict(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Conflict {
            field: Some(field.into()),
            detail: detail.into(),
        }
    }
}

/// Collects field errors so a client learns every problem with its request at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldError>);

impl Violations {
    pub fn push(&mut self, field: impl Into<String>, rule: Rule, reason: impl Into<String>) {
        self.0.push(FieldError::new(field, rule, reason));
    }

    pub fn max_len(&mut self, field: &str, value: &str, max: u64) {
        if value.chars().count() as u64 > max {
            self.push(
                field,
                Rule::MaxLength(max),
                format!("must be at most {max} characters long"),
            );
        }
    }

    pub fn len_between(&mut self, field: &str, value: &str, min: u64, max: u64) {
        if (value.chars().count() as u64) < min {
            self.push(
                field,
                Rule::MinLength(min),
                format!("must be at least {min} character(s) long"),
            );
        }
        self.max_len(field, value, max);
    }

    /// Takes `other`'s errors, renaming a leading `from` in their field names to `to`
    /// (e.g. shared label rules reporting `labels.x` inside `app_data.stripe`).
    pub fn extend_prefixed(&mut self, other: Violations, from: &str, to: &str) {
        for mut e in other.0 {
            if let Some(rest) = e.field.strip_prefix(from) {
                e.field = format!("{to}{rest}");
            }
            self.0.push(e);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many problems were found so far (to tell whether a check added any).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn into_result(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(self.0))
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
