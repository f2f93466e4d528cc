//! Creating a Stripe Checkout Session in setup mode — DESIGN.md "The main
//! flow". Warm path (Stripe customer known): one Stripe request. Cold path:
//! two (create the Stripe customer, then the session). No database
//! connection is held across either.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::Context;
use super::apps::{client_with_key, note_key_rejected};
use super::customer_billing::no_app_error;
use crate::billing::app::{App, AppStatus};
use crate::billing::checkout::{CheckoutOptions, CheckoutSessionStatus, UiMode, ValidCheckout};
use crate::billing::customer::Customer;
use crate::error::{Error, FieldError, Remedy, Result, Rule};
use crate::ids::{AppId, CustomerId, StripeCustomerId};
use crate::store::apps::CheckoutApp;
use crate::store::checkout_sessions::CheckoutSessionRecord;
use crate::stripe::{
    CheckoutRules, CheckoutSessionFor, CreatedCheckoutSession, StripeClient, StripeCustomerFor,
    StripeError, checkout_field_for_param,
};
use crate::telemetry;

/// What Stripe takes in checkout options that billing cannot check itself,
/// for the API document to state.
pub mod provider_rules {
    use crate::billing::checkout::ProviderRules;
    use crate::stripe::CheckoutRules;
    pub use crate::stripe::{METADATA_LIMITS, MetadataLimits};

    /// The locales Stripe Checkout knows.
    pub fn locales() -> Vec<String> {
        CheckoutRules.checkout_locales()
    }

    /// The payment method types a setup-mode session can set up.
    pub fn setup_payment_method_types() -> Vec<String> {
        CheckoutRules.setup_payment_method_types()
    }

    /// Those of them that never redirect (an embedded session offering
    /// only these needs no `return_url`).
    pub fn non_redirect_payment_method_types() -> Vec<String> {
        setup_payment_method_types()
            .into_iter()
            .filter(|kind| {
                crate::stripe::NON_REDIRECT_PAYMENT_METHOD_TYPES.contains(&kind.as_str())
            })
            .collect()
    }
}

#[derive(Debug, Clone, Default)]
pub struct CheckoutRequest {
    /// v1 `appId`; v3 resolves the app from the customer's billing profile.
    pub app_id: Option<AppId>,
    /// v1 `stripeCustomerId`.
    pub stripe_customer_id: Option<String>,
    pub options: CheckoutOptions,
}

/// `BillingAppStripeCreateCheckoutSessionResult`, in domain form.
#[derive(Debug, Clone)]
pub struct CheckoutResult {
    pub customer_id: CustomerId,
    pub stripe_customer_id: StripeCustomerId,
    pub session_id: String,
    pub setup_intent_id: String,
    pub client_secret: Option<String>,
    pub client_reference_id: Option<String>,
    pub customer_email: Option<String>,
    /// Upper-case ISO 4217.
    pub currency: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub status: Option<CheckoutSessionStatus>,
    pub url: Option<String>,
    pub cancel_url: Option<String>,
    pub success_url: Option<String>,
    pub return_url: Option<String>,
}

/// A checkout for customer `customer_id`, through its payment app (v3): the
/// customer, the app, its key and the Stripe customer are one read.
pub async fn create_checkout_session_for(
    ctx: &Context,
    ns: &str,
    customer_id: CustomerId,
    options: CheckoutOptions,
) -> Result<CheckoutResult> {
    let (customer, target) = ctx
        .store
        .customer_checkout(ns, customer_id)
        .await?
        .ok_or_else(|| Error::not_found("customer", customer_id))?;
    let req = CheckoutRequest {
        app_id: None,
        stripe_customer_id: None,
        options,
    };
    checkout(ctx, ns, &customer, req, Some(target)).await
}

pub async fn create_checkout_session(
    ctx: &Context,
    ns: &str,
    customer: &Customer,
    req: CheckoutRequest,
) -> Result<CheckoutResult> {
    checkout(ctx, ns, customer, req, None).await
}

