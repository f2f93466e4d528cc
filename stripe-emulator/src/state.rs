//! The emulator's state: accounts and their objects, the clock, the request log, faults and
//! webhook delivery records. All mutation happens under one mutex, so every API request is
//! atomic (which also makes idempotency races impossible).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::UnboundedSender;

use crate::error::{ApiError, ApiResult};

/// The Stripe API version emulated (the version async-stripe 1.0.0-rc.10 pins).
pub const API_VERSION: &str = "2026-09-30.endive";

const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A random alphanumeric string, like the tails of Stripe's ids.
pub fn rid(n: usize) -> String {
    (0..n)
        .map(|_| ALNUM[rand::random_range(0..ALNUM.len())] as char)
        .collect()
}

pub fn new_id(prefix: &str) -> String {
    match prefix {
        "cs_test" => format!("cs_test_a1{}", rid(58)),
        "cus" => format!("cus_{}", rid(14)),
        _ => format!("{prefix}_1{}", rid(23)),
    }
}

/// The stable account id for an API key.
pub fn account_id_for_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let h = hex::encode(digest);
    // Map hex to a Stripe-looking mixed alphabet, deterministically.
    let tail: String = h
        .as_bytes()
        .chunks(2)
        .take(16)
        .map(|c| {
            let n = (u16::from(c[0]) * 31 + u16::from(c[1])) as usize % ALNUM.len();
            ALNUM[n] as char
        })
        .collect();
    format!("acct_1{tail}")
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RequestLogEntry {
    /// Sequence number, starting at 1; use with `?since=N`.
    pub seq: u64,
    pub request_id: String,
    pub time: i64,
    pub method: String,
    pub path: String,
    /// Query string (GET/DELETE) or form body (POST) decoded into JSON (leaves are strings).
    pub params: Value,
    pub idempotency_key: Option<String>,
    pub stripe_version: Option<String>,
    /// The account the API key belongs to (None when authentication failed).
    pub account: Option<String>,
    /// Response status; 0 when the connection was dropped by fault injection.
    pub status: u16,
    pub idempotent_replayed: bool,
    /// Set when fault injection produced the response.
    pub fault: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct FaultRule {
    /// HTTP method to match (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Path prefix to match, e.g. `/v1/checkout/sessions` (all `/v1/` requests when absent).
    #[serde(default)]
    pub path: Option<String>,
    /// Added latency before the request is handled.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// `"429"`, `"500"`, `"drop"` (close the connection before handling the request),
    /// `"drop_after"` (handle it, then close the connection without the response) or
    /// `"timeout"` (hold the request unanswered for 5 minutes, then close).
    #[serde(default)]
    pub error: Option<String>,
    /// Probability (0..=1) that a matching request gets `error`; 1 when absent.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Apply to the next N matching requests only, then the rule is removed.
    #[serde(default)]
    pub count: Option<u32>,
}

impl std::str::FromStr for FaultRule {
    type Err = String;

    /// Parses a command-line fault flag: `[METHOD ]PATH[:key=value,...]`, where PATH is a path
    /// prefix (`*` = every `/v1/` request) and keys are `latency_ms`, `error` (`429`, `500`,
    /// `drop`, `timeout`), `rate` (0..=1) and `count`. Examples:
    /// `POST /v1/checkout/sessions:error=500,count=2`, `*:latency_ms=250`, `/v1/customers:error=429,rate=0.1`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (target, opts) = s.split_once(':').unwrap_or((s, ""));
        let mut rule = FaultRule::default();
        let target = target.trim();
        let path = match target.split_once(' ') {
            Some((m, p)) => {
                rule.method = Some(m.trim().to_uppercase());
                p.trim()
            }
            None => target,
        };
        if path != "*" && !path.is_empty() {
            if !path.starts_with('/') {
                return Err(format!(
                    "fault path must start with '/' or be '*': {path:?}"
                ));
            }
            rule.path = Some(path.to_string());
        }
        for kv in opts.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, got {kv:?}"))?;
            let bad = |e: &dyn std::fmt::Display| format!("invalid {k}={v}: {e}");
            match k.trim() {
                "latency_ms" | "latency" => rule.latency_ms = Some(v.parse().map_err(|e| bad(&e))?),
                "error" => {
                    if !matches!(v, "429" | "500" | "drop" | "drop_after" | "timeout") {
                        return Err(bad(&"use 429, 500, drop, drop_after or timeout"));
                    }
                    rule.error = Some(v.to_string());
                }
                "rate" => {
                    let r: f64 = v.parse().map_err(|e| bad(&e))?;
                    if !(0.0..=1.0).contains(&r) {
                        return Err(bad(&"must be between 0 and 1"));
                    }
                    rule.rate = Some(r);
                }
                "count" => rule.count = Some(v.parse().map_err(|e| bad(&e))?),
                other => return Err(format!("unknown fault option {other:?}")),
            }
        }
        if rule.latency_ms.is_none() && rule.error.is_none() {
            return Err("a fault needs latency_ms and/or error".to_string());
        }
        Ok(rule)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeliveryAttempt {
    pub event_id: String,
    pub event_type: String,
    pub endpoint_id: String,
    pub url: String,
    pub attempt: u32,
    pub time: i64,
    /// Response status; None when the request failed (connection refused, timeout).
    pub status: Option<u16>,
    pub error: Option<String>,
    pub succeeded: bool,
}

pub struct Delivery {
    pub account: String,
    pub endpoint_id: String,
    pub event: Value,
}

pub struct Idem {
    pub fingerprint: Value,
    pub status: u16,
    pub body: Value,
}

#[derive(Default)]
pub struct Account {
    pub id: String,
    pub created: i64,
    pub objects: HashMap<String, Value>,
    /// Insertion-ordered ids per list kind (`customer`, `checkout.session`, ...).
    pub lists: HashMap<&'static str, Vec<String>>,
    pub deleted: HashSet<String>,
    pub idem: HashMap<String, Idem>,
    pub webhook_secrets: HashMap<String, String>,
}

pub struct State {
    pub accounts: HashMap<String, Account>,
    pub keys: HashMap<String, String>,
    pub clock_offset: i64,
    pub log: Vec<RequestLogEntry>,
    pub log_seq: u64,
    pub faults: Vec<FaultRule>,
    pub deliveries: Vec<DeliveryAttempt>,
    pub public_url: String,
    pub delivery_tx: Option<UnboundedSender<Delivery>>,
    /// Request id and idempotency key of the API request being handled (for events' `request`).
    pub current_request: Option<(String, Option<String>)>,
}

pub fn real_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn s<'a>(p: &'a Value, k: &str) -> Option<&'a str> {
    p.get(k).and_then(Value::as_str)
}
/// A non-empty string param.
pub fn ne<'a>(p: &'a Value, k: &str) -> Option<&'a str> {
    s(p, k).filter(|v| !v.is_empty())
}

