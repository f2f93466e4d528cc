//! Stripe webhooks (DESIGN.md "Stripe webhooks"): verify the signature
//! against the app's signing secret, act on each event exactly once, and
//! trust only meterpay's own metadata naming this app and namespace.

use std::collections::BTreeMap;

use serde_json::Value;
use time::OffsetDateTime;
use ulid::Ulid;

use super::Context;
use super::apps::{client_for, note_key_rejected, stripe_error};
use crate::billing::app::App;
use crate::billing::checkout::UiMode;
use crate::error::{Error, FieldError, Result, Rule, Source};
use crate::store::checkout_sessions::CheckoutSessionRecord;
use crate::store::events::Claim;
use crate::stripe::webhook::{DEFAULT_TOLERANCE_SECS, verify_signature};
use crate::stripe::{META_APP_ID, META_CUSTOMER_ID, META_NAMESPACE};

/// What happened to a delivery (for the 200 answer and the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Acted on; for the customer it concerns when known.
    Processed(Option<Ulid>),
    AlreadyProcessed,
    Ignored(String),
}

pub async fn receive(
    ctx: &Context,
    app_id: Ulid,
    signature: Option<&str>,
    payload: &[u8],
) -> Result<(App, Outcome)> {
    let app = ctx
        .store
        .app_by_id(app_id)
        .await?
        .filter(|a| a.deleted_at.is_none())
        .ok_or_else(|| Error::not_found("app", app_id))?;
    let secret = ctx
        .store
        .app_secrets(&app.namespace, app.id)
        .await?
        .and_then(|s| s.webhook_secret_encrypted)
        .ok_or_else(|| Error::not_found("webhook endpoint of app", app_id))?;
    let secret = ctx
        .secrets
        .decrypt(&secret, &App::webhook_secret_context(app.id))
        .map_err(|e| Error::Internal(e.into()))?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    verify_signature(&secret, signature, payload, now, DEFAULT_TOLERANCE_SECS).map_err(|e| {
        Error::Invalid(vec![
            FieldError::new("Stripe-Signature", Rule::Invalid, e.to_string())
                .in_source(Source::Header),
        ])
    })?;
    let outcome = handle(ctx, &app, payload).await?;
    Ok((app, outcome))
}

