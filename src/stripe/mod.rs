//! Everything meterpay knows about Stripe lives here: the typed client
//! (async-stripe, pinned API version), retries under one idempotency key,
//! Stripe's errors turned into meterpay's, and webhook signature verification.
//!
//! Callers speak meterpay's vocabulary translated to Stripe's current names:
//! `ui_mode` is `hosted_page`/`embedded_page`, payment method types are
//! `allowed_payment_method_types`.
//!
mod client;
pub mod webhook;

pub use client::StripeClient;

use std::collections::BTreeMap;
use std::time::Duration;

/// How meterpay reaches Stripe.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// `https://api.stripe.com` or the emulator's base URL (no trailing `/v1`).
    pub api_base: String,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Attempts in all (first try included) for 429, 5xx, timeouts and connection errors.
    pub max_attempts: u32,
    /// First backoff; doubles each retry, with jitter.
    pub backoff_base: Duration,
}

impl StripeConfig {
    pub fn new(api_base: impl Into<String>) -> StripeConfig {
        StripeConfig {
            api_base: api_base.into(),
            timeout: Duration::from_secs(20),
            max_attempts: 3,
            backoff_base: Duration::from_millis(250),
        }
    }
}

/// Makes per-key clients. Cheap to clone; shared in the app state.
#[derive(Debug, Clone)]
pub struct Stripe {
    pub config: std::sync::Arc<StripeConfig>,
}

/// Failures of a Stripe call, after retries.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StripeError {
    /// Stripe refused the request (4xx other than 401/429): its message and param.
    #[error("Stripe rejected the request: {message}")]
    Rejected {
        status: u16,
        kind: String,
        code: Option<String>,
        message: String,
        param: Option<String>,
    },
    /// The API key is unknown, revoked or of the wrong kind (Stripe 401 / 403).
    #[error("Stripe rejected the API key: {message}")]
    KeyRejected { message: String },
    /// Stripe could not be reached or kept failing (429, 5xx, timeout) after retries.
    #[error("Stripe is unavailable: {detail}")]
    Unavailable {
        detail: String,
        retry_after_secs: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeAccount {
    pub id: String,
    pub business_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedWebhookEndpoint {
    pub id: String,
    /// `whsec_…` — encrypt before storing, never log.
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStripeCustomer {
    pub name: Option<String>,
    pub email: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// `ui_mode` in Stripe's 2026 vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiMode {
    HostedPage,
    EmbeddedPage,
}

impl UiMode {
    pub fn as_str(self) -> &'static str {
        match self {
            UiMode::HostedPage => "hosted_page",
            UiMode::EmbeddedPage => "embedded_page",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerUpdate {
    pub address: Option<String>,
    pub name: Option<String>,
    pub shipping: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentCollection {
    pub payment_method_reuse_agreement_position: Option<String>,
    pub promotions: Option<String>,
    pub terms_of_service: Option<String>,
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
    pub required: Option<String>,
}

/// A setup-mode Checkout Session, in Stripe's current parameter names.
/// Enum-like values are Stripe's wire strings, already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSessionParams {
    pub customer: String,
    /// Lower-case ISO 4217.
    pub currency: Option<String>,
    pub ui_mode: UiMode,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub return_url: Option<String>,
    pub client_reference_id: Option<String>,
    pub billing_address_collection: Option<String>,
    pub customer_update: Option<CustomerUpdate>,
    pub consent_collection: Option<ConsentCollection>,
    pub custom_text: Option<CustomText>,
    pub expires_at: Option<i64>,
    pub locale: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub allowed_payment_method_types: Vec<String>,
    pub redirect_on_completion: Option<String>,
    pub tax_id_collection: Option<TaxIdCollection>,
    /// `setup_intent_data[metadata]`: meterpay's own ids, for the webhook.
    pub setup_intent_metadata: BTreeMap<String, String>,
}

/// What meterpay keeps of a created session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedCheckoutSession {
    pub id: String,
    pub url: Option<String>,
    pub client_secret: Option<String>,
    pub setup_intent: Option<String>,
    pub status: Option<String>,
    /// Lower-case, as Stripe returns it.
    pub currency: Option<String>,
    pub customer_email: Option<String>,
    pub created: i64,
    pub expires_at: i64,
    pub metadata: BTreeMap<String, String>,
    pub return_url: Option<String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub client_reference_id: Option<String>,
    pub livemode: bool,
}

/// `POST /v1/billing_portal/sessions` for one Stripe customer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortalSessionParams {
    pub customer: String,
    pub configuration: Option<String>,
    pub locale: Option<String>,
    pub return_url: Option<String>,
}

/// Whether Stripe's customer portal knows this locale (`auto`, `en`, `fr-CA`, …),
/// by async-stripe's generated list from Stripe's specification.
pub fn is_portal_locale(locale: &str) -> bool {
    !matches!(
        locale.parse::<stripe_billing::BillingPortalSessionLocale>(),
        Ok(stripe_billing::BillingPortalSessionLocale::Unknown(_))
    )
}

/// What meterpay returns of a created portal session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedPortalSession {
    pub id: String,
    pub customer: String,
    pub configuration: String,
    pub livemode: bool,
    pub created: i64,
    pub return_url: Option<String>,
    pub locale: Option<String>,
    pub url: String,
}

impl Stripe {
    pub fn new(config: StripeConfig) -> Stripe {
        Stripe {
            config: std::sync::Arc::new(config),
        }
    }

    /// A client for one API key. The key never appears in logs or `Debug`.
    pub fn client(&self, api_key: &str) -> StripeClient {
        StripeClient::new(self.config.clone(), api_key)
    }
}
