//! Stripe's webhook events as meterpay's domain values. Parsing is lenient:
//! a field meterpay does not use, or one Stripe adds or reshapes, never
//! breaks it; a field meterpay uses but cannot read is absent. Events
//! meterpay does not handle are [`StripeEvent::Unknown`].

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::invoices::{META_INVOICE_ID, StripeInvoiceStatus};
use super::transformers::{
    META_APP_ID, META_CUSTOMER_ID, META_NAMESPACE, UPSTREAM_META_APP_ID, UPSTREAM_META_CUSTOMER_ID,
    UPSTREAM_META_NAMESPACE,
};
use crate::billing::checkout::UiMode;
use crate::billing::customer::Address;
use crate::ids::StripeCustomerId;

/// Where meterpay's customer id sits in an event, for errors about it.
pub const CUSTOMER_ID_METADATA_FIELD: &str = "data.object.metadata.meterpay_customer_id";

/// The events meterpay's webhook handles (each a [`StripeEvent`] case);
/// its endpoints are subscribed to exactly these.
pub const HANDLED: &[&str] = &[
    "checkout.session.completed",
    "checkout.session.expired",
    "setup_intent.succeeded",
    "setup_intent.setup_failed",
    "setup_intent.requires_action",
];

/// A delivered event: its id (deduplication), its type as Stripe names it
/// (logs and the processed-events record), and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub kind: String,
    pub data: StripeEvent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StripeEvent {
    SetupIntentSucceeded(SetupIntentEvent),
    SetupIntentSetupFailed(SetupIntentEvent),
    SetupIntentRequiresAction(SetupIntentEvent),
    CheckoutSessionCompleted(CheckoutSessionEvent),
    CheckoutSessionExpired(CheckoutSessionEvent),
    /// What happened to an invoice in Stripe (`invoice.paid`, …).
    Invoice {
        change: InvoiceChange,
        invoice: InvoiceEvent,
    },
    Unknown {
        kind: String,
    },
}

/// The `invoice.*` events that move a meterpay invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceChange {
    Paid,
    PaymentFailed,
    PaymentActionRequired,
    FinalizationFailed,
    Overdue,
    MarkedUncollectible,
    Voided,
    Sent,
}

impl InvoiceChange {
    /// Every change with the event type Stripe delivers it as.
    pub const ALL: &[(InvoiceChange, &str)] = &[
        (InvoiceChange::Paid, "invoice.paid"),
        (InvoiceChange::PaymentFailed, "invoice.payment_failed"),
        (
            InvoiceChange::PaymentActionRequired,
            "invoice.payment_action_required",
        ),
        (
            InvoiceChange::FinalizationFailed,
            "invoice.finalization_failed",
        ),
        (InvoiceChange::Overdue, "invoice.overdue"),
        (
            InvoiceChange::MarkedUncollectible,
            "invoice.marked_uncollectible",
        ),
        (InvoiceChange::Voided, "invoice.voided"),
        (InvoiceChange::Sent, "invoice.sent"),
    ];
}

/// meterpay's ids on an invoice it created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurInvoiceMetadata {
    pub namespace: String,
    pub app_id: String,
    pub invoice_id: String,
}

/// What an `invoice.*` event says of the Stripe invoice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvoiceEvent {
    pub id: Option<String>,
    /// `None` when the invoice is not meterpay's.
    pub ours: Option<OurInvoiceMetadata>,
    pub status: Option<StripeInvoiceStatus>,
    pub number: Option<String>,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    /// Stripe's minor units.
    pub amount_paid: Option<i64>,
    pub amount_remaining: Option<i64>,
    /// Unix seconds.
    pub due_date: Option<i64>,
    /// Why Stripe could not finalize it: its message, else its code.
    pub last_finalization_error: Option<String>,
}

