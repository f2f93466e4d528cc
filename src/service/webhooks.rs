//! Stripe webhooks (DESIGN.md "Stripe webhooks"): verify the signature
//! against the app's signing secret, act on each event exactly once, and
//! trust only meterpay's own metadata naming this app and namespace.

use time::OffsetDateTime;

use super::Context;
use super::apps::{client_for, note_key_rejected, stripe_error};
use crate::billing::app::App;
use crate::billing::checkout::CheckoutSessionStatus;
use crate::error::{Error, FieldError, Result, Rule, Source};
use crate::ids::{AppId, CustomerId, StripeCustomerId};
use crate::store::checkout_sessions::CheckoutSessionRecord;
use crate::store::events::Claim;
use crate::stripe::events::{
    CUSTOMER_ID_METADATA_FIELD, CheckoutSessionEvent, Event, OurMetadata, SetupIntentEvent,
    StripeEvent,
};
use crate::stripe::webhook::{DEFAULT_TOLERANCE_SECS, verify_signature};
use crate::telemetry;

/// What happened to a delivery (for the 200 answer and the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Acted on; for the customer it concerns when known.
    Processed(Option<CustomerId>),
    AlreadyProcessed,
    Ignored(String),
}

/// The metrics' event type of a delivery refused before its type was read.
const UNKNOWN_TYPE: &str = "unknown";

pub async fn receive(
    ctx: &Context,
    app_id: AppId,
    signature: Option<&str>,
    payload: &[u8],
) -> Result<(App, Outcome)> {
    let verified = verified_app(ctx, app_id, signature, payload)
        .await
        .and_then(|app| {
            let event = Event::parse(payload)
                .map_err(|e| Error::field("body", Rule::Invalid, e.to_string()))?;
            Ok((app, event))
        });
    let (app, event) = match verified {
        Ok(verified) => verified,
        Err(err) => {
            telemetry::webhook_event(UNKNOWN_TYPE, error_outcome(&err));
            return Err(err);
        }
    };
    let handled = handle(ctx, &app, &event).await;
    telemetry::webhook_event(
        &event.kind,
        match &handled {
            Ok(Outcome::Processed(_)) => "processed",
            Ok(Outcome::AlreadyProcessed) => "already_processed",
            Ok(Outcome::Ignored(_)) => "ignored",
            Err(err) => error_outcome(err),
        },
    );
    Ok((app, handled?))
}

/// `failed` for what Stripe's retry may fix (503, 500), else `refused`.
fn error_outcome(err: &Error) -> &'static str {
    match err {
        Error::Unavailable { .. } | Error::Internal(_) => "failed",
        _ => "refused",
    }
}

/// The live app whose signing secret (current, or the one being replaced)
/// signed `payload`.
async fn verified_app(
    ctx: &Context,
    app_id: AppId,
    signature: Option<&str>,
    payload: &[u8],
) -> Result<App> {
    let app = ctx
        .store
        .app_by_id(app_id)
        .await?
        .filter(|a| a.deleted_at.is_none())
        .ok_or_else(|| Error::not_found("app", app_id))?;
    let secrets = ctx
        .store
        .app_secrets(&app.namespace, app.id)
        .await?
        .filter(|s| s.webhook_secret_encrypted.is_some())
        .ok_or_else(|| Error::not_found("webhook endpoint of app", app_id))?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    // The current endpoint's secret, and while an endpoint is being replaced
    // (see `apps::pin_webhook_endpoints`) the old one's: Stripe signs each
    // endpoint's deliveries with that endpoint's secret.
    let mut verified = Ok(());
    for encrypted in [
        secrets.webhook_secret_encrypted,
        secrets.previous_webhook_secret_encrypted,
    ]
    .into_iter()
    .flatten()
    {
        let secret = ctx
            .secrets
            .decrypt(&encrypted, &App::webhook_secret_context(app.id))
            .map_err(|e| Error::Internal(e.into()))?;
        verified = verify_signature(&secret, signature, payload, now, DEFAULT_TOLERANCE_SECS);
        if verified.is_ok() {
            break;
        }
    }
    verified.map_err(|e| {
        Error::Invalid(vec![
            FieldError::new("Stripe-Signature", Rule::Invalid, e.to_string())
                .in_source(Source::Header),
        ])
    })?;
    Ok(app)
}

