//! Stripe's API resources, one module per resource, in the order of Stripe's API reference
//! (https://docs.stripe.com/api): Customers, Events, Setup Intents, Payment Methods, Checkout
//! Sessions, Customer Portal Sessions, Invoices (`invoices`, `invoice_transitions`), Invoice
//! Items, Invoice Payments, Payment Intents, Charges, Accounts, Webhook Endpoints. Each module holds the
//! handlers of its endpoints and builds the objects it returns by hand, as `json!` literals with
//! the fields of the emulated API version's object schemas (no fixtures are read;
//! `tests/async_stripe.rs` checks that every response deserialises into async-stripe's types for
//! that version). [`route`] maps `METHOD /v1/...` to the handlers.

pub mod account;
pub mod billing_portal_sessions;
pub mod charges;
pub mod checkout_sessions;
pub mod customers;
pub mod events;
pub mod invoice_items;
pub mod invoice_payments;
pub mod invoice_transitions;
pub mod invoices;
pub mod payment_intents;
pub mod payment_methods;
pub mod setup_intents;
pub mod webhook_endpoints;

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::expand::expand;
use crate::state::State;

/// Handles one authenticated `/v1/...` request of `account`, then applies its `expand[]`.
pub fn route(
    state: &mut State,
    account: &str,
    method: &str,
    path: &str,
    params: &Value,
) -> ApiResult<Value> {
    let segments: Vec<&str> = path
        .trim_start_matches("/v1/")
        .trim_end_matches('/')
        .split('/')
        .collect();
    let response = match (method, segments.as_slice()) {
        // Customers
        ("POST", ["customers"]) => customers::create(state, account, params)?,
        ("GET", ["customers", id]) => customers::retrieve(state, account, id, params)?,
        ("POST", ["customers", id]) => customers::update(state, account, id, params)?,
        ("DELETE", ["customers", id]) => customers::delete(state, account, id, params)?,
        ("GET", ["customers"]) => customers::list(state, account, params)?,
        // Events
        ("GET", ["events", id]) => events::retrieve(state, account, id, params)?,
        ("GET", ["events"]) => events::list(state, account, params)?,
        // Setup Intents
        ("GET", ["setup_intents", id]) => setup_intents::retrieve(state, account, id, params)?,
        ("GET", ["setup_intents"]) => setup_intents::list(state, account, params)?,
        // Payment Methods
        ("GET", ["customers", customer, "payment_methods"]) => {
            payment_methods::list_for_customer(state, account, customer, params)?
        }
        ("GET", ["payment_methods", id]) => payment_methods::retrieve(state, account, id, params)?,
        ("GET", ["payment_methods"]) => payment_methods::list(state, account, params)?,
        ("POST", ["payment_methods", id, "attach"]) => {
            payment_methods::attach_request(state, account, id, params)?
        }
        ("POST", ["payment_methods", id, "detach"]) => {
            payment_methods::detach(state, account, id, params)?
        }
        // Checkout Sessions
        ("POST", ["checkout", "sessions"]) => checkout_sessions::create(state, account, params)?,
        ("POST", ["checkout", "sessions", id, "expire"]) => {
            checkout_sessions::expire_request(state, account, id, params)?
        }
        ("GET", ["checkout", "sessions", id]) => {
            checkout_sessions::retrieve(state, account, id, params)?
        }
        ("GET", ["checkout", "sessions"]) => checkout_sessions::list(state, account, params)?,
        ("GET", ["checkout", "sessions", id, "line_items"]) => {
            checkout_sessions::line_items(state, account, id, params)?
        }
        // Customer Portal Sessions
        ("POST", ["billing_portal", "sessions"]) => {
            billing_portal_sessions::create(state, account, params)?
        }
        // Invoices
        ("POST", ["invoices"]) => invoices::create(state, account, params)?,
        ("GET", ["invoices"]) => invoices::list(state, account, params)?,
        ("GET", ["invoices", id]) => invoices::retrieve(state, account, id, params)?,
        ("POST", ["invoices", id]) => invoices::update(state, account, id, params)?,
        ("DELETE", ["invoices", id]) => invoices::delete(state, account, id, params)?,
        ("GET", ["invoices", id, "lines"]) => invoices::lines(state, account, id, params)?,
        ("POST", ["invoices", id, "lines", line]) => {
            invoices::update_line(state, account, id, line, params)?
        }
        ("POST", ["invoices", id, "add_lines"]) => invoices::add_lines(state, account, id, params)?,
        ("POST", ["invoices", id, "update_lines"]) => {
            invoices::update_lines(state, account, id, params)?
        }
        ("POST", ["invoices", id, "remove_lines"]) => {
            invoices::remove_lines(state, account, id, params)?
        }
        ("POST", ["invoices", id, "finalize"]) => {
            invoice_transitions::finalize_request(state, account, id, params)?
        }
        ("POST", ["invoices", id, "pay"]) => invoice_transitions::pay(state, account, id, params)?,
        ("POST", ["invoices", id, "void"]) => {
            invoice_transitions::void(state, account, id, params)?
        }
        ("POST", ["invoices", id, "mark_uncollectible"]) => {
            invoice_transitions::mark_uncollectible(state, account, id, params)?
        }
        ("POST", ["invoices", id, "send"]) => {
            invoice_transitions::send(state, account, id, params)?
        }
        // Invoice Items
        ("POST", ["invoiceitems"]) => invoice_items::create(state, account, params)?,
        ("GET", ["invoiceitems"]) => invoice_items::list(state, account, params)?,
        ("GET", ["invoiceitems", id]) => invoice_items::retrieve(state, account, id, params)?,
        ("POST", ["invoiceitems", id]) => invoice_items::update(state, account, id, params)?,
        ("DELETE", ["invoiceitems", id]) => invoice_items::delete(state, account, id, params)?,
        // Invoice Payments
        ("GET", ["invoice_payments"]) => invoice_payments::list(state, account, params)?,
        ("GET", ["invoice_payments", id]) => {
            invoice_payments::retrieve(state, account, id, params)?
        }
        // Payment Intents
        ("GET", ["payment_intents"]) => payment_intents::list(state, account, params)?,
        ("GET", ["payment_intents", id]) => payment_intents::retrieve(state, account, id, params)?,
        // Charges
        ("GET", ["charges"]) => charges::list(state, account, params)?,
        ("GET", ["charges", id]) => charges::retrieve(state, account, id, params)?,
        // Accounts
        ("GET", ["account"]) => account::retrieve(state, account, params)?,
        // Webhook Endpoints
        ("POST", ["webhook_endpoints"]) => webhook_endpoints::create(state, account, params)?,
        ("GET", ["webhook_endpoints", id]) => {
            webhook_endpoints::retrieve(state, account, id, params)?
        }
        ("POST", ["webhook_endpoints", id]) => {
            webhook_endpoints::update(state, account, id, params)?
        }
        ("GET", ["webhook_endpoints"]) => webhook_endpoints::list(state, account, params)?,
        ("DELETE", ["webhook_endpoints", id]) => {
            webhook_endpoints::delete(state, account, id, params)?
        }
        _ => return Err(ApiError::not_found_url(method, path)),
    };
    expand(state, account, response, params)
}

/// The account's object `id` if it is an `object_type` object, else Stripe's 404
/// `resource_missing` ("No such {noun}: '{id}'").
pub fn find(
    state: &State,
    account: &str,
    id: &str,
    object_type: &str,
    noun: &str,
) -> ApiResult<Value> {
    state
        .object_of_type(account, id, object_type)
        .ok_or_else(|| ApiError::no_such(noun, id, None))
}
