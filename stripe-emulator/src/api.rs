//! HTTP layer: the accept loop (which can drop connections for fault injection), the `/v1/`
//! handler with auth, idempotency, faults and the request log, and the `/_emulator/` control API.

use std::convert::Infallible;
use std::sync::Arc;
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

use crate::error::ApiError;
use crate::logic::{self, CardInput, Completion};
use crate::state::{API_VERSION, FaultRule, Idem, RequestLogEntry, rid};
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
        .route("/_emulator/events", get(ctl_events))
        .route("/_emulator/webhook_deliveries", get(ctl_deliveries))
        .route("/_emulator/objects/{id}", get(ctl_object))
        .merge(crate::hosted::routes())
        .fallback(stripe_api)
        .with_state(shared)
}

/// Serves HTTP/1.1 connections until `shutdown` changes or its sender is dropped.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            r = listener.accept() => {
                let stream = match r {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let app = app.clone();
                let mut conn_shutdown = shutdown.clone();
                tokio::spawn(async move {
                    let kill = Arc::new(Notify::new());
                    let k = kill.clone();
                    let svc = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(Killer(k.clone()));
                        let mut app = app.clone();
                        async move { Ok::<_, Infallible>(app.call(req).await.unwrap_or_else(|e| match e {})) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
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
    let mut resp = (code, text).into_response();
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    for (k, v) in headers {
        if let (Ok(name), Ok(val)) = (
            axum::http::HeaderName::try_from(*k),
            HeaderValue::from_str(v),
        ) {
            h.insert(name, val);
        }
    }
    resp
}

fn api_key(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?.trim();
    if let Some(k) = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
    {
        return Some(k.trim().to_string());
    }
    if let Some(b) = auth
        .strip_prefix("Basic ")
        .or_else(|| auth.strip_prefix("basic "))
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .ok()?;
        let s = String::from_utf8(raw).ok()?;
        return Some(s.split(':').next().unwrap_or_default().to_string());
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

fn match_fault(rule: &FaultRule, method: &str, path: &str) -> bool {
    rule.method
        .as_deref()
        .is_none_or(|m| m.eq_ignore_ascii_case(method))
        && rule.path.as_deref().is_none_or(|p| path.starts_with(p))
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
    let request_id = format!("req_{}", rid(14));
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
    if let Some(k) = &idem_key {
        out_headers.push(("idempotency-key", k.clone()));
    }
    // POST parameters come from the body; query parameters are accepted too (body wins).
    let raw_params: Vec<u8> = match (method.clone(), uri.query()) {
        (Method::POST, Some(q)) if !q.is_empty() => [q.as_bytes(), b"&", &body].concat(),
        (Method::POST, _) => body.to_vec(),
        (_, q) => q.unwrap_or_default().as_bytes().to_vec(),
    };
    let parsed = crate::form::parse(&raw_params);
    let params_for_log = parsed
        .clone()
        .unwrap_or_else(|_| Value::Object(Default::default()));
    let key = api_key(&headers);
    let account = key.as_ref().and_then(|k| ctx.lock().keys.get(k).cloned());

    let log = |ctx: &Ctx, status: u16, replayed: bool, fault: Option<String>| {
        let mut st = ctx.lock();
        st.log_seq += 1;
        let entry = RequestLogEntry {
            seq: st.log_seq,
            request_id: request_id.clone(),
            time: st.now(),
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
        st.log.push(entry);
    };

    if !path.starts_with("/v1/") {
        let e = ApiError::not_found_url(method.as_str(), &path);
        return json_response(404, &e.body(), &out_headers);
    }

    // Fault injection.
    let fault = {
        let mut st = ctx.lock();
        let m = method.as_str();
        match st.faults.iter().position(|r| match_fault(r, m, &path)) {
            Some(i) => {
                let rule = st.faults[i].clone();
                if let Some(c) = st.faults[i].count.as_mut() {
                    *c = c.saturating_sub(1);
                    if *c == 0 {
                        st.faults.remove(i);
                    }
                }
                let hit = rule.error.is_some()
                    && rand::random_bool(rule.rate.unwrap_or(1.0).clamp(0.0, 1.0));
                Some((rule.latency_ms, if hit { rule.error } else { None }))
            }
            None => None,
        }
    };
    let mut drop_after = false;
    if let Some((latency, error)) = fault {
        drop_after = error.as_deref() == Some("drop_after");
        if let Some(ms) = latency {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        match error.as_deref() {
            Some("429") => {
                log(&ctx, 429, false, Some("429".into()));
                let e = ApiError::new(
                    429,
                    "invalid_request_error",
                    "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
                )
                .code("rate_limit");
                return json_response(429, &e.body(), &out_headers);
            }
            Some("500") => {
                log(&ctx, 500, false, Some("500".into()));
                let e = ApiError::new(
                    500,
                    "api_error",
                    "Something went wrong on Stripe's end. (Injected by the emulator.)",
                );
                out_headers.push(("stripe-should-retry", "true".into()));
                return json_response(500, &e.body(), &out_headers);
            }
            Some("drop") => {
                log(&ctx, 0, false, Some("drop".into()));
                if let Some(axum::Extension(k)) = &killer {
                    k.0.notify_one();
                }
                std::future::pending::<()>().await;
            }
            Some("timeout") => {
                // Hold the request without answering (the client's timeout fires), then drop it.
                log(&ctx, 0, false, Some("timeout".into()));
                tokio::time::sleep(Duration::from_secs(300)).await;
                if let Some(axum::Extension(k)) = &killer {
                    k.0.notify_one();
                }
                std::future::pending::<()>().await;
            }
            _ => {}
        }
    }

    // Authentication.
    if key.as_deref().is_some_and(|k| k.starts_with("pk_")) {
        log(&ctx, 401, false, None);
        let e = ApiError::new(
            401,
            "invalid_request_error",
            "This API call cannot be made with a publishable API key. Please use a secret API key. You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys.",
        );
        return json_response(401, &e.body(), &out_headers);
    }
    let Some(acct) = account.clone() else {
        let msg = match &key {
            None => "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.".to_string(),
            Some(k) => format!("Invalid API Key provided: {}", mask(k)),
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
        Ok(p) => p,
        Err(fe) => {
            log(&ctx, 400, false, None);
            return json_response(
                400,
                &ApiError::invalid(fe.message, fe.param).body(),
                &out_headers,
            );
        }
    };

    let (status, body, replayed) = {
        let mut st = ctx.lock();
        st.sweep_expired();
        let fingerprint = json!({"method": method.as_str(), "path": path, "params": params});
        let use_idem = method == Method::POST && idem_key.is_some();
        let mut early: Option<(u16, Value, bool)> = None;
        if use_idem && let Some(k) = &idem_key {
            if k.len() > 255 {
                let e = ApiError::invalid(
                    "Idempotency-Key header must not be longer than 255 characters.",
                    "Idempotency-Key",
                );
                early = Some((400, e.body(), false));
            } else if let Some(prev) = st.accounts.get(&acct).and_then(|a| a.idem.get(k)) {
                early = Some(if prev.fingerprint == fingerprint {
                    (prev.status, prev.body.clone(), true)
                } else {
                    let e = ApiError::new(
                        400,
                        "idempotency_error",
                        format!(
                            "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{k}' if you meant to execute a different request."
                        ),
                    );
                    (400, e.body(), false)
                });
            }
        }
        match early {
            Some(x) => x,
            None => {
                st.current_request = Some((
                    request_id.clone(),
                    if use_idem { idem_key.clone() } else { None },
                ));
                let result = logic::route(&mut st, &acct, method.as_str(), &path, &params);
                st.current_request = None;
                let (status, body) = match result {
                    Ok(v) => (200u16, v),
                    Err(e) => (e.status, e.body()),
                };
                if use_idem
                    && (status < 400 || status == 402)
                    && let (Some(k), Some(a)) = (&idem_key, st.accounts.get_mut(&acct))
                {
                    a.idem.insert(
                        k.clone(),
                        Idem {
                            fingerprint,
                            status,
                            body: body.clone(),
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
        if let Some(axum::Extension(k)) = &killer {
            k.0.notify_one();
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
    let key = format!("sk_test_51{}", rid(40));
    let acct = shared.lock().add_key(&key);
    (acct, key)
}

/// Finds the account holding an object id.
pub(crate) fn account_of(shared: &Shared, id: &str) -> Option<String> {
    shared
        .lock()
        .accounts
        .iter()
        .find(|(_, a)| a.objects.contains_key(id))
        .map(|(k, _)| k.clone())
}

pub(crate) fn complete_session(
    shared: &Shared,
    id: &str,
    card: &CardInput,
    authenticate: bool,
) -> Result<Value, ApiError> {
    let acct =
        account_of(shared, id).ok_or_else(|| ApiError::no_such("checkout.session", id, None))?;
    let mut st = shared.lock();
    st.current_request = None;
    st.sweep_expired();
    match logic::submit_card(&mut st, &acct, id, card, Some(authenticate))? {
        Completion::Completed(cs) => Ok(cs),
        Completion::Declined(e) => Err(e),
        Completion::NeedsAuthentication => {
            Err(ApiError::new(402, "card_error", "authentication required"))
        }
    }
}

pub(crate) fn all_events(shared: &Shared, account: Option<&str>) -> Vec<Value> {
    let st = shared.lock();
    let mut evs: Vec<(i64, usize, Value)> = Vec::new();
    for (aid, a) in &st.accounts {
        if account.is_some_and(|x| x != aid) {
            continue;
        }
        if let Some(ids) = a.lists.get("event") {
            for (i, id) in ids.iter().enumerate() {
                if let Some(e) = a.objects.get(id) {
                    evs.push((e["created"].as_i64().unwrap_or(0), i, e.clone()));
                }
            }
        }
    }
    evs.sort_by_key(|(c, i, _)| (*c, *i));
    evs.into_iter().map(|(_, _, e)| e).collect()
}

/// The URL a completed session redirects to (`success_url`/`return_url` with the id filled in).
pub(crate) fn redirect_url(cs: &Value) -> Option<String> {
    let id = cs["id"].as_str().unwrap_or_default();
    cs["success_url"]
        .as_str()
        .or_else(|| {
            if cs["redirect_on_completion"] == "never" {
                None
            } else {
                cs["return_url"].as_str()
            }
        })
        .map(|u| u.replace("{CHECKOUT_SESSION_ID}", id))
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
struct SinceQ {
    since: Option<u64>,
    account: Option<String>,
}

async fn ctl_requests(AxState(ctx): AxState<Ctx>, Query(q): Query<SinceQ>) -> Response {
    let since = q.since.unwrap_or(0);
    let st = ctx.lock();
    let data: Vec<&RequestLogEntry> = st
        .log
        .iter()
        .filter(|e| {
            e.seq > since
                && q.account
                    .as_ref()
                    .is_none_or(|a| e.account.as_ref() == Some(a))
        })
        .collect();
    json_response(200, &json!({"data": data, "last_seq": st.log_seq}), &[])
}

async fn ctl_clear_requests(AxState(ctx): AxState<Ctx>) -> Response {
    ctx.lock().log.clear();
    json_response(200, &json!({"cleared": true}), &[])
}

fn clock_json(st: &crate::state::State) -> Value {
    json!({"now": st.now(), "offset_seconds": st.clock_offset})
}

async fn ctl_clock(AxState(ctx): AxState<Ctx>) -> Response {
    let st = ctx.lock();
    json_response(200, &clock_json(&st), &[])
}

#[derive(Deserialize)]
struct AdvanceBody {
    seconds: i64,
}

async fn ctl_advance(AxState(ctx): AxState<Ctx>, body: Bytes) -> Response {
    let b: AdvanceBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return json_response(
                400,
                &json!({"error": {"message": format!("expected {{\"seconds\": N}}: {e}")}}),
                &[],
            );
        }
    };
    let mut st = ctx.lock();
    st.clock_offset += b.seconds;
    st.current_request = None;
    st.sweep_expired();
    json_response(200, &clock_json(&st), &[])
}

async fn ctl_faults(AxState(ctx): AxState<Ctx>) -> Response {
    let st = ctx.lock();
    json_response(200, &json!({"rules": st.faults}), &[])
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
        Ok(FaultBody::One(r)) => vec![r],
        Err(e) => {
            return json_response(
                400,
                &json!({"error": {"message": format!("invalid fault rule: {e}")}}),
                &[],
            );
        }
    };
    for r in &rules {
        if let Some(e) = &r.error
            && !matches!(
                e.as_str(),
                "429" | "500" | "drop" | "drop_after" | "timeout"
            )
        {
            return json_response(
                400,
                &json!({"error": {"message": format!("unknown error kind {e:?}: use \"429\", \"500\", \"drop\", \"drop_after\" or \"timeout\"")}}),
                &[],
            );
        }
    }
    let mut st = ctx.lock();
    st.faults.extend(rules);
    json_response(200, &json!({"rules": st.faults}), &[])
}

async fn ctl_clear_faults(AxState(ctx): AxState<Ctx>) -> Response {
    ctx.lock().faults.clear();
    json_response(200, &json!({"rules": []}), &[])
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
    /// Answer to the 3DS challenge for cards that require it (default: complete it).
    #[serde(default)]
    authenticate: Option<bool>,
}

async fn ctl_complete(AxState(ctx): AxState<Ctx>, Path(id): Path<String>, body: Bytes) -> Response {
    let b: CompleteBody = if body.is_empty() {
        CompleteBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => {
                return json_response(
                    400,
                    &json!({"error": {"message": format!("invalid body: {e}")}}),
                    &[],
                );
            }
        }
    };
    let card = CardInput {
        number: b
            .card_number
            .unwrap_or_else(|| "4242424242424242".into())
            .replace([' ', '-'], ""),
        exp_month: b.exp_month.unwrap_or(12),
        exp_year: b.exp_year.unwrap_or(2034),
        name: b.name,
        email: b.email,
    };
    match complete_session(&ctx, &id, &card, b.authenticate.unwrap_or(true)) {
        Ok(cs) => {
            let redirect = redirect_url(&cs);
            json_response(200, &json!({"session": cs, "redirect_url": redirect}), &[])
        }
        Err(e) => json_response(e.status, &e.body(), &[]),
    }
}

async fn ctl_events(AxState(ctx): AxState<Ctx>, Query(q): Query<SinceQ>) -> Response {
    let evs = all_events(&ctx, q.account.as_deref());
    json_response(200, &json!({"data": evs}), &[])
}

async fn ctl_deliveries(AxState(ctx): AxState<Ctx>) -> Response {
    let st = ctx.lock();
    json_response(200, &json!({"data": st.deliveries}), &[])
}

async fn ctl_object(AxState(ctx): AxState<Ctx>, Path(id): Path<String>) -> Response {
    let st = ctx.lock();
    match st.accounts.values().find_map(|a| a.objects.get(&id)) {
        Some(o) => json_response(200, o, &[]),
        None => json_response(404, &ApiError::no_such("object", &id, None).body(), &[]),
    }
}
