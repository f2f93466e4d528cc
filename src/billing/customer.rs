//! Billing customers: who pays. The rules here are shared by the v1 and v3
//! views; field names in errors use the v3 (snake_case) spelling.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::currency::{CurrencyCode, CurrencyError};
use crate::error::{Error, Result, Rule, Violations};
use crate::ids::CustomerId;

/// Postal address as the contract spells it (v3 names; v1 has its own DTO).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
}

/// A stored customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub id: CustomerId,
    pub namespace: String,
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub subject_keys: Vec<String>,
    pub primary_email: Option<String>,
    pub currency: Option<CurrencyCode>,
    pub billing_address: Option<Address>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub deleted_at: Option<OffsetDateTime>,
}

impl Customer {
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// Refuses any mutation or billing action on a deleted customer (410).
    pub fn ensure_live(&self) -> Result<()> {
        match self.deleted_at {
            Some(_) => Err(Error::Gone(format!(
                "customer [{}] was deleted; it can be read but not changed or billed",
                self.id
            ))),
            None => Ok(()),
        }
    }
}

/// What a client may set on a customer, already in domain spelling.
#[derive(Debug, Clone, Default)]
pub struct CustomerFields {
    pub name: String,
    pub description: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub subject_keys: Option<Vec<String>>,
    pub primary_email: Option<String>,
    pub currency: Option<String>,
    pub billing_address: Option<Address>,
}

/// Validated fields, ready to store.
#[derive(Debug, Clone)]
pub struct ValidCustomer {
    pub key: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub subject_keys: Vec<String>,
    pub primary_email: Option<String>,
    pub currency: Option<CurrencyCode>,
    pub billing_address: Option<Address>,
}

const RESERVED_LABEL_PREFIXES: &[&str] = &["kong", "konnect", "mesh", "kic", "_"];

impl CustomerFields {
    /// Checks every field and reports all problems at once. v1 `metadata` and v3
    /// `labels` are one stored map, so both obey the label rules: a value stored
    /// through v1 must still render as a valid v3 label.
    pub fn validate(self, key: Option<String>) -> Result<ValidCustomer> {
        let mut v = Violations::default();
        v.len_between("name", &self.name, 1, 256);
        if let Some(description) = &self.description {
            v.max_len("description", description, 1024);
        }
        if let Some(key) = &key {
            v.len_between("key", key, 1, 256);
        }
        if let Some(labels) = &self.labels {
            validate_labels(&mut v, labels);
        }
        let subject_keys = self.subject_keys.unwrap_or_default();
        for (i, subject) in subject_keys.iter().enumerate() {
            let field = format!("usage_attribution.subject_keys[{i}]");
            v.len_between(&field, subject, 1, 256);
            if subject_keys[..i].contains(subject) {
                v.push(
                    field,
                    Rule::Invalid,
                    format!("duplicates subject key [{subject}]"),
                );
            }
        }
        if let Some(email) = &self.primary_email
            && !looks_like_email(email)
        {
            v.push(
                "primary_email",
                Rule::Invalid,
                "must be an email address such as billing@example.com",
            );
        }
        let currency = match self.currency.as_deref().map(CurrencyCode::parse) {
            None => None,
            Some(Ok(code)) => Some(code),
            Some(Err(err)) => {
                let rule = match err {
                    CurrencyError::Format => Rule::MatchesRegex,
                    CurrencyError::Unknown(_) => Rule::Invalid,
                };
                v.push("currency", rule, err.to_string());
                None
            }
        };
        if let Some(address) = &self.billing_address {
            validate_address(&mut v, "billing_address", address);
        }
        v.into_result()?;
        Ok(ValidCustomer {
            key,
            name: self.name,
            description: self.description,
            labels: self.labels,
            subject_keys,
            primary_email: self.primary_email,
            currency,
            billing_address: self.billing_address.filter(|a| *a != Address::default()),
        })
    }
}

pub(crate) fn validate_labels(v: &mut Violations, labels: &BTreeMap<String, String>) {
    let field = "labels";
    if labels.len() > 50 {
        v.push(field, Rule::MaxItems(50), "must have at most 50 entries");
    }
    for (k, value) in labels {
        let entry = format!("{field}.{k}");
        if k.is_empty() || k.chars().count() > 63 {
            v.push(
                &entry,
                Rule::Invalid,
                "label keys must be 1 to 63 characters long",
            );
        } else if let Some(prefix) = RESERVED_LABEL_PREFIXES.iter().find(|p| k.starts_with(**p)) {
            v.push(
                &entry,
                Rule::Invalid,
                format!("label keys must not start with [{prefix}]"),
            );
        }
        if !is_label_value(value) {
            v.push(
                &entry,
                Rule::MatchesRegex,
                "label values must be 1 to 63 characters of letters, digits, '-', '.', '_', starting and ending with a letter or digit",
            );
        }
    }
}

/// `^[a-z0-9A-Z]{1}([a-z0-9A-Z-._]*[a-z0-9A-Z]+)?$`, 1 to 63 characters.
fn is_label_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    let edge_ok = |b: &u8| b.is_ascii_alphanumeric();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.first().is_some_and(edge_ok)
        && bytes.last().is_some_and(edge_ok)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

fn validate_address(v: &mut Violations, field: &str, address: &Address) {
    if let Some(country) = &address.country
        && !(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()))
    {
        v.push(
            format!("{field}.country"),
            Rule::MatchesRegex,
            "must be an ISO 3166-1 alpha-2 country code such as US",
        );
    }
}

fn looks_like_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_follow_the_contract_pattern() {
        assert!(is_label_value("test"));
        assert!(is_label_value("a"));
        assert!(is_label_value("a-b.c_d"));
        assert!(!is_label_value("-a"));
        assert!(!is_label_value("a-"));
        assert!(!is_label_value("a b"));
        assert!(!is_label_value(""));
    }

    #[test]
    fn emails() {
        assert!(looks_like_email("a@b.co"));
        assert!(!looks_like_email("a@b"));
        assert!(!looks_like_email("ab.co"));
        assert!(!looks_like_email("a b@c.de"));
    }
}
