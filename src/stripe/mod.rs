//! Everything meterpay knows about Stripe lives here: the typed client
//! (async-stripe, pinned API version) with retries under one idempotency key
//! (`client`), the translation of domain values into Stripe's requests and of
//! Stripe's answers and errors back (`transformers`), and webhook signature
//! verification (`webhook`). Callers speak meterpay's vocabulary only.
mod client;
pub mod events;
pub mod ids;
pub mod invoices;
mod transformers;
pub mod webhook;

pub use client::StripeClient;
pub use transformers::{
    CheckoutRules, CheckoutSessionFor, META_APP_ID, META_CUSTOMER_ID, META_NAMESPACE,
    METADATA_LIMITS, MetadataLimits, NON_REDIRECT_PAYMENT_METHOD_TYPES, PortalField,
    PortalSessionFor, StripeCustomerFor, checkout_field_for_param, is_portal_locale,
    portal_field_for_param, portal_locales,
};

use std::collections::BTreeMap;
use std::time::Duration;

use crate::billing::checkout::CheckoutSessionStatus;

/// The Stripe API version of meterpay's requests and of the events its
/// webhook endpoints receive: the one async-stripe's types were generated for.
pub fn api_version() -> &'static str {
    static VERSION: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| stripe_client_core::VERSION.as_str().to_owned());
    &VERSION
}

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

/// Makes per-key clients over one pooled HTTP client. Cheap to clone;
/// shared in the service context.
#[derive(Clone)]
pub struct Stripe {
    pub config: std::sync::Arc<StripeConfig>,
    transport: client::Transport,
}

impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripe")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Failures of a Stripe call, after retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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

/// What meterpay keeps of a created session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedCheckoutSession {
    pub id: String,
    pub url: Option<String>,
    pub client_secret: Option<String>,
    pub setup_intent: Option<String>,
    /// `None` for a status this API version does not know.
    pub status: Option<CheckoutSessionStatus>,
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
        let transport = client::Transport::new(&config.api_base);
        Stripe {
            config: std::sync::Arc::new(config),
            transport,
        }
    }

    /// A client for one API key. The key never appears in logs or `Debug`.
    pub fn client(&self, api_key: &str) -> StripeClient {
        StripeClient::new(self.config.clone(), self.transport.clone(), api_key)
    }
}
