//! Stripe's side of every conversion, in one place (as payment connectors
//! such as hyperswitch keep a `transformers.rs`): validated domain values
//! become async-stripe's typed requests, Stripe's answers and errors become
//! domain values, and Stripe's parameter names become meterpay's field names.
//! Nothing outside `src/stripe/` names an async-stripe type or a Stripe wire
//! name.
//!
//! meterpay keeps the upstream API's names; the pinned API version renamed
//! some: `ui_mode` `hosted` → `hosted_page`, `embedded` → `embedded_page`,
//! `payment_method_types` → `allowed_payment_method_types`.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use stripe_billing::BillingPortalSessionLocale;
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionAllowedPaymentMethodTypes,
    CreateCheckoutSessionConsentCollection,
    CreateCheckoutSessionConsentCollectionPaymentMethodReuseAgreement,
    CreateCheckoutSessionConsentCollectionPaymentMethodReuseAgreementPosition,
    CreateCheckoutSessionConsentCollectionPromotions,
    CreateCheckoutSessionConsentCollectionTermsOfService, CreateCheckoutSessionCustomText,
    CreateCheckoutSessionCustomerUpdate, CreateCheckoutSessionCustomerUpdateAddress,
    CreateCheckoutSessionCustomerUpdateName, CreateCheckoutSessionCustomerUpdateShipping,
    CreateCheckoutSessionSetupIntentData, CreateCheckoutSessionTaxIdCollection,
    CreateCheckoutSessionTaxIdCollectionRequired, CustomTextPositionParam,
};
use stripe_checkout::{
    CheckoutSessionBillingAddressCollection, CheckoutSessionLocale, CheckoutSessionMode,
    CheckoutSessionRedirectOnCompletion, CheckoutSessionUiMode,
};
use stripe_core::customer::CreateCustomer;

use super::{CreatedCheckoutSession, CreatedPortalSession, StripeError};
use crate::billing::checkout::{
    BillingAddressCollection, CheckoutSessionStatus, CheckoutUi, Promotions, ProviderRules,
    RedirectOnCompletion, ReuseAgreementPosition, TaxIdRequired, TermsOfService, UpdateBehavior,
    ValidCheckout,
};
use crate::billing::customer::Customer;
use crate::billing::portal::PortalOptions;
use crate::error::{Rule, Violations};
use crate::ids::{AppId, CustomerId, StripeCustomerId};

// ---- metadata ------------------------------------------------------------

/// Metadata keys meterpay writes on Stripe objects itself; clients may not
/// use keys with this prefix.
pub const RESERVED_METADATA_PREFIX: &str = "meterpay_";
pub const META_NAMESPACE: &str = "meterpay_namespace";
pub const META_APP_ID: &str = "meterpay_app_id";
pub const META_CUSTOMER_ID: &str = "meterpay_customer_id";
pub const META_CUSTOMER_KEY: &str = "meterpay_customer_key";
/// What upstream OpenMeter's Stripe app puts on the setup intents and
/// sessions it creates: read like meterpay's own keys, so checkouts in flight
/// keep working after a migration, and refused in client metadata likewise.
pub const UPSTREAM_META_NAMESPACE: &str = "om_namespace";
pub const UPSTREAM_META_APP_ID: &str = "om_app_id";
pub const UPSTREAM_META_CUSTOMER_ID: &str = "om_customer_id";
const UPSTREAM_RESERVED: [&str; 3] = [
    UPSTREAM_META_NAMESPACE,
    UPSTREAM_META_APP_ID,
    UPSTREAM_META_CUSTOMER_ID,
];

/// Stripe's metadata limits.
const MAX_METADATA_KEYS: usize = 50;
const MAX_METADATA_KEY_CHARS: usize = 40;
const MAX_METADATA_VALUE_CHARS: usize = 500;

/// What [`ProviderRules::check_metadata`] takes in a client's metadata, for
/// the API document to state.
#[derive(Debug, Clone, Copy)]
pub struct MetadataLimits {
    pub max_keys: usize,
    /// Keys are 1 to this many characters, without `[` or `]`.
    pub max_key_chars: usize,
    pub max_value_chars: usize,
    /// Keys may not start with it.
    pub reserved_prefix: &'static str,
    /// Keys that may not be used.
    pub reserved_keys: &'static [&'static str],
}