/// A verified delivery: acted on once per event id.
async fn handle(ctx: &Context, app: &App, event: &Event) -> Result<Outcome> {
    let (event_id, kind) = (event.id.as_str(), event.kind.as_str());
    if let StripeEvent::Unknown { kind } = &event.data {
        return Ok(Outcome::Ignored(format!(
            "meterpay does not handle {kind} events"
        )));
    }
    match ctx.store.claim_event(app.id, event_id, kind).await? {
        Claim::Done => return Ok(Outcome::AlreadyProcessed),
        Claim::Busy => {
            return Err(Error::Unavailable {
                detail: format!("event [{event_id}] is being processed by another delivery"),
                retry_after_secs: Some(5),
            });
        }
        Claim::Claimed => {}
    }
    let result = match &event.data {
        StripeEvent::SetupIntentSucceeded(intent) => {
            setup_intent_succeeded(ctx, app, event_id, intent).await
        }
        StripeEvent::SetupIntentSetupFailed(intent) => {
            setup_intent_status(ctx, app, intent, CheckoutSessionStatus::Failed).await
        }
        StripeEvent::SetupIntentRequiresAction(intent) => {
            setup_intent_status(ctx, app, intent, CheckoutSessionStatus::RequiresAction).await
        }
        StripeEvent::CheckoutSessionCompleted(session) => {
            session_status(ctx, app, session, CheckoutSessionStatus::Complete).await
        }
        StripeEvent::CheckoutSessionExpired(session) => {
            session_status(ctx, app, session, CheckoutSessionStatus::Expired).await
        }
        StripeEvent::Invoice { change, invoice } => {
            super::invoice_sync::apply_event(ctx, app, *change, invoice).await
        }
        StripeEvent::Unknown { .. } => Ok(Outcome::Ignored(format!(
            "meterpay does not handle {kind} events"
        ))),
    };
    match result {
        Ok(outcome) => {
            ctx.store.finish_event(app.id, event_id).await?;
            tracing::info!(app_id = %app.id, event = event_id, kind, ?outcome, "Stripe event handled");
            Ok(outcome)
        }
        Err(err) => {
            // Not processed: Stripe's retry gets another go.
            if let Err(e) = ctx.store.release_event(app.id, event_id).await {
                tracing::error!(event = event_id, error = %e, "could not release an event claim");
            }
            Err(err)
        }
    }
}

/// The meterpay customer a setup intent is for, when its metadata names this
/// app and namespace; otherwise what to answer. One Stripe account can be
/// installed in several namespaces, each with its own endpoint receiving every
/// event: another install's event is acknowledged and left alone (a 4xx would
/// make Stripe retry it for days and then disable the endpoint).
fn our_customer(app: &App, ours: Option<&OurMetadata>) -> Result<Result<CustomerId, Outcome>> {
    let Some(ours) = ours else {
        return Ok(Err(Outcome::Ignored(
            "setup intent without meterpay metadata".into(),
        )));
    };
    if ours.namespace != app.namespace || ours.app_id != app.id.to_string() {
        tracing::debug!(app_id = %app.id, event_namespace = ours.namespace, event_app = ours.app_id, "ignored a Stripe event of another install");
        return Ok(Err(Outcome::Ignored(format!(
            "the event is for app [{}] in namespace [{}], another install of this Stripe account",
            ours.app_id, ours.namespace
        ))));
    }
    let id = ours
        .customer_id
        .parse::<CustomerId>()
        .map_err(|_| Error::field(CUSTOMER_ID_METADATA_FIELD, Rule::Invalid, "is not a ULID"))?;
    Ok(Ok(id))
}