/// A verified delivery: acted on once per event id.
async fn handle(ctx: &Context, app: &App, payload: &[u8]) -> Result<Outcome> {
    let event: Value = serde_json::from_slice(payload)
        .map_err(|e| Error::field("body", Rule::Invalid, format!("not a Stripe event: {e}")))?;
    let (Some(event_id), Some(kind)) = (event["id"].as_str(), event["type"].as_str()) else {
        return Err(Error::field(
            "body",
            Rule::Invalid,
            "not a Stripe event: id and type are required",
        ));
    };
    let object = &event["data"]["object"];
    if !matches!(
        kind,
        "setup_intent.succeeded"
            | "setup_intent.setup_failed"
            | "checkout.session.completed"
            | "checkout.session.expired"
    ) {
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
    let result = match kind {
        "setup_intent.succeeded" => setup_intent_succeeded(ctx, app, event_id, object).await,
        "setup_intent.setup_failed" => setup_intent_failed(ctx, app, object).await,
        "checkout.session.completed" => session_status(ctx, app, object, "complete").await,
        _ => session_status(ctx, app, object, "expired").await,
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

/// meterpay's metadata on a setup intent, checked against the app. `None`
/// when the setup intent is not meterpay's.
fn our_customer(app: &App, metadata: &Value) -> Result<Option<Ulid>> {
    let (Some(ns), Some(app_id), Some(customer)) = (
        metadata[META_NAMESPACE].as_str(),
        metadata[META_APP_ID].as_str(),
        metadata[META_CUSTOMER_ID].as_str(),
    ) else {
        return Ok(None);
    };
    if ns != app.namespace || app_id != app.id.to_string() {
        tracing::warn!(app_id = %app.id, event_namespace = ns, event_app = app_id, "refused a Stripe event whose metadata names another namespace or app");
        return Err(Error::field(
            "data.object.metadata",
            Rule::Invalid,
            "the event's meterpay metadata names another namespace or app than this webhook's",
        ));
    }
    let id = Ulid::from_string(customer).map_err(|_| {
        Error::field(
            "data.object.metadata.meterpay_customer_id",
            Rule::Invalid,
            "is not a ULID",
        )
    })?;
    Ok(Some(id))
}

async fn setup_intent_succeeded(
    ctx: &Context,
    app: &App,
    event_id: &str,
    intent: &Value,
) -> Result<Outcome> {
    let Some(customer_id) = our_customer(app, &intent["metadata"])? else {
        return Ok(Outcome::Ignored(
            "setup intent without meterpay metadata".into(),
        ));
    };
    let (Some(payment_method), Some(stripe_customer)) = (
        expandable_id(&intent["payment_method"]),
        expandable_id(&intent["customer"]),
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
    let intent_id = intent["id"].as_str();
    ctx.store
        .update_session_status(ns, None, intent_id, "complete", Some(payment_method), None)
        .await?;
    Ok(Outcome::Processed(Some(customer_id)))
}

async fn setup_intent_failed(ctx: &Context, app: &App, intent: &Value) -> Result<Outcome> {
    let Some(customer_id) = our_customer(app, &intent["metadata"])? else {
        return Ok(Outcome::Ignored(
            "setup intent without meterpay metadata".into(),
        ));
    };
    let reason = intent["last_setup_error"]["message"]
        .as_str()
        .or_else(|| intent["last_setup_error"]["code"].as_str())
        .unwrap_or("the setup failed");
    ctx.store
        .update_session_status(
            &app.namespace,
            None,
            intent["id"].as_str(),
            "failed",
            None,
            Some(reason),
        )
        .await?;
    Ok(Outcome::Processed(Some(customer_id)))
}

async fn session_status(
    ctx: &Context,
    app: &App,
    session: &Value,
    status: &str,
) -> Result<Outcome> {
    let Some(id) = session["id"].as_str() else {
        return Ok(Outcome::Ignored("session without id".into()));
    };
    let updated = ctx
        .store
        .update_session_status(&app.namespace, Some(id), None, status, None, None)
        .await?;
    if updated > 0 {
        return Ok(Outcome::Processed(None));
    }
    if status == "complete" {
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
    session: &Value,
) -> Result<Outcome> {
    if session["mode"].as_str() != Some("setup") {
        return Ok(Outcome::Ignored(format!(
            "session [{id}] is not a setup session"
        )));
    }
    let Some(stripe_customer) = expandable_id(&session["customer"]) else {
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
    tracing::info!(app_id = %app.id, session = id, customer_id = %link.customer_id, "recorded a completed checkout session meterpay had no record of");
    Ok(Outcome::Processed(Some(link.customer_id)))
}

fn session_from_event(
    app: &App,
    customer_id: Ulid,
    stripe_customer: &str,
    id: &str,
    s: &Value,
) -> CheckoutSessionRecord {
    let text = |field: &str| s[field].as_str().map(str::to_owned);
    let ts = |field: &str| {
        s[field]
            .as_i64()
            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
    };
    let now = crate::timestamp::now();
    let metadata: BTreeMap<String, String> = s["metadata"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let ui_mode = match s["ui_mode"].as_str() {
        Some(m) if m.starts_with("embedded") => UiMode::Embedded,
        _ => UiMode::Hosted,
    };
    CheckoutSessionRecord {
        id: id.to_owned(),
        app_id: app.id,
        customer_id,
        stripe_customer_id: stripe_customer.to_owned(),
        setup_intent_id: expandable_id(&s["setup_intent"]).map(str::to_owned),
        status: "complete".to_owned(),
        ui_mode: ui_mode.upstream().to_owned(),
        currency: text("currency").map(|c| c.to_ascii_uppercase()),
        url: text("url"),
        success_url: text("success_url"),
        cancel_url: text("cancel_url"),
        return_url: text("return_url"),
        client_reference_id: text("client_reference_id"),
        customer_email: text("customer_email")
            .or_else(|| s["customer_details"]["email"].as_str().map(str::to_owned)),
        metadata: Some(metadata).filter(|m| !m.is_empty()),
        payment_method_id: None,
        failure_reason: None,
        expires_at: ts("expires_at"),
        created_at: ts("created").unwrap_or(now),
        updated_at: now,
    }
}

/// The id of an expandable field (a string, or an object with `id`).
fn expandable_id(value: &Value) -> Option<&str> {
    value.as_str().or_else(|| value["id"].as_str())
}
