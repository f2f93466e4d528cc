//! The HTTP surface: one router per resource, assembled here with the
//! middleware every request passes through.

pub mod apps;
pub mod checkout;
pub mod checkout_history;
pub mod customer_billing;
pub mod customers;
pub mod extract;
pub mod health;
pub mod invoices;
pub mod metrics;
pub mod openapi;
pub mod page;
pub mod portal;
pub mod problem;
pub mod profiles;
pub mod query;
pub mod schema;
pub mod schema_json;
mod strict_json;
pub mod tenancy;
pub mod v1_apps;
pub mod v1_customer_apps;
pub mod v1_customers;
pub mod v1_invoices;
pub mod v1_names;
pub mod v1_profiles;
pub mod webhook;

use std::any::Any;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower::{Service, ServiceBuilder};
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::Error;
use crate::service::Context;
use problem::{REQUEST_ID, problem, problem_response};

/// The service context plus what only HTTP needs (the API tokens), behind
/// one `Arc`: axum clones the state for every request (each handler's route
/// holds one, each `State` extractor takes one), so a clone is one atomic
/// increment, not a copy of every field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub ctx: Context,
    pub tokens: tenancy::Tokens,
    /// What `GET /metrics` renders; `None` when another listener serves it.
    pub metrics: Option<crate::telemetry::MetricsHandle>,
}

impl AppState {
    pub fn new(
        ctx: Context,
        tokens: tenancy::Tokens,
        metrics: Option<crate::telemetry::MetricsHandle>,
    ) -> Self {
        AppState(Arc::new(Shared {
            ctx,
            tokens,
            metrics,
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The whole service: the routes inside the middleware every request passes
/// through ([`middleware`]).
pub fn app(state: AppState) -> impl App {
    middleware(routes(state))
}

/// Every route, with the namespace authentication on the API's routes.
fn routes(state: AppState) -> Router {
    let api = Router::new()
        .nest(
            "/api/v3/openmeter",
            Router::new()
                .merge(customers::router())
                .merge(customer_billing::router())
                .merge(profiles::router())
                .merge(checkout::v3_router())
                .merge(checkout_history::router())
                .merge(portal::v3_router())
                .merge(apps::router())
                .merge(invoices::router()),
        )
        .nest(
            "/api/v1",
            Router::new()
                .merge(v1_customers::router())
                .merge(v1_customer_apps::router())
                .merge(checkout::v1_router())
                .merge(portal::v1_router())
                .merge(v1_apps::router())
                .merge(v1_profiles::router())
                .merge(v1_invoices::router()),
        )
        // Only on the routes that matched (an unknown path is a 404 and a
        // method a route lacks a 405, with or without a token).
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            tenancy::authenticate,
        ));
    Router::new()
        .merge(health::router())
        .merge(metrics::router())
        .merge(api)
        .merge(webhook::router())
        .merge(openapi::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Requests by route template, method and status, with latency. A
        // `Router::layer` (the one layer that is), since only after routing is
        // the matched template known.
        .layer(axum::middleware::from_fn(metrics::track))
        .with_state(state)
}

/// What [`app`] returns, for `axum::serve`: the router inside the middleware stack.
pub trait App:
    Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> App for S where
    S: Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// The middleware every request passes through, outermost first, applied
/// once around the whole router. (`Router::layer` would wrap each route in
/// its own copy of the stack, which axum clones for every request.) To add a
/// layer, add a `.layer(…)` line here, where it belongs in the order.
fn middleware(routes: Router) -> impl App {
    ServiceBuilder::new()
        // Outermost, so that every line logged for a request carries its id.
        .layer(axum::middleware::from_fn(request_context))
        // One line a response (status, latency) and an error line for 5xx,
        // in the request's span (made by `request_context`, which runs first).
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|_: &Request| tracing::Span::current())
                .on_response(
                    DefaultOnResponse::new()
                        .level(Level::INFO)
                        .latency_unit(LatencyUnit::Millis),
                ),
        )
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        .service(routes)
}

/// Gives every request an id: the `instance` of its problems, the
/// `x-request-id` of its response, and a field of its log lines.
async fn request_context(req: Request, next: Next) -> Response {
    let id = ulid::Ulid::generate().to_string();
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let mut response = REQUEST_ID
        .scope(
            id.clone(),
            tracing::Instrument::instrument(next.run(req), span),
        )
        .await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

async fn not_found(req: Request) -> Response {
    Error::NotFound(format!(
        "No route for [{} {}]",
        req.method(),
        req.uri().path()
    ))
    .into_response()
}

async fn method_not_allowed(req: Request) -> Response {
    problem_response(
        StatusCode::METHOD_NOT_ALLOWED,
        problem(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!(
                "[{}] is not allowed on [{}]",
                req.method(),
                req.uri().path()
            ),
        ),
    )
}

fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    Error::Internal(anyhow::anyhow!("handler panicked")).into_response()
}
