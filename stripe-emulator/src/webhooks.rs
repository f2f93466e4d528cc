//! Webhook delivery: one worker per endpoint delivers that endpoint's events in order, signing
//! each attempt like Stripe and retrying failed deliveries with exponential backoff.

use hmac::{KeyInit, Mac};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::Shared;
use crate::state::{Delivery, DeliveryAttempt, real_now};

/// `Stripe-Signature` header value: `t={t},v1={hex(HMAC-SHA256(secret, "{t}.{payload}"))}`.
pub fn signature_header(secret: &str, t: i64, payload: &str) -> String {
    format!("t={t},v1={}", sign(secret, t, payload))
}

/// Hex HMAC-SHA256 of `{t}.{payload}` keyed with the endpoint secret (the whole `whsec_…` string).
pub fn sign(secret: &str, t: i64, payload: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Verifies a `Stripe-Signature` header against `payload` (any `v1` entry may match).
pub fn verify_signature(secret: &str, header: &str, payload: &str) -> bool {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(v.to_string()),
            _ => {}
        }
    }
    match t {
        Some(t) => {
            let expected = sign(secret, t, payload);
            sigs.contains(&expected)
        }
        None => false,
    }
}

pub(crate) fn start(shared: Arc<Shared>) -> UnboundedSender<Delivery> {
    let (tx, rx) = unbounded_channel::<Delivery>();
    tokio::spawn(dispatch(shared, rx));
    tx
}

async fn dispatch(shared: Arc<Shared>, mut rx: UnboundedReceiver<Delivery>) {
    let mut workers: HashMap<String, UnboundedSender<Delivery>> = HashMap::new();
    while let Some(d) = rx.recv().await {
        let key = d.endpoint_id.clone();
        let tx = workers.entry(key).or_insert_with(|| {
            let (wtx, wrx) = unbounded_channel();
            tokio::spawn(worker(shared.clone(), wrx));
            wtx
        });
        let _ = tx.send(d);
    }
}

async fn worker(shared: Arc<Shared>, mut rx: UnboundedReceiver<Delivery>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_millis(shared.cfg.webhook_timeout_ms))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("webhook client: {e}");
            return;
        }
    };
    while let Some(d) = rx.recv().await {
        deliver(&shared, &client, d).await;
    }
}

async fn deliver(shared: &Shared, client: &reqwest::Client, d: Delivery) {
    let payload = serde_json::to_string_pretty(&d.event).unwrap_or_default();
    let event_id = d.event["id"].as_str().unwrap_or_default().to_string();
    let event_type = d.event["type"].as_str().unwrap_or_default().to_string();
    let max = shared.cfg.webhook_max_attempts.max(1);
    for attempt in 1..=max {
        let target = {
            let st = shared.lock();
            st.accounts.get(&d.account).and_then(|a| {
                let we = a.objects.get(&d.endpoint_id)?;
                let secret = a.webhook_secrets.get(&d.endpoint_id)?;
                Some((
                    we["url"].as_str().unwrap_or_default().to_string(),
                    secret.clone(),
                ))
            })
        };
        let Some((url, secret)) = target else { return };
        // Receivers check `t` against their own clock, so sign with real time.
        let t = real_now();
        let res = client
            .post(&url)
            .header("Content-Type", "application/json; charset=utf-8")
            .header(
                "User-Agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .header("Stripe-Signature", signature_header(&secret, t, &payload))
            .body(payload.clone())
            .send()
            .await;
        let (status, error) = match &res {
            Ok(r) => (Some(r.status().as_u16()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let succeeded = status.is_some_and(|s| (200..300).contains(&s));
        {
            let mut st = shared.lock();
            st.deliveries.push(DeliveryAttempt {
                event_id: event_id.clone(),
                event_type: event_type.clone(),
                endpoint_id: d.endpoint_id.clone(),
                url,
                attempt,
                time: real_now(),
                status,
                error,
                succeeded,
            });
            if succeeded
                && let Some(ev) = st
                    .accounts
                    .get_mut(&d.account)
                    .and_then(|a| a.objects.get_mut(&event_id))
            {
                let n = ev["pending_webhooks"].as_i64().unwrap_or(0);
                ev["pending_webhooks"] = (n - 1).max(0).into();
            }
        }
        if succeeded {
            return;
        }
        if attempt < max {
            let delay = shared
                .cfg
                .webhook_retry_base_ms
                .saturating_mul(1u64 << (attempt - 1).min(16));
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
    }
}