/// `target`: the Stripe app, already read with the customer (`Some`), or
/// to be read after validation (`None`).
async fn checkout(
    ctx: &Context,
    ns: &str,
    customer: &Customer,
    req: CheckoutRequest,
    target: Option<Option<CheckoutApp>>,
) -> Result<CheckoutResult> {
    customer.ensure_live()?;
    // 1. Everything that can be checked without the network.
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let valid = req
        .options
        .validate(now, customer.currency.as_ref(), &CheckoutRules);
    let given = match &req.stripe_customer_id {
        Some(id) if !crate::stripe::ids::is_customer_id(id) => Err(Error::field(
            "stripe_customer_id",
            Rule::MatchesRegex,
            "must be a Stripe customer id (cus_…)",
        )),
        other => Ok(other.clone().map(StripeCustomerId::from)),
    };
    let (valid, given) = merge_invalid(valid, given)?;

    // 2. The Stripe app (DESIGN step 2: the explicit app, else the customer's
    // payment app), its key and the customer's Stripe customer: one read.
    let target = match target {
        Some(target) => target,
        None => ctx.store.checkout_app(ns, customer.id, req.app_id).await?,
    };
    let target = match (target, req.app_id) {
        (Some(target), _) => target,
        (None, Some(id)) => return Err(Error::not_found("app", id)),
        (None, None) => return Err(no_app_error("app_id", Rule::Required, true)),
    };
    let app = target.app;
    app.ensure_live()?;
    if app.status == AppStatus::Unauthorized {
        return Err(key_invalid(&app));
    }

    // 3. The Stripe customer.
    let client = client_with_key(ctx, app.id, &target.api_key_encrypted)?;
    let mapping = target.stripe_customer_id;
    let (stripe_customer_id, map_after) = match (mapping, given) {
        (Some(m), Some(given)) if m != given => {
            return Err(Error::conflict(
                "stripe_customer_id",
                format!(
                    "customer [{}] is already linked to Stripe customer [{}], not [{given}]",
                    customer.id, m
                ),
            ));
        }
        (Some(m), _) => (m, false),
        (None, Some(given)) => (given, true),
        (None, None) => (
            create_stripe_customer(ctx, ns, &app, &client, customer).await?,
            false,
        ),
    };

    // 4. The session.
    let session = client
        .create_checkout_session(
            CheckoutSessionFor {
                namespace: ns,
                app_id: app.id,
                customer_id: customer.id,
                stripe_customer_id: &stripe_customer_id,
                checkout: &valid,
            },
            &format!("meterpay-checkout-{}", crate::ids::new_ulid()),
        )
        .await;
    let session = match session {
        Ok(session) => session,
        Err(err) => {
            note_key_rejected(ctx, ns, app.id, &err).await;
            return Err(checkout_stripe_error(err, &app));
        }
    };
    if map_after {
        ctx.store
            .ensure_customer_stripe(ns, app.id, customer.id, &stripe_customer_id)
            .await?;
    }

    // 5. Record and answer.
    let mut result = to_result(customer.id, &stripe_customer_id, session, &valid)?;
    // Stripe leaves the session's customer_email empty when a customer is
    // given; the email the session collects for is the customer's.
    if result.customer_email.is_none() {
        result.customer_email = customer.primary_email.clone();
    }
    ctx.store
        .record_checkout_session(ns, record(&app, &result, valid.ui.mode()))
        .await?;
    telemetry::checkout_session("created");
    tracing::info!(session = %result.session_id, customer = %customer.id, app = %app.id, "created checkout session");
    Ok(result)
}

/// Creates (or, under concurrent first requests, finds) the customer's Stripe
/// customer. The idempotency key is derived from namespace, app and
/// customer, so every concurrent request gets the same Stripe customer; the
/// mapping's primary key then keeps exactly one.
async fn create_stripe_customer(
    ctx: &Context,
    ns: &str,
    app: &App,
    client: &StripeClient,
    customer: &Customer,
) -> Result<StripeCustomerId> {
    let digest = hex::encode(Sha256::digest(format!("{ns}\n{}\n{}", app.id, customer.id)));
    let created = client
        .create_customer(
            StripeCustomerFor {
                namespace: ns,
                app_id: app.id,
                customer,
            },
            &format!("meterpay-customer-{digest}"),
        )
        .await;
    let stripe_id = match created {
        Ok(id) => id,
        Err(err) => {
            note_key_rejected(ctx, ns, app.id, &err).await;
            return Err(checkout_stripe_error(err, app));
        }
    };
    let mapping = ctx
        .store
        .ensure_customer_stripe(ns, app.id, customer.id, &stripe_id)
        .await?;
    Ok(mapping.stripe_customer_id)
}

