//! Stripe webhooks (DESIGN.md "Stripe webhooks"): verify the signature
//! against the app's signing secret, act on each event exactly once, and
//! trust only meterpay's own metadata naming this app and namespace.

use serde_json::Value;
use time::OffsetDateTime;
use ulid::Ulid;

use super::apps::{client_for, note_key_rejected, stripe_error};
use crate::billing::app::App;
use crate::billing::checkout::{META_APP_ID, META_CUSTOMER_ID, META_NAMESPACE};
use crate::error::{Error, FieldError, Result, Rule, Source};
use crate::http::AppState;
use crate::store::events::Claim;
use crate::stripe::webhook::{DEFAULT_TOLERANCE_SECS, verify_signature};

/// What happened to a delivery (for the 200 answer and the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Processed,
    AlreadyProcessed,
    Ignored(String),
}

pub async fn receive(
    state: &AppState,
    app_id: Ulid,
    signature: Option<&str>,
    payload: &[u8],
) -> Result<Outcome> {
    let app = state
        .store
        .app_by_id(app_id)
        .await?
        .filter(|a| a.deleted_at.is_none())
        .ok_or_else(|| Error::not_found("app", app_id))?;
    let secret = state
        .store
        .app_secrets(&app.namespace, app.id)
        .await?
        .and_then(|s| s.webhook_secret_encrypted)
        .ok_or_else(|| Error::not_found("webhook endpoint of app", app_id))?;
    let secret = state
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
    match state.store.claim_event(app.id, event_id, kind).await? {
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
        "setup_intent.succeeded" => setup_intent_succeeded(state, &app, event_id, object).await,
        "setup_intent.setup_failed" => setup_intent_failed(state, &app, object).await,
        "checkout.session.completed" => session_status(state, &app, object, "complete").await,
        _ => session_status(state, &app, object, "expired").await,
    };
    match result {
        Ok(outcome) => {
            state.store.finish_event(app.id, event_id).await?;
            tracing::info!(app_id = %app.id, event = event_id, kind, ?outcome, "Stripe event handled");
            Ok(outcome)
        }
        Err(err) => {
            // Not processed: Stripe's retry gets another go.
            if let Err(e) = state.store.release_event(app.id, event_id).await {
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
    state: &AppState,
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
    if state.store.get_customer(ns, customer_id).await?.is_none() {
        return Ok(Outcome::Ignored(format!(
            "customer [{customer_id}] is unknown"
        )));
    }
    // Stripe first (no database connection held): if it fails, nothing is
    // recorded and the event is retried.
    let client = client_for(state, ns, app.id).await?;
    if let Err(err) = client
        .set_default_payment_method(
            stripe_customer,
            payment_method,
            &format!("meterpay-default-pm-{event_id}"),
        )
        .await
    {
        note_key_rejected(state, ns, app.id, &err).await;
        return Err(match stripe_error(err) {
            e @ Error::Unavailable { .. } => e,
            other => Error::Unavailable {
                detail: format!("could not set the default payment method in Stripe: {other}"),
                retry_after_secs: Some(30),
            },
        });
    }
    state
        .store
        .set_default_payment_method(ns, app.id, customer_id, stripe_customer, payment_method)
        .await?;
    let intent_id = intent["id"].as_str();
    state
        .store
        .update_session_status(ns, None, intent_id, "complete", Some(payment_method), None)
        .await?;
    Ok(Outcome::Processed)
}

async fn setup_intent_failed(state: &AppState, app: &App, intent: &Value) -> Result<Outcome> {
    if our_customer(app, &intent["metadata"])?.is_none() {
        return Ok(Outcome::Ignored(
            "setup intent without meterpay metadata".into(),
        ));
    }
    let reason = intent["last_setup_error"]["message"]
        .as_str()
        .or_else(|| intent["last_setup_error"]["code"].as_str())
        .unwrap_or("the setup failed");
    state
        .store
        .update_session_status(
            &app.namespace,
            None,
            intent["id"].as_str(),
            "failed",
            None,
            Some(reason),
        )
        .await?;
    Ok(Outcome::Processed)
}

async fn session_status(
    state: &AppState,
    app: &App,
    session: &Value,
    status: &str,
) -> Result<Outcome> {
    let Some(id) = session["id"].as_str() else {
        return Ok(Outcome::Ignored("session without id".into()));
    };
    let updated = state
        .store
        .update_session_status(&app.namespace, Some(id), None, status, None, None)
        .await?;
    if updated == 0 {
        return Ok(Outcome::Ignored(format!(
            "session [{id}] was not created by meterpay"
        )));
    }
    Ok(Outcome::Processed)
}

/// The id of an expandable field (a string, or an object with `id`).
fn expandable_id(value: &Value) -> Option<&str> {
    value.as_str().or_else(|| value["id"].as_str())
}
