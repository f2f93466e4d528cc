//! Installed apps and the app catalog. meterpay implements one app type,
//! `stripe`; the catalog lists only what can be installed here.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::error::{Error, Result, Rule, Violations};
use crate::ids::AppId;

/// The app types meterpay can install.
pub const SUPPORTED_TYPES: &[&str] = &["stripe"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppStatus {
    Ready,
    /// Stripe rejected the stored key; rotate it to recover.
    Unauthorized,
}

impl AppStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AppStatus::Ready => "ready",
            AppStatus::Unauthorized => "unauthorized",
        }
    }

    pub fn parse(s: &str) -> Option<AppStatus> {
        match s {
            "ready" => Some(AppStatus::Ready),
            "unauthorized" => Some(AppStatus::Unauthorized),
            _ => None,
        }
    }
}

/// An installed Stripe app, without its secrets.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub id: AppId,
    pub namespace: String,
    pub name: String,
    pub description: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub status: AppStatus,
    pub stripe_account_id: String,
    pub livemode: bool,
    pub masked_api_key: String,
    pub webhook_endpoint_id: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub deleted_at: Option<OffsetDateTime>,
}

impl App {
    /// Refuses changes to an uninstalled app (410).
    pub fn ensure_live(&self) -> Result<()> {
        match self.deleted_at {
            Some(_) => Err(Error::Gone(format!(
                "app [{}] was uninstalled; install it again to use it",
                self.id
            ))),
            None => Ok(()),
        }
    }

    /// Associated data binding the encrypted API key to this row.
    pub fn api_key_context(id: AppId) -> String {
        format!("app:{id}:api_key")
    }

    /// Associated data binding the encrypted webhook secret to this row.
    pub fn webhook_secret_context(id: AppId) -> String {
        format!("app:{id}:webhook_secret")
    }
}

/// A capability of a catalog item.
#[derive(Debug, Clone, Copy)]
pub struct Capability {
    pub kind: &'static str,
    pub key: &'static str,
    pub name: &'static str,
    pub description: &'static str,
}

/// An installable app type.
#[derive(Debug, Clone, Copy)]
pub struct CatalogItem {
    pub kind: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub capabilities: &'static [Capability],
    pub install_methods: &'static [&'static str],
}

pub const STRIPE: CatalogItem = CatalogItem {
    kind: "stripe",
    name: "Stripe",
    description: "Stripe integration allows you to collect payments with Stripe.",
    capabilities: &[
        Capability {
            kind: "calculate_tax",
            key: "stripe_calculate_tax",
            name: "Calculate Tax",
            description: "Stripe Tax calculates tax portion of the invoices.",
        },
        Capability {
            kind: "invoice_customers",
            key: "stripe_invoice_customers",
            name: "Invoice Customers",
            description: "Stripe invoices customers with due amount.",
        },
        Capability {
            kind: "collect_payments",
            key: "stripe_collect_payments",
            name: "Collect Payments",
            description: "Stripe payments collects outstanding revenue with Stripe customer's default payment method.",
        },
    ],
    // meterpay installs with an API key; OAuth is not offered.
    install_methods: &["with_api_key"],
};

pub const CATALOG: &[CatalogItem] = &[STRIPE];

/// The catalog item of `kind`, or the error a client should see: 400 for a
/// type the contract does not know, 404 for a known type meterpay does not offer.
pub fn catalog_item(field: &str, kind: &str, known: &[&str]) -> Result<&'static CatalogItem> {
    if let Some(item) = CATALOG.iter().find(|i| i.kind == kind) {
        return Ok(item);
    }
    if known.contains(&kind) {
        return Err(Error::NotFound(format!(
            "app type [{kind}] is not available in meterpay; supported types: {}",
            SUPPORTED_TYPES.join(", ")
        )));
    }
    Err(Error::field(
        field,
        Rule::Enum(known.iter().map(|k| (*k).to_owned()).collect()),
        format!(
            "[{kind}] is not an app type; use one of {}",
            known.join(", ")
        ),
    ))
}

/// Checks an API key's form (`sk_test_`, `sk_live_`, `rk_test_`, `rk_live_`)
/// and tells whether it is a live-mode key. Never echoes the key.
pub fn check_api_key(v: &mut Violations, field: &str, key: &str) -> bool {
    const PREFIXES: &[(&str, bool)] = &[
        ("sk_test_", false),
        ("sk_live_", true),
        ("rk_test_", false),
        ("rk_live_", true),
    ];
    let found = PREFIXES.iter().find(|(p, _)| key.starts_with(p));
    let well_formed = found.is_some_and(|(p, _)| {
        let rest = &key[p.len()..];
        !rest.is_empty() && rest.len() <= 500 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if !well_formed {
        let hint = if key.starts_with("pk_") {
            "is a publishable key; meterpay needs a secret key (sk_…) or a restricted key (rk_…)"
        } else {
            "must be a Stripe secret key (sk_test_…, sk_live_…) or restricted key (rk_test_…, rk_live_…)"
        };
        v.push(field, Rule::Invalid, hint);
    }
    found.is_some_and(|(_, live)| *live)
}

/// Name/description/labels rules shared by install and update.
pub fn check_app_fields(
    v: &mut Violations,
    name: &str,
    description: Option<&str>,
    labels: Option<&BTreeMap<String, String>>,
) {
    v.len_between("name", name, 1, 256);
    if let Some(description) = description {
        v.max_len("description", description, 1024);
    }
    if let Some(labels) = labels {
        super::customer::validate_labels(v, labels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_forms() {
        for (key, ok, live) in [
            ("sk_test_abc123", true, false),
            ("sk_live_abc123", true, true),
            ("rk_test_abc123", true, false),
            ("rk_live_abc123", true, true),
            ("pk_test_abc123", false, false),
            ("sk_test_", false, false),
            ("sk_test_abc 123", false, false),
            ("whsec_abc", false, false),
        ] {
            let mut v = Violations::default();
            let is_live = check_api_key(&mut v, "api_key", key);
            assert_eq!(v.is_empty(), ok, "{key}");
            assert_eq!(is_live, live, "{key}");
        }
    }
}
