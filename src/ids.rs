//! Identifiers. meterpay's ULIDs are monotonic within the process, so ids
//! created one after another sort in creation order even inside one
//! millisecond (list endpoints sort by id and users expect that order).
//!
//! Each kind of id has its own type ([`CustomerId`], [`AppId`],
//! [`ProfileId`], [`InvoiceId`], [`LineId`], [`StripeCustomerId`]) so passing one where another is
//! expected does not compile. Every layer may use this module.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use ulid::{Generator, Ulid};

/// Declares a `Copy` id type over a ULID: displayed, parsed and
/// (de)serialised exactly as the ULID itself.
macro_rules! ulid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(Ulid);

        // No `Default`: an id made out of nothing would be a fresh one, and a
        // default that differs on every call surprises.
        #[allow(clippy::new_without_default)]
        impl $name {
            /// A new id, greater than every id this process generated before.
            pub fn new() -> Self {
                Self(new_ulid())
            }

            /// The ULID underneath.
            pub fn ulid(self) -> Ulid {
                self.0
            }
        }

        impl From<Ulid> for $name {
            fn from(id: Ulid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Ulid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = ulid::DecodeError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ulid::from_str(s).map(Self)
            }
        }
    };
}

ulid_id!(
    /// A billing customer.
    CustomerId
);
ulid_id!(
    /// An installed (Stripe) app.
    AppId
);
ulid_id!(
    /// A billing profile.
    ProfileId
);
ulid_id!(
    /// An invoice (a customer's gathering invoice or an invoice made of its lines).
    InvoiceId
);
ulid_id!(
    /// An invoice line (a charge).
    LineId
);

/// The id of a customer in a Stripe account (`cus_…`), as meterpay stores
/// it next to its own customer. Its shape is checked where Stripe's names
/// are known (`stripe::ids::is_customer_id`), not here.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StripeCustomerId(String);

impl StripeCustomerId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl From<String> for StripeCustomerId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for StripeCustomerId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl From<StripeCustomerId> for String {
    fn from(id: StripeCustomerId) -> Self {
        id.0
    }
}

impl AsRef<str> for StripeCustomerId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for StripeCustomerId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for StripeCustomerId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for StripeCustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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
    use super::*;

    #[test]
    fn ulid_ids_display_and_parse_as_the_ulid() {
        let ulid = Ulid::from_string("01G65Z755AFWAKHE12NY0CQ9FH").unwrap();
        let id = CustomerId::from(ulid);
        assert_eq!(id.to_string(), "01G65Z755AFWAKHE12NY0CQ9FH");
        assert_eq!(
            "01G65Z755AFWAKHE12NY0CQ9FH".parse::<CustomerId>().unwrap(),
            id
        );
        assert_eq!(Ulid::from(id), ulid);
        assert!("nope".parse::<AppId>().is_err());
        let fresh = ProfileId::new();
        assert_eq!(fresh.to_string().parse::<ProfileId>().unwrap(), fresh);
        assert!(AppId::new() < AppId::new());
    }

    #[test]
    fn ids_serialise_as_bare_strings() {
        let id: AppId = "01G65Z755AFWAKHE12NY0CQ9FH".parse().unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, r#""01G65Z755AFWAKHE12NY0CQ9FH""#);
        assert_eq!(serde_json::from_str::<AppId>(&json).unwrap(), id);

        let stripe = StripeCustomerId::from("cus_123".to_owned());
        assert_eq!(stripe.as_str(), "cus_123");
        assert_eq!(stripe.to_string(), "cus_123");
        let json = serde_json::to_string(&stripe).unwrap();
        assert_eq!(json, r#""cus_123""#);
        assert_eq!(
            serde_json::from_str::<StripeCustomerId>(&json).unwrap(),
            stripe
        );
    }

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
