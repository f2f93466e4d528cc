//! Money and prices: decimal arithmetic (never floats), each line's amount
//! rounded once to its currency's minor unit, half away from zero, the way
//! upstream's Stripe calculator turns an amount into Stripe's minor units.
//! Where the invoicing app charges a currency in a coarser unit than ISO 4217's
//! (Stripe: whole MGA, ISK and UGX; 0.01 of KWD and the other three-decimal
//! currencies), lines round to that unit instead ([`billed_decimals`]), so an
//! invoice never says an amount its payment provider cannot charge.
//! Invoice totals are sums of rounded lines, so the invoice total always
//! equals what the lines add up to on Stripe's side.
//!
//! Prices are upstream's usage-based rate-card prices (`flat`, `unit`,
//! `tiered` graduated or volume, `package`). meterpay has no meters: a
//! usage-based price bills the quantity the caller sends with the line.
//! What meterpay does not do (spend commitments, dynamic prices, discounts)
//! is refused by name rather than ignored.

use std::fmt;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use super::currency::CurrencyCode;
use crate::error::{Rule, Violations};

/// The most digits a `Numeric` may have before and after the point: 28
/// digits in all, which a `Decimal` always holds exactly.
pub const MAX_WHOLE_DIGITS: usize = 18;
pub const MAX_FRACTION_DIGITS: usize = 10;

/// The largest amount a line may come to (in the currency's major unit):
/// invoice totals of such lines, and their minor units, stay exact.
pub const MAX_LINE_AMOUNT: Decimal = Decimal::from_parts(0xA4C6_8000, 0x3_8D7E, 0, false, 0);

/// Reads the contract's `Numeric` (`^-?[0-9]+(\.[0-9]+)?$`): no exponent, no
/// sign other than a leading minus, digits on both sides of the point; at
/// most [`MAX_WHOLE_DIGITS`] before it and [`MAX_FRACTION_DIGITS`] after.
pub fn parse_numeric(text: &str) -> Option<Decimal> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let all_digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !all_digits(whole, MAX_WHOLE_DIGITS)
        || fraction.is_some_and(|f| !all_digits(f, MAX_FRACTION_DIGITS))
    {
        return None;
    }
    text.parse::<Decimal>().ok()
}

/// The hint of a refused `Numeric`.
pub fn numeric_hint(text: &str, example: &str) -> String {
    format!(
        "[{text}] is not a decimal number such as {example} (a string, at most \
         {MAX_WHOLE_DIGITS} digits before the point and {MAX_FRACTION_DIGITS} after)"
    )
}

/// A decimal as the API writes it: `Numeric`, without trailing zeros
/// (`10`, `10.5`, `0.001`).
pub fn format(value: Decimal) -> String {
    let normal = value.normalize();
    // `-0` reads oddly and is not what anyone owes.
    if normal.is_zero() {
        "0".to_owned()
    } else {
        normal.to_string()
    }
}

/// `amount` rounded to the currency's minor unit, half away from zero.
pub fn round_to_currency(amount: Decimal, currency: &CurrencyCode) -> Decimal {
    amount.round_dp_with_strategy(
        currency.minor_units(),
        RoundingStrategy::MidpointAwayFromZero,
    )
}

/// The decimals a line in `currency` is billed to: the currency's own minor
/// unit (ISO 4217), unless the invoicing app can only charge a coarser one
/// (`charged`, the decimals it charges exactly), as a payment provider may:
/// then that one, so what the invoice says is what is charged.
pub fn billed_decimals(currency: &CurrencyCode, charged: u32) -> u32 {
    currency.minor_units().min(charged)
}

/// `amount` in the currency's minor units (cents for USD, yen for JPY,
/// fils for KWD), rounded half away from zero; `None` beyond `i64`.
pub fn to_minor_units(amount: Decimal, currency: &CurrencyCode) -> Option<i64> {
    let scaled =
        round_to_currency(amount, currency) * Decimal::from(10i64.pow(currency.minor_units()));
    scaled.trunc().to_i64()
}