impl State {
    pub fn new(public_url: String) -> Self {
        State {
            accounts: HashMap::new(),
            keys: HashMap::new(),
            clock_offset: 0,
            log: Vec::new(),
            log_seq: 0,
            faults: Vec::new(),
            deliveries: Vec::new(),
            public_url,
            delivery_tx: None,
            current_request: None,
        }
    }

    pub fn now(&self) -> i64 {
        real_now() + self.clock_offset
    }

    pub fn add_key(&mut self, key: &str) -> String {
        let acct = account_id_for_key(key);
        self.keys.insert(key.to_string(), acct.clone());
        let now = self.now();
        self.accounts
            .entry(acct.clone())
            .or_insert_with(|| Account {
                id: acct.clone(),
                created: now,
                ..Default::default()
            });
        acct
    }

    pub fn acct(&mut self, id: &str) -> ApiResult<&mut Account> {
        self.accounts
            .get_mut(id)
            .ok_or_else(|| ApiError::new(500, "api_error", "account vanished"))
    }

    /// Stores a new object and appends it to its list.
    pub fn insert(&mut self, acct: &str, kind: &'static str, obj: Value) -> ApiResult<()> {
        let a = self.acct(acct)?;
        let id = obj["id"].as_str().unwrap_or_default().to_string();
        a.lists.entry(kind).or_default().push(id.clone());
        a.objects.insert(id, obj);
        Ok(())
    }

