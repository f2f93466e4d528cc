//! Everything meterpay knows about Stripe lives here: the typed client
//! (async-stripe, pinned API version), retries under one idempotency key,
//! Stripe's errors turned into meterpay's, and (later) webhook verification.
//!
//! Callers speak meterpay's vocabulary translated to Stripe's current names:
//! `ui_mode` is `hosted_page`/`embedded_page`, payment method types are
//! `allowed_payment_method_types`.
//!
//! INTERFACE SKETCH — bodies are filled in by the Stripe-client work.

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

/// One Stripe client bound to one API key.
pub struct StripeClient {
    // filled in by the implementation
}

impl Stripe {
    pub fn new(config: StripeConfig) -> Stripe {
        Stripe {
            config: std::sync::Arc::new(config),
        }
    }

    pub fn client(&self, api_key: &str) -> StripeClient {
        let _ = api_key;
        unimplemented!()
    }
}

impl StripeClient {
    /// `GET /v1/account`: verifies the key and names its account.
    pub async fn account(&self) -> Result<StripeAccount, StripeError> {
        unimplemented!()
    }

    /// `POST /v1/webhook_endpoints`.
    pub async fn create_webhook_endpoint(
        &self,
        url: &str,
        enabled_events: &[&str],
        metadata: &BTreeMap<String, String>,
        idempotency_key: &str,
    ) -> Result<CreatedWebhookEndpoint, StripeError> {
        let _ = (url, enabled_events, metadata, idempotency_key);
        unimplemented!()
    }

    /// `DELETE /v1/webhook_endpoints/{id}`; an endpoint already gone is success.
    pub async fn delete_webhook_endpoint(&self, id: &str) -> Result<(), StripeError> {
        let _ = id;
        unimplemented!()
    }

    /// Whether `cus_…` exists (and is not deleted) in this account.
    pub async fn customer_exists(&self, id: &str) -> Result<bool, StripeError> {
        let _ = id;
        unimplemented!()
    }

    /// `POST /v1/customers`; returns the new `cus_` id.
    pub async fn create_customer(
        &self,
        customer: &NewStripeCustomer,
        idempotency_key: &str,
    ) -> Result<String, StripeError> {
        let _ = (customer, idempotency_key);
        unimplemented!()
    }
}