/// Reads and writes a [`Decimal`] as a JSON string (`"12.5"`), as stored.
pub mod decimal_text {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_numeric(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("[{text}] is not a decimal")))
    }

    pub mod option {
        use rust_decimal::Decimal;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(value: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
            match value {
                Some(v) => s.serialize_str(&super::super::format(*v)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
            let text = Option::<String>::deserialize(d)?;
            text.map(|t| {
                super::super::parse_numeric(&t)
                    .ok_or_else(|| serde::de::Error::custom(format!("[{t}] is not a decimal")))
            })
            .transpose()
        }
    }
}

/// `PricePaymentTerm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentTerm {
    InAdvance,
    InArrears,
}

/// `TieredPriceMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierMode {
    Volume,
    Graduated,
}

/// One tier: up to and including `up_to` (open-ended when `None`), a flat
/// and/or a per-unit component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    #[serde(
        with = "decimal_text::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub up_to: Option<Decimal>,
    #[serde(
        with = "decimal_text::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub flat: Option<Decimal>,
    #[serde(
        with = "decimal_text::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub unit: Option<Decimal>,
}

/// A validated price. Every amount is non-negative; tiers ascend with at
/// most the last open-ended; a package holds more than zero units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Price {
    Flat {
        #[serde(with = "decimal_text")]
        amount: Decimal,
        payment_term: PaymentTerm,
    },
    Unit {
        #[serde(with = "decimal_text")]
        amount: Decimal,
    },
    Tiered {
        mode: TierMode,
        tiers: Vec<Tier>,
    },
    Package {
        #[serde(with = "decimal_text")]
        amount: Decimal,
        #[serde(with = "decimal_text")]
        quantity_per_package: Decimal,
    },
}

/// Why a quantity cannot be priced (the caller names the quantity field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuantityBeyondTiers {
    /// Beyond a bounded last tier.
    Tiers { last_bound: Decimal },
    /// The price of the quantity exceeds [`MAX_LINE_AMOUNT`].
    TooLarge,
}

impl fmt::Display for QuantityBeyondTiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuantityBeyondTiers::Tiers { last_bound } => write!(
                f,
                "is beyond the last tier (up to {}); add an open-ended tier",
                format(*last_bound)
            ),
            QuantityBeyondTiers::TooLarge => write!(
                f,
                "prices the line at more than {} (the largest amount of a line)",
                format(MAX_LINE_AMOUNT)
            ),
        }
    }
}

impl Price {
    /// Usage-based prices bill a quantity; a flat price is charged once.
    pub fn is_usage_based(&self) -> bool {
        !matches!(self, Price::Flat { .. })
    }

    /// What `quantity` costs at this price, not yet rounded. A flat price
    /// ignores the quantity.
    pub fn amount(&self, quantity: Decimal) -> Result<Decimal, QuantityBeyondTiers> {
        use QuantityBeyondTiers::TooLarge;
        let mul = |a: Decimal, b: Decimal| a.checked_mul(b).ok_or(TooLarge);
        let add = |a: Decimal, b: Decimal| a.checked_add(b).ok_or(TooLarge);
        match self {
            Price::Flat { amount, .. } => Ok(*amount),
            Price::Unit { amount } => mul(*amount, quantity),
            Price::Package {
                amount,
                quantity_per_package,
            } => {
                let packages = quantity
                    .checked_div(*quantity_per_package)
                    .ok_or(TooLarge)?
                    .ceil();
                mul(*amount, packages)
            }
            Price::Tiered { mode, tiers } => {
                let beyond = || QuantityBeyondTiers::Tiers {
                    last_bound: tiers.last().and_then(|t| t.up_to).unwrap_or_default(),
                };
                match mode {
                    TierMode::Volume => {
                        // The tier the whole quantity falls in prices every unit.
                        let tier = tiers
                            .iter()
                            .find(|t| t.up_to.is_none_or(|up_to| quantity <= up_to))
                            .ok_or_else(beyond)?;
                        add(
                            tier.flat.unwrap_or_default(),
                            mul(tier.unit.unwrap_or_default(), quantity)?,
                        )
                    }
                    TierMode::Graduated => {
                        if tiers
                            .last()
                            .and_then(|t| t.up_to)
                            .is_some_and(|last| quantity > last)
                        {
                            return Err(beyond());
                        }
                        // Each tier prices the units within it; a tier's flat
                        // component is charged once the quantity enters it.
                        let mut total = Decimal::ZERO;
                        let mut lower = Decimal::ZERO;
                        for tier in tiers {
                            if quantity <= lower {
                                break;
                            }
                            let upper = tier.up_to.map_or(quantity, |u| u.min(quantity));
                            let units = mul(tier.unit.unwrap_or_default(), upper - lower)?;
                            total = add(total, add(tier.flat.unwrap_or_default(), units)?)?;
                            lower = tier.up_to.unwrap_or(quantity);
                        }
                        Ok(total)
                    }
                }
            }
        }
    }
}