/// meterpay's ids in the metadata of something it created, as written
/// (not yet checked against the app the event came to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurMetadata {
    pub namespace: String,
    pub app_id: String,
    pub customer_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetupIntentEvent {
    pub id: Option<String>,
    /// `None` when the setup intent is not meterpay's.
    pub ours: Option<OurMetadata>,
    pub payment_method_id: Option<String>,
    pub stripe_customer_id: Option<StripeCustomerId>,
    /// Why the last attempt failed: Stripe's message, else its code.
    pub failure_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSessionEvent {
    pub id: Option<String>,
    /// Whether the session was created in setup mode.
    pub setup_mode: bool,
    pub stripe_customer_id: Option<StripeCustomerId>,
    pub setup_intent_id: Option<String>,
    pub ui_mode: UiMode,
    /// Upper-case ISO 4217.
    pub currency: Option<String>,
    pub url: Option<String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub return_url: Option<String>,
    pub client_reference_id: Option<String>,
    /// The session's email, else the one the customer entered.
    pub customer_email: Option<String>,
    /// The string-valued entries.
    pub metadata: BTreeMap<String, String>,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    pub created: Option<i64>,
    /// The billing address the customer entered, when the session collected one.
    pub collected_address: Option<Address>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("not a Stripe event: {0}")]
    NotJson(String),
    #[error("not a Stripe event: id and type are required")]
    NoIdOrType,
}

impl Event {
    pub fn parse(payload: &[u8]) -> Result<Event, EventError> {
        let value: Value =
            serde_json::from_slice(payload).map_err(|e| EventError::NotJson(e.to_string()))?;
        let envelope: Envelope = serde_json::from_value(value).unwrap_or_default();
        let (Some(id), Some(kind)) = (envelope.id, envelope.kind) else {
            return Err(EventError::NoIdOrType);
        };
        let object = envelope
            .data
            .unwrap_or_default()
            .object
            .unwrap_or(Value::Null);
        let data = match kind.as_str() {
            "setup_intent.succeeded" => StripeEvent::SetupIntentSucceeded(setup_intent(object)),
            "setup_intent.setup_failed" => {
                StripeEvent::SetupIntentSetupFailed(setup_intent(object))
            }
            "setup_intent.requires_action" => {
                StripeEvent::SetupIntentRequiresAction(setup_intent(object))
            }
            "checkout.session.completed" => {
                StripeEvent::CheckoutSessionCompleted(checkout_session(object))
            }
            "checkout.session.expired" => {
                StripeEvent::CheckoutSessionExpired(checkout_session(object))
            }
            other => match InvoiceChange::ALL.iter().find(|(_, name)| *name == other) {
                Some((change, _)) => StripeEvent::Invoice {
                    change: *change,
                    invoice: invoice(object),
                },
                None => StripeEvent::Unknown { kind: kind.clone() },
            },
        };
        Ok(Event { id, kind, data })
    }
}

/// `Some(T)` when the value reads as `T`, else `None` (never an error).
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let value = Value::deserialize(d)?;
    Ok(serde_json::from_value(value).ok())
}

#[derive(Default, Deserialize)]
struct Envelope {
    #[serde(default, deserialize_with = "lenient")]
    id: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "lenient")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    data: Option<Data>,
}

#[derive(Default, Deserialize)]
struct Data {
    #[serde(default)]
    object: Option<Value>,
}

/// An expandable field: the id, or the object with its id.
#[derive(Deserialize)]
#[serde(untagged)]
enum Expandable {
    Id(String),
    Object { id: String },
}

impl Expandable {
    fn into_id(self) -> String {
        match self {
            Expandable::Id(id) | Expandable::Object { id } => id,
        }
    }
}

#[derive(Default, Deserialize)]
struct SetupIntentObject {
    #[serde(default, deserialize_with = "lenient")]
    id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    metadata: Option<BTreeMap<String, Value>>,
    #[serde(default, deserialize_with = "lenient")]
    payment_method: Option<Expandable>,
    #[serde(default, deserialize_with = "lenient")]
    customer: Option<Expandable>,
    #[serde(default, deserialize_with = "lenient")]
    last_setup_error: Option<LastSetupError>,
}

#[derive(Default, Deserialize)]
struct LastSetupError {
    #[serde(default, deserialize_with = "lenient")]
    message: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    code: Option<String>,
}

#[derive(Default, Deserialize)]
struct CheckoutSessionObject {
    #[serde(default, deserialize_with = "lenient")]
    id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    mode: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    customer: Option<Expandable>,
    #[serde(default, deserialize_with = "lenient")]
    setup_intent: Option<Expandable>,
    #[serde(default, deserialize_with = "lenient")]
    ui_mode: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    currency: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    url: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    success_url: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    cancel_url: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    return_url: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    client_reference_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    customer_email: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    customer_details: Option<CustomerDetails>,
    #[serde(default, deserialize_with = "lenient")]
    metadata: Option<BTreeMap<String, Value>>,
    #[serde(default, deserialize_with = "lenient")]
    expires_at: Option<i64>,
    #[serde(default, deserialize_with = "lenient")]
    created: Option<i64>,
}