    pub fn get(&self, acct: &str, id: &str) -> Option<&Value> {
        self.accounts.get(acct).and_then(|a| a.objects.get(id))
    }

    pub fn get_of(&self, acct: &str, id: &str, object: &str) -> Option<Value> {
        self.get(acct, id)
            .filter(|o| o["object"] == object)
            .cloned()
    }

    pub fn put(&mut self, acct: &str, obj: Value) -> ApiResult<()> {
        let id = obj["id"].as_str().unwrap_or_default().to_string();
        self.acct(acct)?.objects.insert(id, obj);
        Ok(())
    }

    /// Records an event and queues its delivery to matching enabled webhook endpoints.
    pub fn emit(
        &mut self,
        acct: &str,
        typ: &str,
        object: &Value,
        previous: Option<Value>,
    ) -> ApiResult<Value> {
        let now = self.now();
        let (req_id, idem) = match &self.current_request {
            Some((r, i)) => (
                Value::from(r.clone()),
                i.clone().map(Value::from).unwrap_or(Value::Null),
            ),
            None => (Value::Null, Value::Null),
        };
        let endpoints: Vec<Value> = {
            let a = self.acct(acct)?;
            a.lists
                .get("webhook_endpoint")
                .map(|ids| {
                    ids.iter()
                        .filter_map(|id| a.objects.get(id))
                        .filter(|we| we["status"] == "enabled")
                        .filter(|we| {
                            we["enabled_events"]
                                .as_array()
                                .is_some_and(|evs| evs.iter().any(|e| e == "*" || e == typ))
                        })
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut data = Map::new();
        data.insert("object".into(), object.clone());
        if let Some(p) = previous {
            data.insert("previous_attributes".into(), p);
        }
        let event = json!({
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "context": null,
            "created": now,
            "data": data,
            "livemode": false,
            "pending_webhooks": endpoints.len(),
            "request": {"id": req_id, "idempotency_key": idem},
            "type": typ,
        });
        self.insert(acct, "event", event.clone())?;
        if let Some(tx) = &self.delivery_tx {
            for we in &endpoints {
                let _ = tx.send(Delivery {
                    account: acct.to_string(),
                    endpoint_id: we["id"].as_str().unwrap_or_default().to_string(),
                    event: event.clone(),
                });
            }
        }
        Ok(event)
    }

    /// Expires open checkout sessions whose `expires_at` has passed (by the emulator's clock).
    pub fn sweep_expired(&mut self) {
        let now = self.now();
        let mut due: Vec<(String, String)> = Vec::new();
        for (aid, a) in &self.accounts {
            if let Some(ids) = a.lists.get("checkout.session") {
                for id in ids {
                    if let Some(cs) = a.objects.get(id)
                        && cs["status"] == "open"
                        && cs["expires_at"].as_i64().is_some_and(|t| t <= now)
                    {
                        due.push((aid.clone(), id.clone()));
                    }
                }
            }
        }
        for (aid, id) in due {
            if let Err(e) = crate::logic::expire_session(self, &aid, &id) {
                tracing::warn!("expiring {id}: {}", e.message);
            }
        }
    }
}

/// Top-level keys whose values differ, with their old values (for `previous_attributes`).
pub fn previous_attributes(old: &Value, new: &Value) -> Value {
    let mut m = Map::new();
    if let (Some(o), Some(n)) = (old.as_object(), new.as_object()) {
        for (k, nv) in n {
            let ov = o.get(k).cloned().unwrap_or(Value::Null);
            if &ov != nv {
                m.insert(k.clone(), ov);
            }
        }
    }
    Value::Object(m)
}
