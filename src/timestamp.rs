//! One timestamp format everywhere: RFC 3339 in UTC with microseconds
//! (`2026-11-24T22:13:00.123456Z`). Fixed width, so it also sorts as text in
//! the database, and a value read back equals the value written.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

const FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// Now, truncated to microseconds so it survives a round trip through storage.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

pub fn format(ts: OffsetDateTime) -> String {
    ts.to_offset(UtcOffset::UTC)
        .format(FORMAT)
        .unwrap_or_else(|_| unreachable_format(ts))
}

// Formatting with a fixed description only fails for years outside 0..=9999,
// which `now()` cannot produce; fall back to the RFC 3339 formatter.
fn unreachable_format(ts: OffsetDateTime) -> String {
    ts.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub fn parse(text: &str) -> Result<OffsetDateTime, time::error::Parse> {
    PrimitiveDateTime::parse(text, FORMAT)
        .map(PrimitiveDateTime::assume_utc)
        .or_else(|_| OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339))
}

/// `#[serde(with = "crate::timestamp::serde")]`
pub mod serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(ts: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*ts))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        super::parse(&text).map_err(serde::de::Error::custom)
    }

    pub mod option {
        use serde::Serializer;
        use time::OffsetDateTime;

        pub fn serialize<S: Serializer>(
            ts: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match ts {
                Some(ts) => s.serialize_str(&super::super::format(*ts)),
                None => s.serialize_none(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let ts = now();
        assert_eq!(parse(&format(ts)).unwrap(), ts);
        assert!(format(ts).ends_with('Z'));
        assert_eq!(format(ts).len(), 27);
    }
}
