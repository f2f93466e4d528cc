//! Operations that span the store and Stripe, shared by the v1 and v3 APIs.
//! The rule every function here keeps: no database transaction or pooled
//! connection is held while Stripe is called.

pub mod apps;
pub mod checkout;
pub mod customer_billing;
pub mod portal;
pub mod webhooks;
