//! Tenancy: every request acts in one namespace. With API tokens configured
//! (`METERPAY_API_TOKENS=token=namespace,…`) a bearer token selects it; with
//! none, meterpay serves the single namespace `default` (and refuses to listen
//! on anything but loopback, see `config`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppState;
use crate::error::Error;

pub use crate::config::DEFAULT_NAMESPACE;

/// Tokens are kept only as SHA-256 digests: a lookup by digest compares no
/// secret bytes, and a memory dump does not reveal the tokens.
#[derive(Clone, Default)]
pub struct Tokens(Arc<HashMap<[u8; 32], String>>);

impl Tokens {
    pub fn new(entries: &[(String, String)]) -> Self {
        Tokens(Arc::new(
            entries
                .iter()
                .map(|(token, ns)| (digest(token), ns.clone()))
                .collect(),
        ))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn namespace_for(&self, token: &str) -> Option<&String> {
        self.0.get(&digest(token))
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The namespace the request acts in.
#[derive(Debug, Clone)]
pub struct Namespace(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Namespace {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Namespace>()
            .cloned()
            .unwrap_or_else(|| Namespace(DEFAULT_NAMESPACE.to_owned())))
    }
}

/// Resolves the bearer token to a namespace, or answers 401.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if state.tokens.is_empty() {
        return next.run(req).await;
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match token.and_then(|t| state.tokens.namespace_for(t)) {
        Some(ns) => {
            let ns = Namespace(ns.clone());
            req.extensions_mut().insert(ns);
            next.run(req).await
        }
        None => Error::Unauthorized(
            "Send a valid API token as [Authorization: Bearer <token>]".to_owned(),
        )
        .into_response(),
    }
}
