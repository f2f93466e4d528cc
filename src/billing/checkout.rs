//! Checkout-session options: the upstream API's names in, validated against
//! the upstream rules and Stripe's before any network call, out in Stripe's
//! current vocabulary (`hosted` → `hosted_page`, `embedded` → `embedded_page`,
//! `payment_method_types` → `allowed_payment_method_types`).
//!
//! Field names in errors are the v3 ones under `stripe_options.`; the v1 API
//! renames them (`http::v1_names`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::currency::CurrencyCode;
use crate::error::{Result, Rule, Violations};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UiMode {
    #[default]
    Hosted,
    Embedded,
}

impl UiMode {
    /// Stripe's 2026 name.
    pub fn stripe(self) -> &'static str {
        match self {
            UiMode::Hosted => "hosted_page",
            UiMode::Embedded => "embedded_page",
        }
    }

    pub fn upstream(self) -> &'static str {
        match self {
            UiMode::Hosted => "hosted",
            UiMode::Embedded => "embedded",
        }
    }
}

/// Enumerations whose wire values are the same upstream and in Stripe.
macro_rules! wire_enum {
    ($name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }
    };
}

wire_enum!(BillingAddressCollection { Auto => "auto", Required => "required" });
wire_enum!(UpdateBehavior { Auto => "auto", Never => "never" });
wire_enum!(ReuseAgreementPosition { Auto => "auto", Hidden => "hidden" });
wire_enum!(Promotions { Auto => "auto", None => "none" });
wire_enum!(TermsOfService { None => "none", Required => "required" });
wire_enum!(RedirectOnCompletion { Always => "always", IfRequired => "if_required", Never => "never" });
wire_enum!(TaxIdRequired { IfSupported => "if_supported", Never => "never" });

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerUpdate {
    pub address: Option<UpdateBehavior>,
    pub name: Option<UpdateBehavior>,
    pub shipping: Option<UpdateBehavior>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentCollection {
    pub payment_method_reuse_agreement: Option<ReuseAgreementPosition>,
    pub promotions: Option<Promotions>,
    pub terms_of_service: Option<TermsOfService>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomText {
    pub after_submit: Option<String>,
    pub shipping_address: Option<String>,
    pub submit: Option<String>,
    pub terms_of_service_acceptance: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxIdCollection {
    pub enabled: bool,
    pub required: Option<TaxIdRequired>,
}

/// The options as a client gave them (either API).
#[derive(Debug, Clone, Default)]
pub struct CheckoutOptions {
    pub billing_address_collection: Option<BillingAddressCollection>,
    pub cancel_url: Option<String>,
    pub client_reference_id: Option<String>,
    pub customer_update: Option<CustomerUpdate>,
    pub consent_collection: Option<ConsentCollection>,
    pub currency: Option<String>,
    pub custom_text: Option<CustomText>,
    pub expires_at: Option<i64>,
    pub locale: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub return_url: Option<String>,
    pub success_url: Option<String>,
    pub ui_mode: Option<UiMode>,
    pub payment_method_types: Option<Vec<String>>,
    pub redirect_on_completion: Option<RedirectOnCompletion>,
    pub tax_id_collection: Option<TaxIdCollection>,
}

/// Validated options, ready to become Stripe parameters.
#[derive(Debug, Clone)]
pub struct ValidCheckout {
    pub ui_mode: UiMode,
    pub currency: Option<CurrencyCode>,
    pub options: CheckoutOptions,
}

/// Metadata keys meterpay writes itself; clients may not use them.
pub const RESERVED_METADATA_PREFIX: &str = "meterpay_";
pub const META_NAMESPACE: &str = "meterpay_namespace";
pub const META_APP_ID: &str = "meterpay_app_id";
pub const META_CUSTOMER_ID: &str = "meterpay_customer_id";

/// Stripe Checkout's supported locales.
const LOCALES: &[&str] = &[
    "auto", "bg", "cs", "da", "de", "el", "en", "en-GB", "es", "es-419", "et", "fi", "fil", "fr",
    "fr-CA", "hr", "hu", "id", "it", "ja", "ko", "lt", "lv", "ms", "mt", "nb", "nl", "pl", "pt",
    "pt-BR", "ro", "ru", "sk", "sl", "sv", "th", "tr", "vi", "zh", "zh-HK", "zh-TW",
];

/// Payment method types Stripe Checkout accepts in setup mode.
const SETUP_PAYMENT_METHOD_TYPES: &[&str] = &[
    "acss_debit",
    "amazon_pay",
    "au_becs_debit",
    "bacs_debit",
    "bancontact",
    "boleto",
    "card",
    "cashapp",
    "ideal",
    "kakao_pay",
    "kr_card",
    "link",
    "naver_pay",
    "nz_bank_account",
    "paypal",
    "payto",
    "revolut_pay",
    "sepa_debit",
    "sofort",
    "us_bank_account",
];

const MIN_EXPIRY_SECS: i64 = 30 * 60;
const MAX_EXPIRY_SECS: i64 = 24 * 60 * 60;

fn field(name: &str) -> String {
    format!("stripe_options.{name}")
}

impl CheckoutOptions {
    /// Checks every option (reporting all problems at once). `now` is Unix
    /// seconds; `customer_currency` is the fallback currency.
    pub fn validate(
        self,
        now: i64,
        customer_currency: Option<&CurrencyCode>,
    ) -> Result<ValidCheckout> {
        let mut v = Violations::default();
        let ui_mode = self.ui_mode.unwrap_or_default();
        match ui_mode {
            UiMode::Hosted => {
                if self.success_url.is_none() {
                    v.push(
                        field("success_url"),
                        Rule::Required,
                        "is required when ui_mode is hosted",
                    );
                }
                if self.return_url.is_some() {
                    v.push(
                        field("return_url"),
                        Rule::Invalid,
                        "can only be used when ui_mode is embedded",
                    );
                }
                if self.redirect_on_completion.is_some() {
                    v.push(
                        field("redirect_on_completion"),
                        Rule::Invalid,
                        "can only be used when ui_mode is embedded",
                    );
                }
            }
            UiMode::Embedded => {
                for (name, value) in [
                    ("success_url", &self.success_url),
                    ("cancel_url", &self.cancel_url),
                ] {
                    if value.is_some() {
                        v.push(
                            field(name),
                            Rule::Invalid,
                            "cannot be used when ui_mode is embedded; use return_url",
                        );
                    }
                }
                let redirects = self
                    .redirect_on_completion
                    .unwrap_or(RedirectOnCompletion::Always)
                    != RedirectOnCompletion::Never;
                if redirects && self.return_url.is_none() {
                    v.push(
                        field("return_url"),
                        Rule::Required,
                        "is required when ui_mode is embedded unless redirect_on_completion is never",
                    );
                }
            }
        }
        for (name, value) in [
            ("success_url", &self.success_url),
            ("cancel_url", &self.cancel_url),
            ("return_url", &self.return_url),
        ] {
            if let Some(url) = value
                && let Err(reason) = check_url(url)
            {
                v.push(field(name), Rule::Invalid, reason);
            }
        }
        if let Some(id) = &self.client_reference_id
            && (id.is_empty() || id.chars().count() > 200)
        {
            v.push(
                field("client_reference_id"),
                Rule::MaxLength(200),
                "must be 1 to 200 characters long",
            );
        }
        if let Some(expires_at) = self.expires_at {
            let ahead = expires_at - now;
            if !(MIN_EXPIRY_SECS..=MAX_EXPIRY_SECS).contains(&ahead) {
                v.push(
                    field("expires_at"),
                    Rule::Invalid,
                    format!(
                        "must be between 30 minutes and 24 hours from now (Unix seconds {} to {}); got {expires_at}",
                        now + MIN_EXPIRY_SECS,
                        now + MAX_EXPIRY_SECS
                    ),
                );
            }
        }
        if let Some(locale) = &self.locale
            && !LOCALES.contains(&locale.as_str())
        {
            v.push(
                field("locale"),
                Rule::Enum(LOCALES.iter().map(|s| (*s).to_owned()).collect()),
                format!("[{locale}] is not a locale Stripe Checkout supports"),
            );
        }
        if let Some(metadata) = &self.metadata {
            check_metadata(&mut v, metadata);
        }
        if let Some(text) = &self.custom_text {
            for (name, value) in [
                ("after_submit", &text.after_submit),
                ("shipping_address", &text.shipping_address),
                ("submit", &text.submit),
                (
                    "terms_of_service_acceptance",
                    &text.terms_of_service_acceptance,
                ),
            ] {
                if let Some(message) = value {
                    v.max_len(
                        &field(&format!("custom_text.{name}.message")),
                        message,
                        1200,
                    );
                }
            }
        }
        if let Some(types) = &self.payment_method_types {
            if types.is_empty() {
                v.push(
                    field("payment_method_types"),
                    Rule::MinItems(1),
                    "must list at least one payment method type",
                );
            }
            for (i, kind) in types.iter().enumerate() {
                if !SETUP_PAYMENT_METHOD_TYPES.contains(&kind.as_str()) {
                    v.push(
                        field(&format!("payment_method_types[{i}]")),
                        Rule::Enum(
                            SETUP_PAYMENT_METHOD_TYPES
                                .iter()
                                .map(|s| (*s).to_owned())
                                .collect(),
                        ),
                        format!("[{kind}] is not a payment method type Stripe Checkout can set up"),
                    );
                } else if types[..i].contains(kind) {
                    v.push(
                        field(&format!("payment_method_types[{i}]")),
                        Rule::Invalid,
                        format!("duplicates [{kind}]"),
                    );
                }
            }
        }
        let currency = match &self.currency {
            Some(code) => match CurrencyCode::parse(code) {
                Ok(c) => Some(c),
                Err(err) => {
                    v.push(field("currency"), Rule::Invalid, err.to_string());
                    None
                }
            },
            None => customer_currency.cloned(),
        };
        if self.currency.is_none() && currency.is_none() && self.payment_method_types.is_none() {
            v.push(
                field("currency"),
                Rule::Required,
                "is required in setup mode when payment_method_types is not given and the customer has no currency",
            );
        }
        v.into_result()?;
        Ok(ValidCheckout {
            ui_mode,
            currency,
            options: self,
        })
    }
}

fn check_metadata(v: &mut Violations, metadata: &BTreeMap<String, String>) {
    if metadata.len() > 50 {
        v.push(
            field("metadata"),
            Rule::MaxItems(50),
            "Stripe allows at most 50 metadata keys",
        );
    }
    for (key, value) in metadata {
        let name = field(&format!("metadata.{key}"));
        if key.is_empty() || key.chars().count() > 40 {
            v.push(
                &name,
                Rule::Invalid,
                "metadata keys must be 1 to 40 characters long",
            );
        } else if key.contains('[') || key.contains(']') {
            v.push(
                &name,
                Rule::Invalid,
                "metadata keys cannot contain square brackets",
            );
        } else if key.starts_with(RESERVED_METADATA_PREFIX) {
            v.push(
                &name,
                Rule::Invalid,
                format!("metadata keys starting with [{RESERVED_METADATA_PREFIX}] are reserved for meterpay"),
            );
        }
        if value.chars().count() > 500 {
            v.push(
                &name,
                Rule::MaxLength(500),
                "metadata values must be at most 500 characters long",
            );
        }
    }
}

/// An absolute http(s) URL, as Stripe requires for its redirect URLs.
pub fn check_url(url: &str) -> std::result::Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| "must be an absolute http:// or https:// URL".to_owned())?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || url.chars().any(char::is_whitespace) {
        return Err("must be an absolute http:// or https:// URL with a host".to_owned());
    }
    if url.len() > 5000 {
        return Err("must be at most 5000 characters long".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn hosted() -> CheckoutOptions {
        CheckoutOptions {
            success_url: Some("https://app.example/ok?session={CHECKOUT_SESSION_ID}".into()),
            currency: Some("USD".into()),
            ..CheckoutOptions::default()
        }
    }

    fn fields(err: crate::error::Error) -> Vec<String> {
        match err {
            crate::error::Error::Invalid(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hosted_and_embedded_rules() {
        assert!(hosted().validate(NOW, None).is_ok());
        let err = CheckoutOptions {
            success_url: None,
            return_url: Some("https://x".into()),
            ..hosted()
        }
        .validate(NOW, None)
        .unwrap_err();
        assert_eq!(
            fields(err),
            ["stripe_options.success_url", "stripe_options.return_url"]
        );
        let embedded = CheckoutOptions {
            ui_mode: Some(UiMode::Embedded),
            cancel_url: Some("https://x/cancel".into()),
            ..hosted()
        };
        assert_eq!(
            fields(embedded.validate(NOW, None).unwrap_err()),
            [
                "stripe_options.success_url",
                "stripe_options.cancel_url",
                "stripe_options.return_url"
            ]
        );
        let ok = CheckoutOptions {
            ui_mode: Some(UiMode::Embedded),
            success_url: None,
            return_url: Some("https://x/return".into()),
            ..hosted()
        };
        assert_eq!(
            ok.validate(NOW, None).unwrap().ui_mode.stripe(),
            "embedded_page"
        );
    }

    #[test]
    fn expiry_window_currency_metadata() {
        let at = |secs| {
            CheckoutOptions {
                expires_at: Some(NOW + secs),
                ..hosted()
            }
            .validate(NOW, None)
        };
        assert!(at(30 * 60).is_ok());
        assert!(at(24 * 3600).is_ok());
        assert!(at(30 * 60 - 1).is_err());
        assert!(at(24 * 3600 + 1).is_err());
        let no_currency = CheckoutOptions {
            currency: None,
            ..hosted()
        };
        assert_eq!(
            fields(no_currency.clone().validate(NOW, None).unwrap_err()),
            ["stripe_options.currency"]
        );
        let eur = CurrencyCode::parse("EUR").unwrap();
        assert_eq!(
            no_currency
                .clone()
                .validate(NOW, Some(&eur))
                .unwrap()
                .currency,
            Some(eur)
        );
        let with_types = CheckoutOptions {
            payment_method_types: Some(vec!["card".into()]),
            ..no_currency
        };
        assert_eq!(with_types.validate(NOW, None).unwrap().currency, None);
        let meta = CheckoutOptions {
            metadata: Some(BTreeMap::from([
                ("meterpay_customer_id".to_owned(), "x".to_owned()),
                ("k".repeat(41), "v".to_owned()),
                ("ok".to_owned(), "v".repeat(501)),
            ])),
            currency: Some("usd".into()),
            ..hosted()
        };
        assert_eq!(
            fields(meta.validate(NOW, None).unwrap_err()),
            [
                format!("stripe_options.metadata.{}", "k".repeat(41)),
                "stripe_options.metadata.meterpay_customer_id".to_owned(),
                "stripe_options.metadata.ok".to_owned(),
                "stripe_options.currency".to_owned(),
            ]
        );
    }
}
