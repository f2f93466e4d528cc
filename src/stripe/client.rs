//! The Stripe client: async-stripe's generated, typed requests at the pinned
//! API version, sent over one pooled HTTP client shared by every app
//! ([`Transport`]: connections and TLS sessions are reused, the API key
//! travels per request). Our own retry loop sends every attempt of a POST
//! under the caller's idempotency key, with per-attempt timeouts, and sorts
//! Stripe's errors into [`StripeError`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rand::RngExt;
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_billing::invoice::{
    CreateInvoice, DeleteInvoice, RetrieveInvoice, UpdateInvoice, UpdateInvoiceAutomaticTax,
};
use stripe_billing::invoice_item::{CreateInvoiceItem, ListInvoiceItem};
use stripe_checkout::checkout_session::CreateCheckoutSession;
use stripe_client_core::{
    CustomizedStripeRequest, IdempotencyKey, RequestBuilder, RequestStrategy, StripeClientErr,
    StripeMethod, StripeRequest,
};
use stripe_connect::account::RetrieveForMyAccountAccount;
use stripe_core::customer::{
    CreateCustomer, RetrieveCustomer, RetrieveCustomerReturned, UpdateCustomer,
    UpdateCustomerInvoiceSettings,
};
use stripe_misc::webhook_endpoint::{
    CreateWebhookEndpoint, DeleteWebhookEndpoint, UpdateWebhookEndpoint,
};
use stripe_payment::payment_method::RetrievePaymentMethod;

use super::invoices::{
    META_INVOICE_LINE_ID, PaymentAttempt, StripeInvoice, StripeInvoiceFor, StripeInvoiceItemFor,
    StripeInvoiceStatus, finalize_request, pay_request, payment_refusal, void_request,
};

use super::transformers::{
    CheckoutSessionFor, ErrorAnswer, PortalSessionFor, StripeCustomerFor, error_answer,
};
use super::{
    CreatedCheckoutSession, CreatedPortalSession, CreatedWebhookEndpoint, StripeAccount,
    StripeConfig, StripeError,
};
use crate::ids::StripeCustomerId;
use crate::telemetry::{self, StripeOutcome};

/// `base * 2^(attempt-1)` (the doubling stops after ten), scaled by `jitter`
/// (drawn from [0.5, 1.5) so concurrent retries spread out).
fn backoff_delay(base: Duration, attempt: u32, jitter: f64) -> Duration {
    let base = base.as_millis() as u64;
    let exp = base.saturating_mul(1u64 << attempt.saturating_sub(1).min(10));
    Duration::from_millis((exp as f64 * jitter) as u64)
}

const USER_AGENT_VALUE: &str = concat!("meterpay/", env!("CARGO_PKG_VERSION"));

/// The one HTTP client every Stripe call goes through: a connection pool
/// (idle connections kept for 90 s) over one TLS configuration (rustls,
/// webpki roots; plain HTTP only for an `http://` base such as the emulator).
#[derive(Clone)]
pub(super) struct Transport {
    http: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// `{api_base}/v1`, no trailing slash.
    v1_base: Arc<str>,
}

impl Transport {
    pub(super) fn new(api_base: &str) -> Transport {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .build(connector);
        Transport {
            http,
            v1_base: format!("{}/v1", api_base.trim_end_matches('/')).into(),
        }
    }
}

/// Why one HTTP attempt did not return a 2xx body.
#[derive(Debug)]
pub enum AttemptError {
    /// Stripe answered with an error object.
    Api {
        status: u16,
        error: Box<stripe_shared::ApiErrors>,
    },
    /// No answer within the per-attempt timeout.
    Timeout,
    /// Connecting, TLS, or reading the answer failed.
    Transport(String),
    /// An answer we cannot read (a 2xx body or an error body).
    Unreadable(String),
}

impl StripeClientErr for AttemptError {
    fn deserialize_err(msg: impl fmt::Display) -> Self {
        AttemptError::Unreadable(msg.to_string())
    }
}

/// A Stripe client for one API key over the shared [`Transport`]; cheap to
/// make and to clone.
#[derive(Clone)]
pub struct StripeClient {
    config: Arc<StripeConfig>,
    transport: Transport,
    /// `Bearer sk_…`, marked sensitive; `Err` when the key cannot even be sent.
    authorization: Result<HeaderValue, String>,
}

