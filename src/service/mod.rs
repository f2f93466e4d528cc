//! Operations that span the store and Stripe, shared by the v1 and v3 APIs.
//! The rule every function here keeps: no database transaction or pooled
//! connection is held while Stripe is called.

pub mod apps;
pub mod checkout;
pub mod customer_billing;
pub mod portal;
pub mod webhooks;

use crate::secrets::Secrets;
use crate::store::Store;
use crate::stripe::Stripe;

/// What every operation needs, and nothing of HTTP: the HTTP layer wraps it
/// with the API tokens (`http::AppState`), tests and workers can build it alone.
#[derive(Clone)]
pub struct Context {
    pub store: Store,
    pub stripe: Stripe,
    pub secrets: Secrets,
    /// Where Stripe reaches meterpay (webhook URLs), without a trailing `/`.
    pub public_url: String,
}
