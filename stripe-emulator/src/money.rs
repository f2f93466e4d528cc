//! Money as Stripe handles it: integer amounts in a currency's minor unit (cents for USD, yen for
//! JPY, fils for KWD), decimal unit amounts (`unit_amount_decimal`, up to 12 decimal places of
//! the minor unit) times decimal quantities (`quantity_decimal`), and the display of an amount
//! with its currency's decimal places (0 for JPY, 2 for USD, 3 for KWD).

/// Decimal places of the minor unit behind the rounding point: 10^12.
const SCALE_DIGITS: u32 = 12;
const SCALE: i128 = 1_000_000_000_000;

/// A decimal string (`"12"`, `"0.5"`, `"-3.125"`) as an integer scaled by 10^12; None when it is
/// not a decimal number with at most 12 decimal places.
pub fn parse_decimal(text: &str) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
        || fraction.len() > SCALE_DIGITS as usize
        || whole.len() > 15
    {
        return None;
    }
    let whole: i128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let fraction_value: i128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<i128>().ok()? * 10_i128.pow(SCALE_DIGITS - fraction.len() as u32)
    };
    let value = whole * SCALE + fraction_value;
    Some(if negative { -value } else { value })
}

/// A scaled decimal written back as the shortest decimal string (`"2.5"`, `"3"`).
pub fn format_decimal(value: i128) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let magnitude = value.unsigned_abs();
    let whole = magnitude / SCALE as u128;
    let fraction = magnitude % SCALE as u128;
    if fraction == 0 {
        format!("{sign}{whole}")
    } else {
        let digits = format!("{fraction:012}");
        format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// `unit × quantity` (both scaled by 10^12) rounded to a whole minor unit, halves away from
/// zero; None when it does not fit an i64.
pub fn amount_of(unit: i128, quantity: i128) -> Option<i64> {
    let product = unit.checked_mul(quantity)?;
    let divisor = SCALE * SCALE;
    let whole = product / divisor;
    let remainder = product % divisor;
    let rounded = if remainder.abs() * 2 >= divisor {
        whole + product.signum()
    } else {
        whole
    };
    i64::try_from(rounded).ok()
}

/// A whole number as a scaled decimal.
pub fn from_integer(value: i64) -> i128 {
    i128::from(value) * SCALE
}

/// Decimal places of a currency's minor unit (ISO 4217 as Stripe uses it).
pub fn exponent(currency: &str) -> u32 {
    match currency.to_ascii_lowercase().as_str() {
        "bif" | "clp" | "djf" | "gnf" | "jpy" | "kmf" | "krw" | "mga" | "pyg" | "rwf" | "ugx"
        | "vnd" | "vuv" | "xaf" | "xof" | "xpf" => 0,
        "bhd" | "jod" | "kwd" | "omr" | "tnd" => 3,
        _ => 2,
    }
}

/// An amount in minor units for people: `"¥1,500"`-style without symbols, as
/// `"1500 JPY"`, `"12.34 USD"`, `"1.250 KWD"`.
pub fn display(amount: i64, currency: &str) -> String {
    let places = exponent(currency);
    let code = currency.to_ascii_uppercase();
    let sign = if amount < 0 { "-" } else { "" };
    let magnitude = amount.unsigned_abs();
    if places == 0 {
        return format!("{sign}{magnitude} {code}");
    }
    let divisor = 10_u64.pow(places);
    format!(
        "{sign}{}.{:0width$} {code}",
        magnitude / divisor,
        magnitude % divisor,
        width = places as usize
    )
}

/// Whether `currency` looks like an ISO 4217 code (three ASCII letters).
pub fn is_currency(currency: &str) -> bool {
    currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_and_format() {
        assert_eq!(parse_decimal("12"), Some(12 * SCALE));
        assert_eq!(parse_decimal("0.5"), Some(SCALE / 2));
        assert_eq!(parse_decimal(".25"), Some(SCALE / 4));
        assert_eq!(parse_decimal("-1.5"), Some(-3 * SCALE / 2));
        assert_eq!(parse_decimal("1.0000000000001"), None);
        assert_eq!(parse_decimal("abc"), None);
        assert_eq!(parse_decimal(""), None);
        assert_eq!(parse_decimal("1e3"), None);
        assert_eq!(format_decimal(parse_decimal("2.50").unwrap()), "2.5");
        assert_eq!(format_decimal(parse_decimal("3").unwrap()), "3");
        assert_eq!(format_decimal(parse_decimal("-0.125").unwrap()), "-0.125");
    }

    #[test]
    fn amounts_round_half_away_from_zero() {
        let unit = parse_decimal("0.5").unwrap();
        assert_eq!(amount_of(unit, from_integer(3)), Some(2)); // 1.5 → 2
        assert_eq!(amount_of(unit, from_integer(1)), Some(1)); // 0.5 → 1
        assert_eq!(
            amount_of(parse_decimal("0.4").unwrap(), from_integer(1)),
            Some(0)
        );
        assert_eq!(
            amount_of(parse_decimal("-0.5").unwrap(), from_integer(1)),
            Some(-1)
        );
        assert_eq!(
            amount_of(
                parse_decimal("1999.5").unwrap(),
                parse_decimal("2.5").unwrap()
            ),
            Some(4999)
        ); // 4998.75
    }

    #[test]
    fn currencies_show_their_decimal_places() {
        assert_eq!(display(1500, "jpy"), "1500 JPY");
        assert_eq!(display(1234, "usd"), "12.34 USD");
        assert_eq!(display(5, "usd"), "0.05 USD");
        assert_eq!(display(1250, "kwd"), "1.250 KWD");
        assert_eq!(display(-7, "kwd"), "-0.007 KWD");
    }
}