pub const METADATA_LIMITS: MetadataLimits = MetadataLimits {
    max_keys: MAX_METADATA_KEYS,
    max_key_chars: MAX_METADATA_KEY_CHARS,
    max_value_chars: MAX_METADATA_VALUE_CHARS,
    reserved_prefix: RESERVED_METADATA_PREFIX,
    reserved_keys: &UPSTREAM_RESERVED,
};

/// The metadata meterpay puts on what it creates for an app's customer, so
/// that webhooks can find their way back.
fn our_metadata(
    namespace: &str,
    app_id: AppId,
    customer_id: CustomerId,
) -> HashMap<String, String> {
    HashMap::from([
        (META_NAMESPACE.to_owned(), namespace.to_owned()),
        (META_APP_ID.to_owned(), app_id.to_string()),
        (META_CUSTOMER_ID.to_owned(), customer_id.to_string()),
    ])
}

// ---- what Stripe Checkout accepts ----------------------------------------

/// Stripe Checkout's rules for the options billing validates, from
/// async-stripe's generated enums for the pinned API version.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckoutRules;

/// Every locale of the pinned version's `CheckoutSessionLocale`, in its order.
fn checkout_locales() -> Vec<CheckoutSessionLocale> {
    use CheckoutSessionLocale::*;
    vec![
        Auto, Bg, Cs, Da, De, El, En, EnMinusGb, Es, EsMinus419, Et, Fi, Fil, Fr, FrMinusCa, Hr,
        Hu, Id, It, Ja, Ko, Lt, Lv, Ms, Mt, Nb, Nl, Pl, Pt, PtMinusBr, Ro, Ru, Sk, Sl, Sv, Th, Tr,
        Vi, Zh, ZhMinusHk, ZhMinusTw,
    ]
}

/// Those of the pinned version's `allowed_payment_method_types` that
/// Checkout can set up for later use (setup mode); the others only pay.
fn setup_payment_method_types() -> Vec<CreateCheckoutSessionAllowedPaymentMethodTypes> {
    use CreateCheckoutSessionAllowedPaymentMethodTypes::*;
    vec![
        AcssDebit,
        AmazonPay,
        AuBecsDebit,
        BacsDebit,
        Bancontact,
        Boleto,
        Card,
        Cashapp,
        Ideal,
        KakaoPay,
        KrCard,
        Link,
        NaverPay,
        NzBankAccount,
        Paypal,
        Payto,
        RevolutPay,
        SepaDebit,
        Sofort,
        UsBankAccount,
    ]
}

/// The setup payment method types that never redirect the customer away
/// from an embedded session (Stripe requires a `return_url` with any other,
/// unless `redirect_on_completion` is `never`).
pub const NON_REDIRECT_PAYMENT_METHOD_TYPES: &[&str] = &[
    "card",
    "acss_debit",
    "au_becs_debit",
    "bacs_debit",
    "nz_bank_account",
    "sepa_debit",
    "us_bank_account",
];

/// One of async-stripe's generated enums from Stripe's wire value (their
/// `FromStr` cannot fail: an unknown value becomes `Unknown`).
pub(super) fn wire<T: FromStr<Err = std::convert::Infallible>>(value: &str) -> T {
    match value.parse() {
        Ok(v) => v,
        Err(never) => match never {},
    }
}

impl ProviderRules for CheckoutRules {
    fn is_checkout_locale(&self, locale: &str) -> bool {
        !matches!(wire(locale), CheckoutSessionLocale::Unknown(_))
    }

    fn checkout_locales(&self) -> Vec<String> {
        checkout_locales()
            .iter()
            .map(|l| l.as_str().to_owned())
            .collect()
    }

    fn is_setup_payment_method_type(&self, kind: &str) -> bool {
        let kind: CreateCheckoutSessionAllowedPaymentMethodTypes = wire(kind);
        !matches!(
            kind,
            CreateCheckoutSessionAllowedPaymentMethodTypes::Unknown(_)
        ) && setup_payment_method_types().contains(&kind)
    }

    fn setup_payment_method_types(&self) -> Vec<String> {
        setup_payment_method_types()
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect()
    }