/// A line's amount: the price of the quantity, rounded once to `decimals`
/// (the currency's minor unit, or the coarser unit its invoicing app charges
/// in: see [`billed_decimals`]), half away from zero.
pub fn line_amount(
    price: &Price,
    quantity: Option<Decimal>,
    decimals: u32,
) -> Result<Decimal, QuantityBeyondTiers> {
    let amount = price
        .amount(quantity.unwrap_or(Decimal::ONE))?
        .round_dp_with_strategy(decimals, RoundingStrategy::MidpointAwayFromZero);
    if amount.abs() > MAX_LINE_AMOUNT {
        return Err(QuantityBeyondTiers::TooLarge);
    }
    Ok(amount)
}

// ---------------------------------------------------------------------------
// Price input: the union of upstream's v1 (`RateCardUsageBasedPrice`) and v3
// (`BillingPrice`) shapes, every member as given, checked by `check_price`.

/// A price as a request gives it (amounts as text, every member optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceInput {
    /// `flat`, `unit`, `tiered`, `package`, `dynamic` (v1); `free`, `graduated`,
    /// `volume` (v3).
    pub kind: String,
    pub amount: Option<String>,
    pub payment_term: Option<PaymentTerm>,
    /// v1 `tiered`'s mode.
    pub mode: Option<TierMode>,
    pub tiers: Option<Vec<TierInput>>,
    pub quantity_per_package: Option<String>,
    /// Spend commitments (v1): not done by meterpay.
    pub minimum_amount: Option<String>,
    pub maximum_amount: Option<String>,
    /// Anything else a request named in the price (refused by name).
    pub unsupported: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TierInput {
    pub up_to_amount: Option<String>,
    /// The flat component's amount (`flat_price.amount`).
    pub flat_price: Option<String>,
    /// The per-unit component's amount (`unit_price.amount`).
    pub unit_price: Option<String>,
}

/// The price kinds meterpay bills, as v1 names them.
pub const PRICE_TYPES: &[&str] = &["flat", "unit", "tiered", "package"];

/// Reads an amount member: required, `Numeric`, not negative.
fn amount_member(v: &mut Violations, field: &str, given: Option<&String>) -> Option<Decimal> {
    let Some(text) = given else {
        v.push(field, Rule::Required, "is required");
        return None;
    };
    non_negative(v, field, text)
}

fn non_negative(v: &mut Violations, field: &str, text: &str) -> Option<Decimal> {
    match parse_numeric(text) {
        None => {
            v.push(field, Rule::MatchesRegex, numeric_hint(text, "12.50"));
            None
        }
        Some(d) if d.is_sign_negative() && !d.is_zero() => {
            v.push(field, Rule::Invalid, "must not be negative");
            None
        }
        Some(d) => Some(d),
    }
}

