//! The emulated card network: what a card number does when it is confirmed, as Stripe's test
//! cards (https://docs.stripe.com/testing) do. Pure functions: no state, no clock of their own.

use serde_json::json;

use crate::error::ApiError;

/// Card details as entered on the hosted page or sent to the control route.
#[derive(Debug, Clone, Default)]
pub struct CardInput {
    pub number: String,
    pub exp_month: i64,
    pub exp_year: i64,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The billing address, when the page asked for one.
    pub address: Option<BillingAddress>,
}

/// A billing address as entered on the hosted page (Stripe's `address` fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillingAddress {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub state: Option<String>,
    /// Two-letter ISO 3166-1 code.
    pub country: Option<String>,
}

impl BillingAddress {
    /// Stripe's `address` object.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "city": self.city, "country": self.country, "line1": self.line1,
            "line2": self.line2, "postal_code": self.postal_code, "state": self.state,
        })
    }

    /// What Checkout insists on when it collects a billing address: a
    /// street line and a two-letter country.
    pub fn is_complete(&self) -> bool {
        self.line1.is_some()
            && self
                .country
                .as_deref()
                .is_some_and(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()))
    }
}

/// What a card number does, by Stripe test card number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardOutcome {
    /// Any other Luhn-valid number of 12 to 19 digits (e.g. `4242 4242 4242 4242`).
    Succeeds,
    /// `4000 0000 0000 0002` (generic decline) and `4000 0000 0000 9995` (insufficient funds,
    /// answered as a generic decline too).
    Declined,
    /// `4000 0000 0000 3220`, `4000 0025 0000 3155`, `4000 0027 6000 3184`: 3D Secure.
    RequiresAuthentication,
    /// Not a card number (wrong length, non-digits or a failed Luhn check).
    Invalid,
}

/// The outcome of confirming a card with this number (digits only).
pub fn card_outcome(number: &str) -> CardOutcome {
    match number {
        "4000000000000002" => CardOutcome::Declined,
        "4000000000009995" => CardOutcome::Declined,
        "4000000000003220" | "4000002500003155" | "4000002760003184" => {
            CardOutcome::RequiresAuthentication
        }
        digits
            if digits.len() >= 12
                && digits.len() <= 19
                && digits.chars().all(|c| c.is_ascii_digit())
                && passes_luhn(digits) =>
        {
            CardOutcome::Succeeds
        }
        _ => CardOutcome::Invalid,
    }
}

/// The card `fingerprint` Stripe reports: the same for every payment method made from one
/// number (here the first 16 hex digits of its SHA-256).
pub fn fingerprint(number: &str) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(number.as_bytes()))
        .chars()
        .take(16)
        .collect()
}

/// Test card numbers whose charges behave differently from 4242… (the rest succeed).
const CHARGE_TEST_CARDS: &[&str] = &[
    "4000000000000002",
    "4000000000009995",
    "4000000000000341",
    "4000000000003220",
    "4000002500003155",
    "4000002760003184",
];

/// The test card a payment method was made from, recognised by its fingerprint.
pub fn test_card_for_fingerprint(fingerprint_value: &str) -> Option<&'static str> {
    CHARGE_TEST_CARDS
        .iter()
        .copied()
        .find(|number| fingerprint(number) == fingerprint_value)
}

/// What charging a saved card does (a payment, not a setup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeOutcome {
    Succeeds,
    /// The issuer declines: `card_declined` with this `decline_code`.
    Declined(&'static str),
    /// 3D Secure must be completed by the cardholder first.
    RequiresAuthentication,
}

/// The outcome of charging card `number` (None: not one of the special test cards).
/// `off_session`: the customer is not present; `set_up`: the card was saved through a setup
/// intent that authenticated it. As Stripe's test cards: 0341 attaches but every charge is
/// declined; 0002 and 9995 are declined; 3184 and 3220 always require authentication; 3155
/// requires it except off-session once set up.
pub fn charge_outcome(number: Option<&str>, off_session: bool, set_up: bool) -> ChargeOutcome {
    match number {
        Some("4000000000000341") | Some("4000000000000002") => {
            ChargeOutcome::Declined("generic_decline")
        }
        Some("4000000000009995") => ChargeOutcome::Declined("insufficient_funds"),
        Some("4000002760003184") | Some("4000000000003220") => {
            ChargeOutcome::RequiresAuthentication
        }
        Some("4000002500003155") if !(off_session && set_up) => {
            ChargeOutcome::RequiresAuthentication
        }
        _ => ChargeOutcome::Succeeds,
    }
}