    fn check_metadata(&self, v: &mut Violations, field: &str, metadata: &BTreeMap<String, String>) {
        if metadata.len() > MAX_METADATA_KEYS {
            v.push(
                field,
                Rule::MaxItems(MAX_METADATA_KEYS as u64),
                "Stripe allows at most 50 metadata keys",
            );
        }
        for (key, value) in metadata {
            let name = format!("{field}.{key}");
            if key.is_empty() || key.chars().count() > MAX_METADATA_KEY_CHARS {
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
                    format!(
                        "metadata keys starting with [{RESERVED_METADATA_PREFIX}] are reserved for meterpay"
                    ),
                );
            } else if UPSTREAM_RESERVED.contains(&key.as_str()) {
                v.push(
                    &name,
                    Rule::Invalid,
                    format!(
                        "[{key}] is reserved: meterpay reads it as OpenMeter's own metadata \
                         (om_namespace, om_app_id, om_customer_id)"
                    ),
                );
            }
            if value.chars().count() > MAX_METADATA_VALUE_CHARS {
                v.push(
                    &name,
                    Rule::MaxLength(MAX_METADATA_VALUE_CHARS as u64),
                    "metadata values must be at most 500 characters long",
                );
            }
        }
    }
}

/// Every locale of the pinned version's `BillingPortalSessionLocale`, in its order.
pub fn portal_locales() -> Vec<String> {
    use BillingPortalSessionLocale::*;
    [
        Auto, Bg, Cs, Da, De, El, En, EnMinusAu, EnMinusCa, EnMinusGb, EnMinusIe, EnMinusIn,
        EnMinusNz, EnMinusSg, Es, EsMinus419, Et, Fi, Fil, Fr, FrMinusCa, Hr, Hu, Id, It, Ja, Ko,
        Lt, Lv, Ms, Mt, Nb, Nl, Pl, Pt, PtMinusBr, Ro, Ru, Sk, Sl, Sv, Th, Tr, Vi, Zh, ZhMinusHk,
        ZhMinusTw,
    ]
    .iter()
    .map(|l| l.as_str().to_owned())
    .collect()
}

/// Whether Stripe's customer portal knows this locale (`auto`, `en`, `fr-CA`, …),
/// by async-stripe's generated list from Stripe's specification.
pub fn is_portal_locale(locale: &str) -> bool {
    !matches!(wire(locale), BillingPortalSessionLocale::Unknown(_))
}

// ---- domain → request ----------------------------------------------------

/// A setup-mode Checkout Session for one of an app's customers.
#[derive(Debug, Clone, Copy)]
pub struct CheckoutSessionFor<'a> {
    pub namespace: &'a str,
    pub app_id: AppId,
    pub customer_id: CustomerId,
    pub stripe_customer_id: &'a StripeCustomerId,
    pub checkout: &'a ValidCheckout,
}

impl From<UpdateBehavior> for CreateCheckoutSessionCustomerUpdateAddress {
    fn from(b: UpdateBehavior) -> Self {
        match b {
            UpdateBehavior::Auto => Self::Auto,
            UpdateBehavior::Never => Self::Never,
        }
    }
}

impl From<UpdateBehavior> for CreateCheckoutSessionCustomerUpdateName {
    fn from(b: UpdateBehavior) -> Self {
        match b {
            UpdateBehavior::Auto => Self::Auto,
            UpdateBehavior::Never => Self::Never,
        }
    }
}

impl From<UpdateBehavior> for CreateCheckoutSessionCustomerUpdateShipping {
    fn from(b: UpdateBehavior) -> Self {
        match b {
            UpdateBehavior::Auto => Self::Auto,
            UpdateBehavior::Never => Self::Never,
        }
    }
}

impl From<BillingAddressCollection> for CheckoutSessionBillingAddressCollection {
    fn from(b: BillingAddressCollection) -> Self {
        match b {
            BillingAddressCollection::Auto => Self::Auto,
            BillingAddressCollection::Required => Self::Required,
        }
    }
}

impl From<ReuseAgreementPosition>
    for CreateCheckoutSessionConsentCollectionPaymentMethodReuseAgreementPosition
{
    fn from(p: ReuseAgreementPosition) -> Self {
        match p {
            ReuseAgreementPosition::Auto => Self::Auto,
            ReuseAgreementPosition::Hidden => Self::Hidden,
        }
    }
}

impl From<Promotions> for CreateCheckoutSessionConsentCollectionPromotions {
    fn from(p: Promotions) -> Self {
        match p {
            Promotions::Auto => Self::Auto,
            Promotions::None => Self::None,
        }
    }
}

