//! HTTP layer: the accept loop (which can drop connections for fault injection), the `/v1/`
//! handler with auth, idempotency, faults and the request log, and the `/_emulator/` control API.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tower::Service;

use crate::cards::CardInput;
use crate::error::ApiError;
use crate::ids::random_alphanumeric;
use crate::resources::{self, checkout_sessions, checkout_sessions::Completion};
use crate::state::{API_VERSION, FaultRule, RequestLogEntry, StoredObject, StoredResponse};
use crate::{Killer, Shared};

type Ctx = Arc<Shared>;

pub(crate) fn router(shared: Ctx) -> Router {
    Router::new()
        .route(
            "/_emulator/health",
            get(|| async { axum::Json(json!({"ok": true})) }),
        )
        .route("/_emulator/accounts", post(ctl_create_account))
        .route(
            "/_emulator/requests",
            get(ctl_requests).delete(ctl_clear_requests),
        )
        .route("/_emulator/clock", get(ctl_clock))
        .route("/_emulator/clock/advance", post(ctl_advance))
        .route(
            "/_emulator/faults",
            get(ctl_faults)
                .post(ctl_add_faults)
                .delete(ctl_clear_faults),
        )
        .route(
            "/_emulator/checkout/sessions/{id}/complete",
            post(ctl_complete),
        )
        .route("/_emulator/invoices/{id}/pay", post(ctl_invoice_pay))
        .route(
            "/_emulator/invoices/{id}/authenticate",
            post(ctl_invoice_authenticate),
        )
        .route(
            "/_emulator/invoices/{id}/advance",
            post(ctl_invoice_advance),
        )
        .route("/_emulator/events", get(ctl_events))
        .route("/_emulator/webhook_deliveries", get(ctl_deliveries))
        .route("/_emulator/objects/{id}", get(ctl_object))
        .route("/_emulator/stats", get(ctl_stats))
        .route("/_emulator/connections", get(ctl_connections))
        .merge(crate::hosted::routes())
        .merge(crate::hosted_invoice::routes())
        .fallback(stripe_api)
        .with_state(shared)
}

/// Serves HTTP/1.1 connections until `shutdown` changes or its sender is dropped.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    app: Router,
    shared: Ctx,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!("accept: {error}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                shared.connections_accepted.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let mut conn_shutdown = shutdown.clone();
                tokio::spawn(async move {
                    let kill = Arc::new(Notify::new());
                    let killer = kill.clone();
                    let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                        request.extensions_mut().insert(Killer(killer.clone()));
                        let mut app = app.clone();
                        async move { Ok::<_, Infallible>(app.call(request).await.unwrap_or_else(|never| match never {})) }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = connection => {}
                        _ = kill.notified() => {}
                        _ = conn_shutdown.changed() => {}
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
}

fn json_response(status: u16, body: &Value, headers: &[(&str, String)]) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let text = serde_json::to_string_pretty(body).unwrap_or_default();
    let mut response = (code, text).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert("content-type", HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::try_from(*name),
            HeaderValue::from_str(value),
        ) {
            response_headers.insert(name, value);
        }
    }
    response
}

fn api_key(headers: &HeaderMap) -> Option<String> {
    let authorization = headers.get("authorization")?.to_str().ok()?.trim();
    if let Some(key) = authorization
        .strip_prefix("Bearer ")
        .or_else(|| authorization.strip_prefix("bearer "))
    {
        return Some(key.trim().to_string());
    }
    if let Some(credentials) = authorization
        .strip_prefix("Basic ")
        .or_else(|| authorization.strip_prefix("basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials.trim())
            .ok()?;
        let user_and_password = String::from_utf8(decoded).ok()?;
        return Some(
            user_and_password
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string(),
        );
    }
    None
}

fn mask(key: &str) -> String {
    let prefix: String = key.chars().take(8).collect();
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!(
        "{prefix}{}{tail}",
        "*".repeat(key.len().saturating_sub(12).min(20))
    )
}

/// The faults for a request, as (latency, error to inject): the matching rules are tried in
/// order, each counting down its `count`; their latencies add up, and the first whose error
/// fires (by its `rate`) gives the error and ends the search. So rules for one path can mix
/// kinds at set rates (`error=429,rate=0.1` then `error=500,rate=0.1` then `latency_ms=50`).
fn select_fault(
    state: &mut crate::state::State,
    method: &str,
    path: &str,
) -> Option<(Option<u64>, Option<String>)> {
    let mut matched = false;
    let mut latency: Option<u64> = None;
    let mut error = None;
    let mut index = 0;
    while index < state.faults.len() {
        if !match_fault(&state.faults[index], method, path) {
            index += 1;
            continue;
        }
        matched = true;
        let rule = state.faults[index].clone();
        let mut removed = false;
        if let Some(count) = state.faults[index].count.as_mut() {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.faults.remove(index);
                removed = true;
            }
        }
        if !removed {
            index += 1;
        }
        if let Some(ms) = rule.latency_ms {
            latency = Some(latency.unwrap_or(0).saturating_add(ms));
        }
        if rule.error.is_some() && rand::random_bool(rule.rate.unwrap_or(1.0).clamp(0.0, 1.0)) {
            error = rule.error;
            break;
        }
    }
    matched.then_some((latency, error))
}

