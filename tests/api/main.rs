//! Black-box tests: each starts a real meterpay server (and, where needed,
//! the Stripe emulator) and talks HTTP to it. Every test that touches storage
//! runs on SQLite and on PostgreSQL (see `both_backends!`).

mod contract;
mod harness;
mod log_capture;
mod postgres;
mod support;

mod apps;
mod billing_profiles;
mod billing_profiles_v1;
mod checkout;
mod crash;
mod customer_billing;
mod customers_v1;
mod customers_v3;
mod emulated_restart;
mod faults;
mod flood;
mod history;
mod invoices_processes;
mod invoices_stripe;
mod invoices_v1;
mod invoices_v3;
mod metrics;
mod openapi;
mod portal;
mod sdk_js;
mod service;
mod webhooks;