impl From<TermsOfService> for CreateCheckoutSessionConsentCollectionTermsOfService {
    fn from(t: TermsOfService) -> Self {
        match t {
            TermsOfService::None => Self::None,
            TermsOfService::Required => Self::Required,
        }
    }
}

impl From<RedirectOnCompletion> for CheckoutSessionRedirectOnCompletion {
    fn from(r: RedirectOnCompletion) -> Self {
        match r {
            RedirectOnCompletion::Always => Self::Always,
            RedirectOnCompletion::IfRequired => Self::IfRequired,
            RedirectOnCompletion::Never => Self::Never,
        }
    }
}

impl From<TaxIdRequired> for CreateCheckoutSessionTaxIdCollectionRequired {
    fn from(t: TaxIdRequired) -> Self {
        match t {
            TaxIdRequired::IfSupported => Self::IfSupported,
            TaxIdRequired::Never => Self::Never,
        }
    }
}

impl From<CheckoutSessionFor<'_>> for CreateCheckoutSession {
    fn from(s: CheckoutSessionFor<'_>) -> Self {
        let c = s.checkout;
        let mut req = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Setup)
            .customer(s.stripe_customer_id.as_str().to_owned());
        req = match &c.ui {
            CheckoutUi::Hosted {
                success_url,
                cancel_url,
            } => {
                let req = req
                    .ui_mode(CheckoutSessionUiMode::HostedPage)
                    .success_url(success_url.clone());
                match cancel_url {
                    Some(url) => req.cancel_url(url.clone()),
                    None => req,
                }
            }
            CheckoutUi::Embedded {
                return_url,
                redirect_on_completion,
            } => {
                let mut req = req.ui_mode(CheckoutSessionUiMode::EmbeddedPage);
                if let Some(url) = return_url {
                    req = req.return_url(url.clone());
                }
                if let Some(r) = redirect_on_completion {
                    req = req.redirect_on_completion(CheckoutSessionRedirectOnCompletion::from(*r));
                }
                req
            }
        };
        if let Some(currency) = &c.currency {
            req = req.currency(wire::<stripe_types::Currency>(
                &currency.as_str().to_ascii_lowercase(),
            ));
        }
        if let Some(id) = &c.client_reference_id {
            req = req.client_reference_id(id.clone());
        }
        if let Some(b) = c.billing_address_collection {
            req = req.billing_address_collection(CheckoutSessionBillingAddressCollection::from(b));
        }
        if let Some(u) = &c.customer_update {
            let mut update = CreateCheckoutSessionCustomerUpdate::new();
            update.address = u.address.map(Into::into);
            update.name = u.name.map(Into::into);
            update.shipping = u.shipping.map(Into::into);
            req = req.customer_update(update);
        }
        if let Some(consent) = &c.consent_collection {
            let mut stripe = CreateCheckoutSessionConsentCollection::new();
            stripe.payment_method_reuse_agreement =
                consent.payment_method_reuse_agreement.map(|position| {
                    CreateCheckoutSessionConsentCollectionPaymentMethodReuseAgreement::new(
                        CreateCheckoutSessionConsentCollectionPaymentMethodReuseAgreementPosition::from(position),
                    )
                });
            stripe.promotions = consent.promotions.map(Into::into);
            stripe.terms_of_service = consent.terms_of_service.map(Into::into);
            req = req.consent_collection(stripe);
        }
        if let Some(t) = &c.custom_text {
            let mut text = CreateCheckoutSessionCustomText::new();
            let param = |m: &Option<String>| m.clone().map(CustomTextPositionParam::new);
            text.after_submit = param(&t.after_submit);
            text.shipping_address = param(&t.shipping_address);
            text.submit = param(&t.submit);
            text.terms_of_service_acceptance = param(&t.terms_of_service_acceptance);
            req = req.custom_text(text);
        }
        if let Some(at) = c.expires_at {
            req = req.expires_at(at);
        }
        if let Some(locale) = &c.locale {
            req = req.locale(wire::<CheckoutSessionLocale>(locale));
        }
        if !c.metadata.is_empty() {
            req = req.metadata(c.metadata.clone().into_iter().collect::<HashMap<_, _>>());
        }
        if !c.payment_method_types.is_empty() {
            req = req.allowed_payment_method_types(
                c.payment_method_types
                    .iter()
                    .map(|t| wire::<CreateCheckoutSessionAllowedPaymentMethodTypes>(t))
                    .collect::<Vec<_>>(),
            );
        }
        if let Some(t) = &c.tax_id_collection {
            let mut tax = CreateCheckoutSessionTaxIdCollection::new(t.enabled);
            tax.required = t.required.map(Into::into);
            req = req.tax_id_collection(tax);
        }
        let mut setup = CreateCheckoutSessionSetupIntentData::new();
        setup.metadata = Some(our_metadata(s.namespace, s.app_id, s.customer_id));
        req.setup_intent_data(setup)
    }
}