fn match_fault(rule: &FaultRule, method: &str, path: &str) -> bool {
    rule.method
        .as_deref()
        .is_none_or(|rule_method| rule_method.eq_ignore_ascii_case(method))
        && rule
            .path
            .as_deref()
            .is_none_or(|prefix| path.starts_with(prefix))
}

/// The Stripe API: everything not routed elsewhere.
async fn stripe_api(
    AxState(ctx): AxState<Ctx>,
    killer: Option<axum::Extension<Killer>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let request_id = format!("req_{}", random_alphanumeric(14));
    let stripe_version = headers
        .get("stripe-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let idem_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut out_headers: Vec<(&str, String)> = vec![
        ("request-id", request_id.clone()),
        (
            "stripe-version",
            stripe_version
                .clone()
                .unwrap_or_else(|| API_VERSION.to_string()),
        ),
        ("access-control-allow-origin", "*".to_string()),
    ];
    if let Some(idempotency_key) = &idem_key {
        out_headers.push(("idempotency-key", idempotency_key.clone()));
    }
    // POST parameters come from the body; query parameters are accepted too (body wins).
    let raw_params: Vec<u8> = match (method.clone(), uri.query()) {
        (Method::POST, Some(query)) if !query.is_empty() => {
            [query.as_bytes(), b"&", &body].concat()
        }
        (Method::POST, _) => body.to_vec(),
        (_, query) => query.unwrap_or_default().as_bytes().to_vec(),
    };
    let parsed = crate::form::parse(&raw_params);
    let params_for_log = parsed
        .clone()
        .unwrap_or_else(|_| Value::Object(Default::default()));
    let key = api_key(&headers);
    // One short lock for the account of the key and the fault rule that applies.
    let (account, fault) = {
        let mut state = ctx.lock();
        let account = key.as_ref().and_then(|key| state.keys.get(key).cloned());
        let fault = if path.starts_with("/v1/") {
            select_fault(&mut state, method.as_str(), &path)
        } else {
            None
        };
        (account, fault)
    };

    let log = |ctx: &Ctx, status: u16, replayed: bool, fault: Option<String>| {
        let entry = RequestLogEntry {
            seq: 0,
            request_id: request_id.clone(),
            time: 0,
            method: method.to_string(),
            path: path.clone(),
            params: params_for_log.clone(),
            idempotency_key: idem_key.clone(),
            stripe_version: stripe_version.clone(),
            account: account.clone(),
            status,
            idempotent_replayed: replayed,
            fault,
        };
        ctx.lock().log_request(entry);
    };

    if !path.starts_with("/v1/") {
        let error = ApiError::not_found_url(method.as_str(), &path);
        return json_response(404, &error.body(), &out_headers);
    }

    let mut drop_after = false;
    if let Some((latency, error)) = fault {
        drop_after = error.as_deref() == Some("drop_after");
        if let Some(ms) = latency {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        match error.as_deref() {
            Some("429") => {
                log(&ctx, 429, false, Some("429".into()));
                let error = ApiError::new(
                    429,
                    "invalid_request_error",
                    "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
                )
                .code("rate_limit");
                return json_response(429, &error.body(), &out_headers);
            }
            Some("500") => {
                log(&ctx, 500, false, Some("500".into()));
                let error = ApiError::new(
                    500,
                    "api_error",
                    "Something went wrong on Stripe's end. (Injected by the emulator.)",
                );
                out_headers.push(("stripe-should-retry", "true".into()));
                return json_response(500, &error.body(), &out_headers);
            }
            Some("drop") => {
                log(&ctx, 0, false, Some("drop".into()));
                if let Some(axum::Extension(killer)) = &killer {
                    killer.0.notify_one();
                }
                std::future::pending::<()>().await;
            }
            Some("timeout") => {
                // Hold the request without answering (the client's timeout fires), then drop it.
                log(&ctx, 0, false, Some("timeout".into()));
                tokio::time::sleep(Duration::from_secs(300)).await;
                if let Some(axum::Extension(killer)) = &killer {
                    killer.0.notify_one();
                }
                std::future::pending::<()>().await;
            }
            _ => {}
        }
    }

    // Authentication.
    if key.as_deref().is_some_and(|key| key.starts_with("pk_")) {
        log(&ctx, 401, false, None);
        let error = ApiError::new(
            401,
            "invalid_request_error",
            "This API call cannot be made with a publishable API key. Please use a secret API key. You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys.",
        );
        return json_response(401, &error.body(), &out_headers);
    }
    let Some(account_id) = account.clone() else {
        let msg = match &key {
            None => "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.".to_string(),
            Some(key) => format!("Invalid API Key provided: {}", mask(key)),
        };
        log(&ctx, 401, false, None);
        out_headers.push(("www-authenticate", "Bearer realm=\"Stripe\"".into()));
        return json_response(
            401,
            // Stripe answers bad or missing keys with 401 and type `invalid_request_error`
            // (its error `type` enum is api_error | card_error | idempotency_error |
            // invalid_request_error; SDKs raise their AuthenticationError from the status).
            &ApiError::new(401, "invalid_request_error", msg).body(),
            &out_headers,
        );
    };

    let params = match parsed {
        Ok(params) => params,
        Err(form_error) => {
            log(&ctx, 400, false, None);
            return json_response(
                400,
                &ApiError::invalid(form_error.message, form_error.param).body(),
                &out_headers,
            );
        }
    };

    // Everything that does not need the state happens before taking the lock: the
    // idempotency fingerprint, and for checkout sessions the validation and the objects.
    let use_idem = method == Method::POST && idem_key.is_some();
    let fingerprint = use_idem.then(|| {
        serde_json::to_string(&json!({"method": method.as_str(), "path": path, "params": params}))
            .unwrap_or_default()
    });
    let prepared = (method == Method::POST
        && path.trim_end_matches('/') == "/v1/checkout/sessions")
        .then(|| checkout_sessions::prepare(&params, &ctx.public_url));
    let (status, body, replayed) = {
        let mut state = ctx.lock();
        state.sweep_expired();
        let mut early: Option<(u16, Value, bool)> = None;
        if let (Some(idempotency_key), Some(fingerprint)) = (&idem_key, &fingerprint) {
            if idempotency_key.len() > 255 {
                let error = ApiError::invalid(
                    "Idempotency-Key header must not be longer than 255 characters.",
                    "Idempotency-Key",
                );
                early = Some((400, error.body(), false));
            } else if let Some(stored) = state
                .accounts
                .get(&account_id)
                .and_then(|stored_account| stored_account.idempotent_responses.get(idempotency_key))
            {
                early = Some(if &stored.fingerprint == fingerprint {
                    (stored.status, stored.body.value(), true)
                } else {
                    let error = ApiError::new(
                        400,
                        "idempotency_error",
                        format!(
                            "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{idempotency_key}' if you meant to execute a different request."
                        ),
                    );
                    (400, error.body(), false)
                });
            }
        }
        match early {
            Some(answer) => answer,
            None => {
                if method != Method::GET {
                    // Whatever the endpoint changed goes to the state file.
                    state.touch();
                }
                state.current_request = Some((
                    request_id.clone(),
                    if use_idem { idem_key.clone() } else { None },
                ));
                let result = match prepared {
                    Some(prepared) => prepared
                        .and_then(|prepared| {
                            checkout_sessions::commit(&mut state, &account_id, prepared)
                        })
                        .and_then(|session| {
                            crate::expand::expand(&state, &account_id, session, &params)
                        }),
                    None => {
                        resources::route(&mut state, &account_id, method.as_str(), &path, &params)
                    }
                };
                state.current_request = None;
                let (status, body) = match result {
                    Ok(response) => (200u16, response),
                    Err(error) => (error.status, error.body()),
                };
                if (status < 400 || status == 402)
                    && let (Some(idempotency_key), Some(fingerprint), Some(stored_account)) =
                        (&idem_key, fingerprint, state.accounts.get_mut(&account_id))
                {
                    stored_account.idempotent_responses.insert(
                        idempotency_key.clone(),
                        StoredResponse {
                            fingerprint,
                            status,
                            body: StoredObject::new(&body),
                        },
                    );
                }
                (status, body, false)
            }
        }
    };
    if drop_after {
        // The request was executed (and its idempotent result stored); the response is lost.
        log(&ctx, status, replayed, Some("drop_after".into()));
        if let Some(axum::Extension(killer)) = &killer {
            killer.0.notify_one();
        }
        std::future::pending::<()>().await;
    }
    log(&ctx, status, replayed, None);
    if replayed {
        out_headers.push(("idempotent-replayed", "true".into()));
    }
    json_response(status, &body, &out_headers)
}

pub(crate) fn create_account(shared: &Shared) -> (String, String) {
    let key = format!("sk_test_51{}", random_alphanumeric(40));
    let account = shared.lock().add_key(&key);
    (account, key)
}

/// Finds the account holding an object id.
pub(crate) fn account_of(shared: &Shared, id: &str) -> Option<String> {
    shared
        .lock()
        .accounts
        .iter()
        .find(|(_, account)| account.objects.contains_key(id))
        .map(|(account_id, _)| account_id.clone())
}

pub(crate) fn complete_session(
    shared: &Shared,
    id: &str,
    card: &CardInput,
    authenticate: bool,
) -> Result<Value, ApiError> {
    let account =
        account_of(shared, id).ok_or_else(|| ApiError::no_such("checkout.session", id, None))?;
    let mut state = shared.lock();
    state.current_request = None;
    state.touch();
    state.sweep_expired();
    match checkout_sessions::submit_card(&mut state, &account, id, card, Some(authenticate))? {
        Completion::Completed(session) => Ok(session),
        Completion::Declined(error) => Err(error),
        Completion::NeedsAuthentication => {
            Err(ApiError::new(402, "card_error", "authentication required"))
        }
    }
}

/// What the invoice control routes do.
pub(crate) enum InvoiceCommand {
    /// Pay now, off-session, with `payment_method` or a card giving `outcome`
    /// (`succeed` 4242…, `decline` 0341, `requires_action` 3184); a draft is finalized first.
    Pay {
        outcome: Option<String>,
        payment_method: Option<String>,
    },
    /// Answer the 3D Secure step of a payment that `requires_action`.
    Authenticate(bool),
    /// The next automatic step now: finalize a draft; attempt collection of an open
    /// `charge_automatically` invoice with its default payment method.
    Advance,
}

/// Runs an invoice control command: `{"invoice", "outcome", "error"}` (outcome `paid`,
/// `declined`, `requires_action`, `open`, ...) or an error status and body.
pub(crate) fn invoice_command(
    shared: &Shared,
    id: &str,
    command: InvoiceCommand,
) -> Result<Value, ApiError> {
    use crate::resources::invoice_transitions::{self, Attempt};
    use crate::resources::{invoices, payment_methods};
    let account = account_of(shared, id).ok_or_else(|| ApiError::no_such("invoice", id, None))?;
    let mut state = shared.lock();
    state.current_request = None;
    state.sweep_expired();
    let mut invoice = invoices::get(&state, &account, id)?;
    let attempt = match command {
        InvoiceCommand::Advance => match invoice["status"].as_str() {
            Some("draft") => {
                invoice_transitions::finalize(&mut state, &account, invoice)?;
                state.sweep_invoices();
                None
            }
            Some("open") if invoice["collection_method"] == "charge_automatically" => {
                let now = state.now();
                invoice_transitions::collect(&mut state, &account, invoice, now)?;
                None
            }
            _ => {
                return Err(ApiError::invalid(
                    format!(
                        "Nothing to advance: invoice {id} is {} ({}).",
                        invoice["status"].as_str().unwrap_or_default(),
                        invoice["collection_method"].as_str().unwrap_or_default()
                    ),
                    "invoice",
                ));
            }
        },
        InvoiceCommand::Authenticate(succeeded) => Some(invoice_transitions::authenticate(
            &mut state, &account, invoice, succeeded,
        )?),
        InvoiceCommand::Pay {
            outcome,
            payment_method,
        } => {
            match invoice["status"].as_str() {
                Some("paid") => {
                    return Err(ApiError::invalid("Invoice is already paid", "invoice"));
                }
                Some("void") => {
                    return Err(ApiError::invalid(
                        "This invoice has been voided and can no longer be paid.",
                        "invoice",
                    ));
                }
                _ => {}
            }
            let payment_method = match (payment_method, outcome.as_deref()) {
                (Some(pm), _) => payment_methods::get(&state, &account, &pm)?,
                (None, Some(outcome)) => {
                    let number = match outcome {
                        "succeed" => "4242424242424242",
                        "decline" => "4000000000000341",
                        "requires_action" => "4000002760003184",
                        other => {
                            return Err(ApiError::invalid(
                                format!(
                                    "Unknown outcome {other:?}: use \"succeed\", \"decline\" or \"requires_action\"."
                                ),
                                "outcome",
                            ));
                        }
                    };
                    let card = CardInput {
                        number: number.to_string(),
                        exp_month: 12,
                        exp_year: 2034,
                        ..Default::default()
                    };
                    let payment_method = payment_methods::from_card(&state, &card);
                    state.insert(&account, "payment_method", &payment_method)?;
                    payment_method
                }
                (None, None) => return Err(ApiError::missing_param("outcome")),
            };
            if invoice["status"] == "draft" {
                invoice = invoice_transitions::finalize(&mut state, &account, invoice)?;
            }
            if invoice["status"] == "paid" {
                None
            } else {
                Some(invoice_transitions::attempt(
                    &mut state,
                    &account,
                    invoice,
                    &payment_method,
                    true,
                )?)
            }
        }
    };
    let (outcome, error) = match attempt {
        Some(Attempt::Paid(_)) => ("paid", Value::Null),
        Some(Attempt::Declined(_, error)) => ("declined", error.body()["error"].clone()),
        Some(Attempt::RequiresAction(_, error)) => {
            ("requires_action", error.body()["error"].clone())
        }
        None => ("", Value::Null),
    };
    let invoice = invoices::get(&state, &account, id)?;
    let outcome = if outcome.is_empty() {
        invoice["status"].as_str().unwrap_or_default().to_string()
    } else {
        outcome.to_string()
    };
    Ok(json!({"invoice": invoices::present(&invoice), "outcome": outcome, "error": error}))
}

pub(crate) fn all_events(shared: &Shared, account: Option<&str>) -> Vec<Value> {
    let state = shared.lock();
    let mut events: Vec<(i64, usize, Value)> = Vec::new();
    for (account_id, stored) in &state.accounts {
        if account.is_some_and(|wanted| wanted != account_id) {
            continue;
        }
        if let Some(ids) = stored.lists.get("event") {
            for (position, id) in ids.iter().enumerate() {
                if let Some(event) = stored.objects.get(id).map(|text| text.value()) {
                    events.push((event["created"].as_i64().unwrap_or(0), position, event));
                }
            }
        }
    }
    events.sort_by_key(|(created, position, _)| (*created, *position));
    events.into_iter().map(|(_, _, event)| event).collect()
}

/// The URL a completed session redirects to (`success_url`/`return_url` with the id filled in).
pub(crate) fn redirect_url(session: &Value) -> Option<String> {
    let id = session["id"].as_str().unwrap_or_default();
    session["success_url"]
        .as_str()
        .or_else(|| {
            if session["redirect_on_completion"] == "never" {
                None
            } else {
                session["return_url"].as_str()
            }
        })
        .map(|url| url.replace("{CHECKOUT_SESSION_ID}", id))
}

// ---- control API ----

async fn ctl_create_account(AxState(ctx): AxState<Ctx>) -> Response {
    let (account_id, secret_key) = create_account(&ctx);
    json_response(
        200,
        &json!({"account_id": account_id, "secret_key": secret_key}),
        &[],
    )
}

#[derive(Deserialize)]
struct SinceQuery {
    since: Option<u64>,
    account: Option<String>,
}

async fn ctl_requests(AxState(ctx): AxState<Ctx>, Query(query): Query<SinceQuery>) -> Response {
    let since = query.since.unwrap_or(0);
    let (data, last_seq) = {
        let state = ctx.lock();
        let data: Vec<RequestLogEntry> = state
            .log_since(since)
            .filter(|entry| {
                query
                    .account
                    .as_ref()
                    .is_none_or(|account| entry.account.as_ref() == Some(account))
            })
            .cloned()
            .collect();
        (data, state.log_seq)
    };
    json_response(200, &json!({"data": data, "last_seq": last_seq}), &[])
}

async fn ctl_clear_requests(AxState(ctx): AxState<Ctx>) -> Response {
    ctx.lock().log.clear();
    json_response(200, &json!({"cleared": true}), &[])
}

fn clock_json(state: &crate::state::State) -> Value {
    json!({"now": state.now(), "offset_seconds": state.clock_offset})
}

async fn ctl_clock(AxState(ctx): AxState<Ctx>) -> Response {
    let clock = clock_json(&ctx.lock());
    json_response(200, &clock, &[])
}

#[derive(Deserialize)]
struct AdvanceBody {
    seconds: i64,
}

async fn ctl_advance(AxState(ctx): AxState<Ctx>, body: Bytes) -> Response {
    let advance: AdvanceBody = match serde_json::from_slice(&body) {
        Ok(advance) => advance,
        Err(error) => {
            return json_response(
                400,
                &json!({"error": {"message": format!("expected {{\"seconds\": N}}: {error}")}}),
                &[],
            );
        }
    };
    let clock = {
        let mut state = ctx.lock();
        state.touch();
        state.clock_offset += advance.seconds;
        state.current_request = None;
        state.sweep_expired();
        clock_json(&state)
    };
    json_response(200, &clock, &[])
}

async fn ctl_faults(AxState(ctx): AxState<Ctx>) -> Response {
    let rules = json!({"rules": ctx.lock().faults});
    json_response(200, &rules, &[])
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FaultBody {
    Many { rules: Vec<FaultRule> },
    One(FaultRule),
}

async fn ctl_add_faults(AxState(ctx): AxState<Ctx>, body: Bytes) -> Response {
    let rules = match serde_json::from_slice::<FaultBody>(&body) {
        Ok(FaultBody::Many { rules }) => rules,
        Ok(FaultBody::One(rule)) => vec![rule],
        Err(error) => {
            return json_response(
                400,
                &json!({"error": {"message": format!("invalid fault rule: {error}")}}),
                &[],
            );
        }
    };
    for rule in &rules {
        if let Some(error) = &rule.error
            && !matches!(
                error.as_str(),
                "429" | "500" | "drop" | "drop_after" | "timeout"
            )
        {
            return json_response(
                400,
                &json!({"error": {"message": format!("unknown error kind {error:?}: use \"429\", \"500\", \"drop\", \"drop_after\" or \"timeout\"")}}),
                &[],
            );
        }
    }
    let rules = {
        let mut state = ctx.lock();
        state.faults.extend(rules);
        json!({"rules": state.faults})
    };
    json_response(200, &rules, &[])
}

async fn ctl_clear_faults(AxState(ctx): AxState<Ctx>) -> Response {
    ctx.lock().faults.clear();
    json_response(200, &json!({"rules": []}), &[])
}

#[derive(Deserialize, Default)]
struct AddressBody {
    line1: Option<String>,
    line2: Option<String>,
    city: Option<String>,
    postal_code: Option<String>,
    state: Option<String>,
    country: Option<String>,
}

#[derive(Deserialize, Default)]
struct CompleteBody {
    #[serde(default)]
    card_number: Option<String>,
    #[serde(default)]
    exp_month: Option<i64>,
    #[serde(default)]
    exp_year: Option<i64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    /// The billing address (Stripe's `address` fields), for sessions that collect one.
    #[serde(default)]
    address: Option<AddressBody>,
    /// Answer to the 3DS challenge for cards that require it (default: complete it).
    #[serde(default)]
    authenticate: Option<bool>,
}

async fn ctl_complete(AxState(ctx): AxState<Ctx>, Path(id): Path<String>, body: Bytes) -> Response {
    let request: CompleteBody = if body.is_empty() {
        CompleteBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(error) => {
                return json_response(
                    400,
                    &json!({"error": {"message": format!("invalid body: {error}")}}),
                    &[],
                );
            }
        }
    };
    let card = CardInput {
        number: request
            .card_number
            .unwrap_or_else(|| "4242424242424242".into())
            .replace([' ', '-'], ""),
        exp_month: request.exp_month.unwrap_or(12),
        exp_year: request.exp_year.unwrap_or(2034),
        name: request.name,
        email: request.email,
        address: request.address.map(|a| crate::cards::BillingAddress {
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            postal_code: a.postal_code,
            state: a.state,
            country: a.country.map(|c| c.to_ascii_uppercase()),
        }),
    };
    match complete_session(&ctx, &id, &card, request.authenticate.unwrap_or(true)) {
        Ok(session) => {
            let redirect = redirect_url(&session);
            json_response(
                200,
                &json!({"session": session, "redirect_url": redirect}),
                &[],
            )
        }
        Err(error) => json_response(error.status, &error.body(), &[]),
    }
}

#[derive(Deserialize, Default)]
struct InvoicePayBody {
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    payment_method: Option<String>,
}

#[derive(Deserialize, Default)]
struct InvoiceAuthenticateBody {
    #[serde(default)]
    succeed: Option<bool>,
}

fn json_body<T: for<'de> Deserialize<'de> + Default>(body: &Bytes) -> Result<T, Box<Response>> {
    if body.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|error| {
        Box::new(json_response(
            400,
            &json!({"error": {"message": format!("invalid body: {error}")}}),
            &[],
        ))
    })
}