impl fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeClient")
            .field("api_base", &self.config.api_base)
            .finish_non_exhaustive()
    }
}

fn method(method: StripeMethod) -> hyper::Method {
    match method {
        StripeMethod::Get => hyper::Method::GET,
        StripeMethod::Post => hyper::Method::POST,
        StripeMethod::Delete => hyper::Method::DELETE,
    }
}

impl stripe_client_core::StripeClient for StripeClient {
    type Err = AttemptError;

    /// One attempt: no retries here (see [`StripeClient::send`]).
    async fn execute(&self, req: CustomizedStripeRequest) -> Result<Bytes, AttemptError> {
        let authorization = self
            .authorization
            .clone()
            .map_err(AttemptError::Transport)?;
        let (req, config) = req.into_pieces();
        let mut uri = String::with_capacity(
            self.transport.v1_base.len()
                + req.path.len()
                + req.query.as_ref().map_or(0, |q| q.len() + 1),
        );
        uri.push_str(&self.transport.v1_base);
        uri.push_str(&req.path);
        if let Some(query) = &req.query {
            uri.push('?');
            uri.push_str(query);
        }
        let mut builder = hyper::Request::builder()
            .method(method(req.method))
            .uri(uri)
            .header(AUTHORIZATION, authorization)
            .header(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE))
            .header(
                HeaderName::from_static("stripe-version"),
                HeaderValue::from_static(super::api_version()),
            );
        if let Some(key) = config.request_strategy.as_ref().and_then(|s| s.get_key()) {
            builder = builder.header(HeaderName::from_static("idempotency-key"), key.as_str());
        }
        let body = match req.body {
            Some(body) => {
                builder = builder.header(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                Bytes::from(body)
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(body))
            .map_err(|e| AttemptError::Transport(e.to_string()))?;
        let attempt = async {
            let response = self
                .transport
                .http
                .request(request)
                .await
                .map_err(|e| AttemptError::Transport(e.to_string()))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| AttemptError::Transport(e.to_string()))?
                .to_bytes();
            Ok::<_, AttemptError>((status, bytes))
        };
        let (status, bytes) = match config.timeout {
            Some(limit) => tokio::time::timeout(limit, attempt)
                .await
                .map_err(|_| AttemptError::Timeout)??,
            None => attempt.await?,
        };
        if status.is_success() {
            return Ok(bytes);
        }
        let error = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| miniserde::json::from_str::<stripe_shared::Error>(text).ok())
            .ok_or_else(|| {
                AttemptError::Unreadable(format!("HTTP {status} without a Stripe error object"))
            })?;
        Err(AttemptError::Api {
            status: status.as_u16(),
            error: error.error,
        })
    }
}

