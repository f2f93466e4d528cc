//! Property tests (proptest, bounded case counts) of meterpay's parsers of
//! outside input: the `Stripe-Signature` header (checked against the
//! emulator's signer and verifier) and the ISO 8601 durations of billing
//! profiles. None may panic on any input; what is well formed is read right.

use meterpay::billing::profile::iso_duration_is_zero;
use meterpay::stripe::webhook::{SignatureError, verify_signature};
use proptest::prelude::*;

const NOW: i64 = 1_800_000_000;
const TOLERANCE: i64 = 300;

/// Text shaped like a header: parts of `key=value` and debris, comma-separated.
fn header_like() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        any::<i64>().prop_map(|t| format!("t={t}")),
        "[0-9]{0,12}".prop_map(|t| format!("t={t}")),
        "[0-9a-fA-F]{0,70}".prop_map(|s| format!("v1={s}")),
        "[0-9a-f]{64}".prop_map(|s| format!("v0={s}")),
        "[ =,a-z0-9]{0,12}",
        ".{0,16}",
    ];
    prop::collection::vec(part, 0..6).prop_map(|parts| parts.join(","))
}

/// A signing secret as Stripe shapes them, or anything.
fn secret() -> impl Strategy<Value = String> {
    prop_oneof!["whsec_[A-Za-z0-9]{32}", ".{0,40}"]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any header, payload, clock and tolerance: an answer, never a panic.
    #[test]
    fn signature_check_never_panics(
        secret in secret(),
        header in prop_oneof![header_like(), ".{0,80}"],
        payload in prop::collection::vec(any::<u8>(), 0..64),
        now in any::<i64>(),
        tolerance in any::<i64>(),
    ) {
        let _ = verify_signature(&secret, Some(&header), &payload, now, tolerance);
        let _ = stripe_emulator::verify_signature(
            &secret,
            &header,
            &String::from_utf8_lossy(&payload),
        );
    }

    /// What the emulator signs verifies, wherever its parts sit among
    /// others Stripe may add (old-secret `v1`s, `v0`, unknown keys), and only
    /// for that secret, payload and a timestamp within the tolerance.
    #[test]
    fn signed_payloads_verify_and_nothing_else_does(
        secret in "whsec_[A-Za-z0-9]{32}",
        other_secret in "whsec_[A-Za-z0-9]{32}",
        payload in "\\PC{0,200}",
        other_payload in "\\PC{0,200}",
        age in -TOLERANCE..=TOLERANCE,
        beyond in (TOLERANCE + 1)..1_000_000_i64,
        noise in prop::collection::vec(
            prop_oneof![
                "[0-9a-f]{64}".prop_map(|s| format!("v1={s}")),
                "[0-9a-f]{64}".prop_map(|s| format!("v0={s}")),
                // Keys other than `t` and `v1` (another `t` would replace the timestamp).
                "x[a-z]{0,4}=[a-z0-9]{0,8}",
            ],
            0..4,
        ),
        at in 0usize..5,
    ) {
        let t = NOW - age;
        let signed = stripe_emulator::signature_header(&secret, t, &payload);
        let mut parts: Vec<String> = noise;
        let at = at.min(parts.len());
        for (i, part) in signed.split(',').enumerate() {
            parts.insert(at + i, part.to_owned());
        }
        let header = parts.join(",");
        prop_assert_eq!(
            verify_signature(&secret, Some(&header), payload.as_bytes(), NOW, TOLERANCE),
            Ok(())
        );
        prop_assert!(stripe_emulator::verify_signature(&secret, &header, &payload));
        if other_secret != secret {
            prop_assert_eq!(
                verify_signature(&other_secret, Some(&header), payload.as_bytes(), NOW, TOLERANCE),
                Err(SignatureError::Mismatch)
            );
            prop_assert!(!stripe_emulator::verify_signature(&other_secret, &header, &payload));
        }
        if other_payload != payload {
            prop_assert_eq!(
                verify_signature(&secret, Some(&header), other_payload.as_bytes(), NOW, TOLERANCE),
                Err(SignatureError::Mismatch)
            );
            prop_assert!(!stripe_emulator::verify_signature(&secret, &header, &other_payload));
        }
        // Too old or too far ahead: stale, however well signed.
        for t in [NOW - beyond, NOW + beyond] {
            let signed = stripe_emulator::signature_header(&secret, t, &payload);
            prop_assert_eq!(
                verify_signature(&secret, Some(&signed), payload.as_bytes(), NOW, TOLERANCE),
                Err(SignatureError::Stale { age_secs: beyond, tolerance_secs: TOLERANCE })
            );
        }
    }

    /// On headers as Stripe writes them (lower-case hex, no spaces), meterpay
    /// and the emulator agree on what carries a valid signature.
    #[test]
    fn meterpay_and_the_emulator_agree(
        secret in "whsec_[A-Za-z0-9]{8}",
        payload in "[ -~]{0,40}",
        t in (NOW - TOLERANCE)..=(NOW + TOLERANCE),
        parts in prop::collection::vec(
            prop_oneof![
                Just("sign".to_owned()),
                "[0-9]{1,10}".prop_map(|t| format!("t={t}")),
                "[0-9a-f]{0,66}".prop_map(|s| format!("v1={s}")),
                "[a-z]{1,3}=[a-z0-9]{0,4}",
            ],
            0..5,
        ),
    ) {
        let signature = stripe_emulator::signature_header(&secret, t, &payload);
        let header = parts
            .iter()
            .map(|part| if part == "sign" { signature.clone() } else { part.clone() })
            .collect::<Vec<_>>()
            .join(",");
        let ours = verify_signature(&secret, Some(&header), payload.as_bytes(), NOW, i64::MAX);
        let emulator = stripe_emulator::verify_signature(&secret, &header, &payload);
        prop_assert_eq!(ours.is_ok(), emulator, "{} → {:?}", header, ours);
    }

    /// Well-formed durations (units in order, at least one, decimals allowed)
    /// are read, zero exactly when every number is.
    #[test]
    fn well_formed_durations_are_read(
        date in prop::collection::vec((any::<bool>(), number()), 4),
        time in prop::option::of(prop::collection::vec((any::<bool>(), number()), 3)),
    ) {
        let mut text = "P".to_owned();
        let mut all_zero = true;
        let mut components = 0;
        for ((present, (number, zero)), unit) in date.iter().zip(['Y', 'M', 'W', 'D']) {
            if *present {
                text.push_str(&format!("{number}{unit}"));
                all_zero &= *zero;
                components += 1;
            }
        }
        let mut time_components = 0;
        if let Some(time) = &time {
            let mut part = String::new();
            for ((present, (number, zero)), unit) in time.iter().zip(['H', 'M', 'S']) {
                if *present {
                    part.push_str(&format!("{number}{unit}"));
                    all_zero &= *zero;
                    time_components += 1;
                }
            }
            text.push('T');
            text.push_str(&part);
        }
        let expected = if time.is_some() && time_components == 0 || components + time_components == 0 {
            None // `…T` with nothing after it, or no component at all
        } else {
            Some(all_zero)
        };
        prop_assert_eq!(iso_duration_is_zero(&text), expected, "{}", text);
    }

    /// Anything else: an answer, never a panic; and a unit out of order or
    /// repeated is refused.
    #[test]
    fn any_text_gets_an_answer(
        text in prop_oneof![".{0,24}", "P[0-9.YMWDTHS]{0,16}", "P[0-9]{1,40}D"],
        first in 0usize..4,
        n in 1u32..99,
    ) {
        let _ = iso_duration_is_zero(&text);
        let units = ['Y', 'M', 'W', 'D'];
        let later = units[first];
        let earlier = units[first.saturating_sub(1)];
        prop_assert_eq!(iso_duration_is_zero(&format!("P{n}{later}{n}{earlier}")), None);
    }
}

/// A duration number as text (`7`, `007`, `0.5`, `0`) and whether it is zero.
fn number() -> impl Strategy<Value = (String, bool)> {
    ("[0-9]{1,4}", prop::option::of("[0-9]{1,3}")).prop_map(|(whole, fraction)| {
        let zero = !whole
            .bytes()
            .chain(fraction.iter().flat_map(|f| f.bytes().collect::<Vec<_>>()))
            .any(|b| b != b'0');
        let text = match fraction {
            Some(fraction) => format!("{whole}.{fraction}"),
            None => whole,
        };
        (text, zero)
    })
}

/// The case the fuzzing found: timestamps at the ends of i64 overflowed the
/// age computation (a panic in debug builds, so a 500 for a forged header).
#[test]
fn extreme_timestamps_are_stale_not_a_panic() {
    for (t, now) in [(i64::MIN, NOW), (i64::MAX, -NOW), (i64::MIN, i64::MAX)] {
        let header = format!("t={t},v1={}", "ab".repeat(32));
        assert_eq!(
            verify_signature("whsec_x", Some(&header), b"{}", now, TOLERANCE),
            Err(SignatureError::Stale {
                age_secs: i64::MAX,
                tolerance_secs: TOLERANCE
            })
        );
    }
}