fn to_result(
    customer_id: CustomerId,
    stripe_customer_id: &StripeCustomerId,
    s: CreatedCheckoutSession,
    valid: &ValidCheckout,
) -> Result<CheckoutResult> {
    let ts = |secs: i64| {
        OffsetDateTime::from_unix_timestamp(secs)
            .map_err(|e| Error::Internal(anyhow::anyhow!("Stripe timestamp {secs}: {e}")))
    };
    let setup_intent_id = s.setup_intent.clone().ok_or_else(|| {
        Error::Internal(anyhow::anyhow!(
            "Stripe created session {} without a setup intent",
            s.id
        ))
    })?;
    Ok(CheckoutResult {
        customer_id,
        stripe_customer_id: stripe_customer_id.clone(),
        session_id: s.id,
        setup_intent_id,
        client_secret: s.client_secret,
        client_reference_id: s.client_reference_id,
        customer_email: s.customer_email,
        currency: s
            .currency
            .map(|c| c.to_ascii_uppercase())
            .or_else(|| valid.currency.as_ref().map(|c| c.as_str().to_owned())),
        created_at: ts(s.created)?,
        expires_at: Some(ts(s.expires_at)?),
        metadata: Some(s.metadata).filter(|m| !m.is_empty()),
        status: s.status,
        url: s.url,
        cancel_url: s.cancel_url,
        success_url: s.success_url,
        return_url: s.return_url,
    })
}

fn record(app: &App, r: &CheckoutResult, ui_mode: UiMode) -> CheckoutSessionRecord {
    let now = crate::timestamp::now();
    CheckoutSessionRecord {
        id: r.session_id.clone(),
        app_id: app.id,
        customer_id: r.customer_id,
        stripe_customer_id: r.stripe_customer_id.clone(),
        setup_intent_id: Some(r.setup_intent_id.clone()),
        status: r.status.unwrap_or(CheckoutSessionStatus::Open),
        ui_mode: ui_mode.upstream().to_owned(),
        currency: r.currency.clone(),
        url: r.url.clone(),
        success_url: r.success_url.clone(),
        cancel_url: r.cancel_url.clone(),
        return_url: r.return_url.clone(),
        client_reference_id: r.client_reference_id.clone(),
        customer_email: r.customer_email.clone(),
        metadata: r.metadata.clone(),
        payment_method_id: None,
        failure_reason: None,
        expires_at: r.expires_at,
        created_at: r.created_at,
        updated_at: now,
    }
}

pub(crate) fn key_invalid(app: &App) -> Error {
    Error::Invalid(vec![
        FieldError::new(
            "app_id",
            Rule::Invalid,
            format!(
                "the Stripe API key of app [{}] is no longer valid (Stripe rejected it)",
                app.id
            ),
        )
        .with_remedy(Remedy::RotateApiKey {
            app_id: Some(app.id),
        }),
    ])
}

/// Stripe's refusal of a checkout call as a client-facing error, naming
/// meterpay's field for Stripe's parameter where there is one.
fn checkout_stripe_error(err: StripeError, app: &App) -> Error {
    match err {
        StripeError::KeyRejected { .. } => key_invalid(app),
        StripeError::Rejected { message, param, .. } => Error::field(
            checkout_field_for_param(param.as_deref()),
            Rule::Invalid,
            format!("Stripe refused the request: {message}"),
        ),
        other => super::apps::stripe_error(other),
    }
}

/// Both results, or one 400 listing every field error of both.
fn merge_invalid<A, B>(a: Result<A>, b: Result<B>) -> Result<(A, B)> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(Error::Invalid(mut x)), Err(Error::Invalid(y))) => {
            x.extend(y);
            Err(Error::Invalid(x))
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}
