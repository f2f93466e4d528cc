//! Operations that span the store and Stripe, shared by the v1 and v3 APIs.
//! The rule every function here keeps: no database transaction or pooled
//! connection is held while Stripe is called.

pub mod apps;
pub mod checkout;
pub mod customer_billing;
pub mod invoice_sync;
pub mod invoicing;
pub mod portal;
pub mod webhooks;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use time::OffsetDateTime;

use crate::ids::AppId;
use crate::secrets::Secrets;
use crate::store::Store;
use crate::stripe::{Stripe, StripeClient};

/// What every operation needs, and nothing of HTTP: the HTTP layer wraps it
/// with the API tokens (`http::AppState`), tests and workers can build it alone.
#[derive(Clone)]
pub struct Context {
    pub store: Store,
    pub stripe: Stripe,
    pub secrets: Secrets,
    /// Where Stripe reaches meterpay (webhook URLs), without a trailing `/`.
    pub public_url: String,
    /// Each app's Stripe client with its decrypted key.
    pub clients: ClientCache,
    /// What time it is for invoicing's rules (draft periods, `asOf`).
    pub clock: Clock,
    /// How long a process's claim on an invoice lasts; after a crash another
    /// process takes the invoice over once it has passed.
    pub invoice_lease: time::Duration,
}

/// The time invoicing's rules go by: the system's, moved ahead by an offset
/// that only tests set (a draft period passes without anyone sleeping).
#[derive(Clone, Default)]
pub struct Clock {
    offset_micros: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        let offset = time::Duration::microseconds(self.offset_micros.load(Ordering::Relaxed));
        crate::timestamp::now() + offset
    }

    /// Moves this clock (and every clone of it) `by` ahead.
    pub fn advance(&self, by: time::Duration) {
        let micros = i64::try_from(by.whole_microseconds()).unwrap_or(i64::MAX);
        self.offset_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// Each app's Stripe client, remembered with the ciphertext of the key it was
/// made from. Rotating a key stores a new ciphertext (a fresh nonce every
/// time), so a client made from an older key is never handed out; an
/// uninstalled app's key is gone from the store, so its entry is never asked for.
#[derive(Clone, Default)]
pub struct ClientCache {
    clients: Arc<RwLock<HashMap<AppId, (String, StripeClient)>>>,
}

impl ClientCache {
    /// The client made from exactly this ciphertext of app `id`'s key, if any.
    pub fn get(&self, id: AppId, api_key_encrypted: &str) -> Option<StripeClient> {
        let clients = self.clients.read().unwrap_or_else(|e| e.into_inner());
        clients
            .get(&id)
            .filter(|(ciphertext, _)| ciphertext == api_key_encrypted)
            .map(|(_, client)| client.clone())
    }

    pub fn put(&self, id: AppId, api_key_encrypted: &str, client: StripeClient) {
        let mut clients = self.clients.write().unwrap_or_else(|e| e.into_inner());
        clients.insert(id, (api_key_encrypted.to_owned(), client));
    }

    pub fn forget(&self, id: AppId) {
        let mut clients = self.clients.write().unwrap_or_else(|e| e.into_inner());
        clients.remove(&id);
    }
}