/// Checks a price into `v` (fields under `field`), refusing what meterpay
/// does not do by name. `None` when it is not a price meterpay can bill.
pub fn check_price(v: &mut Violations, field: &str, input: &PriceInput) -> Option<Price> {
    let at = |member: &str| format!("{field}.{member}");
    let before = v.len();
    for (member, given) in [
        ("minimum_amount", &input.minimum_amount),
        ("maximum_amount", &input.maximum_amount),
    ] {
        if given.is_some() {
            v.push(
                at(member),
                Rule::Invalid,
                "spend commitments (minimum and maximum amounts) are not supported by meterpay; \
                 bill the amount you computed instead",
            );
        }
    }
    for member in &input.unsupported {
        v.push(
            at(member),
            Rule::UnknownProperty,
            format!("is not supported by meterpay in a [{}] price", input.kind),
        );
    }
    let price = match input.kind.as_str() {
        "flat" => {
            amount_member(v, &at("amount"), input.amount.as_ref()).map(|amount| Price::Flat {
                amount,
                payment_term: input.payment_term.unwrap_or(PaymentTerm::InAdvance),
            })
        }
        "unit" => amount_member(v, &at("amount"), input.amount.as_ref())
            .map(|amount| Price::Unit { amount }),
        "package" => {
            let amount = amount_member(v, &at("amount"), input.amount.as_ref());
            let per = amount_member(
                v,
                &at("quantity_per_package"),
                input.quantity_per_package.as_ref(),
            );
            if per.is_some_and(|p| p.is_zero()) {
                v.push(
                    at("quantity_per_package"),
                    Rule::Invalid,
                    "must be greater than zero",
                );
            }
            match (amount, per) {
                (Some(amount), Some(quantity_per_package)) if !quantity_per_package.is_zero() => {
                    Some(Price::Package {
                        amount,
                        quantity_per_package,
                    })
                }
                _ => None,
            }
        }
        "tiered" | "graduated" | "volume" => {
            let mode = match input.kind.as_str() {
                "graduated" => Some(TierMode::Graduated),
                "volume" => Some(TierMode::Volume),
                _ => {
                    if input.mode.is_none() {
                        v.push(
                            at("mode"),
                            Rule::Required,
                            "is required: volume or graduated",
                        );
                    }
                    input.mode
                }
            };
            let tiers = check_tiers(v, &at("tiers"), input.tiers.as_deref());
            mode.zip(tiers)
                .map(|(mode, tiers)| Price::Tiered { mode, tiers })
        }
        "dynamic" => {
            v.push(
                at("type"),
                Rule::Invalid,
                "dynamic prices are not supported by meterpay (they multiply metered cost); \
                 use a unit price",
            );
            None
        }
        "free" => {
            v.push(
                at("type"),
                Rule::Invalid,
                "a free price bills nothing; leave the line out",
            );
            None
        }
        other => {
            v.push(
                at("type"),
                Rule::Enum(PRICE_TYPES.iter().map(|s| (*s).to_owned()).collect()),
                format!("[{other}] is not one of the allowed values"),
            );
            None
        }
    };
    if v.len() > before { None } else { price }
}