/// The Stripe customer of one of an app's customers.
#[derive(Debug, Clone, Copy)]
pub struct StripeCustomerFor<'a> {
    pub namespace: &'a str,
    pub app_id: AppId,
    pub customer: &'a Customer,
}

impl From<StripeCustomerFor<'_>> for CreateCustomer {
    fn from(s: StripeCustomerFor<'_>) -> Self {
        let mut metadata = our_metadata(s.namespace, s.app_id, s.customer.id);
        metadata.insert(META_CUSTOMER_KEY.to_owned(), s.customer.key.clone());
        let mut req = CreateCustomer::new()
            .metadata(metadata)
            .name(s.customer.name.clone());
        if let Some(email) = &s.customer.primary_email {
            req = req.email(email.clone());
        }
        req
    }
}

/// A customer portal session for a linked Stripe customer.
#[derive(Debug, Clone, Copy)]
pub struct PortalSessionFor<'a> {
    pub stripe_customer_id: &'a StripeCustomerId,
    pub options: &'a PortalOptions,
}

impl From<PortalSessionFor<'_>> for CreateBillingPortalSession {
    fn from(p: PortalSessionFor<'_>) -> Self {
        let mut req =
            CreateBillingPortalSession::new().customer(p.stripe_customer_id.as_str().to_owned());
        if let Some(configuration) = &p.options.configuration_id {
            req = req.configuration(configuration.clone());
        }
        if let Some(locale) = &p.options.locale {
            req = req.locale(wire::<BillingPortalSessionLocale>(locale));
        }
        if let Some(url) = &p.options.return_url {
            req = req.return_url(url.clone());
        }
        req
    }
}

// ---- answer → domain -----------------------------------------------------

impl From<stripe_checkout::CheckoutSession> for CreatedCheckoutSession {
    fn from(s: stripe_checkout::CheckoutSession) -> Self {
        CreatedCheckoutSession {
            id: s.id.as_str().to_owned(),
            url: s.url,
            client_secret: s.client_secret,
            setup_intent: s.setup_intent.map(|si| si.id().as_str().to_owned()),
            status: s.status.and_then(|status| match status {
                stripe_checkout::CheckoutSessionStatus::Open => Some(CheckoutSessionStatus::Open),
                stripe_checkout::CheckoutSessionStatus::Complete => {
                    Some(CheckoutSessionStatus::Complete)
                }
                stripe_checkout::CheckoutSessionStatus::Expired => {
                    Some(CheckoutSessionStatus::Expired)
                }
                _ => None,
            }),
            currency: s.currency.map(|c| c.to_string()),
            customer_email: s.customer_email,
            created: s.created,
            expires_at: s.expires_at,
            metadata: s.metadata.unwrap_or_default().into_iter().collect(),
            return_url: s.return_url,
            success_url: s.success_url,
            cancel_url: s.cancel_url,
            client_reference_id: s.client_reference_id,
            livemode: s.livemode,
        }
    }
}

impl From<stripe_billing::BillingPortalSession> for CreatedPortalSession {
    fn from(s: stripe_billing::BillingPortalSession) -> Self {
        CreatedPortalSession {
            id: s.id.as_str().to_owned(),
            customer: s.customer,
            configuration: s.configuration.id().as_str().to_owned(),
            livemode: s.livemode,
            created: s.created,
            return_url: s.return_url,
            locale: s.locale.map(|l| l.as_str().to_owned()),
            url: s.url,
        }
    }
}

/// What to do with Stripe's error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ErrorAnswer {
    /// Worth another attempt under the same idempotency key.
    Retry(String),
    Fail(StripeError),
}

