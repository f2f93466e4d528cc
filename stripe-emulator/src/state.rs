//! The emulator's state: accounts and their objects, the clock, the request log, faults and
//! webhook delivery records. All mutation happens under one mutex, so every API request is
//! atomic (which also makes idempotency races impossible).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::UnboundedSender;

use crate::error::{ApiError, ApiResult};
use crate::ids::{account_id_for_key, new_id};
use crate::resources::checkout_sessions;

/// The Stripe API version emulated (the version async-stripe 1.0.0-rc.10 pins).
pub const API_VERSION: &str = "2026-09-30.endive";

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
    /// `drop`, `drop_after`, `timeout`), `rate` (0..=1) and `count`. Examples:
    /// `POST /v1/checkout/sessions:error=500,count=2`, `*:latency_ms=250`, `/v1/customers:error=429,rate=0.1`.
    fn from_str(flag: &str) -> Result<Self, Self::Err> {
        let (target, options) = flag.split_once(':').unwrap_or((flag, ""));
        let mut rule = FaultRule::default();
        let target = target.trim();
        let path = match target.split_once(' ') {
            Some((method, path)) => {
                rule.method = Some(method.trim().to_uppercase());
                path.trim()
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
        for option in options
            .split(',')
            .map(str::trim)
            .filter(|option| !option.is_empty())
        {
            let (key, value) = option
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, got {option:?}"))?;
            let bad = |error: &dyn std::fmt::Display| format!("invalid {key}={value}: {error}");
            match key.trim() {
                "latency_ms" | "latency" => {
                    rule.latency_ms = Some(value.parse().map_err(|error| bad(&error))?)
                }
                "error" => {
                    if !matches!(value, "429" | "500" | "drop" | "drop_after" | "timeout") {
                        return Err(bad(&"use 429, 500, drop, drop_after or timeout"));
                    }
                    rule.error = Some(value.to_string());
                }
                "rate" => {
                    let rate: f64 = value.parse().map_err(|error| bad(&error))?;
                    if !(0.0..=1.0).contains(&rate) {
                        return Err(bad(&"must be between 0 and 1"));
                    }
                    rule.rate = Some(rate);
                }
                "count" => rule.count = Some(value.parse().map_err(|error| bad(&error))?),
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

/// An event queued for delivery to one webhook endpoint.
pub struct Delivery {
    pub account: String,
    pub endpoint_id: String,
    pub event: Value,
}

/// The stored response to an idempotent request, replayed for the same key and parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredResponse {
    /// Method, path and parameters of the first request, as compact JSON.
    pub fingerprint: String,
    pub status: u16,
    /// The response body, as compact JSON (a full `Value` copy of every idempotent
    /// response would double the memory of each created object).
    pub body: StoredObject,
}

/// A stored object: its compact JSON text without its top-level `null` fields, plus the
/// (interned, shared) list of those fields' names.
///
/// Objects used to be kept as `serde_json::Value` trees, where every field costs a `String`
/// key, a 32-byte `Value` and a share of a half-full B-tree node (~28 KB per checkout session
/// with its setup intent and `setup_intent.created` event). As compact text the same three
/// objects take ~4 KB, ~2.8 KB once the top-level nulls (half of a session's 70 fields) are left
/// out. Reads parse the text (a few microseconds for a session), which only retrieves,
/// expansions and lists do; the checkout hot path reads none of the big objects.
///
/// The text is shared (`Arc`), so cloning an object (as the state file's snapshot does for every
/// object) copies no text. In the state file an object is `{"json": TEXT}` plus `"nulls": [..]`
/// when it has null fields: the text as a JSON string, written and read without parsing it.
#[derive(Debug, Clone)]
pub struct StoredObject {
    text: Arc<str>,
    /// Names of the top-level fields that are `null`, shared by all objects with the same set.
    nulls: Option<NullNames>,
}

/// Serialises an object's fields except the `null` ones.
struct WithoutNulls<'a>(&'a Map<String, Value>);

impl Serialize for WithoutNulls<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in self.0 {
            if !value.is_null() {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

/// Names of an object's null top-level fields.
type NullNames = Arc<[Box<str>]>;

/// The distinct sets of null field names in use (a handful: one or two per object type).
fn intern_nulls(names: Vec<Box<str>>) -> NullNames {
    static SETS: OnceLock<Mutex<HashSet<NullNames>>> = OnceLock::new();
    let mut sets = SETS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(known) = sets.get(names.as_slice()) {
        return known.clone();
    }
    let set: NullNames = names.into();
    sets.insert(set.clone());
    set
}

impl StoredObject {
    pub fn new(object: &Value) -> Self {
        let (text, nulls) = match object.as_object() {
            Some(map) => {
                let names: Vec<Box<str>> = map
                    .iter()
                    .filter(|(_, value)| value.is_null())
                    .map(|(key, _)| key.as_str().into())
                    .collect();
                let text = serde_json::to_string(&WithoutNulls(map)).unwrap_or_default();
                (text, (!names.is_empty()).then(|| intern_nulls(names)))
            }
            None => (serde_json::to_string(object).unwrap_or_default(), None),
        };
        StoredObject {
            text: text.into(),
            nulls,
        }
    }

    /// The object, parsed (with its null fields back).
    pub fn value(&self) -> Value {
        let mut value: Value = serde_json::from_str(&self.text).unwrap_or(Value::Null);
        if let (Some(nulls), Some(map)) = (&self.nulls, value.as_object_mut()) {
            for name in nulls.iter() {
                map.insert(name.to_string(), Value::Null);
            }
        }
        value
    }

    /// Bytes of its text.
    pub fn len(&self) -> usize {
        self.text.len()
    }
}

/// How a [`StoredObject`] is written in the state file.
#[derive(Serialize)]
struct StoredObjectOut<'a> {
    json: &'a str,
    #[serde(skip_serializing_if = "no_nulls")]
    nulls: &'a [Box<str>],
}

fn no_nulls(nulls: &&[Box<str>]) -> bool {
    nulls.is_empty()
}

#[derive(Deserialize)]
struct StoredObjectIn {
    json: String,
    #[serde(default)]
    nulls: Vec<Box<str>>,
}

impl Serialize for StoredObject {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StoredObjectOut {
            json: &self.text,
            nulls: self.nulls.as_deref().unwrap_or_default(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for StoredObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let StoredObjectIn { json, nulls } = StoredObjectIn::deserialize(deserializer)?;
        Ok(StoredObject {
            text: json.into(),
            nulls: (!nulls.is_empty()).then(|| intern_nulls(nulls)),
        })
    }
}

/// List kinds are `&'static str` (the resource modules name them); the few distinct kinds read
/// from a state file are leaked once each, so loading any number of files leaks nothing more.
fn intern_kind(kind: String) -> &'static str {
    static KINDS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut kinds = KINDS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(known) = kinds.get(kind.as_str()) {
        return known;
    }
    let leaked: &'static str = Box::leak(kind.into_boxed_str());
    kinds.insert(leaked);
    leaked
}

fn deserialize_lists<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<HashMap<&'static str, Vec<String>>, D::Error> {
    let lists = HashMap::<String, Vec<String>>::deserialize(deserializer)?;
    Ok(lists
        .into_iter()
        .map(|(kind, ids)| (intern_kind(kind), ids))
        .collect())
}

/// One emulated Stripe account and everything it owns.
///
/// All of it is kept in the state file (see `persist.rs`): a field added here is saved and
/// loaded with no further code (it must be `Clone + Serialize + Deserialize`; files written
/// before the field existed load it as its `Default`).
#[derive(Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Account {
    pub id: String,
    pub created: i64,
    /// Every object by id, as stored (unexpanded), as compact JSON text.
    pub objects: HashMap<String, StoredObject>,
    /// Insertion-ordered ids per list kind (`customer`, `checkout.session`, ...).
    #[serde(deserialize_with = "deserialize_lists")]
    pub lists: HashMap<&'static str, Vec<String>>,
    /// Ids of deleted customers (retrieving one answers `{"deleted": true}`).
    pub deleted_customers: HashSet<String>,
    /// Responses to idempotent requests by `Idempotency-Key`.
    pub idempotent_responses: HashMap<String, StoredResponse>,
    /// Signing secrets (`whsec_…`) by webhook endpoint id.
    pub webhook_secrets: HashMap<String, String>,
}

pub struct State {
    /// Accounts by id.
    pub accounts: HashMap<String, Account>,
    /// Account id by API key.
    pub keys: HashMap<String, String>,
    /// Seconds the emulated clock is ahead of real time.
    pub clock_offset: i64,
    /// The request log: the latest `log_capacity` entries, oldest first (`seq` increasing).
    pub log: VecDeque<RequestLogEntry>,
    /// Most entries `log` keeps; older ones fall off.
    pub log_capacity: usize,
    /// `seq` of the last logged request.
    pub log_seq: u64,
    pub faults: Vec<FaultRule>,
    /// Every webhook delivery attempt, oldest first.
    pub deliveries: Vec<DeliveryAttempt>,
    /// Base URL of hosted pages (checkout, portal), without a trailing slash.
    pub public_url: String,
    /// Queue of the webhook delivery dispatcher (None once the emulator stops).
    pub delivery_tx: Option<UnboundedSender<Delivery>>,
    /// Request id and idempotency key of the API request being handled (for events' `request`).
    pub current_request: Option<(String, Option<String>)>,
    /// Checkout sessions that may still expire, ordered by `(expires_at, creation sequence)`,
    /// with their account and id. The expiry step pops only the due entries, so its work does
    /// not depend on how many sessions are stored. Sessions that were completed or expired by
    /// API call stay here until their `expires_at` and are skipped then (each entry is examined
    /// once).
    pub expiry_queue: BTreeMap<(i64, u64), (String, String)>,
    /// Creation sequence of the last session put in `expiry_queue`.
    expiry_seq: u64,
    /// Sessions the expiry step has examined so far (a work counter for tests).
    pub expiry_examined: u64,
    /// Invoice work waiting for the clock (automatic finalization of `auto_advance` drafts,
    /// automatic collection attempts, `invoice.overdue`), ordered by time. Plain data, so the
    /// state's persistence carries it; each entry is checked against the invoice when it is
    /// due and skipped if the invoice has moved on.
    pub invoice_schedule: BTreeSet<ScheduledInvoiceWork>,
    /// Sequence of the last entry put in `invoice_schedule`.
    pub invoice_schedule_seq: u64,
    /// Counts changes to what the state file keeps (see [`State::touch`]); the state file's
    /// writer saves a snapshot when it differs from the count it saved last.
    changes: u64,
}

/// What the clock does to an invoice when it reaches a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduledInvoiceAction {
    /// Finalize an `auto_advance` draft (at its `automatically_finalizes_at`).
    Finalize,
    /// Attempt payment of an open `charge_automatically` invoice (at `next_payment_attempt`).
    Collect,
    /// Announce `invoice.overdue` for an open `send_invoice` invoice (at `due_date`).
    Overdue,
}

/// One entry of [`State::invoice_schedule`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ScheduledInvoiceWork {
    pub at: i64,
    pub seq: u64,
    pub account: String,
    pub invoice: String,
    pub action: ScheduledInvoiceAction,
}

