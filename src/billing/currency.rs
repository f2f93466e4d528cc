//! ISO 4217 currency codes. Only codes ISO currently lists are accepted: a typo
//! such as `USS` must fail at the API, not later at Stripe or on an invoice.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Active ISO 4217 alphabetic codes (list of 2025), sorted for binary search.
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD",
    "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUP", "CVE",
    "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL",
    "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR",
    "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD",
    "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK",
    "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO",
    "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON",
    "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD",
    "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD",
    "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES", "VND", "VUV",
    "WST", "XAD", "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG", "XDR", "XOF",
    "XPD", "XPF", "XPT", "XSU", "XTS", "XUA", "XXX", "YER", "ZAR", "ZMW", "ZWG",
];

/// An upper-case ISO 4217 code that ISO actually lists.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CurrencyCode(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CurrencyError {
    #[error("must be a three-letter upper-case ISO 4217 code such as USD")]
    Format,
    #[error("[{0}] is not an ISO 4217 currency code")]
    Unknown(String),
}

impl CurrencyCode {
    /// Every code [`CurrencyCode::parse`] accepts.
    pub const ALL: &'static [&'static str] = ISO_4217;

    pub fn parse(code: &str) -> Result<Self, CurrencyError> {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(CurrencyError::Format);
        }
        if ISO_4217.binary_search(&code).is_err() {
            return Err(CurrencyError::Unknown(code.to_owned()));
        }
        Ok(Self(code.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How many decimals the currency's minor unit has (ISO 4217's "minor
    /// unit"): 0 for JPY, 2 for USD, 3 for KWD. Codes without a minor unit
    /// of their own (funds, metals, testing codes) count as 2.
    pub fn minor_units(&self) -> u32 {
        if ZERO_DECIMALS.binary_search(&self.as_str()).is_ok() {
            0
        } else if THREE_DECIMALS.binary_search(&self.as_str()).is_ok() {
            3
        } else if FOUR_DECIMALS.binary_search(&self.as_str()).is_ok() {
            4
        } else {
            2
        }
    }
}

/// ISO 4217 codes whose minor unit has no decimals, sorted.
const ZERO_DECIMALS: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];
/// ISO 4217 codes whose minor unit has three decimals, sorted.
const THREE_DECIMALS: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
/// ISO 4217 codes whose minor unit has four decimals, sorted.
const FOUR_DECIMALS: &[&str] = &["CLF", "UYW"];

impl TryFrom<String> for CurrencyCode {
    type Error = CurrencyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CurrencyCode> for String {
    fn from(value: CurrencyCode) -> Self {
        value.0
    }
}

impl fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_sorted_for_binary_search() {
        assert!(ISO_4217.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn minor_unit_lists_are_sorted_known_codes() {
        for list in [ZERO_DECIMALS, THREE_DECIMALS, FOUR_DECIMALS] {
            assert!(list.windows(2).all(|w| w[0] < w[1]));
            assert!(
                list.iter().all(|c| ISO_4217.binary_search(c).is_ok()),
                "{list:?}"
            );
        }
        let units = |code: &str| CurrencyCode::parse(code).unwrap().minor_units();
        assert_eq!(
            [
                units("JPY"),
                units("USD"),
                units("EUR"),
                units("KWD"),
                units("CLF")
            ],
            [0, 2, 2, 3, 4]
        );
    }

    #[test]
    fn accepts_real_codes_only() {
        assert_eq!(CurrencyCode::parse("USD").unwrap().as_str(), "USD");
        assert_eq!(CurrencyCode::parse("usd"), Err(CurrencyError::Format));
        assert_eq!(CurrencyCode::parse("US"), Err(CurrencyError::Format));
        assert_eq!(
            CurrencyCode::parse("USS"),
            Err(CurrencyError::Unknown("USS".into()))
        );
    }
}
