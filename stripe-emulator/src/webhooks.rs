//! Webhook delivery: one worker per endpoint delivers that endpoint's events in order, signing
//! each attempt like Stripe and retrying failed deliveries with exponential backoff.

use hmac::{KeyInit, Mac};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::Shared;
use crate::state::{Delivery, DeliveryAttempt, StoredObject, real_now};

/// `Stripe-Signature` header value: `t={t},v1={hex(HMAC-SHA256(secret, "{t}.{payload}"))}`,
/// `t` being `timestamp` (Unix seconds).
pub fn signature_header(secret: &str, timestamp: i64, payload: &str) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, payload))
}

/// Hex HMAC-SHA256 of `{timestamp}.{payload}` keyed with the endpoint secret (the whole
/// `whsec_…` string).
pub fn sign(secret: &str, timestamp: i64, payload: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Verifies a `Stripe-Signature` header against `payload` (any `v1` entry may match).
pub fn verify_signature(secret: &str, header: &str, payload: &str) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.push(value.to_string()),
            _ => {}
        }
    }
    match timestamp {
        Some(timestamp) => {
            let expected = sign(secret, timestamp, payload);
            signatures.contains(&expected)
        }
        None => false,
    }
}

/// Starts the dispatcher; returns the queue `State::emit` sends deliveries to.
pub(crate) fn start(shared: Arc<Shared>) -> UnboundedSender<Delivery> {
    let (queue, deliveries) = unbounded_channel::<Delivery>();
    tokio::spawn(dispatch(shared, deliveries));
    queue
}

/// Hands each delivery to its endpoint's worker (started on the endpoint's first delivery).
async fn dispatch(shared: Arc<Shared>, mut deliveries: UnboundedReceiver<Delivery>) {
    let mut workers: HashMap<String, UnboundedSender<Delivery>> = HashMap::new();
    while let Some(delivery) = deliveries.recv().await {
        let worker_queue = workers
            .entry(delivery.endpoint_id.clone())
            .or_insert_with(|| {
                let (worker_queue, worker_deliveries) = unbounded_channel();
                tokio::spawn(worker(shared.clone(), worker_deliveries));
                worker_queue
            });
        let _ = worker_queue.send(delivery);
    }
}

/// Delivers one endpoint's events, one after the other.
async fn worker(shared: Arc<Shared>, mut deliveries: UnboundedReceiver<Delivery>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_millis(shared.config.webhook_timeout_ms))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!("webhook client: {error}");
            return;
        }
    };
    while let Some(delivery) = deliveries.recv().await {
        deliver(&shared, &client, delivery).await;
    }
}

/// Posts one event to one endpoint, retrying with exponential backoff, and records each attempt.
async fn deliver(shared: &Shared, client: &reqwest::Client, delivery: Delivery) {
    let payload = serde_json::to_string_pretty(&delivery.event).unwrap_or_default();
    let event_id = delivery.event["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let event_type = delivery.event["type"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let max = shared.config.webhook_max_attempts.max(1);
    for attempt in 1..=max {
        let target = {
            let state = shared.lock();
            state.accounts.get(&delivery.account).and_then(|account| {
                let endpoint = account.objects.get(&delivery.endpoint_id)?.value();
                let secret = account.webhook_secrets.get(&delivery.endpoint_id)?;
                Some((
                    endpoint["url"].as_str().unwrap_or_default().to_string(),
                    secret.clone(),
                ))
            })
        };
        let Some((url, secret)) = target else { return };
        // Receivers check `t` against their own clock, so sign with real time.
        let timestamp = real_now();
        let sent = client
            .post(&url)
            .header("Content-Type", "application/json; charset=utf-8")
            .header(
                "User-Agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .header(
                "Stripe-Signature",
                signature_header(&secret, timestamp, &payload),
            )
            .body(payload.clone())
            .send()
            .await;
        let (status, error) = match &sent {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(error) => (None, Some(error.to_string())),
        };
        let succeeded = status.is_some_and(|status| (200..300).contains(&status));
        {
            let mut state = shared.lock();
            if succeeded {
                // The event's `pending_webhooks` goes down.
                state.touch();
            }
            state.deliveries.push(DeliveryAttempt {
                event_id: event_id.clone(),
                event_type: event_type.clone(),
                endpoint_id: delivery.endpoint_id.clone(),
                url,
                attempt,
                time: real_now(),
                status,
                error,
                succeeded,
            });
            if succeeded
                && let Some(stored) = state
                    .accounts
                    .get_mut(&delivery.account)
                    .and_then(|account| account.objects.get_mut(&event_id))
            {
                let mut event = stored.value();
                let pending = event["pending_webhooks"].as_i64().unwrap_or(0);
                event["pending_webhooks"] = (pending - 1).max(0).into();
                *stored = StoredObject::new(&event);
            }
        }
        if succeeded {
            return;
        }
        if attempt < max {
            let delay = shared
                .config
                .webhook_retry_base_ms
                .saturating_mul(1u64 << (attempt - 1).min(16));
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
    }
}