/// Sorts Stripe's error answer (`status` and its `error` object), keeping
/// Stripe's `type`, `code` and `param`.
pub(super) fn error_answer(what: &str, status: u16, err: &stripe_shared::ApiErrors) -> ErrorAnswer {
    let message = err
        .message
        .clone()
        .unwrap_or_else(|| format!("Stripe answered {status}"));
    // 409: the same idempotency key is in use by a concurrent request
    // (Stripe: safe to retry); 424: a transient failure of an external
    // dependency.
    if matches!(status, 409 | 424 | 429) || status >= 500 {
        ErrorAnswer::Retry(format!("{what}: Stripe answered {status}: {message}"))
    } else if status == 401 || status == 403 {
        ErrorAnswer::Fail(StripeError::KeyRejected { message })
    } else {
        ErrorAnswer::Fail(StripeError::Rejected {
            status,
            kind: err.type_.as_str().to_owned(),
            code: err.code.as_ref().map(|c| c.as_str().to_owned()),
            message,
            param: err.param.clone(),
        })
    }
}

// ---- Stripe's parameters → meterpay's fields ------------------------------

/// The v3 field of a checkout request that Stripe's `param` stands for
/// (`stripe` when Stripe named none; `stripe.<param>` for what meterpay
/// itself sets).
pub fn checkout_field_for_param(param: Option<&str>) -> String {
    match param {
        Some("customer") => "stripe_customer_id".to_owned(),
        Some("allowed_payment_method_types") => "stripe_options.payment_method_types".to_owned(),
        Some(p) if p.starts_with("setup_intent_data") => format!("stripe.{p}"),
        Some(p) => format!("stripe_options.{}", p.replace('[', ".").replace(']', "")),
        None => "stripe".to_owned(),
    }
}

/// The portal option (or the customer) that Stripe's `param` stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortalField {
    ConfigurationId,
    Locale,
    ReturnUrl,
    /// The customer the request is for.
    Customer,
}