async fn setup_intent_succeeded(
    ctx: &Context,
    app: &App,
    event_id: &str,
    intent: &SetupIntentEvent,
) -> Result<Outcome> {
    let customer_id = match our_customer(app, intent.ours.as_ref())? {
        Ok(id) => id,
        Err(ignored) => return Ok(ignored),
    };
    let (Some(payment_method), Some(stripe_customer)) = (
        intent.payment_method_id.as_deref(),
        intent.stripe_customer_id.as_ref(),
    ) else {
        return Ok(Outcome::Ignored(
            "setup intent without payment method or customer".into(),
        ));
    };
    let ns = &app.namespace;
    if ctx.store.get_customer(ns, customer_id).await?.is_none() {
        return Ok(Outcome::Ignored(format!(
            "customer [{customer_id}] is unknown"
        )));
    }
    // Stripe first (no database connection held): if it fails, nothing is
    // recorded and the event is retried.
    let client = client_for(ctx, ns, app.id).await?;
    if let Err(err) = client
        .set_default_payment_method(
            stripe_customer,
            payment_method,
            &format!("meterpay-default-pm-{event_id}"),
        )
        .await
    {
        note_key_rejected(ctx, ns, app.id, &err).await;
        return Err(match stripe_error(err) {
            e @ Error::Unavailable { .. } => e,
            other => Error::Unavailable {
                detail: format!("could not set the default payment method in Stripe: {other}"),
                retry_after_secs: Some(30),
            },
        });
    }
    ctx.store
        .set_default_payment_method(ns, app.id, customer_id, stripe_customer, payment_method)
        .await?;
    ctx.store
        .update_session_status(
            ns,
            None,
            intent.id.as_deref(),
            CheckoutSessionStatus::Complete,
            Some(payment_method),
            None,
        )
        .await?;
    Ok(Outcome::Processed(Some(customer_id)))
}

/// A setup attempt that failed (`failed`, with Stripe's reason) or that waits
/// for the customer to authenticate with their bank (`requires_action`, 3-D
/// Secure): the session's history says so until it completes.
async fn setup_intent_status(
    ctx: &Context,
    app: &App,
    intent: &SetupIntentEvent,
    status: CheckoutSessionStatus,
) -> Result<Outcome> {
    let customer_id = match our_customer(app, intent.ours.as_ref())? {
        Ok(id) => id,
        Err(ignored) => return Ok(ignored),
    };
    let reason = (status == CheckoutSessionStatus::Failed).then(|| {
        intent
            .failure_reason
            .as_deref()
            .unwrap_or("the setup failed")
    });
    let updated = ctx
        .store
        .update_session_status(
            &app.namespace,
            None,
            intent.id.as_deref(),
            status,
            None,
            reason,
        )
        .await?;
    if updated > 0 && status == CheckoutSessionStatus::Failed {
        telemetry::checkout_session("failed");
    }
    Ok(Outcome::Processed(Some(customer_id)))
}

async fn session_status(
    ctx: &Context,
    app: &App,
    session: &CheckoutSessionEvent,
    status: CheckoutSessionStatus,
) -> Result<Outcome> {
    let Some(id) = session.id.as_deref() else {
        return Ok(Outcome::Ignored("session without id".into()));
    };
    let updated = ctx
        .store
        .update_session_status(&app.namespace, Some(id), None, status, None, None)
        .await?;
    if updated > 0 {
        // Each event acts once, and Stripe sends one of these per session.
        match status {
            CheckoutSessionStatus::Complete => telemetry::checkout_session("completed"),
            CheckoutSessionStatus::Expired => telemetry::checkout_session("expired"),
            _ => {}
        }
        if status == CheckoutSessionStatus::Complete
            && let Some(record) = ctx.store.get_checkout_session(&app.namespace, id).await?
        {
            keep_collected_address(ctx, app, record.customer_id, session).await?;
            return Ok(Outcome::Processed(Some(record.customer_id)));
        }
        return Ok(Outcome::Processed(None));
    }
    if status == CheckoutSessionStatus::Complete {
        return record_completed_session(ctx, app, id, session).await;
    }
    Ok(Outcome::Ignored(format!(
        "session [{id}] was not created by meterpay"
    )))
}

