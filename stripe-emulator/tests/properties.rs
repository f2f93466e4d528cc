//! Property tests (proptest, bounded case counts) of the emulator's wire
//! format and money: Stripe's bracket-notation form decoding round-trips
//! what async-stripe's encoder (serde_qs, so meterpay) sends, and never
//! panics on anything else; decimal amounts parse, print and multiply
//! without panics and with Stripe's rounding.

use proptest::prelude::*;
use serde_json::{Map, Value};
use stripe_emulator::form;
use stripe_emulator::money::{
    amount_of, display, exponent, format_decimal, from_integer, parse_decimal,
};

/// A parameter name: starts with a letter (a key that is all digits reads as
/// an array index in this format, on Stripe too).
fn key() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,9}"
}

/// Any text a value may carry, including the form's own delimiters.
fn text() -> impl Strategy<Value = String> {
    prop_oneof!["\\PC{0,12}", "[&=%+\\[\\] ;#?]{0,6}", Just(String::new())]
}

/// Stripe parameters: objects of strings, objects and non-empty lists
/// (an empty object or list sends nothing, so it cannot come back).
fn params() -> impl Strategy<Value = Value> {
    let leaf = text().prop_map(Value::String);
    let tree = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::btree_map(key(), inner.clone(), 1..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
            prop::collection::vec(inner, 1..12).prop_map(Value::Array),
        ]
    });
    prop::collection::btree_map(key(), tree, 0..5)
        .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    /// What async-stripe encodes, the emulator decodes to the same tree.
    #[test]
    fn serde_qs_bodies_round_trip(params in params()) {
        let body = serde_qs::to_string(&params).expect("serde_qs encodes JSON trees");
        prop_assert_eq!(form::parse(body.as_bytes()), Ok(params), "{}", body);
    }

    /// `a[]=x&a[]=y` lists keep their order; repeated scalar keys: the last wins.
    #[test]
    fn appended_lists_and_repeated_keys(values in prop::collection::vec(text(), 1..8)) {
        let mut body = form_urlencoded::Serializer::new(String::new());
        for value in &values {
            body.append_pair("expand[]", value);
            body.append_pair("mode", value);
        }
        let parsed = form::parse(body.finish().as_bytes()).unwrap();
        prop_assert_eq!(&parsed["expand"], &Value::from(values.clone()));
        prop_assert_eq!(&parsed["mode"], &Value::from(values.last().unwrap().clone()));
    }

    /// Any bytes, or anything shaped like brackets: a tree or an error naming
    /// the parameter, never a panic.
    #[test]
    fn any_body_gets_an_answer(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            "[a-z0-9\\[\\]=&%]{0,40}".prop_map(String::into_bytes),
        ],
    ) {
        match form::parse(&body) {
            Ok(value) => prop_assert!(value.is_object()),
            Err(error) => prop_assert!(!error.param.is_empty() || error.message.contains("Invalid")),
        }
    }

    /// A scaled decimal prints as the shortest text that parses back to it.
    #[test]
    fn decimals_print_and_parse_back(
        negative in any::<bool>(),
        whole in 0_i128..=999_999_999_999_999,
        fraction in 0_i128..1_000_000_000_000,
    ) {
        let magnitude = whole * 1_000_000_000_000 + fraction;
        let value = if negative { -magnitude } else { magnitude };
        let text = format_decimal(value);
        prop_assert_eq!(parse_decimal(&text), Some(value), "{}", text);
        prop_assert!(!text.ends_with('0') || !text.contains('.'), "{}", text);
    }

    /// Any text: a decimal or None, never a panic; what parses prints back to
    /// an equal value.
    #[test]
    fn any_text_parses_or_not(text in prop_oneof!["\\PC{0,30}", "-?[0-9]{0,20}(\\.[0-9]{0,14})?"]) {
        if let Some(value) = parse_decimal(&text) {
            prop_assert_eq!(parse_decimal(&format_decimal(value)), Some(value));
        }
    }

    /// Whole units times whole quantities are exact; the amount of a
    /// decimal product is it rounded half away from zero, symmetric in sign;
    /// out of range is None, never a panic.
    #[test]
    fn amounts_round_half_away_from_zero(
        unit in -1_000_000_i64..1_000_000,
        quantity in -1_000_i64..1_000,
        unit_fraction in 0_i128..1_000_000_000_000,
        quantity_fraction in 0_i128..1_000_000_000_000,
        huge in any::<i128>(),
        other in any::<i128>(),
    ) {
        prop_assert_eq!(
            amount_of(from_integer(unit), from_integer(quantity)),
            Some(unit * quantity)
        );
        let u = from_integer(unit) + unit_fraction;
        let q = from_integer(quantity) + quantity_fraction;
        let scale2 = 1_000_000_000_000_000_000_000_000_i128;
        let exact = u * q; // < 10^31: fits
        let rounded = amount_of(u, q).unwrap();
        // |exact − rounded·10^24| ≤ ½·10^24, and exactly ½ only away from zero.
        let diff = exact - i128::from(rounded) * scale2;
        prop_assert!(diff.abs() * 2 <= scale2, "{} × {} → {}", u, q, rounded);
        if diff.abs() * 2 == scale2 {
            prop_assert_eq!(diff.signum(), -exact.signum());
        }
        prop_assert_eq!(amount_of(-u, q), Some(-rounded));
        let _ = amount_of(huge, other);
    }

    /// Every amount shows with its currency's decimal places, and reads back.
    #[test]
    fn amounts_display_with_their_places(
        amount in any::<i64>(),
        currency in prop_oneof![Just("usd".to_owned()), Just("jpy".to_owned()), Just("kwd".to_owned()), Just("bhd".to_owned()), "[a-z]{3}"],
    ) {
        let shown = display(amount, &currency);
        let (number, code) = shown.split_once(' ').unwrap();
        prop_assert_eq!(code, currency.to_ascii_uppercase());
        let places = exponent(&currency);
        prop_assert_eq!(number.split_once('.').map_or(0, |(_, f)| f.len()), places as usize);
        let value = parse_decimal(number);
        if let Some(value) = value {
            prop_assert_eq!(value * 10_i128.pow(places), i128::from(amount) * 1_000_000_000_000);
        } else {
            // Only beyond the parser's 15 whole digits.
            prop_assert!(amount.unsigned_abs() / 10_u64.pow(places) > 999_999_999_999_999, "{}", shown);
        }
    }
}

/// The shape serde_qs gives nested parameters, which the round trip above
/// relies on: indexed lists, bracketed keys, percent-encoded values.
#[test]
fn serde_qs_writes_brackets_and_indices() {
    let params = serde_json::json!({
        "metadata": {"note": "a b&c=d"},
        "items": [{"price": "p_1"}, ["x", "y"]],
    });
    let body = serde_qs::to_string(&params).unwrap();
    assert_eq!(
        body,
        "items[0][price]=p_1&items[1][0]=x&items[1][1]=y&metadata[note]=a+b%26c%3Dd"
    );
    assert_eq!(form::parse(body.as_bytes()), Ok(params));
}