pub fn portal_field_for_param(param: Option<&str>) -> Option<PortalField> {
    match param? {
        "configuration" => Some(PortalField::ConfigurationId),
        "locale" => Some(PortalField::Locale),
        "return_url" => Some(PortalField::ReturnUrl),
        "customer" => Some(PortalField::Customer),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::billing::checkout::{
        ConsentCollection, CustomText, CustomerUpdate, TaxIdCollection,
    };
    use crate::billing::currency::CurrencyCode;

    const APP: &str = "01J0000000000000000000APP0";
    const CUSTOMER: &str = "01J00000000000000000000CST";

    fn ids() -> (AppId, CustomerId) {
        (APP.parse().unwrap(), CUSTOMER.parse().unwrap())
    }

    /// The form async-stripe would send, as JSON.
    fn params(req: &impl serde::Serialize) -> Value {
        serde_json::to_value(req).unwrap()["inner"].clone()
    }

    fn checkout(ui: CheckoutUi) -> ValidCheckout {
        ValidCheckout {
            ui,
            currency: None,
            client_reference_id: None,
            billing_address_collection: None,
            customer_update: None,
            consent_collection: None,
            custom_text: None,
            expires_at: None,
            locale: None,
            metadata: BTreeMap::new(),
            payment_method_types: Vec::new(),
            tax_id_collection: None,
        }
    }

    #[test]
    fn a_hosted_checkout_becomes_a_setup_session_in_stripes_2026_names() {
        let (app_id, customer_id) = ids();
        let valid = ValidCheckout {
            currency: Some(CurrencyCode::parse("USD").unwrap()),
            client_reference_id: Some("ref-1".into()),
            billing_address_collection: Some(BillingAddressCollection::Required),
            customer_update: Some(CustomerUpdate {
                address: Some(UpdateBehavior::Auto),
                name: Some(UpdateBehavior::Never),
                shipping: None,
            }),
            consent_collection: Some(ConsentCollection {
                payment_method_reuse_agreement: Some(ReuseAgreementPosition::Hidden),
                promotions: Some(Promotions::Auto),
                terms_of_service: Some(TermsOfService::Required),
            }),
            custom_text: Some(CustomText {
                submit: Some("Save".into()),
                ..CustomText::default()
            }),
            expires_at: Some(1_800_003_600),
            locale: Some("fr-CA".into()),
            metadata: BTreeMap::from([("plan".to_owned(), "pro".to_owned())]),
            payment_method_types: vec!["card".into(), "sepa_debit".into()],
            tax_id_collection: Some(TaxIdCollection {
                enabled: true,
                required: Some(TaxIdRequired::IfSupported),
            }),
            ..checkout(CheckoutUi::Hosted {
                success_url: "https://app.example/ok".into(),
                cancel_url: Some("https://app.example/no".into()),
            })
        };
        let req = CreateCheckoutSession::from(CheckoutSessionFor {
            namespace: "default",
            app_id,
            customer_id,
            stripe_customer_id: &StripeCustomerId::from("cus_123"),
            checkout: &valid,
        });
        assert_eq!(
            params(&req),
            json!({
                "mode": "setup",
                "customer": "cus_123",
                "ui_mode": "hosted_page",
                "success_url": "https://app.example/ok",
                "cancel_url": "https://app.example/no",
                "currency": "usd",
                "client_reference_id": "ref-1",
                "billing_address_collection": "required",
                "customer_update": {"address": "auto", "name": "never"},
                "consent_collection": {
                    "payment_method_reuse_agreement": {"position": "hidden"},
                    "promotions": "auto",
                    "terms_of_service": "required"
                },
                "custom_text": {"submit": {"message": "Save"}},
                "expires_at": 1_800_003_600,
                "locale": "fr-CA",
                "metadata": {"plan": "pro"},
                "allowed_payment_method_types": ["card", "sepa_debit"],
                "tax_id_collection": {"enabled": true, "required": "if_supported"},
                "setup_intent_data": {"metadata": {
                    "meterpay_namespace": "default",
                    "meterpay_app_id": APP,
                    "meterpay_customer_id": CUSTOMER
                }}
            })
        );
    }

    #[test]
    fn an_embedded_checkout_carries_its_return_url_and_redirect() {
        let (app_id, customer_id) = ids();
        let valid = checkout(CheckoutUi::Embedded {
            return_url: Some("https://app.example/back".into()),
            redirect_on_completion: Some(RedirectOnCompletion::IfRequired),
        });
        let req = CreateCheckoutSession::from(CheckoutSessionFor {
            namespace: "ns",
            app_id,
            customer_id,
            stripe_customer_id: &StripeCustomerId::from("cus_1"),
            checkout: &valid,
        });
        let p = params(&req);
        assert_eq!(p["ui_mode"], "embedded_page");
        assert_eq!(p["return_url"], "https://app.example/back");
        assert_eq!(p["redirect_on_completion"], "if_required");
        assert_eq!(p.get("success_url"), None);
        assert_eq!(p.get("currency"), None);
    }

    #[test]
    fn a_stripe_customer_names_its_meterpay_customer() {
        let (app_id, customer_id) = ids();
        let customer = Customer {
            id: customer_id,
            namespace: "ns".into(),
            key: "acme".into(),
            name: "ACME".into(),
            description: None,
            labels: None,
            subject_keys: Vec::new(),
            primary_email: Some("billing@acme.example".into()),
            currency: None,
            billing_address: None,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
            deleted_at: None,
        };
        let req = CreateCustomer::from(StripeCustomerFor {
            namespace: "ns",
            app_id,
            customer: &customer,
        });
        assert_eq!(
            params(&req),
            json!({
                "name": "ACME",
                "email": "billing@acme.example",
                "metadata": {
                    "meterpay_namespace": "ns",
                    "meterpay_app_id": APP,
                    "meterpay_customer_id": CUSTOMER,
                    "meterpay_customer_key": "acme"
                }
            })
        );
    }

    #[test]
    fn a_portal_session_passes_the_options_through() {
        let options = PortalOptions {
            configuration_id: Some("bpc_1".into()),
            locale: Some("de".into()),
            return_url: None,
        };
        let req = CreateBillingPortalSession::from(PortalSessionFor {
            stripe_customer_id: &StripeCustomerId::from("cus_9"),
            options: &options,
        });
        assert_eq!(
            params(&req),
            json!({"customer": "cus_9", "configuration": "bpc_1", "locale": "de"})
        );
    }

    #[test]
    fn the_lists_come_from_the_generated_enums() {
        let rules = CheckoutRules;
        for locale in rules.checkout_locales() {
            assert!(rules.is_checkout_locale(&locale), "{locale}");
        }
        assert_eq!(rules.checkout_locales().len(), 41);
        assert!(!rules.is_checkout_locale("xx"));
        assert!(rules.is_setup_payment_method_type("sepa_debit"));
        // Known to Stripe, but it only pays: not in setup mode.
        assert!(!rules.is_setup_payment_method_type("klarna"));
        assert!(!rules.is_setup_payment_method_type("bitcoin"));
        assert!(is_portal_locale("fr-CA"));
        assert!(!is_portal_locale("klingon"));
        let listed = portal_locales();
        assert!(listed.iter().all(|l| is_portal_locale(l)), "{listed:?}");
        assert_eq!(listed.len(), 47);
    }

    #[test]
    fn metadata_limits_and_reserved_keys() {
        let mut v = Violations::default();
        let metadata = BTreeMap::from([
            ("meterpay_customer_id".to_owned(), "x".to_owned()),
            ("k".repeat(41), "v".to_owned()),
            ("a[b]".to_owned(), "v".to_owned()),
            ("ok".to_owned(), "v".repeat(501)),
        ]);
        CheckoutRules.check_metadata(&mut v, "m", &metadata);
        let Err(crate::error::Error::Invalid(errors)) = v.into_result() else {
            panic!("accepted")
        };
        let seen: Vec<_> = errors
            .iter()
            .map(|e| (e.field.clone(), e.reason.clone()))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "m.a[b]".to_owned(),
                    "metadata keys cannot contain square brackets".to_owned()
                ),
                (
                    format!("m.{}", "k".repeat(41)),
                    "metadata keys must be 1 to 40 characters long".to_owned()
                ),
                (
                    "m.meterpay_customer_id".to_owned(),
                    "metadata keys starting with [meterpay_] are reserved for meterpay".to_owned()
                ),
                (
                    "m.ok".to_owned(),
                    "metadata values must be at most 500 characters long".to_owned()
                ),
            ]
        );
        let mut v = Violations::default();
        let many: BTreeMap<_, _> = (0..51).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        CheckoutRules.check_metadata(&mut v, "m", &many);
        let Err(crate::error::Error::Invalid(errors)) = v.into_result() else {
            panic!("accepted")
        };
        assert_eq!(errors[0].field, "m");
        assert_eq!(errors[0].rule, Rule::MaxItems(50));
    }

    fn api_error(json: &str) -> stripe_shared::ApiErrors {
        miniserde::json::from_str(json).unwrap()
    }

    #[test]
    fn stripes_errors_keep_type_code_and_param() {
        let err = api_error(
            r#"{"type":"invalid_request_error","code":"resource_missing","param":"customer","message":"No such customer: 'cus_x'"}"#,
        );
        assert_eq!(
            error_answer("create checkout session", 400, &err),
            ErrorAnswer::Fail(StripeError::Rejected {
                status: 400,
                kind: "invalid_request_error".into(),
                code: Some("resource_missing".into()),
                message: "No such customer: 'cus_x'".into(),
                param: Some("customer".into()),
            })
        );
        assert_eq!(
            error_answer(
                "x",
                401,
                &api_error(r#"{"type":"invalid_request_error","message":"Invalid API Key"}"#)
            ),
            ErrorAnswer::Fail(StripeError::KeyRejected {
                message: "Invalid API Key".into()
            })
        );
        assert_eq!(
            error_answer("x", 429, &api_error(r#"{"type":"invalid_request_error"}"#)),
            ErrorAnswer::Retry("x: Stripe answered 429: Stripe answered 429".into())
        );
        assert!(matches!(
            error_answer(
                "x",
                503,
                &api_error(r#"{"type":"api_error","message":"down"}"#)
            ),
            ErrorAnswer::Retry(_)
        ));
    }

    #[test]
    fn stripes_params_name_meterpays_fields() {
        let cases = [
            (None, "stripe"),
            (Some("customer"), "stripe_customer_id"),
            (
                Some("allowed_payment_method_types"),
                "stripe_options.payment_method_types",
            ),
            (
                Some("setup_intent_data[metadata]"),
                "stripe.setup_intent_data[metadata]",
            ),
            (
                Some("custom_text[submit][message]"),
                "stripe_options.custom_text.submit.message",
            ),
            (Some("success_url"), "stripe_options.success_url"),
        ];
        for (param, field) in cases {
            assert_eq!(checkout_field_for_param(param), field, "{param:?}");
        }
        assert_eq!(
            portal_field_for_param(Some("configuration")),
            Some(PortalField::ConfigurationId)
        );
        assert_eq!(
            portal_field_for_param(Some("customer")),
            Some(PortalField::Customer)
        );
        assert_eq!(portal_field_for_param(Some("flow_data")), None);
        assert_eq!(portal_field_for_param(None), None);
    }
}