fn invoice_command_response(result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(body) => json_response(200, &body, &[]),
        Err(error) => json_response(error.status, &error.body(), &[]),
    }
}

async fn ctl_invoice_pay(
    AxState(ctx): AxState<Ctx>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let request: InvoicePayBody = match json_body(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    invoice_command_response(invoice_command(
        &ctx,
        &id,
        InvoiceCommand::Pay {
            outcome: request.outcome,
            payment_method: request.payment_method,
        },
    ))
}

async fn ctl_invoice_authenticate(
    AxState(ctx): AxState<Ctx>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let request: InvoiceAuthenticateBody = match json_body(&body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    invoice_command_response(invoice_command(
        &ctx,
        &id,
        InvoiceCommand::Authenticate(request.succeed.unwrap_or(true)),
    ))
}

async fn ctl_invoice_advance(AxState(ctx): AxState<Ctx>, Path(id): Path<String>) -> Response {
    invoice_command_response(invoice_command(&ctx, &id, InvoiceCommand::Advance))
}

async fn ctl_events(AxState(ctx): AxState<Ctx>, Query(query): Query<SinceQuery>) -> Response {
    let events = all_events(&ctx, query.account.as_deref());
    json_response(200, &json!({"data": events}), &[])
}

async fn ctl_deliveries(AxState(ctx): AxState<Ctx>) -> Response {
    let deliveries = ctx.lock().deliveries.clone();
    json_response(200, &json!({"data": deliveries}), &[])
}

async fn ctl_object(AxState(ctx): AxState<Ctx>, Path(id): Path<String>) -> Response {
    let found = ctx
        .lock()
        .accounts
        .values()
        .find_map(|account| account.objects.get(&id).cloned());
    match found.map(|text| text.value()) {
        Some(object) => json_response(200, &object, &[]),
        None => json_response(404, &ApiError::no_such("object", &id, None).body(), &[]),
    }
}

async fn ctl_stats(AxState(ctx): AxState<Ctx>) -> Response {
    let stats = {
        let state = ctx.lock();
        json!({
            "expiry_sessions_examined": state.expiry_examined,
            "expiry_queue_len": state.expiry_queue.len(),
            "request_log_len": state.log.len(),
            "request_log_capacity": state.log_capacity,
            "connections_accepted": ctx.connections_accepted.load(Ordering::Relaxed),
            "last_seq": state.log_seq,
            "objects": state.accounts.values().map(|account| account.objects.len()).sum::<usize>(),
            "object_bytes": state.accounts.values().flat_map(|account| account.objects.values()).map(|text| text.len()).sum::<usize>(),
            "state_file": ctx.config.state_file.as_ref().map(|path| path.display().to_string()),
            "state_file_writes": ctx.state_writes.load(Ordering::Relaxed),
            "state_file_last_copy_us": ctx.state_last_copy_us.load(Ordering::Relaxed),
            "state_file_last_write_us": ctx.state_last_write_us.load(Ordering::Relaxed),
        })
    };
    json_response(200, &stats, &[])
}

async fn ctl_connections(AxState(ctx): AxState<Ctx>) -> Response {
    let accepted = ctx.connections_accepted.load(Ordering::Relaxed);
    json_response(200, &json!({"accepted": accepted}), &[])
}
