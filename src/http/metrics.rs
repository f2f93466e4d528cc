//! `GET /metrics` (Prometheus text format, no token, like `/healthz`) and
//! the middleware that counts every HTTP request by route template, method
//! and status, with its latency. With `--metrics-listen` the document is
//! served on that address alone and the main listener answers 404 for it.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use crate::telemetry::{self, MetricsHandle};

/// Prometheus' text exposition format.
const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// The router of the separate metrics listener (`--metrics-listen`).
pub fn separate_router(handle: MetricsHandle) -> Router {
    Router::new()
        .route("/metrics", get(|| async move { render(&handle) }))
        .fallback(super::not_found)
}

/// Every series meterpay records: HTTP requests, Stripe calls, webhook
/// events, checkout sessions, invoice status changes, the invoice worker.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "meterpay-metrics",
    summary = "Metrics in Prometheus' text format (on --metrics-listen instead when set)",
    tag = "Operations",
    extensions(("x-meterpay-addition" = json!(true))),
    responses(
        (status = 200, content_type = "text/plain", body = String),
        (status = 404, description = "Served on the separate --metrics-listen address")
    )
)]
async fn metrics(State(state): State<AppState>, req: Request) -> Response {
    match &state.metrics {
        Some(handle) => render(handle),
        None => super::not_found(req).await,
    }
}

fn render(handle: &MetricsHandle) -> Response {
    (
        StatusCode::OK,
        [(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_TEXT))],
        handle.render(),
    )
        .into_response()
}

/// Counts the request once answered. A `Router::layer`, so it runs after
/// routing: the route is the matched template (`/api/v1/customers/{id}`),
/// never the raw path; `unmatched` when no route serves the path.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = telemetry::method_label(req.method().as_str());
    let response = next.run(req).await;
    telemetry::http_request(route, method, response.status().as_u16(), started.elapsed());
    response
}
