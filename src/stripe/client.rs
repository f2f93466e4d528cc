//! The async-stripe client behind [`StripeClient`]: typed requests at the
//! pinned API version, our own retry loop (so every attempt of a POST carries
//! the caller's idempotency key), per-attempt timeouts, and Stripe's errors
//! sorted into [`StripeError`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngExt;
use stripe::IdempotencyKey;
use stripe::{ClientBuilder, RequestStrategy, StripeRequest};
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_checkout::checkout_session::CreateCheckoutSession;
use stripe_connect::account::RetrieveForMyAccountAccount;
use stripe_core::customer::{
    CreateCustomer, RetrieveCustomer, RetrieveCustomerReturned, UpdateCustomer,
    UpdateCustomerInvoiceSettings,
};
use stripe_misc::webhook_endpoint::{CreateWebhookEndpoint, DeleteWebhookEndpoint};

use super::transformers::{
    CheckoutSessionFor, ErrorAnswer, PortalSessionFor, StripeCustomerFor, error_answer,
};
use super::{
    CreatedCheckoutSession, CreatedPortalSession, CreatedWebhookEndpoint, StripeAccount,
    StripeConfig, StripeError,
};

/// `base * 2^(attempt-1)` (the doubling stops after ten), scaled by `jitter`
/// (drawn from [0.5, 1.5) so concurrent retries spread out).
fn backoff_delay(base: Duration, attempt: u32, jitter: f64) -> Duration {
    let base = base.as_millis() as u64;
    let exp = base.saturating_mul(1u64 << attempt.saturating_sub(1).min(10));
    Duration::from_millis((exp as f64 * jitter) as u64)
}

/// One Stripe client bound to one API key.
pub struct StripeClient {
    config: Arc<StripeConfig>,
    /// `Err` when the key cannot even be sent (not a valid header value).
    inner: Result<stripe::Client, String>,
}

impl fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeClient")
            .field("api_base", &self.config.api_base)
            .finish_non_exhaustive()
    }
}

impl StripeClient {
    pub(super) fn new(config: Arc<StripeConfig>, api_key: &str) -> StripeClient {
        let base = format!("{}/", config.api_base.trim_end_matches('/'));
        let inner = ClientBuilder::new(api_key)
            .url(base)
            .request_strategy(RequestStrategy::Once)
            .build()
            .map_err(|_| "the API key contains characters that cannot be sent".to_owned());
        StripeClient { config, inner }
    }