#[derive(Default, Deserialize)]
struct CustomerDetails {
    #[serde(default, deserialize_with = "lenient")]
    email: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    address: Option<StripeAddress>,
}

#[derive(Default, Deserialize)]
struct StripeAddress {
    #[serde(default, deserialize_with = "lenient")]
    city: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    country: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    line1: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    line2: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    postal_code: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    state: Option<String>,
}

impl StripeAddress {
    /// `None` when Stripe sent an address without any part filled in.
    fn into_address(self) -> Option<Address> {
        let part = |p: Option<String>| p.filter(|p| !p.trim().is_empty());
        let address = Address {
            country: part(self.country).map(|c| c.to_ascii_uppercase()),
            postal_code: part(self.postal_code),
            state: part(self.state),
            city: part(self.city),
            line1: part(self.line1),
            line2: part(self.line2),
            phone_number: None,
        };
        (address != Address::default()).then_some(address)
    }
}

#[derive(Default, Deserialize)]
struct InvoiceObject {
    #[serde(default, deserialize_with = "lenient")]
    id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    metadata: Option<BTreeMap<String, Value>>,
    #[serde(default, deserialize_with = "lenient")]
    status: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    number: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    hosted_invoice_url: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    invoice_pdf: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    amount_paid: Option<i64>,
    #[serde(default, deserialize_with = "lenient")]
    amount_remaining: Option<i64>,
    #[serde(default, deserialize_with = "lenient")]
    due_date: Option<i64>,
    #[serde(default, deserialize_with = "lenient")]
    last_finalization_error: Option<LastSetupError>,
}

fn invoice(object: Value) -> InvoiceEvent {
    let o: InvoiceObject = serde_json::from_value(object).unwrap_or_default();
    let metadata = strings(o.metadata);
    let ours = match (
        metadata.get(META_NAMESPACE),
        metadata.get(META_APP_ID),
        metadata.get(META_INVOICE_ID),
    ) {
        (Some(namespace), Some(app_id), Some(invoice_id)) => Some(OurInvoiceMetadata {
            namespace: namespace.clone(),
            app_id: app_id.clone(),
            invoice_id: invoice_id.clone(),
        }),
        _ => None,
    };
    let error = o.last_finalization_error.unwrap_or_default();
    InvoiceEvent {
        id: o.id,
        ours,
        status: o.status.as_deref().and_then(StripeInvoiceStatus::from_wire),
        number: o.number,
        hosted_invoice_url: o.hosted_invoice_url,
        invoice_pdf: o.invoice_pdf,
        amount_paid: o.amount_paid,
        amount_remaining: o.amount_remaining,
        due_date: o.due_date,
        last_finalization_error: error.message.or(error.code),
    }
}

/// The string-valued entries of Stripe metadata.
fn strings(metadata: Option<BTreeMap<String, Value>>) -> BTreeMap<String, String> {
    metadata
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k, s)),
            _ => None,
        })
        .collect()
}

fn setup_intent(object: Value) -> SetupIntentEvent {
    let o: SetupIntentObject = serde_json::from_value(object).unwrap_or_default();
    let metadata = strings(o.metadata);
    // meterpay's keys, else those upstream OpenMeter wrote (a migrated install).
    let key = |ours: &str, upstream: &str| metadata.get(ours).or_else(|| metadata.get(upstream));
    let ours = match (
        key(META_NAMESPACE, UPSTREAM_META_NAMESPACE),
        key(META_APP_ID, UPSTREAM_META_APP_ID),
        key(META_CUSTOMER_ID, UPSTREAM_META_CUSTOMER_ID),
    ) {
        (Some(namespace), Some(app_id), Some(customer_id)) => Some(OurMetadata {
            namespace: namespace.clone(),
            app_id: app_id.clone(),
            customer_id: customer_id.clone(),
        }),
        _ => None,
    };
    let error = o.last_setup_error.unwrap_or_default();
    SetupIntentEvent {
        id: o.id,
        ours,
        payment_method_id: o.payment_method.map(Expandable::into_id),
        stripe_customer_id: o
            .customer
            .map(Expandable::into_id)
            .map(StripeCustomerId::from),
        failure_reason: error.message.or(error.code),
    }
}

