//! Metrics: one recorder for the process (the `metrics` crate's global one,
//! rendered in Prometheus' text format by `GET /metrics`), and one function
//! here per thing meterpay counts, so that each layer records its own facts
//! (http its requests, stripe its calls, service the webhook events,
//! checkouts and the invoice worker, store the invoice status changes)
//! without naming another layer. Label values are always from small fixed
//! sets or route templates, never ids or raw paths.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "meterpay_http_requests_total";
pub const HTTP_DURATION: &str = "meterpay_http_request_duration_seconds";
pub const STRIPE_REQUESTS: &str = "meterpay_stripe_requests_total";
pub const STRIPE_DURATION: &str = "meterpay_stripe_request_duration_seconds";
pub const WEBHOOK_EVENTS: &str = "meterpay_webhook_events_total";
pub const CHECKOUT_SESSIONS: &str = "meterpay_checkout_sessions_total";
pub const INVOICE_TRANSITIONS: &str = "meterpay_invoice_status_transitions_total";
pub const INVOICE_WORKER_DUE: &str = "meterpay_invoice_worker_due_invoices";
pub const INVOICE_LEASE_TAKEOVERS: &str = "meterpay_invoice_lease_takeovers_total";

/// Histogram buckets of both latencies, in seconds (Stripe's per-attempt
/// timeout is 20 s).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
];

/// How often histogram samples are folded into their buckets when nobody
/// scrapes (a scrape folds them too).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// What `GET /metrics` renders. Cheap to clone.
#[derive(Clone)]
pub struct MetricsHandle(PrometheusHandle);

impl MetricsHandle {
    /// Every series in Prometheus' text exposition format (0.0.4).
    pub fn render(&self) -> String {
        self.0.render()
    }
}

/// The process's recorder, installed on first use (every server of the
/// process shares it: the `metrics` macros record into one global recorder).
pub fn install() -> MetricsHandle {
    static HANDLE: OnceLock<MetricsHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed: /metrics shows nothing");
            }
            describe();
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no metrics upkeep thread: histograms are folded at each scrape only");
            }
            MetricsHandle(handle)
        })
        .clone()
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route template (`unmatched` when no route serves the path), method and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time from receiving an HTTP request to its response's headers, by route template, method and status."
    );
    describe_counter!(
        STRIPE_REQUESTS,
        "HTTP requests sent to Stripe, one per attempt, by endpoint (ids replaced by {id}) and outcome: ok, rejected (a 4xx refusal), key_rejected (401/403), retried (429, 409, 424, 5xx, a timeout or a connection failure, tried again), unavailable (the same on the last attempt, or an unreadable answer)."
    );
    describe_histogram!(
        STRIPE_DURATION,
        Unit::Seconds,
        "Duration of each HTTP request to Stripe, by endpoint and outcome."
    );
    describe_counter!(
        WEBHOOK_EVENTS,
        "Stripe webhook deliveries, by event type (`unknown` when refused before its type was read) and outcome: processed, already_processed (a repeated event id), ignored (not meterpay's or not handled), refused (4xx: bad signature, unknown app, not an event), failed (5xx: not processed now, Stripe retries)."
    );
    describe_counter!(
        CHECKOUT_SESSIONS,
        "Checkout sessions by event: created (through the API), completed, expired (Stripe's checkout.session.* events), failed (a declined setup attempt)."
    );
    describe_counter!(
        INVOICE_TRANSITIONS,
        "Invoice status changes as stored, by extended status before and after (`none` for a new invoice, `deleted` for a deleted one)."
    );
    describe_gauge!(
        INVOICE_WORKER_DUE,
        "Due invoices this process's invoice worker found on its last pass (at most 50 a pass)."
    );
    describe_counter!(
        INVOICE_LEASE_TAKEOVERS,
        "Invoice leases this process took over from another holder whose lease had expired (a crashed or stalled process)."
    );
    // Series that exist before anything happened, so rates start at zero.
    for event in ["created", "completed", "expired", "failed"] {
        counter!(CHECKOUT_SESSIONS, "event" => event).absolute(0);
    }
    counter!(INVOICE_LEASE_TAKEOVERS).absolute(0);
}

/// The `method` label: the standard methods, anything else `other`.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// One HTTP request answered (`route`: the matched template, or `unmatched`).
pub fn http_request(route: String, method: &'static str, status: u16, elapsed: Duration) {
    let status = status.to_string();
    counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method, "status" => status.clone())
        .increment(1);
    histogram!(HTTP_DURATION, "route" => route, "method" => method, "status" => status)
        .record(elapsed.as_secs_f64());
}

/// What became of one HTTP request to Stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StripeOutcome {
    Ok,
    Rejected,
    KeyRejected,
    Retried,
    Unavailable,
}

impl StripeOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            StripeOutcome::Ok => "ok",
            StripeOutcome::Rejected => "rejected",
            StripeOutcome::KeyRejected => "key_rejected",
            StripeOutcome::Retried => "retried",
            StripeOutcome::Unavailable => "unavailable",
        }
    }
}

/// One HTTP request to Stripe (`endpoint` like `POST /v1/invoices/{id}/pay`).
pub fn stripe_request(endpoint: &str, outcome: StripeOutcome, elapsed: Duration) {
    let endpoint = endpoint.to_owned();
    counter!(STRIPE_REQUESTS, "endpoint" => endpoint.clone(), "outcome" => outcome.as_str())
        .increment(1);
    histogram!(STRIPE_DURATION, "endpoint" => endpoint, "outcome" => outcome.as_str())
        .record(elapsed.as_secs_f64());
}

/// One webhook delivery (`kind`: the event's type once verified).
pub fn webhook_event(kind: &str, outcome: &'static str) {
    counter!(WEBHOOK_EVENTS, "type" => kind.to_owned(), "outcome" => outcome).increment(1);
}

/// A checkout session `created`, `completed`, `expired` or `failed`.
pub fn checkout_session(event: &'static str) {
    counter!(CHECKOUT_SESSIONS, "event" => event).increment(1);
}

/// An invoice's stored status changed from `from` to `to`.
pub fn invoice_transition(from: &'static str, to: &'static str) {
    counter!(INVOICE_TRANSITIONS, "from" => from, "to" => to).increment(1);
}

/// The invoice worker's last pass found `due` invoices.
pub fn invoice_worker_due(due: usize) {
    gauge!(INVOICE_WORKER_DUE).set(due as f64);
}

/// A lease taken over from a holder whose lease had expired.
pub fn invoice_lease_takeover() {
    counter!(INVOICE_LEASE_TAKEOVERS).increment(1);
}
