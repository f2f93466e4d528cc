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

// ---------------------------------------------------------------------------
// Money: meterpay's own decimal arithmetic (`billing::money`). Amounts are
// made from a mantissa and a scale, so every `Decimal` shape is reached,
// the huge ones included.

mod money {
    use meterpay::billing::currency::CurrencyCode;
    use meterpay::billing::money::{
        self, MAX_FRACTION_DIGITS, MAX_LINE_AMOUNT, MAX_WHOLE_DIGITS, PaymentTerm, Price,
        PriceInput, Tier, TierInput, TierMode,
    };
    use meterpay::error::Violations;
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    /// One currency of each minor unit: 0, 2, 3 and 4 decimals.
    fn currency() -> impl Strategy<Value = CurrencyCode> {
        prop_oneof![
            Just("JPY"),
            Just("USD"),
            Just("KWD"),
            Just("CLF"),
            Just("EUR")
        ]
        .prop_map(|code| CurrencyCode::parse(code).unwrap())
    }

    /// Any decimal the API can be sent: up to 28 significant digits.
    fn decimal() -> impl Strategy<Value = Decimal> {
        (any::<i64>(), 0u32..=10, any::<bool>()).prop_map(|(m, scale, wide)| {
            let mantissa = if wide {
                i128::from(m) * 1_000_000_000
            } else {
                i128::from(m % 1_000_000)
            };
            Decimal::from_i128_with_scale(mantissa, scale)
        })
    }

    /// A non-negative amount a line can realistically carry (≤ 10^9, ≤ 6 decimals).
    fn amount() -> impl Strategy<Value = Decimal> {
        (0i64..1_000_000_000_000_000, 0u32..=6)
            .prop_map(|(m, scale)| Decimal::new(m, scale) / Decimal::from(1_000_000))
    }

    fn quantity() -> impl Strategy<Value = Decimal> {
        (0i64..10_000_000_000, 0u32..=4).prop_map(|(m, scale)| Decimal::new(m, scale))
    }

    fn tier_mode() -> impl Strategy<Value = TierMode> {
        prop_oneof![Just(TierMode::Volume), Just(TierMode::Graduated)]
    }

    /// Ascending tiers, the last one open-ended or not.
    fn tiers() -> impl Strategy<Value = Vec<Tier>> {
        (
            prop::collection::vec(
                (
                    1i64..1_000_000,
                    prop::option::of(amount()),
                    prop::option::of(amount()),
                ),
                1..5,
            ),
            any::<bool>(),
        )
            .prop_map(|(steps, open)| {
                let mut bound = Decimal::ZERO;
                let count = steps.len();
                steps
                    .into_iter()
                    .enumerate()
                    .map(|(i, (step, flat, unit))| {
                        bound += Decimal::from(step);
                        Tier {
                            up_to: (!(open && i + 1 == count)).then_some(bound),
                            flat,
                            unit,
                        }
                    })
                    .collect()
            })
    }

    fn price() -> impl Strategy<Value = Price> {
        prop_oneof![
            amount().prop_map(|amount| Price::Flat {
                amount,
                payment_term: PaymentTerm::InArrears
            }),
            amount().prop_map(|amount| Price::Unit { amount }),
            (amount(), (1i64..10_000).prop_map(Decimal::from)).prop_map(
                |(amount, quantity_per_package)| Price::Package {
                    amount,
                    quantity_per_package
                }
            ),
            (tier_mode(), tiers()).prop_map(|(mode, tiers)| Price::Tiered { mode, tiers }),
        ]
    }

    /// Any price at all, absurd amounts included (to find overflows).
    fn wild_price() -> impl Strategy<Value = Price> {
        let tier = (
            prop::option::of(decimal()),
            prop::option::of(decimal()),
            prop::option::of(decimal()),
        )
            .prop_map(|(up_to, flat, unit)| Tier { up_to, flat, unit });
        prop_oneof![
            decimal().prop_map(|amount| Price::Unit { amount }),
            (decimal(), decimal()).prop_map(|(amount, quantity_per_package)| Price::Package {
                amount,
                quantity_per_package
            }),
            (tier_mode(), prop::collection::vec(tier, 0..4))
                .prop_map(|(mode, tiers)| Price::Tiered { mode, tiers }),
        ]
    }

