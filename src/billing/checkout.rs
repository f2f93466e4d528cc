//! Checkout-session options: the upstream API's names in, validated against
//! the upstream rules and the payment provider's ([`ProviderRules`], which
//! `src/stripe/` implements) before any network call, out as a
//! [`ValidCheckout`] whose UI mode carries its own URLs.
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
    pub fn upstream(self) -> &'static str {
        match self {
            UiMode::Hosted => "hosted",
            UiMode::Embedded => "embedded",
        }
    }
}

/// Where a recorded checkout session stands: Stripe's three statuses, plus
/// `failed` after the customer's last attempt was declined (the session
/// itself stays open and may still complete or expire). Stored and shown
/// as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckoutSessionStatus {
    Open,
    Complete,
    Expired,
    Failed,
    /// The customer's bank asked them to authenticate (3-D Secure); the
    /// session completes once they do.
    RequiresAction,
}

impl CheckoutSessionStatus {
    pub const ALL: [CheckoutSessionStatus; 5] = [
        CheckoutSessionStatus::Open,
        CheckoutSessionStatus::Complete,
        CheckoutSessionStatus::Expired,
        CheckoutSessionStatus::Failed,
        CheckoutSessionStatus::RequiresAction,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            CheckoutSessionStatus::Open => "open",
            CheckoutSessionStatus::Complete => "complete",
            CheckoutSessionStatus::Expired => "expired",
            CheckoutSessionStatus::Failed => "failed",
            CheckoutSessionStatus::RequiresAction => "requires_action",
        }
    }

    pub fn parse(name: &str) -> Option<CheckoutSessionStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
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

/// Where the customer completes the session, with the URLs that mode needs:
/// a hosted page redirects to `success_url` (or `cancel_url`); an embedded
/// form returns to `return_url` unless it never redirects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutUi {
    Hosted {
        success_url: String,
        cancel_url: Option<String>,
    },
    Embedded {
        /// Absent only when `redirect_on_completion` is `never`.
        return_url: Option<String>,
        redirect_on_completion: Option<RedirectOnCompletion>,
    },
}

impl CheckoutUi {
    pub fn mode(&self) -> UiMode {
        match self {
            CheckoutUi::Hosted { .. } => UiMode::Hosted,
            CheckoutUi::Embedded { .. } => UiMode::Embedded,
        }
    }
}

/// Validated options, ready to become the payment provider's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidCheckout {
    pub ui: CheckoutUi,
    pub currency: Option<CurrencyCode>,
    pub client_reference_id: Option<String>,
    pub billing_address_collection: Option<BillingAddressCollection>,
    pub customer_update: Option<CustomerUpdate>,
    pub consent_collection: Option<ConsentCollection>,
    pub custom_text: Option<CustomText>,
    /// Unix seconds, 30 minutes to 24 hours ahead.
    pub expires_at: Option<i64>,
    /// A locale the provider knows ([`ProviderRules::is_checkout_locale`]).
    pub locale: Option<String>,
    /// The client's metadata (no reserved keys).
    pub metadata: BTreeMap<String, String>,
    /// Known, able to be set up, distinct; empty: the provider chooses.
    pub payment_method_types: Vec<String>,
    pub tax_id_collection: Option<TaxIdCollection>,
}