/// The Luhn checksum every card number carries in its last digit.
fn passes_luhn(number: &str) -> bool {
    let sum: u32 = number
        .chars()
        .rev()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(position, digit)| {
            if position % 2 == 1 {
                if digit * 2 > 9 {
                    digit * 2 - 9
                } else {
                    digit * 2
                }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The card brand Stripe reports for a number (`card.brand`), from its first digits.
pub fn brand(number: &str) -> &'static str {
    match number.as_bytes().first() {
        Some(b'4') => "visa",
        Some(b'5') | Some(b'2') => "mastercard",
        Some(b'3') if number.starts_with("34") || number.starts_with("37") => "amex",
        Some(b'6') => "discover",
        _ => "unknown",
    }
}

/// What confirming a card does, once its number and expiry are valid.
#[derive(Debug)]
pub enum Verdict {
    /// The card is saved and the setup intent succeeds.
    Approved,
    /// The card needs a 3D Secure challenge first; ask again with its answer.
    NeedsAuthentication,
    /// The setup attempt fails with this error (the card is still created, unattached).
    Refused(ApiError),
}

/// The verdict for a card outcome; `authenticated` is the answer to the 3D Secure challenge
/// (`None` while it has not been asked).
pub fn verdict(outcome: CardOutcome, authenticated: Option<bool>) -> Verdict {
    match (outcome, authenticated) {
        (CardOutcome::Invalid, _) => Verdict::Refused(incorrect_number()),
        (CardOutcome::Declined, _) => Verdict::Refused(
            ApiError::new(402, "card_error", "Your card was declined.")
                .code("card_declined")
                .with("decline_code", json!("generic_decline")),
        ),
        (CardOutcome::RequiresAuthentication, None) => Verdict::NeedsAuthentication,
        (CardOutcome::RequiresAuthentication, Some(false)) => Verdict::Refused(
            ApiError::new(
                402,
                "invalid_request_error",
                "We are unable to authenticate your payment method. Please choose a different payment method and try again.",
            )
            .code("setup_intent_authentication_failure"),
        ),
        (CardOutcome::RequiresAuthentication, Some(true)) | (CardOutcome::Succeeds, _) => {
            Verdict::Approved
        }
    }
}

fn incorrect_number() -> ApiError {
    ApiError::new(402, "card_error", "Your card number is incorrect.")
        .code("incorrect_number")
        .with("param", json!("number"))
}

/// Checks what Stripe.js checks before confirming: a card number and an expiry month and year
/// not in the past at `now` (Unix time). Returns the number's outcome and the expiry year with
/// two-digit years read as 20YY.
pub fn validate(card: &CardInput, now: i64) -> Result<(CardOutcome, i64), ApiError> {
    let outcome = card_outcome(&card.number);
    if outcome == CardOutcome::Invalid {
        return Err(incorrect_number());
    }
    let exp_year = if card.exp_year < 100 {
        card.exp_year + 2000
    } else {
        card.exp_year
    };
    let (current_year, current_month) = year_month(now);
    if !(1..=12).contains(&card.exp_month) {
        return Err(ApiError::new(
            402,
            "card_error",
            "Your card's expiration month is invalid.",
        )
        .code("invalid_expiry_month")
        .with("param", json!("exp_month")));
    }
    if exp_year < current_year || (exp_year == current_year && card.exp_month < current_month) {
        return Err(ApiError::new(
            402,
            "card_error",
            "Your card's expiration year is in the past.",
        )
        .code("invalid_expiry_year")
        .with("param", json!("exp_year")));
    }
    Ok((outcome, exp_year))
}

/// (year, month) of a Unix timestamp (UTC).
pub fn year_month(timestamp: i64) -> (i64, i64) {
    // Civil-from-days (Howard Hinnant's algorithm).
    let days = timestamp.div_euclid(86_400) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let year = year_of_era + era * 400;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_based_month = (5 * day_of_year + 2) / 153;
    let month = if march_based_month < 10 {
        march_based_month + 3
    } else {
        march_based_month - 9
    };
    (if month <= 2 { year + 1 } else { year }, month)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(number: &str, exp_month: i64, exp_year: i64) -> CardInput {
        CardInput {
            number: number.to_string(),
            exp_month,
            exp_year,
            ..Default::default()
        }
    }

    /// 2026-03-15T12:00:00Z
    const MARCH_2026: i64 = 1_773_576_000;

    fn code(error: &ApiError) -> &str {
        error.code.as_deref().unwrap_or_default()
    }

    #[test]
    fn test_cards_that_succeed() {
        for number in [
            "4242424242424242", // Visa
            "4000056655665556", // Visa debit
            "5555555555554444", // Mastercard
            "2223003122003222", // Mastercard 2-series
            "378282246310005",  // American Express (15 digits)
            "6011111111111117", // Discover
            "3056930009020004", // Diners Club (14 digits)
        ] {
            assert_eq!(card_outcome(number), CardOutcome::Succeeds, "{number}");
        }
    }

    #[test]
    fn test_cards_that_decline() {
        assert_eq!(card_outcome("4000000000000002"), CardOutcome::Declined);
        assert_eq!(card_outcome("4000000000009995"), CardOutcome::Declined);
    }

    #[test]
    fn test_cards_that_require_authentication() {
        for number in ["4000000000003220", "4000002500003155", "4000002760003184"] {
            assert_eq!(
                card_outcome(number),
                CardOutcome::RequiresAuthentication,
                "{number}"
            );
        }
    }

    #[test]
    fn numbers_that_are_not_cards_are_invalid() {
        for number in [
            "",
            "4242424242424241",     // Luhn check fails
            "42424242424",          // 11 digits
            "42424242424242424242", // 20 digits
            "4242 4242 4242 4242",  // separators are stripped before this point
            "424242424242424a",
        ] {
            assert_eq!(card_outcome(number), CardOutcome::Invalid, "{number:?}");
        }
    }

    #[test]
    fn brands_follow_the_first_digits() {
        assert_eq!(brand("4242424242424242"), "visa");
        assert_eq!(brand("5555555555554444"), "mastercard");
        assert_eq!(brand("2223003122003222"), "mastercard");
        assert_eq!(brand("378282246310005"), "amex");
        assert_eq!(brand("340000000000009"), "amex");
        assert_eq!(brand("6011111111111117"), "discover");
        assert_eq!(brand("3056930009020004"), "unknown");
        assert_eq!(brand(""), "unknown");
    }

    #[test]
    fn a_succeeding_card_is_approved_with_or_without_a_challenge_answer() {
        for answer in [None, Some(true), Some(false)] {
            assert!(matches!(
                verdict(CardOutcome::Succeeds, answer),
                Verdict::Approved
            ));
        }
    }

    #[test]
    fn a_declining_card_is_refused_as_a_generic_decline() {
        for answer in [None, Some(true), Some(false)] {
            let Verdict::Refused(error) = verdict(CardOutcome::Declined, answer) else {
                panic!("declined card approved");
            };
            assert_eq!(error.status, 402);
            assert_eq!(error.kind, "card_error");
            assert_eq!(code(&error), "card_declined");
            assert_eq!(error.message, "Your card was declined.");
            assert_eq!(error.extra["decline_code"], "generic_decline");
        }
    }

    #[test]
    fn a_3ds_card_asks_for_authentication_then_follows_the_answer() {
        assert!(matches!(
            verdict(CardOutcome::RequiresAuthentication, None),
            Verdict::NeedsAuthentication
        ));
        assert!(matches!(
            verdict(CardOutcome::RequiresAuthentication, Some(true)),
            Verdict::Approved
        ));
        let Verdict::Refused(error) = verdict(CardOutcome::RequiresAuthentication, Some(false))
        else {
            panic!("failed authentication approved");
        };
        assert_eq!(error.status, 402);
        assert_eq!(error.kind, "invalid_request_error");
        assert_eq!(code(&error), "setup_intent_authentication_failure");
    }

    #[test]
    fn an_invalid_number_is_refused_as_incorrect() {
        let Verdict::Refused(error) = verdict(CardOutcome::Invalid, None) else {
            panic!("invalid card approved");
        };
        assert_eq!(code(&error), "incorrect_number");
    }

    #[test]
    fn validation_reads_two_digit_years_as_this_century() {
        let (outcome, year) = validate(&card("4242424242424242", 12, 34), MARCH_2026).unwrap();
        assert_eq!((outcome, year), (CardOutcome::Succeeds, 2034));
        let (_, year) = validate(&card("4242424242424242", 12, 2034), MARCH_2026).unwrap();
        assert_eq!(year, 2034);
    }

    #[test]
    fn validation_accepts_the_current_month_and_refuses_the_one_before() {
        assert!(validate(&card("4242424242424242", 3, 2026), MARCH_2026).is_ok());
        let error = validate(&card("4242424242424242", 2, 2026), MARCH_2026).unwrap_err();
        assert_eq!(code(&error), "invalid_expiry_year");
        assert_eq!(error.extra["param"], "exp_year");
        let error = validate(&card("4242424242424242", 12, 25), MARCH_2026).unwrap_err();
        assert_eq!(code(&error), "invalid_expiry_year");
    }

    #[test]
    fn validation_refuses_months_outside_1_to_12() {
        for month in [0, 13, -1] {
            let error = validate(&card("4242424242424242", month, 2034), MARCH_2026).unwrap_err();
            assert_eq!(error.status, 402);
            assert_eq!(code(&error), "invalid_expiry_month");
            assert_eq!(error.extra["param"], "exp_month");
        }
    }

    #[test]
    fn validation_checks_the_number_before_the_expiry() {
        let error = validate(&card("4242424242424241", 13, 1999), MARCH_2026).unwrap_err();
        assert_eq!(error.status, 402);
        assert_eq!(error.kind, "card_error");
        assert_eq!(code(&error), "incorrect_number");
        assert_eq!(error.extra["param"], "number");
    }

    #[test]
    fn validation_keeps_the_outcome_of_test_cards() {
        let (outcome, _) = validate(&card("4000000000000002", 1, 2030), MARCH_2026).unwrap();
        assert_eq!(outcome, CardOutcome::Declined);
        let (outcome, _) = validate(&card("4000000000003220", 1, 2030), MARCH_2026).unwrap();
        assert_eq!(outcome, CardOutcome::RequiresAuthentication);
    }

    #[test]
    fn charges_follow_the_test_cards() {
        assert_eq!(charge_outcome(None, true, false), ChargeOutcome::Succeeds);
        assert_eq!(
            charge_outcome(Some("4000000000000341"), true, true),
            ChargeOutcome::Declined("generic_decline")
        );
        assert_eq!(
            charge_outcome(Some("4000002760003184"), true, true),
            ChargeOutcome::RequiresAuthentication
        );
        assert_eq!(
            charge_outcome(Some("4000002500003155"), true, true),
            ChargeOutcome::Succeeds
        );
        assert_eq!(
            charge_outcome(Some("4000002500003155"), false, true),
            ChargeOutcome::RequiresAuthentication
        );
        assert_eq!(
            charge_outcome(Some("4000002500003155"), true, false),
            ChargeOutcome::RequiresAuthentication
        );
        assert_eq!(
            test_card_for_fingerprint(&fingerprint("4000000000000341")),
            Some("4000000000000341")
        );
        assert_eq!(
            test_card_for_fingerprint(&fingerprint("4242424242424242")),
            None
        );
    }

    #[test]
    fn year_month_of_timestamps() {
        assert_eq!(year_month(0), (1970, 1));
        assert_eq!(year_month(-1), (1969, 12));
        assert_eq!(year_month(951_782_400), (2000, 2)); // 2000-02-29
        assert_eq!(year_month(1_735_689_599), (2024, 12)); // 2024-12-31T23:59:59
        assert_eq!(year_month(1_735_689_600), (2025, 1));
        assert_eq!(year_month(MARCH_2026), (2026, 3));
    }
}