fn checkout_session(object: Value) -> CheckoutSessionEvent {
    let mut o: CheckoutSessionObject = serde_json::from_value(object).unwrap_or_default();
    let details = o.customer_details.take().unwrap_or_default();
    CheckoutSessionEvent {
        id: o.id,
        setup_mode: o.mode.as_deref() == Some("setup"),
        stripe_customer_id: o
            .customer
            .map(Expandable::into_id)
            .map(StripeCustomerId::from),
        setup_intent_id: o.setup_intent.map(Expandable::into_id),
        // `embedded_page` (and the older `embedded`); everything else is a page of Stripe's.
        ui_mode: match o.ui_mode.as_deref() {
            Some(m) if m.starts_with("embedded") => UiMode::Embedded,
            _ => UiMode::Hosted,
        },
        currency: o.currency.map(|c| c.to_ascii_uppercase()),
        url: o.url,
        success_url: o.success_url,
        cancel_url: o.cancel_url,
        return_url: o.return_url,
        client_reference_id: o.client_reference_id,
        customer_email: o.customer_email.or_else(|| details.email.clone()),
        metadata: strings(o.metadata),
        expires_at: o.expires_at,
        created: o.created,
        collected_address: details.address.and_then(StripeAddress::into_address),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> Event {
        Event::parse(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn a_succeeded_setup_intent_names_meterpays_customer() {
        let event = parse(json!({
            "id": "evt_1", "object": "event", "type": "setup_intent.succeeded",
            "api_version": "2026-01-28.clover", "livemode": false, "pending_webhooks": 1,
            "data": {"object": {
                "id": "seti_1", "object": "setup_intent", "status": "succeeded",
                "customer": "cus_1",
                "payment_method": {"id": "pm_1", "object": "payment_method", "card": {"brand": "visa"}},
                "metadata": {"meterpay_namespace": "ns", "meterpay_app_id": "app",
                             "meterpay_customer_id": "cust", "other": 5},
                "a_field_from_the_future": {"nested": [1, 2]}
            }}
        }));
        assert_eq!(event.id, "evt_1");
        assert_eq!(event.kind, "setup_intent.succeeded");
        assert_eq!(
            event.data,
            StripeEvent::SetupIntentSucceeded(SetupIntentEvent {
                id: Some("seti_1".into()),
                ours: Some(OurMetadata {
                    namespace: "ns".into(),
                    app_id: "app".into(),
                    customer_id: "cust".into()
                }),
                payment_method_id: Some("pm_1".into()),
                stripe_customer_id: Some(StripeCustomerId::from("cus_1")),
                failure_reason: None,
            })
        );
    }

    #[test]
    fn a_failed_setup_intent_says_why_and_odd_fields_do_not_break_it() {
        let event = parse(json!({
            "id": "evt_2", "type": "setup_intent.setup_failed",
            "data": {"object": {
                "id": "seti_2", "customer": 42, "metadata": "not an object",
                "last_setup_error": {"code": "card_declined", "message": null}
            }}
        }));
        assert_eq!(
            event.data,
            StripeEvent::SetupIntentSetupFailed(SetupIntentEvent {
                id: Some("seti_2".into()),
                failure_reason: Some("card_declined".into()),
                ..SetupIntentEvent::default()
            })
        );
    }

    #[test]
    fn checkout_session_events_read_the_session() {
        let event = parse(json!({
            "id": "evt_3", "type": "checkout.session.completed",
            "data": {"object": {
                "id": "cs_1", "object": "checkout.session", "mode": "setup",
                "customer": {"id": "cus_1", "object": "customer"}, "setup_intent": "seti_1",
                "ui_mode": "embedded_page", "currency": "eur", "return_url": "https://r.example",
                "customer_email": null, "customer_details": {"email": "a@b.example", "address": {
                    "city": "Berlin", "country": "de", "line1": "Unter den Linden 1",
                    "line2": null, "postal_code": "10117", "state": ""}},
                "metadata": {"k": "v", "n": 1}, "expires_at": 1_800_000_000, "created": 1_799_990_000,
                "total_details": {"amount_discount": 0}
            }}
        }));
        let StripeEvent::CheckoutSessionCompleted(s) = event.data else {
            panic!("{event:?}")
        };
        assert_eq!(
            s,
            CheckoutSessionEvent {
                id: Some("cs_1".into()),
                setup_mode: true,
                stripe_customer_id: Some(StripeCustomerId::from("cus_1")),
                setup_intent_id: Some("seti_1".into()),
                ui_mode: UiMode::Embedded,
                currency: Some("EUR".into()),
                url: None,
                success_url: None,
                cancel_url: None,
                return_url: Some("https://r.example".into()),
                client_reference_id: None,
                customer_email: Some("a@b.example".into()),
                metadata: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
                expires_at: Some(1_800_000_000),
                created: Some(1_799_990_000),
                collected_address: Some(Address {
                    country: Some("DE".into()),
                    postal_code: Some("10117".into()),
                    city: Some("Berlin".into()),
                    line1: Some("Unter den Linden 1".into()),
                    ..Address::default()
                }),
            }
        );
        let expired = parse(json!({"id": "evt_4", "type": "checkout.session.expired",
            "data": {"object": {"id": "cs_2", "mode": "payment"}}}));
        let StripeEvent::CheckoutSessionExpired(s) = expired.data else {
            panic!("{expired:?}")
        };
        assert_eq!(
            (s.id.as_deref(), s.setup_mode, s.ui_mode),
            (Some("cs_2"), false, UiMode::Hosted)
        );
    }

    #[test]
    fn invoice_events_name_meterpays_invoice() {
        let event = parse(json!({
            "id": "evt_7", "type": "invoice.payment_failed",
            "data": {"object": {
                "id": "in_1", "object": "invoice", "status": "open", "number": "ABC-0001",
                "hosted_invoice_url": "https://pay.example/i/1", "invoice_pdf": "https://pay.example/i/1.pdf",
                "amount_paid": 0, "amount_remaining": 1234, "due_date": null,
                "last_finalization_error": null,
                "metadata": {"meterpay_namespace": "ns", "meterpay_app_id": "app",
                             "meterpay_invoice_id": "inv", "meterpay_customer_id": "cust"}
            }}
        }));
        assert_eq!(
            event.data,
            StripeEvent::Invoice {
                change: InvoiceChange::PaymentFailed,
                invoice: InvoiceEvent {
                    id: Some("in_1".into()),
                    ours: Some(OurInvoiceMetadata {
                        namespace: "ns".into(),
                        app_id: "app".into(),
                        invoice_id: "inv".into(),
                    }),
                    status: Some(StripeInvoiceStatus::Open),
                    number: Some("ABC-0001".into()),
                    hosted_invoice_url: Some("https://pay.example/i/1".into()),
                    invoice_pdf: Some("https://pay.example/i/1.pdf".into()),
                    amount_paid: Some(0),
                    amount_remaining: Some(1234),
                    due_date: None,
                    last_finalization_error: None,
                },
            }
        );
        let failed = parse(json!({"id": "evt_8", "type": "invoice.finalization_failed",
            "data": {"object": {"id": "in_2", "status": "draft",
                "last_finalization_error": {"code": "customer_tax_location_invalid", "message": null}}}}));
        let StripeEvent::Invoice { change, invoice } = failed.data else {
            panic!("{failed:?}")
        };
        assert_eq!(change, InvoiceChange::FinalizationFailed);
        assert_eq!(
            (invoice.ours, invoice.last_finalization_error),
            (None, Some("customer_tax_location_invalid".into()))
        );
    }

    #[test]
    fn other_events_are_unknown_and_envelopes_need_id_and_type() {
        let event = parse(
            json!({"id": "evt_5", "type": "invoice.created", "data": {"object": {"id": "in_1"}}}),
        );
        assert_eq!(
            event.data,
            StripeEvent::Unknown {
                kind: "invoice.created".into()
            }
        );
        // A known type without its object still parses, with nothing in it.
        let bare = parse(json!({"id": "evt_6", "type": "setup_intent.succeeded"}));
        assert_eq!(
            bare.data,
            StripeEvent::SetupIntentSucceeded(SetupIntentEvent::default())
        );
        assert_eq!(
            Event::parse(br#"{"type": "invoice.paid"}"#),
            Err(EventError::NoIdOrType)
        );
        assert_eq!(Event::parse(b"[1]"), Err(EventError::NoIdOrType));
        assert!(matches!(Event::parse(b"{"), Err(EventError::NotJson(_))));
    }
}
