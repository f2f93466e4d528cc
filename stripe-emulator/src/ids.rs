//! Object ids and API keys shaped like Stripe's: a prefix and a random alphanumeric tail.

use sha2::{Digest, Sha256};

const ALPHANUMERIC: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A random alphanumeric string of `len` characters, like the tails of Stripe's ids.
pub fn random_alphanumeric(len: usize) -> String {
    (0..len)
        .map(|_| ALPHANUMERIC[rand::random_range(0..ALPHANUMERIC.len())] as char)
        .collect()
}

/// A new object id with Stripe's prefix (`cus`, `pm`, `seti`, `cs_test`, `evt`, ...) and tail length.
pub fn new_id(prefix: &str) -> String {
    match prefix {
        "cs_test" => format!("cs_test_a1{}", random_alphanumeric(58)),
        "cus" => format!("cus_{}", random_alphanumeric(14)),
        _ => format!("{prefix}_1{}", random_alphanumeric(23)),
    }
}

/// The stable account id for an API key.
pub fn account_id_for_key(key: &str) -> String {
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    // Map hex to a Stripe-looking mixed alphabet, deterministically.
    let tail: String = digest
        .as_bytes()
        .chunks(2)
        .take(16)
        .map(|pair| {
            let index =
                (u16::from(pair[0]) * 31 + u16::from(pair[1])) as usize % ALPHANUMERIC.len();
            ALPHANUMERIC[index] as char
        })
        .collect();
    format!("acct_1{tail}")
}
