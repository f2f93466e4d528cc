//! Verifying Stripe's webhook signatures: `Stripe-Signature: t=…,v1=…[,v1=…]`
//! is an HMAC-SHA256 of `{t}.{payload}` under the endpoint's signing secret.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Stripe's default tolerance between the signature's timestamp and now.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error(
        "the Stripe-Signature header is malformed: it needs t=<unix seconds> and at least one v1=<hex signature>"
    )]
    Malformed,
    #[error(
        "the Stripe-Signature timestamp is {age_secs} s away from now, beyond the {tolerance_secs} s tolerance"
    )]
    Stale { age_secs: i64, tolerance_secs: i64 },
    #[error(
        "no v1 signature in the Stripe-Signature header matches the payload and this app's signing secret"
    )]
    Mismatch,
}

/// Checks `header` against `payload` and `secret`; any matching `v1`
/// signature passes (Stripe sends several while a secret is being rolled).
pub fn verify_signature(
    secret: &str,
    header: Option<&str>,
    payload: &[u8],
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp: Option<i64> = None;
    let mut signatures: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" => timestamp = value.parse().ok(),
            "v1" => {
                if let Ok(sig) = hex::decode(value) {
                    signatures.push(sig);
                }
            }
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    // Any `t` a sender writes: the distance cannot overflow (`abs_diff`).
    let age = now_unix.abs_diff(t);
    if tolerance_secs < 0 || age > tolerance_secs.unsigned_abs() {
        return Err(SignatureError::Stale {
            age_secs: i64::try_from(age).unwrap_or(i64::MAX),
            tolerance_secs,
        });
    }
    let matches = signatures.iter().any(|sig| {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            return false;
        };
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        // Constant-time comparison.
        mac.verify_slice(sig).is_ok()
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const NOW: i64 = 1_800_000_000;

    fn header(secret: &str, t: i64, payload: &[u8]) -> String {
        stripe_emulator::signature_header(secret, t, std::str::from_utf8(payload).unwrap())
    }

    #[test]
    fn accepts_the_emulators_signatures() {
        let payload = br#"{"id":"evt_1"}"#;
        let h = header(SECRET, NOW, payload);
        assert_eq!(
            verify_signature(SECRET, Some(&h), payload, NOW, 300),
            Ok(())
        );
        // Another v1 (an old secret) beside the right one still passes.
        let two = format!("{},v1={}", h, "00".repeat(32));
        assert_eq!(
            verify_signature(SECRET, Some(&two), payload, NOW + 10, 300),
            Ok(())
        );
    }

    #[test]
    fn refuses_what_stripe_did_not_sign() {
        let payload = br#"{"id":"evt_1"}"#;
        let h = header(SECRET, NOW, payload);
        assert_eq!(
            verify_signature(SECRET, None, payload, NOW, 300),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(SECRET, Some("garbage"), payload, NOW, 300),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(SECRET, Some("t=1"), payload, NOW, 300),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature("whsec_other", Some(&h), payload, NOW, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(SECRET, Some(&h), br#"{"id":"evt_2"}"#, NOW, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(SECRET, Some(&h), payload, NOW + 301, 300),
            Err(SignatureError::Stale {
                age_secs: 301,
                tolerance_secs: 300
            })
        );
    }
}