fn check_tiers(v: &mut Violations, field: &str, tiers: Option<&[TierInput]>) -> Option<Vec<Tier>> {
    let Some(tiers) = tiers else {
        v.push(field, Rule::Required, "is required: at least one tier");
        return None;
    };
    if tiers.is_empty() {
        v.push(field, Rule::MinItems(1), "must hold at least one tier");
        return None;
    }
    let before = v.len();
    let mut out = Vec::with_capacity(tiers.len());
    let mut previous: Option<Decimal> = None;
    for (i, tier) in tiers.iter().enumerate() {
        let at = |member: &str| format!("{field}[{i}].{member}");
        let up_to = tier
            .up_to_amount
            .as_deref()
            .and_then(|t| non_negative(v, &at("up_to_amount"), t));
        match (tier.up_to_amount.is_some(), up_to) {
            (false, _) if i + 1 < tiers.len() => v.push(
                at("up_to_amount"),
                Rule::Required,
                "only the last tier may be open-ended",
            ),
            (true, Some(up_to)) if previous.is_some_and(|p| up_to <= p) || up_to.is_zero() => v
                .push(
                    at("up_to_amount"),
                    Rule::Invalid,
                    "must be greater than zero and than the previous tier's",
                ),
            _ => {}
        }
        previous = up_to.or(previous);
        let flat = tier
            .flat_price
            .as_deref()
            .and_then(|t| non_negative(v, &at("flat_price.amount"), t));
        let unit = tier
            .unit_price
            .as_deref()
            .and_then(|t| non_negative(v, &at("unit_price.amount"), t));
        if tier.flat_price.is_none() && tier.unit_price.is_none() {
            v.push(
                format!("{field}[{i}]"),
                Rule::Required,
                "needs a flat_price or a unit_price (or both)",
            );
        }
        out.push(Tier { up_to, flat, unit });
    }
    (v.len() == before).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        parse_numeric(text).unwrap()
    }

    fn cur(code: &str) -> CurrencyCode {
        CurrencyCode::parse(code).unwrap()
    }

    fn tiers(mode: TierMode, rows: &[(Option<&str>, Option<&str>, Option<&str>)]) -> Price {
        Price::Tiered {
            mode,
            tiers: rows
                .iter()
                .map(|(up_to, flat, unit)| Tier {
                    up_to: up_to.map(d),
                    flat: flat.map(d),
                    unit: unit.map(d),
                })
                .collect(),
        }
    }

    #[test]
    fn numeric_is_the_contracts_pattern() {
        for ok in ["0", "12", "-3", "1.5", "0.001", "100.10"] {
            assert!(parse_numeric(ok).is_some(), "{ok}");
        }
        for bad in [
            "", "1.", ".5", "1e3", "+1", "1,5", " 1", "1.2.3", "--1", "NaN",
        ] {
            assert!(parse_numeric(bad).is_none(), "{bad}");
        }
        // 18 digits before the point, 10 after: always a Decimal.
        let widest = format!("-{}.{}", "9".repeat(18), "9".repeat(10));
        assert!(parse_numeric(&widest).is_some());
        for bad in [
            format!("1{}", "0".repeat(18)),
            format!("0.{}", "0".repeat(11)),
            "9709478314857211808693202806410720".to_owned(),
        ] {
            assert!(parse_numeric(&bad).is_none(), "{bad}");
        }
        assert_eq!(format(d("100.10")), "100.1");
        assert_eq!(format(d("-0.00")), "0");
        assert_eq!(format(d("12.000")), "12");
    }

    /// (price, quantity, currency, line amount): each line is rounded once,
    /// half away from zero, to the currency's minor unit.
    #[test]
    fn money_table() {
        let flat = |a: &str| Price::Flat {
            amount: d(a),
            payment_term: PaymentTerm::InAdvance,
        };
        let unit = |a: &str| Price::Unit { amount: d(a) };
        let package = |a: &str, per: &str| Price::Package {
            amount: d(a),
            quantity_per_package: d(per),
        };
        let graduated = tiers(
            TierMode::Graduated,
            &[
                (Some("10"), Some("5"), Some("1")),
                (Some("100"), None, Some("0.5")),
                (None, Some("2"), Some("0.25")),
            ],
        );
        let volume = tiers(
            TierMode::Volume,
            &[
                (Some("10"), Some("5"), Some("1")),
                (Some("100"), None, Some("0.5")),
                (None, Some("2"), Some("0.25")),
            ],
        );
        let cases: Vec<(&str, Price, Option<&str>, &str, &str)> = vec![
            ("flat USD", flat("19.99"), None, "USD", "19.99"),
            ("flat USD half up", flat("0.125"), None, "USD", "0.13"),
            ("flat USD below half", flat("0.1249"), None, "USD", "0.12"),
            ("flat JPY", flat("1500.5"), None, "JPY", "1501"),
            ("flat JPY below half", flat("1500.49"), None, "JPY", "1500"),
            ("flat KWD", flat("1.2345"), None, "KWD", "1.235"),
            ("flat KWD exact", flat("1.234"), None, "KWD", "1.234"),
            ("unit USD", unit("0.015"), Some("3"), "USD", "0.05"),
            (
                "unit USD one third",
                unit("0.01"),
                Some("0.5"),
                "USD",
                "0.01",
            ),
            ("unit JPY", unit("0.3"), Some("5"), "JPY", "2"),
            ("unit JPY half", unit("0.5"), Some("5"), "JPY", "3"),
            ("unit KWD", unit("0.0005"), Some("3"), "KWD", "0.002"),
            ("unit zero quantity", unit("3"), Some("0"), "USD", "0"),
            (
                "graduated within tier 1",
                graduated.clone(),
                Some("4"),
                "USD",
                "9",
            ),
            (
                "graduated at tier 1 bound",
                graduated.clone(),
                Some("10"),
                "USD",
                "15",
            ),
            (
                "graduated tier 2",
                graduated.clone(),
                Some("11"),
                "USD",
                "15.5",
            ),
            (
                "graduated tier 3",
                graduated.clone(),
                Some("101"),
                "USD",
                "62.25",
            ),
            ("graduated zero", graduated.clone(), Some("0"), "USD", "0"),
            (
                "graduated KWD fraction",
                graduated.clone(),
                Some("10.0013"),
                "KWD",
                "15.001",
            ),
            ("graduated JPY", graduated.clone(), Some("11"), "JPY", "16"),
            ("volume tier 1", volume.clone(), Some("10"), "USD", "15"),
            ("volume tier 2", volume.clone(), Some("11"), "USD", "5.5"),
            ("volume tier 3", volume.clone(), Some("200"), "USD", "52"),
            (
                "volume zero charges the first tier's flat",
                volume.clone(),
                Some("0"),
                "USD",
                "5",
            ),
            ("volume JPY", volume.clone(), Some("13"), "JPY", "7"),
            (
                "package partial rounds up",
                package("10", "100"),
                Some("101"),
                "USD",
                "20",
            ),
            (
                "package exact",
                package("10", "100"),
                Some("200"),
                "USD",
                "20",
            ),
            ("package zero", package("10", "100"), Some("0"), "USD", "0"),
            (
                "package JPY",
                package("999.5", "1"),
                Some("1"),
                "JPY",
                "1000",
            ),
            (
                "package KWD",
                package("0.0015", "10"),
                Some("5"),
                "KWD",
                "0.002",
            ),
        ];
        for (name, price, quantity, currency, want) in cases {
            let decimals = cur(currency).minor_units();
            let got = line_amount(&price, quantity.map(d), decimals).unwrap();
            assert_eq!(format(got), want, "{name}");
        }
    }

    #[test]
    fn rounding_is_half_away_from_zero_and_minor_units_follow() {
        assert_eq!(format(round_to_currency(d("-0.125"), &cur("USD"))), "-0.13");
        assert_eq!(format(round_to_currency(d("2.5"), &cur("JPY"))), "3");
        assert_eq!(format(round_to_currency(d("-2.5"), &cur("JPY"))), "-3");
        assert_eq!(to_minor_units(d("19.99"), &cur("USD")), Some(1999));
        assert_eq!(to_minor_units(d("1500.5"), &cur("JPY")), Some(1501));
        assert_eq!(to_minor_units(d("1.2345"), &cur("KWD")), Some(1235));
        assert_eq!(to_minor_units(d("0.005"), &cur("USD")), Some(1));
    }

    #[test]
    fn amounts_beyond_the_largest_line_are_refused_not_overflowed() {
        let big = "9".repeat(18);
        let usd = cur("USD");
        let unit = Price::Unit { amount: d(&big) };
        assert_eq!(
            line_amount(&unit, Some(d(&big)), usd.minor_units()),
            Err(QuantityBeyondTiers::TooLarge)
        );
        let package = Price::Package {
            amount: d(&big),
            quantity_per_package: d("0.0000000001"),
        };
        assert_eq!(
            line_amount(&package, Some(d(&big)), usd.minor_units()),
            Err(QuantityBeyondTiers::TooLarge)
        );
        let graduated = tiers(
            TierMode::Graduated,
            &[
                (Some(&big), Some(&big), Some(&big)),
                (None, Some(&big), Some(&big)),
            ],
        );
        assert_eq!(
            line_amount(&graduated, Some(d(&big)), usd.minor_units()),
            Err(QuantityBeyondTiers::TooLarge)
        );
        assert_eq!(
            line_amount(&unit, Some(d("1")), usd.minor_units()),
            Err(QuantityBeyondTiers::TooLarge)
        );
        let at_most = Price::Unit {
            amount: d("1000000000000000"),
        };
        assert_eq!(
            line_amount(&at_most, Some(d("1")), usd.minor_units()),
            Ok(MAX_LINE_AMOUNT)
        );
    }

    #[test]
    fn quantity_beyond_the_last_tier_is_refused() {
        let bounded = tiers(TierMode::Graduated, &[(Some("10"), None, Some("1"))]);
        assert_eq!(
            bounded.amount(d("11")),
            Err(QuantityBeyondTiers::Tiers {
                last_bound: d("10")
            })
        );
        let bounded = tiers(TierMode::Volume, &[(Some("10"), None, Some("1"))]);
        assert!(bounded.amount(d("10.5")).is_err());
    }

    fn problems(input: &PriceInput) -> Vec<(String, Rule)> {
        let mut v = Violations::default();
        let price = check_price(&mut v, "price", input);
        let errors = v.into_result().err().map(|e| match e {
            crate::error::Error::Invalid(list) => list,
            _ => unreachable!(),
        });
        match errors {
            None => {
                assert!(price.is_some());
                Vec::new()
            }
            Some(list) => {
                assert!(price.is_none());
                list.into_iter().map(|e| (e.field, e.rule)).collect()
            }
        }
    }

    #[test]
    fn prices_are_checked_and_unsupported_features_named() {
        let s = |t: &str| Some(t.to_owned());
        assert_eq!(
            problems(&PriceInput {
                kind: "unit".into(),
                amount: s("1"),
                minimum_amount: s("10"),
                maximum_amount: s("20"),
                ..Default::default()
            }),
            [
                ("price.minimum_amount".to_owned(), Rule::Invalid),
                ("price.maximum_amount".to_owned(), Rule::Invalid)
            ]
        );
        assert_eq!(
            problems(&PriceInput {
                kind: "dynamic".into(),
                ..Default::default()
            }),
            [("price.type".to_owned(), Rule::Invalid)]
        );
        assert_eq!(
            problems(&PriceInput {
                kind: "flat".into(),
                amount: s("-1"),
                ..Default::default()
            }),
            [("price.amount".to_owned(), Rule::Invalid)]
        );
        assert_eq!(
            problems(&PriceInput {
                kind: "unit".into(),
                amount: s("1e2"),
                ..Default::default()
            }),
            [("price.amount".to_owned(), Rule::MatchesRegex)]
        );
        assert_eq!(
            problems(&PriceInput {
                kind: "package".into(),
                amount: s("1"),
                quantity_per_package: s("0"),
                ..Default::default()
            }),
            [("price.quantity_per_package".to_owned(), Rule::Invalid)]
        );
        assert_eq!(
            problems(&PriceInput {
                kind: "tiered".into(),
                tiers: Some(vec![
                    TierInput {
                        up_to_amount: None,
                        unit_price: s("1"),
                        ..Default::default()
                    },
                    TierInput {
                        up_to_amount: s("5"),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            [
                ("price.mode".to_owned(), Rule::Required),
                ("price.tiers[0].up_to_amount".to_owned(), Rule::Required),
                ("price.tiers[1]".to_owned(), Rule::Required),
            ]
        );
        assert_eq!(
            problems(&PriceInput {
                kind: "volume".into(),
                tiers: Some(vec![
                    TierInput {
                        up_to_amount: s("5"),
                        unit_price: s("1"),
                        ..Default::default()
                    },
                    TierInput {
                        up_to_amount: s("5"),
                        flat_price: s("1"),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            [("price.tiers[1].up_to_amount".to_owned(), Rule::Invalid)]
        );
        assert_eq!(
            problems(&PriceInput {
                kind: "graduated".into(),
                tiers: Some(vec![TierInput {
                    unit_price: s("0.5"),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            []
        );
    }
}