/// A completed setup session meterpay has no record of (it stopped between
/// Stripe creating the session and recording it, say): recorded from the
/// event when its Stripe customer is one this app links to a meterpay
/// customer. Sessions of other customers or modes are not meterpay's.
async fn record_completed_session(
    ctx: &Context,
    app: &App,
    id: &str,
    session: &CheckoutSessionEvent,
) -> Result<Outcome> {
    if !session.setup_mode {
        return Ok(Outcome::Ignored(format!(
            "session [{id}] is not a setup session"
        )));
    }
    let Some(stripe_customer) = session.stripe_customer_id.as_ref() else {
        return Ok(Outcome::Ignored(format!(
            "session [{id}] has no Stripe customer"
        )));
    };
    let Some(link) = ctx
        .store
        .customer_by_stripe_id(&app.namespace, app.id, stripe_customer)
        .await?
    else {
        return Ok(Outcome::Ignored(format!(
            "session [{id}] belongs to Stripe customer [{stripe_customer}], which no meterpay customer is linked to"
        )));
    };
    let record = session_from_event(app, link.customer_id, stripe_customer, id, session);
    ctx.store
        .record_session_from_event(&app.namespace, &record)
        .await?;
    keep_collected_address(ctx, app, link.customer_id, session).await?;
    telemetry::checkout_session("completed");
    tracing::info!(app_id = %app.id, session = id, customer_id = %link.customer_id, "recorded a completed checkout session meterpay had no record of");
    Ok(Outcome::Processed(Some(link.customer_id)))
}

/// A session that collected a billing address gives it to a customer
/// without one: meterpay is the system of record, and an address set
/// through the API is never overwritten.
async fn keep_collected_address(
    ctx: &Context,
    app: &App,
    customer_id: CustomerId,
    session: &CheckoutSessionEvent,
) -> Result<()> {
    if let Some(address) = &session.collected_address
        && ctx
            .store
            .fill_billing_address(&app.namespace, customer_id, address)
            .await?
    {
        tracing::info!(app_id = %app.id, %customer_id, "kept the billing address collected at checkout");
    }
    Ok(())
}

fn session_from_event(
    app: &App,
    customer_id: CustomerId,
    stripe_customer: &StripeCustomerId,
    id: &str,
    s: &CheckoutSessionEvent,
) -> CheckoutSessionRecord {
    let ts =
        |secs: Option<i64>| secs.and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok());
    let now = crate::timestamp::now();
    CheckoutSessionRecord {
        id: id.to_owned(),
        app_id: app.id,
        customer_id,
        stripe_customer_id: stripe_customer.clone(),
        setup_intent_id: s.setup_intent_id.clone(),
        status: CheckoutSessionStatus::Complete,
        ui_mode: s.ui_mode.upstream().to_owned(),
        currency: s.currency.clone(),
        url: s.url.clone(),
        success_url: s.success_url.clone(),
        cancel_url: s.cancel_url.clone(),
        return_url: s.return_url.clone(),
        client_reference_id: s.client_reference_id.clone(),
        customer_email: s.customer_email.clone(),
        metadata: Some(s.metadata.clone()).filter(|m| !m.is_empty()),
        payment_method_id: None,
        failure_reason: None,
        expires_at: ts(s.expires_at),
        created_at: ts(s.created).unwrap_or(now),
        updated_at: now,
    }
}