/// The payment provider's own rules for checkout options, which billing
/// does not know: `stripe::CheckoutRules` answers them from async-stripe's
/// generated enums for the pinned API version.
pub trait ProviderRules {
    fn is_checkout_locale(&self, locale: &str) -> bool;
    /// Every locale, listed in the error.
    fn checkout_locales(&self) -> Vec<String>;
    fn is_setup_payment_method_type(&self, kind: &str) -> bool;
    /// Every payment method type a setup session accepts, listed in the error.
    fn setup_payment_method_types(&self) -> Vec<String>;
    /// The provider's limits on metadata and the keys meterpay reserves in
    /// it; problems are reported under `{field}` and `{field}.{key}`.
    fn check_metadata(&self, v: &mut Violations, field: &str, metadata: &BTreeMap<String, String>);
}

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
        rules: &dyn ProviderRules,
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
                // Whether `return_url` is needed depends on the payment
                // methods the session may offer (Stripe requires it where a
                // redirect-based one is possible): Stripe decides, and its
                // refusal is reported on this field.
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
            // Saturating: any i64 may be given (a far-past one must not overflow).
            let ahead = expires_at.saturating_sub(now);
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
            && !rules.is_checkout_locale(locale)
        {
            v.push(
                field("locale"),
                Rule::Enum(rules.checkout_locales()),
                format!("[{locale}] is not a locale Stripe Checkout supports"),
            );
        }
        if let Some(metadata) = &self.metadata {
            rules.check_metadata(&mut v, &field("metadata"), metadata);
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
                if !rules.is_setup_payment_method_type(kind) {
                    v.push(
                        field(&format!("payment_method_types[{i}]")),
                        Rule::Enum(rules.setup_payment_method_types()),
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
        let ui = match ui_mode {
            // Checked above: a hosted session without success_url was refused.
            UiMode::Hosted => CheckoutUi::Hosted {
                success_url: self.success_url.unwrap_or_default(),
                cancel_url: self.cancel_url,
            },
            UiMode::Embedded => CheckoutUi::Embedded {
                return_url: self.return_url,
                redirect_on_completion: self.redirect_on_completion,
            },
        };
        Ok(ValidCheckout {
            ui,
            currency,
            client_reference_id: self.client_reference_id,
            billing_address_collection: self.billing_address_collection,
            customer_update: self.customer_update,
            consent_collection: self.consent_collection,
            custom_text: self.custom_text,
            expires_at: self.expires_at,
            locale: self.locale,
            metadata: self.metadata.unwrap_or_default(),
            payment_method_types: self.payment_method_types.unwrap_or_default(),
            tax_id_collection: self.tax_id_collection,
        })
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

    /// A provider that knows `en` and `card`, and refuses metadata keys
    /// starting with `x`.
    struct Fake;

    impl ProviderRules for Fake {
        fn is_checkout_locale(&self, locale: &str) -> bool {
            locale == "en"
        }
        fn checkout_locales(&self) -> Vec<String> {
            vec!["en".into()]
        }
        fn is_setup_payment_method_type(&self, kind: &str) -> bool {
            kind == "card"
        }
        fn setup_payment_method_types(&self) -> Vec<String> {
            vec!["card".into()]
        }
        fn check_metadata(&self, v: &mut Violations, field: &str, m: &BTreeMap<String, String>) {
            for key in m.keys().filter(|k| k.starts_with('x')) {
                v.push(format!("{field}.{key}"), Rule::Invalid, "reserved");
            }
        }
    }

    fn hosted() -> CheckoutOptions {
        CheckoutOptions {
            success_url: Some("https://app.example/ok?session={CHECKOUT_SESSION_ID}".into()),
            currency: Some("USD".into()),
            ..CheckoutOptions::default()
        }
    }

    fn validate(o: CheckoutOptions, currency: Option<&CurrencyCode>) -> Result<ValidCheckout> {
        o.validate(NOW, currency, &Fake)
    }

    fn fields(err: crate::error::Error) -> Vec<String> {
        match err {
            crate::error::Error::Invalid(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hosted_and_embedded_rules() {
        assert_eq!(
            validate(hosted(), None).unwrap().ui,
            CheckoutUi::Hosted {
                success_url: "https://app.example/ok?session={CHECKOUT_SESSION_ID}".into(),
                cancel_url: None
            }
        );
        let err = validate(
            CheckoutOptions {
                success_url: None,
                return_url: Some("https://x".into()),
                ..hosted()
            },
            None,
        )
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
            fields(validate(embedded, None).unwrap_err()),
            ["stripe_options.success_url", "stripe_options.cancel_url"]
        );
        let ok = CheckoutOptions {
            ui_mode: Some(UiMode::Embedded),
            success_url: None,
            return_url: Some("https://x/return".into()),
            ..hosted()
        };
        assert_eq!(
            validate(ok, None).unwrap().ui,
            CheckoutUi::Embedded {
                return_url: Some("https://x/return".into()),
                redirect_on_completion: None
            }
        );
        let never = CheckoutOptions {
            ui_mode: Some(UiMode::Embedded),
            success_url: None,
            redirect_on_completion: Some(RedirectOnCompletion::Never),
            ..hosted()
        };
        assert_eq!(validate(never, None).unwrap().ui.mode(), UiMode::Embedded);
    }

    #[test]
    fn expiry_window_currency_metadata() {
        let at = |secs| {
            validate(
                CheckoutOptions {
                    expires_at: Some(NOW + secs),
                    ..hosted()
                },
                None,
            )
        };
        assert!(at(30 * 60).is_ok());
        assert!(at(24 * 3600).is_ok());
        assert!(at(30 * 60 - 1).is_err());
        assert!(at(24 * 3600 + 1).is_err());
        // Any i64 is a refusal, never an overflow.
        for extreme in [i64::MIN, i64::MIN + 1, i64::MAX] {
            let options = CheckoutOptions {
                expires_at: Some(extreme),
                ..hosted()
            };
            assert_eq!(
                fields(validate(options, None).unwrap_err()),
                ["stripe_options.expires_at"]
            );
        }
        let no_currency = CheckoutOptions {
            currency: None,
            ..hosted()
        };
        assert_eq!(
            fields(validate(no_currency.clone(), None).unwrap_err()),
            ["stripe_options.currency"]
        );
        let eur = CurrencyCode::parse("EUR").unwrap();
        assert_eq!(
            validate(no_currency.clone(), Some(&eur)).unwrap().currency,
            Some(eur)
        );
        let with_types = CheckoutOptions {
            payment_method_types: Some(vec!["card".into()]),
            ..no_currency
        };
        assert_eq!(validate(with_types, None).unwrap().currency, None);
        let meta = CheckoutOptions {
            metadata: Some(BTreeMap::from([("xy".to_owned(), "v".to_owned())])),
            currency: Some("usd".into()),
            ..hosted()
        };
        assert_eq!(
            fields(validate(meta, None).unwrap_err()),
            ["stripe_options.metadata.xy", "stripe_options.currency"]
        );
    }

    #[test]
    fn the_providers_lists_decide_locales_and_payment_method_types() {
        let o = CheckoutOptions {
            locale: Some("xx".into()),
            payment_method_types: Some(vec!["card".into(), "bitcoin".into(), "card".into()]),
            ..hosted()
        };
        let Err(crate::error::Error::Invalid(errors)) = validate(o, None) else {
            panic!("accepted")
        };
        let seen: Vec<_> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.rule.clone(), e.reason.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "stripe_options.locale",
                    Rule::Enum(vec!["en".into()]),
                    "[xx] is not a locale Stripe Checkout supports"
                ),
                (
                    "stripe_options.payment_method_types[1]",
                    Rule::Enum(vec!["card".into()]),
                    "[bitcoin] is not a payment method type Stripe Checkout can set up"
                ),
                (
                    "stripe_options.payment_method_types[2]",
                    Rule::Invalid,
                    "duplicates [card]"
                ),
            ]
        );
    }
}
