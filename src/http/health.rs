//! Liveness and readiness.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;
use crate::error::{Error, Result};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is up and serving.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "meterpay-healthz",
    summary = "Liveness: the process is up",
    tag = "Operations",
    extensions(("x-meterpay-addition" = json!(true))),
    responses((status = 200))
)]
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers and the schema is current.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "meterpay-readyz",
    summary = "Readiness: the database is reachable and migrated",
    tag = "Operations",
    extensions(("x-meterpay-addition" = json!(true))),
    responses((status = 200), (status = 503))
)]
async fn readyz(State(state): State<AppState>) -> Result<Json<Value>> {
    state.ctx.store.ready().await.map_err(|err| {
        tracing::warn!(error = %err, "not ready");
        Error::Unavailable {
            detail: format!("Not ready: {err}"),
            retry_after_secs: Some(1),
        }
    })?;
    Ok(Json(json!({"status": "ok"})))
}