/// Real Unix time in seconds.
pub fn real_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl State {
    pub fn new(public_url: String) -> Self {
        State {
            accounts: HashMap::new(),
            keys: HashMap::new(),
            clock_offset: 0,
            log: VecDeque::new(),
            log_capacity: 10_000,
            log_seq: 0,
            faults: Vec::new(),
            deliveries: Vec::new(),
            public_url,
            delivery_tx: None,
            current_request: None,
            expiry_queue: BTreeMap::new(),
            expiry_seq: 0,
            expiry_examined: 0,
            invoice_schedule: BTreeSet::new(),
            invoice_schedule_seq: 0,
            changes: 0,
        }
    }

    /// Notes a change to what the state file keeps (accounts and everything in them, keys,
    /// the clock). [`State::account_mut`] (and so `insert` and `save`) call it, and so does
    /// every `/v1/` request other than a GET; code that changes the state some other way must
    /// call it too. Costs one increment under the lock the change holds anyway.
    pub fn touch(&mut self) {
        self.changes = self.changes.wrapping_add(1);
    }

    /// The change count (see [`State::touch`]).
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// The emulated clock: real time plus the advances.
    pub fn now(&self) -> i64 {
        real_now() + self.clock_offset
    }

    /// Accepts an API key, creating its account if new; returns the account id.
    pub fn add_key(&mut self, key: &str) -> String {
        let account = account_id_for_key(key);
        self.touch();
        self.keys.insert(key.to_string(), account.clone());
        let now = self.now();
        self.accounts
            .entry(account.clone())
            .or_insert_with(|| Account {
                id: account.clone(),
                created: now,
                ..Default::default()
            });
        account
    }

    pub fn account_mut(&mut self, id: &str) -> ApiResult<&mut Account> {
        self.touch();
        self.accounts
            .get_mut(id)
            .ok_or_else(|| ApiError::new(500, "api_error", "account vanished"))
    }

    /// Stores a new object and appends it to its list.
    pub fn insert(&mut self, account: &str, kind: &'static str, object: &Value) -> ApiResult<()> {
        let stored = self.account_mut(account)?;
        let id = object["id"].as_str().unwrap_or_default().to_string();
        stored.lists.entry(kind).or_default().push(id.clone());
        stored.objects.insert(id, StoredObject::new(object));
        Ok(())
    }

    /// The account's object `id`, of any type.
    pub fn object(&self, account: &str, id: &str) -> Option<Value> {
        self.accounts
            .get(account)
            .and_then(|stored| stored.objects.get(id))
            .map(StoredObject::value)
    }

    /// A copy of the account's object `id` if its `object` field is `object_type`.
    pub fn object_of_type(&self, account: &str, id: &str, object_type: &str) -> Option<Value> {
        self.object(account, id)
            .filter(|object| object["object"] == object_type)
    }

    /// Replaces a stored object (same id) with `object`.
    pub fn save(&mut self, account: &str, object: Value) -> ApiResult<()> {
        let id = object["id"].as_str().unwrap_or_default().to_string();
        self.account_mut(account)?
            .objects
            .insert(id, StoredObject::new(&object));
        Ok(())
    }

    /// Records an event and queues its delivery to matching enabled webhook endpoints.
    pub fn emit(
        &mut self,
        account: &str,
        event_type: &str,
        object: &Value,
        previous_attributes: Option<Value>,
    ) -> ApiResult<Value> {
        let now = self.now();
        let (request_id, idempotency_key) = match &self.current_request {
            Some((request_id, idempotency_key)) => (
                Value::from(request_id.clone()),
                idempotency_key
                    .clone()
                    .map(Value::from)
                    .unwrap_or(Value::Null),
            ),
            None => (Value::Null, Value::Null),
        };
        let endpoints: Vec<Value> = {
            let stored = self.account_mut(account)?;
            stored
                .lists
                .get("webhook_endpoint")
                .map(|ids| {
                    ids.iter()
                        .filter_map(|id| stored.objects.get(id).map(StoredObject::value))
                        .filter(|endpoint| endpoint["status"] == "enabled")
                        .filter(|endpoint| {
                            endpoint["enabled_events"]
                                .as_array()
                                .is_some_and(|enabled| {
                                    enabled
                                        .iter()
                                        .any(|enabled| enabled == "*" || enabled == event_type)
                                })
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut data = Map::new();
        data.insert("object".into(), object.clone());
        if let Some(previous_attributes) = previous_attributes {
            data.insert("previous_attributes".into(), previous_attributes);
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
            "request": {"id": request_id, "idempotency_key": idempotency_key},
            "type": event_type,
        });
        self.insert(account, "event", &event)?;
        if let Some(delivery_tx) = &self.delivery_tx {
            for endpoint in &endpoints {
                let _ = delivery_tx.send(Delivery {
                    account: account.to_string(),
                    endpoint_id: endpoint["id"].as_str().unwrap_or_default().to_string(),
                    event: event.clone(),
                });
            }
        }
        Ok(event)
    }

    /// Appends to the request log (giving the entry the next `seq`), dropping the oldest entry
    /// when the log is full.
    pub fn log_request(&mut self, mut entry: RequestLogEntry) {
        self.log_seq += 1;
        entry.seq = self.log_seq;
        entry.time = self.now();
        if self.log_capacity == 0 {
            return;
        }
        while self.log.len() >= self.log_capacity {
            self.log.pop_front();
        }
        self.log.push_back(entry);
    }

    /// Logged requests with `seq > since`, oldest first (a binary search, not a scan).
    pub fn log_since(&self, since: u64) -> impl Iterator<Item = &RequestLogEntry> {
        let start = self.log.partition_point(|entry| entry.seq <= since);
        self.log.range(start..)
    }

    /// Schedules the expiry of a new checkout session of `account`.
    pub fn schedule_expiry(&mut self, account: &str, id: &str, expires_at: i64) {
        self.expiry_seq += 1;
        self.expiry_queue.insert(
            (expires_at, self.expiry_seq),
            (account.to_string(), id.to_string()),
        );
    }

    /// Schedules `action` for `invoice` of `account` at `at` (emulated clock).
    pub fn schedule_invoice(
        &mut self,
        account: &str,
        invoice: &str,
        at: i64,
        action: ScheduledInvoiceAction,
    ) {
        self.invoice_schedule_seq += 1;
        self.invoice_schedule.insert(ScheduledInvoiceWork {
            at,
            seq: self.invoice_schedule_seq,
            account: account.to_string(),
            invoice: invoice.to_string(),
            action,
        });
    }

    /// Does the invoice work that is due (in time order); later work an action schedules for
    /// a time already passed runs in the same sweep.
    pub fn sweep_invoices(&mut self) {
        loop {
            let now = self.now();
            let Some(first) = self.invoice_schedule.first() else {
                return;
            };
            if first.at > now {
                return;
            }
            let Some(work) = self.invoice_schedule.pop_first() else {
                return;
            };
            if let Err(error) = crate::resources::invoice_transitions::run_scheduled(self, &work) {
                tracing::warn!("{:?} of {}: {}", work.action, work.invoice, error.message);
            }
        }
    }

    /// Expires open checkout sessions whose `expires_at` has passed (by the emulator's clock).
    /// Only due entries of `expiry_queue` are looked at; they expire in creation order (as when
    /// this was a scan of each account's sessions), each emitting `setup_intent.canceled` and
    /// `checkout.session.expired`.
    pub fn sweep_expired(&mut self) {
        self.sweep_invoices();
        let now = self.now();
        let mut due: Vec<(u64, String, String)> = Vec::new();
        while let Some(entry) = self.expiry_queue.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, seq), (account, id)) = entry.remove_entry();
            due.push((seq, account, id));
        }
        if due.is_empty() {
            return;
        }
        self.expiry_examined += due.len() as u64;
        due.sort_unstable_by_key(|(seq, _, _)| *seq);
        for (_, account_id, id) in due {
            let open = self
                .object(&account_id, &id)
                .is_some_and(|session| session["status"] == "open");
            if open && let Err(error) = checkout_sessions::expire(self, &account_id, &id) {
                tracing::warn!("expiring {id}: {}", error.message);
            }
        }
    }
}

/// Top-level keys whose values differ, with their old values (for `previous_attributes`).
pub fn previous_attributes(old: &Value, new: &Value) -> Value {
    let mut changed = Map::new();
    if let (Some(old), Some(new)) = (old.as_object(), new.as_object()) {
        for (key, new_value) in new {
            let old_value = old.get(key).cloned().unwrap_or(Value::Null);
            if &old_value != new_value {
                changed.insert(key.clone(), old_value);
            }
        }
    }
    Value::Object(changed)
}

#[cfg(test)]
mod stored_object_tests {
    use super::StoredObject;
    use serde_json::json;

    #[test]
    fn round_trips_with_nulls_left_out_of_the_text() {
        let object = json!({
            "id": "cs_test_1", "url": null, "metadata": {"a": null, "b": "x"},
            "custom_fields": [], "expires_at": 5, "customer": null,
        });
        let stored = StoredObject::new(&object);
        assert_eq!(stored.value(), object);
        assert!(!stored.text.contains("\"url\""));
        assert!(
            stored.text.contains("\"a\":null"),
            "only top-level nulls are left out"
        );
        let other = StoredObject::new(&json!({"id": "cs_test_2", "url": null, "customer": null}));
        assert!(std::sync::Arc::ptr_eq(
            stored.nulls.as_ref().unwrap(),
            other.nulls.as_ref().unwrap()
        ));
        assert_eq!(
            StoredObject::new(&json!([1, null])).value(),
            json!([1, null])
        );
    }
}
