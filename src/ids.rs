//! Identifiers. meterpay's ULIDs are monotonic within the process, so ids
//! created one after another sort in creation order even inside one
//! millisecond (list endpoints sort by id and users expect that order).

use std::sync::Mutex;

use ulid::{Generator, Ulid};

static GENERATOR: Mutex<Generator> = Mutex::new(Generator::new());

/// A new ULID, greater than every ULID this process generated before.
pub fn new_ulid() -> Ulid {
    let mut generator = GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match generator.generate() {
        Ok(id) => id,
        Err(overflow) => overflow.commit_overflow_increment(),
    }
}

/// The ULID that stands for a namespace where the v1 contract wants one
/// (`StripeWebhookResponse.namespaceId`): namespaces are names here, so the
/// id is derived from the name (the first 128 bits of its SHA-256), the same
/// on every process and every start.
pub fn namespace_ulid(namespace: &str) -> Ulid {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(namespace.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Ulid::from(u128::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    #[test]
    fn namespace_ids_are_stable_and_distinct() {
        let a = super::namespace_ulid("default");
        assert_eq!(a, super::namespace_ulid("default"));
        assert_ne!(a, super::namespace_ulid("acme"));
        assert_eq!(a.to_string().len(), 26);
    }

    #[test]
    fn ids_increase() {
        let ids: Vec<_> = (0..1000).map(|_| super::new_ulid()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
}