    fn numeric_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "-?[0-9]{1,18}(\\.[0-9]{1,10})?",
            "-?[0-9]{0,20}(\\.[0-9]{0,12})?",
            "[-+0-9.eE ]{0,24}",
            ".{0,24}",
        ]
    }

    fn half_minor_unit(currency: &CurrencyCode) -> Decimal {
        Decimal::new(5, currency.minor_units() + 1)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// `Numeric` text is read exactly when it has the contract's shape and
        /// fits the digit limits; what is read writes back to the same number.
        #[test]
        fn numeric_text_reads_exactly_and_round_trips(text in numeric_text()) {
            let digits = text.strip_prefix('-').unwrap_or(&text);
            let (whole, fraction) = match digits.split_once('.') {
                Some((w, f)) => (w, Some(f)),
                None => (digits, None),
            };
            let shaped = !whole.is_empty()
                && whole.len() <= MAX_WHOLE_DIGITS
                && whole.bytes().all(|b| b.is_ascii_digit())
                && fraction.is_none_or(|f| {
                    !f.is_empty()
                        && f.len() <= MAX_FRACTION_DIGITS
                        && f.bytes().all(|b| b.is_ascii_digit())
                });
            let read = money::parse_numeric(&text);
            prop_assert_eq!(read.is_some(), shaped, "{}", text);
            if let Some(value) = read {
                let written = money::format(value);
                prop_assert_eq!(money::parse_numeric(&written), Some(value), "{} -> {}", text, written);
                // No trailing zeros after the point, no `-0`.
                prop_assert!(!(written.contains('.') && written.ends_with('0')), "{}", written);
                prop_assert!(written != "-0", "{}", text);
            }
        }

        /// Rounding to a currency: at most its minor unit's decimals, never more
        /// than half a minor unit away, idempotent, symmetric around zero, and
        /// a midpoint goes away from zero.
        #[test]
        fn rounding_is_half_away_from_zero(value in decimal(), currency in currency()) {
            let rounded = money::round_to_currency(value, &currency);
            prop_assert!(rounded.scale() <= currency.minor_units().max(value.scale()));
            prop_assert!(rounded.normalize().scale() <= currency.minor_units());
            let gap = (rounded - value).abs();
            let half = half_minor_unit(&currency);
            prop_assert!(gap <= half, "{} -> {}", value, rounded);
            if gap == half {
                prop_assert!(rounded.abs() > value.abs(), "{} -> {}", value, rounded);
            }
            prop_assert_eq!(money::round_to_currency(rounded, &currency), rounded);
            prop_assert_eq!(money::round_to_currency(-value, &currency), -rounded);
        }

        /// Minor units are the rounded amount, scaled exactly, for every amount
        /// a line may hold; an invoice's total in minor units is the sum of its
        /// lines' (what meterpay bills is what Stripe adds up).
        #[test]
        fn minor_units_are_exact_and_add_up(
            lines in prop::collection::vec(amount(), 1..20),
            currency in currency(),
        ) {
            let scale = Decimal::from(10i64.pow(currency.minor_units()));
            let mut total = Decimal::ZERO;
            let mut total_minor = 0i64;
            for line in lines {
                let rounded = money::round_to_currency(line, &currency);
                let minor = money::to_minor_units(line, &currency).expect("a line fits i64");
                prop_assert_eq!(Decimal::from(minor) / scale, rounded);
                total += rounded;
                total_minor += minor;
            }
            prop_assert_eq!(money::to_minor_units(total, &currency), Some(total_minor));
        }

        /// Pricing any quantity at any price answers (an amount or a reason),
        /// never panics or overflows; an amount fits a line and the currency.
        #[test]
        fn pricing_never_panics(
            price in prop_oneof![price(), wild_price()],
            quantity in prop_oneof![quantity(), decimal()],
            currency in currency(),
        ) {
            let _ = price.amount(quantity);
            // Billed to the currency's unit, or a coarser one Stripe charges.
            for charged in [0, 2, 3] {
                let decimals = money::billed_decimals(&currency, charged);
                if let Ok(amount) = money::line_amount(&price, Some(quantity), decimals) {
                    prop_assert!(amount.abs() <= MAX_LINE_AMOUNT);
                    prop_assert!(amount.normalize().scale() <= decimals);
                    prop_assert_eq!(money::round_to_currency(amount, &currency), amount);
                }
            }
        }

        /// The closed forms of each price, and more usage never costs less.
        #[test]
        fn prices_follow_their_definitions(
            price in price(),
            q1 in quantity(),
            q2 in quantity(),
        ) {
            let (low, high) = if q1 <= q2 { (q1, q2) } else { (q2, q1) };
            match &price {
                Price::Flat { amount, .. } => {
                    prop_assert_eq!(price.amount(high), Ok(*amount));
                }
                Price::Unit { amount } => {
                    prop_assert_eq!(price.amount(high), Ok(*amount * high));
                }
                Price::Package { amount, quantity_per_package } => {
                    let packages = (high / quantity_per_package).ceil();
                    prop_assert_eq!(price.amount(high), Ok(*amount * packages));
                }
                Price::Tiered { mode, tiers } => {
                    // A quantity the tiers cover is priced; one beyond a bounded
                    // last tier is refused.
                    let last = tiers.last().and_then(|t| t.up_to);
                    for q in [low, high] {
                        prop_assert_eq!(price.amount(q).is_ok(), last.is_none_or(|l| q <= l));
                    }
                    if *mode == TierMode::Graduated {
                        // Graduated: each unit at its own tier's price, flats once entered.
                        let mut expected = Decimal::ZERO;
                        let mut lower = Decimal::ZERO;
                        for tier in tiers {
                            if high <= lower { break; }
                            let upper = tier.up_to.map_or(high, |u| u.min(high));
                            expected += tier.flat.unwrap_or_default()
                                + tier.unit.unwrap_or_default() * (upper - lower);
                            lower = tier.up_to.unwrap_or(high);
                        }
                        if last.is_none_or(|l| high <= l) {
                            prop_assert_eq!(price.amount(high), Ok(expected));
                        }
                    }
                }
            }
            // Monotone for every price but volume tiers (a volume tier may
            // price more units for less, as upstream's does).
            let volume = matches!(price, Price::Tiered { mode: TierMode::Volume, .. });
            if let (Ok(a), Ok(b)) = (price.amount(low), price.amount(high)) && !volume {
                prop_assert!(a <= b, "{:?}: {} costs {}, {} costs {}", price, low, a, high, b);
            }
        }

        /// Checking any price input answers with a price or field errors, and
        /// never both; it never panics.
        #[test]
        fn price_input_checks_never_panic(
            kind in prop_oneof![
                Just("flat"), Just("unit"), Just("tiered"), Just("package"), Just("graduated"),
                Just("volume"), Just("dynamic"), Just("free"), Just("other"),
            ],
            amount_text in prop::option::of(numeric_text()),
            per in prop::option::of(numeric_text()),
            mode in prop::option::of(tier_mode()),
            tiers in prop::option::of(prop::collection::vec(
                (prop::option::of(numeric_text()), prop::option::of(numeric_text()),
                 prop::option::of(numeric_text())),
                0..4,
            )),
            minimum in prop::option::of(numeric_text()),
        ) {
            let input = PriceInput {
                kind: kind.to_owned(),
                amount: amount_text,
                payment_term: None,
                mode,
                tiers: tiers.map(|tiers| tiers.into_iter().map(|(up_to, flat, unit)| TierInput {
                    up_to_amount: up_to,
                    flat_price: flat,
                    unit_price: unit,
                }).collect()),
                quantity_per_package: per,
                minimum_amount: minimum,
                maximum_amount: None,
                unsupported: Vec::new(),
            };
            let mut v = Violations::default();
            let price = money::check_price(&mut v, "price", &input);
            prop_assert_eq!(price.is_some(), v.is_empty(), "{:?}", input);
        }
    }
}