impl StripeClient {
    pub(super) fn new(
        config: Arc<StripeConfig>,
        transport: Transport,
        api_key: &str,
    ) -> StripeClient {
        let authorization = HeaderValue::try_from(format!("Bearer {api_key}"))
            .map(|mut value| {
                value.set_sensitive(true);
                value
            })
            .map_err(|_| "the API key contains characters that cannot be sent".to_owned());
        StripeClient {
            config,
            transport,
            authorization,
        }
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
        if let Err(message) = &self.authorization {
            return Err(StripeError::KeyRejected {
                message: message.clone(),
            });
        }
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
        // Built once: every attempt sends the same request, and the metrics
        // name its endpoint.
        let built = req.build();
        let endpoint = endpoint_label(built.method, &built.path);
        let record = |outcome: StripeOutcome, started: Instant| {
            telemetry::stripe_request(&endpoint, outcome, started.elapsed());
        };
        let mut last = String::new();
        for attempt in 1..=attempts {
            let started = Instant::now();
            let retrying = if attempt < attempts {
                StripeOutcome::Retried
            } else {
                StripeOutcome::Unavailable
            };
            let again = RequestBuilder {
                query: built.query.clone(),
                body: built.body.clone(),
                path: built.path.clone(),
                method: built.method,
            };
            let mut customized = again.customize::<R::Output>().timeout(self.config.timeout);
            customized = customized.request_strategy(match &key {
                Some(k) => RequestStrategy::Idempotent(k.clone()),
                None => RequestStrategy::Once,
            });
            let outcome = customized.send(self).await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            match outcome {
                Ok(value) => {
                    record(StripeOutcome::Ok, started);
                    tracing::debug!(call = what, attempt, elapsed_ms, "Stripe call succeeded");
                    return Ok(value);
                }
                Err(AttemptError::Api { status, error }) => {
                    tracing::debug!(
                        call = what,
                        attempt,
                        status,
                        elapsed_ms,
                        "Stripe call failed"
                    );
                    match error_answer(what, status, &error) {
                        ErrorAnswer::Retry(detail) => {
                            record(retrying, started);
                            last = detail;
                        }
                        ErrorAnswer::Fail(e) => {
                            record(
                                match e {
                                    StripeError::KeyRejected { .. } => StripeOutcome::KeyRejected,
                                    _ => StripeOutcome::Rejected,
                                },
                                started,
                            );
                            return Err(e);
                        }
                    }
                }
                Err(AttemptError::Timeout) => {
                    record(retrying, started);
                    tracing::debug!(call = what, attempt, elapsed_ms, "Stripe call timed out");
                    last = format!(
                        "{what}: no answer from Stripe within {} ms",
                        self.config.timeout.as_millis()
                    );
                }
                Err(AttemptError::Transport(e)) => {
                    record(retrying, started);
                    tracing::debug!(call = what, attempt, elapsed_ms, error = %e, "Stripe unreachable");
                    last = format!("{what}: cannot reach Stripe: {e}");
                }
                Err(AttemptError::Unreadable(e)) => {
                    record(StripeOutcome::Unavailable, started);
                    // An answer we cannot read will not improve by asking again.
                    return Err(StripeError::Unavailable {
                        detail: format!("{what}: unexpected answer from Stripe: {e}"),
                        retry_after_secs: None,
                    });
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
            .api_version(stripe_client_core::VERSION)
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

    /// `POST /v1/webhook_endpoints/{id}`: subscribes the endpoint to exactly `enabled_events`.
    pub async fn set_webhook_endpoint_events(
        &self,
        id: &str,
        enabled_events: &[&str],
    ) -> Result<(), StripeError> {
        let events: Vec<_> = enabled_events
            .iter()
            .map(|e| super::transformers::wire(e))
            .collect();
        let req = UpdateWebhookEndpoint::new(id).enabled_events(events);
        self.send("update webhook endpoint", &req, None).await?;
        Ok(())
    }

    /// `DELETE /v1/webhook_endpoints/{id}`; an endpoint already gone is success.
    pub async fn delete_webhook_endpoint(&self, id: &str) -> Result<(), StripeError> {
        gone_is_done(
            self.send(
                "delete webhook endpoint",
                &DeleteWebhookEndpoint::new(id),
                None,
            )
            .await,
        )
    }

    /// Whether `cus_…` exists (and is not deleted) in this account.
    pub async fn customer_exists(&self, id: &StripeCustomerId) -> Result<bool, StripeError> {
        match self
            .send(
                "retrieve customer",
                &RetrieveCustomer::new(id.as_str()),
                None,
            )
            .await
        {
            Ok(RetrieveCustomerReturned::Customer(_)) => Ok(true),
            Ok(RetrieveCustomerReturned::DeletedCustomer(_)) => Ok(false),
            Err(StripeError::Rejected { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The Stripe customer payment method `id` is attached to: `None` when it
    /// does not exist, `Some(None)` when it is attached to no customer.
    pub async fn payment_method_owner(
        &self,
        id: &str,
    ) -> Result<Option<Option<StripeCustomerId>>, StripeError> {
        match self
            .send(
                "retrieve payment method",
                &RetrievePaymentMethod::new(id),
                None,
            )
            .await
        {
            Ok(pm) => Ok(Some(
                pm.customer.map(|c| StripeCustomerId::from(c.id().as_str())),
            )),
            Err(StripeError::Rejected { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /v1/customers`; returns the new `cus_` id.
    pub async fn create_customer(
        &self,
        customer: StripeCustomerFor<'_>,
        idempotency_key: &str,
    ) -> Result<StripeCustomerId, StripeError> {
        let req = CreateCustomer::from(customer);
        let created = self
            .send("create customer", &req, Some(idempotency_key))
            .await?;
        Ok(StripeCustomerId::from(created.id.as_str()))
    }

    /// `POST /v1/customers/{id}` with `invoice_settings[default_payment_method]`.
    pub async fn set_default_payment_method(
        &self,
        customer_id: &StripeCustomerId,
        payment_method_id: &str,
        idempotency_key: &str,
    ) -> Result<(), StripeError> {
        let mut settings = UpdateCustomerInvoiceSettings::new();
        settings.default_payment_method = Some(payment_method_id.to_owned());
        let req = UpdateCustomer::new(customer_id.as_str()).invoice_settings(settings);
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

impl StripeClient {
    /// `POST /v1/invoices`: a draft with `auto_advance` off.
    pub async fn create_invoice(
        &self,
        invoice: StripeInvoiceFor<'_>,
        idempotency_key: &str,
    ) -> Result<StripeInvoice, StripeError> {
        let req = CreateInvoice::from(invoice);
        let created = self
            .send("create invoice", &req, Some(idempotency_key))
            .await?;
        Ok(created.into())
    }

    /// `GET /v1/invoices/{id}`.
    pub async fn retrieve_invoice(&self, id: &str) -> Result<StripeInvoice, StripeError> {
        let invoice = self
            .send("retrieve invoice", &RetrieveInvoice::new(id), None)
            .await?;
        Ok(invoice.into())
    }

    /// `POST /v1/invoiceitems` on a draft invoice; returns the item's id.
    pub async fn create_invoice_item(
        &self,
        item: StripeInvoiceItemFor<'_>,
        idempotency_key: &str,
    ) -> Result<String, StripeError> {
        let req = CreateInvoiceItem::from(item);
        let created = self
            .send("create invoice item", &req, Some(idempotency_key))
            .await?;
        Ok(created.id.as_str().to_owned())
    }

    /// The items on a Stripe invoice that carry a meterpay line id, as
    /// `line id → item id` (what a sync resumed after a crash already added).
    pub async fn invoice_items_by_line(
        &self,
        stripe_invoice_id: &str,
    ) -> Result<BTreeMap<String, String>, StripeError> {
        let mut found = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let mut req = ListInvoiceItem::new()
                .invoice(stripe_invoice_id.to_owned())
                .limit(100);
            if let Some(last) = &after {
                req = req.starting_after(last.clone());
            }
            let page = self.send("list invoice items", &req, None).await?;
            for item in &page.data {
                if let Some(line) = item
                    .metadata
                    .as_ref()
                    .and_then(|m| m.get(META_INVOICE_LINE_ID))
                {
                    found.insert(line.clone(), item.id.as_str().to_owned());
                }
            }
            match (page.has_more, page.data.last()) {
                (true, Some(last)) => after = Some(last.id.as_str().to_owned()),
                _ => return Ok(found),
            }
        }
    }

    /// `POST /v1/invoices/{id}/finalize` with `auto_advance` on: Stripe
    /// collects and retries by the account's settings from here on.
    pub async fn finalize_invoice(&self, id: &str) -> Result<StripeInvoice, StripeError> {
        let invoice = self
            .send("finalize invoice", &finalize_request(id), None)
            .await?;
        Ok(invoice.into())
    }

    /// `POST /v1/invoices/{id}/pay` off session: the payment's outcome, which
    /// is not an error when the card is declined or needs authentication.
    /// With `payment_method`, that one is charged; should Stripe refuse it for
    /// this invoice (a payment method of another Stripe customer, one since
    /// detached), the invoice's own default is charged instead.
    pub async fn pay_invoice(
        &self,
        id: &str,
        payment_method: Option<&str>,
    ) -> Result<PaymentAttempt, StripeError> {
        match self.pay_invoice_with(id, payment_method).await {
            Err(StripeError::Rejected { kind, param, .. })
                if payment_method.is_some()
                    && kind == "invalid_request_error"
                    && param.as_deref() == Some("payment_method") =>
            {
                self.pay_invoice_with(id, None).await
            }
            outcome => outcome,
        }
    }

    async fn pay_invoice_with(
        &self,
        id: &str,
        payment_method: Option<&str>,
    ) -> Result<PaymentAttempt, StripeError> {
        match self
            .send("pay invoice", &pay_request(id, payment_method), None)
            .await
        {
            Ok(invoice) => Ok(match StripeInvoice::from(invoice).status {
                Some(StripeInvoiceStatus::Paid) => PaymentAttempt::Paid,
                _ => PaymentAttempt::Failed {
                    message: "Stripe did not collect the invoice".into(),
                    code: None,
                },
            }),
            Err(StripeError::Rejected {
                status,
                kind,
                code,
                message,
                param,
            }) => {
                if let Some(outcome) = payment_refusal(code.as_deref(), &kind, &message) {
                    return Ok(outcome);
                }
                // Stripe refuses to pay an invoice that is already paid.
                if self.retrieve_invoice(id).await?.status == Some(StripeInvoiceStatus::Paid) {
                    return Ok(PaymentAttempt::Paid);
                }
                Err(StripeError::Rejected {
                    status,
                    kind,
                    code,
                    message,
                    param,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// `POST /v1/invoices/{id}` turning automatic tax off (a draft whose
    /// customer's tax location Stripe cannot determine, where tax is not enforced).
    pub async fn disable_automatic_tax(&self, id: &str) -> Result<(), StripeError> {
        let req = UpdateInvoice::new(id).automatic_tax(UpdateInvoiceAutomaticTax::new(false));
        self.send("update invoice", &req, None).await?;
        Ok(())
    }

    /// `POST /v1/invoices/{id}/void`.
    pub async fn void_invoice(&self, id: &str) -> Result<StripeInvoice, StripeError> {
        let invoice = self.send("void invoice", &void_request(id), None).await?;
        Ok(invoice.into())
    }

    /// `DELETE /v1/invoices/{id}` (drafts); one already gone is success.
    pub async fn delete_invoice(&self, id: &str) -> Result<(), StripeError> {
        gone_is_done(
            self.send("delete invoice", &DeleteInvoice::new(id), None)
                .await,
        )
    }
}

/// Path segments of Stripe's API meterpay calls (or may); any other segment
/// is an id.
const RESOURCES: &[&str] = &[
    "account",
    "billing_portal",
    "checkout",
    "customers",
    "events",
    "finalize",
    "invoiceitems",
    "invoices",
    "lines",
    "mark_uncollectible",
    "pay",
    "payment_methods",
    "send",
    "sessions",
    "setup_intents",
    "void",
    "webhook_endpoints",
];

/// `POST /v1/invoices/{id}/pay`: the request's method and path with every id
/// replaced, a label of few values for the metrics.
fn endpoint_label(method: StripeMethod, path: &str) -> String {
    let mut label = String::from(match method {
        StripeMethod::Get => "GET /v1",
        StripeMethod::Post => "POST /v1",
        StripeMethod::Delete => "DELETE /v1",
    });
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        label.push('/');
        label.push_str(if RESOURCES.contains(&segment) {
            segment
        } else {
            "{id}"
        });
    }
    label
}

/// A delete's outcome: something Stripe no longer has (404) is deleted.
fn gone_is_done<T>(outcome: Result<T, StripeError>) -> Result<(), StripeError> {
    match outcome {
        Ok(_) | Err(StripeError::Rejected { status: 404, .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod endpoint_tests {
    use stripe_client_core::StripeMethod;

    use super::endpoint_label;

    #[test]
    fn ids_are_replaced_and_resources_kept() {
        assert_eq!(
            endpoint_label(StripeMethod::Post, "/checkout/sessions"),
            "POST /v1/checkout/sessions"
        );
        assert_eq!(
            endpoint_label(StripeMethod::Post, "/invoices/in_1Abc/pay"),
            "POST /v1/invoices/{id}/pay"
        );
        assert_eq!(
            endpoint_label(StripeMethod::Delete, "/webhook_endpoints/we_123"),
            "DELETE /v1/webhook_endpoints/{id}"
        );
        assert_eq!(
            endpoint_label(StripeMethod::Get, "/account"),
            "GET /v1/account"
        );
        assert_eq!(
            endpoint_label(StripeMethod::Get, "/customers/cus_X"),
            "GET /v1/customers/{id}"
        );
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