    /// Sends `req`, retrying 429, 5xx, timeouts and connection failures with
    /// jittered exponential backoff, always under the same idempotency key.
    async fn send<R>(
        &self,
        what: &'static str,
        req: &R,
        idempotency_key: Option<&str>,
    ) -> Result<R::Output, StripeError>
    where
        R: StripeRequest,
        R::Output: miniserde::Deserialize,
    {
        let client = self
            .inner
            .as_ref()
            .map_err(|message| StripeError::KeyRejected {
                message: message.clone(),
            })?;
        let key = match idempotency_key {
            Some(k) => Some(IdempotencyKey::new(k).map_err(|e| StripeError::Rejected {
                status: 400,
                kind: "idempotency_error".into(),
                code: None,
                message: format!("invalid idempotency key: {e:?}"),
                param: None,
            })?),
            None => None,
        };
        let attempts = self.config.max_attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            let started = Instant::now();
            let mut customized = req.customize().timeout(self.config.timeout);
            customized = customized.request_strategy(match &key {
                Some(k) => RequestStrategy::Idempotent(k.clone()),
                None => RequestStrategy::Once,
            });
            let outcome = customized.send(client).await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            match outcome {
                Ok(value) => {
                    tracing::debug!(call = what, attempt, elapsed_ms, "Stripe call succeeded");
                    return Ok(value);
                }
                Err(stripe::StripeError::Stripe(err, status)) => {
                    tracing::debug!(
                        call = what,
                        attempt,
                        status,
                        elapsed_ms,
                        "Stripe call failed"
                    );
                    match error_answer(what, status, &err) {
                        ErrorAnswer::Retry(detail) => last = detail,
                        ErrorAnswer::Fail(e) => return Err(e),
                    }
                }
                Err(stripe::StripeError::Timeout) => {
                    tracing::debug!(call = what, attempt, elapsed_ms, "Stripe call timed out");
                    last = format!(
                        "{what}: no answer from Stripe within {} ms",
                        self.config.timeout.as_millis()
                    );
                }
                Err(stripe::StripeError::ClientError(e)) => {
                    tracing::debug!(call = what, attempt, elapsed_ms, error = %e, "Stripe unreachable");
                    last = format!("{what}: cannot reach Stripe: {e}");
                }
                Err(stripe::StripeError::JSONDeserialize(e)) => {
                    // An answer we cannot read will not improve by asking again.
                    return Err(StripeError::Unavailable {
                        detail: format!("{what}: unexpected answer from Stripe: {e}"),
                        retry_after_secs: None,
                    });
                }
                Err(stripe::StripeError::ConfigError(e)) => {
                    return Err(StripeError::KeyRejected { message: e });
                }
            }
            if attempt < attempts {
                tokio::time::sleep(self.backoff(attempt)).await;
            }
        }
        tracing::warn!(call = what, attempts, detail = %last, "Stripe unavailable after retries");
        Err(StripeError::Unavailable {
            detail: last,
            retry_after_secs: None,
        })
    }

    fn backoff(&self, attempt: u32) -> Duration {
        backoff_delay(
            self.config.backoff_base,
            attempt,
            rand::rng().random_range(0.5..1.5),
        )
    }

    /// `GET /v1/account`: verifies the key and names its account.
    pub async fn account(&self) -> Result<StripeAccount, StripeError> {
        let account = self
            .send(
                "retrieve account",
                &RetrieveForMyAccountAccount::new(),
                None,
            )
            .await?;
        Ok(StripeAccount {
            id: account.id.as_str().to_owned(),
            business_name: account.business_profile.and_then(|p| p.name),
        })
    }

    /// `POST /v1/webhook_endpoints`.
    pub async fn create_webhook_endpoint(
        &self,
        url: &str,
        enabled_events: &[&str],
        metadata: &BTreeMap<String, String>,
        idempotency_key: &str,
    ) -> Result<CreatedWebhookEndpoint, StripeError> {
        let events: Vec<_> = enabled_events
            .iter()
            .map(|e| super::transformers::wire(e))
            .collect();
        let req = CreateWebhookEndpoint::new(events, url)
            .metadata(metadata.clone().into_iter().collect::<HashMap<_, _>>());
        let endpoint = self
            .send("create webhook endpoint", &req, Some(idempotency_key))
            .await?;
        let secret = endpoint.secret.ok_or_else(|| StripeError::Unavailable {
            detail: "Stripe created the webhook endpoint without returning its secret".into(),
            retry_after_secs: None,
        })?;
        Ok(CreatedWebhookEndpoint {
            id: endpoint.id.as_str().to_owned(),
            secret,
        })
    }

    /// `DELETE /v1/webhook_endpoints/{id}`; an endpoint already gone is success.
    pub async fn delete_webhook_endpoint(&self, id: &str) -> Result<(), StripeError> {
        match self
            .send(
                "delete webhook endpoint",
                &DeleteWebhookEndpoint::new(id),
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(StripeError::Rejected { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether `cus_…` exists (and is not deleted) in this account.
    pub async fn customer_exists(&self, id: &str) -> Result<bool, StripeError> {
        match self
            .send("retrieve customer", &RetrieveCustomer::new(id), None)
            .await
        {
            Ok(RetrieveCustomerReturned::Customer(_)) => Ok(true),
            Ok(RetrieveCustomerReturned::DeletedCustomer(_)) => Ok(false),
            Err(StripeError::Rejected { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `POST /v1/customers`; returns the new `cus_` id.
    pub async fn create_customer(
        &self,
        customer: StripeCustomerFor<'_>,
        idempotency_key: &str,
    ) -> Result<String, StripeError> {
        let req = CreateCustomer::from(customer);
        let created = self
            .send("create customer", &req, Some(idempotency_key))
            .await?;
        Ok(created.id.as_str().to_owned())
    }

    /// `POST /v1/customers/{id}` with `invoice_settings[default_payment_method]`.
    pub async fn set_default_payment_method(
        &self,
        customer_id: &str,
        payment_method_id: &str,
        idempotency_key: &str,
    ) -> Result<(), StripeError> {
        let mut settings = UpdateCustomerInvoiceSettings::new();
        settings.default_payment_method = Some(payment_method_id.to_owned());
        let req = UpdateCustomer::new(customer_id).invoice_settings(settings);
        self.send("update customer", &req, Some(idempotency_key))
            .await?;
        Ok(())
    }

    /// `POST /v1/checkout/sessions` in setup mode.
    pub async fn create_checkout_session(
        &self,
        session: CheckoutSessionFor<'_>,
        idempotency_key: &str,
    ) -> Result<CreatedCheckoutSession, StripeError> {
        let req = CreateCheckoutSession::from(session);
        let created = self
            .send("create checkout session", &req, Some(idempotency_key))
            .await?;
        Ok(created.into())
    }

    /// `POST /v1/billing_portal/sessions`.
    pub async fn create_portal_session(
        &self,
        session: PortalSessionFor<'_>,
        idempotency_key: &str,
    ) -> Result<CreatedPortalSession, StripeError> {
        let req = CreateBillingPortalSession::from(session);
        let created = self
            .send("create portal session", &req, Some(idempotency_key))
            .await?;
        Ok(created.into())
    }
}

#[cfg(test)]
mod backoff_tests {
    use std::time::Duration;

    use super::backoff_delay;

    #[test]
    fn doubles_per_attempt_scaled_by_the_jitter() {
        let base = Duration::from_millis(250);
        let delays: Vec<u128> = (1..=4)
            .map(|attempt| backoff_delay(base, attempt, 1.0).as_millis())
            .collect();
        assert_eq!(delays, [250, 500, 1000, 2000]);
        assert_eq!(backoff_delay(base, 2, 0.5), Duration::from_millis(250));
        assert_eq!(backoff_delay(base, 2, 1.5), Duration::from_millis(750));
    }

    #[test]
    fn stops_doubling_after_ten_and_never_overflows() {
        let base = Duration::from_millis(1);
        assert_eq!(backoff_delay(base, 11, 1.0), Duration::from_millis(1024));
        assert_eq!(backoff_delay(base, 40, 1.0), Duration::from_millis(1024));
        assert_eq!(backoff_delay(base, 0, 1.0), Duration::from_millis(1));
        assert_eq!(
            backoff_delay(Duration::from_secs(u64::MAX / 1000), 5, 1.0),
            Duration::from_millis(u64::MAX)
        );
    }
}
