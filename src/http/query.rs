//! The query-string extractor: [`ApiQuery<T>`] deserialises the
//! `application/x-www-form-urlencoded` pairs of a request's query into a
//! typed struct (serde names, e.g. `#[serde(rename = "page[size]")]`), and
//! refuses bad input as the JSON body extractor does: a 400 problem with one
//! `invalid_parameters` entry per offending parameter (`source: query`), in
//! the order they were sent.
//!
//! The struct says what it takes:
//! - `#[serde(default, deny_unknown_fields)]`: every parameter is optional,
//!   and one it does not name is refused by name ([`QueryParams::KNOWN`]
//!   lists the accepted ones in the message);
//! - a field named `p` also takes every `p[…]` parameter it does not name
//!   exactly, as a map from the whole name to the value (the v3
//!   `filter[field][operator]` notation): see [`Group`];
//! - values are strings, integers, booleans or unit enums; a value type that
//!   knows more (a range, a list, a ULID) reports its own rule with
//!   [`fault`].
//!
//! A parameter sent twice keeps its last value (as the hand-written parsers
//! did); grouped parameters keep them all.

use std::fmt::{self, Display};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::error::{Error, FieldError, Rule, Source};

/// A typed query string; see the module documentation.
pub struct ApiQuery<T>(pub T);

/// A struct [`ApiQuery`] can fill.
pub trait QueryParams: DeserializeOwned {
    /// How the message refusing an unknown parameter ends (`use page or
    /// pageSize`); empty for a bare "is not a known query parameter".
    const KNOWN: &'static str = "";
}

impl<S: Send + Sync, T: QueryParams> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        from_query(parts.uri.query()).map(ApiQuery)
    }
}

/// Deserialises a raw query string (without the `?`) into `T`.
pub fn from_query<T: QueryParams>(raw: Option<&str>) -> Result<T, Error> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let whole = match T::deserialize(Pairs(&pairs)) {
        Ok(value) => return Ok(value),
        Err(err) => err,
    };
    // Name every offending parameter, not just the first: each alone.
    let mut errors: Vec<FieldError> = pairs
        .iter()
        .filter_map(|pair| T::deserialize(Pairs(std::slice::from_ref(pair))).err())
        .map(|err| err.into_field_error::<T>())
        .collect();
    if errors.is_empty() {
        errors.push(whole.into_field_error::<T>());
    }
    Err(Error::Invalid(errors))
}

/// The error a value type returns (through `D::Error::custom`) to report
/// its own rule and reason; the parameter's name is added by the extractor.
pub fn fault<E: de::Error>(rule: Rule, reason: impl Display) -> E {
    E::custom(Fault {
        field: "",
        rule,
        reason,
    })
}

/// [`fault`] for a named parameter (a member of a group).
pub fn fault_at<E: de::Error>(field: &str, rule: Rule, reason: impl Display) -> E {
    E::custom(Fault {
        field,
        rule,
        reason,
    })
}

/// Carries a rule through serde's string-only custom errors.
struct Fault<'a, R> {
    field: &'a str,
    rule: Rule,
    reason: R,
}

const MARK: char = '\u{0}';

impl<R: Display> Display for Fault<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = match &self.rule {
            Rule::Type => "type".to_owned(),
            Rule::MatchesRegex => "matches_regex".to_owned(),
            Rule::Min(n) => format!("min={n}"),
            Rule::Max(n) => format!("max={n}"),
            Rule::Enum(choices) => format!("enum={}", choices.join("\u{1}")),
            _ => "invalid".to_owned(),
        };
        write!(f, "{MARK}{rule}{MARK}{}{MARK}{}", self.field, self.reason)
    }
}

fn parse_fault(message: &str) -> Option<(Rule, &str, String)> {
    let rest = message.strip_prefix(MARK)?;
    let (rule, rest) = rest.split_once(MARK)?;
    let (field, reason) = rest.split_once(MARK)?;
    let rule = match rule.split_once('=') {
        None if rule == "type" => Rule::Type,
        None if rule == "matches_regex" => Rule::MatchesRegex,
        Some(("min", n)) => Rule::Min(n.parse().ok()?),
        Some(("max", n)) => Rule::Max(n.parse().ok()?),
        Some(("enum", choices)) => Rule::Enum(choices.split('\u{1}').map(str::to_owned).collect()),
        _ => Rule::Invalid,
    };
    Some((rule, field, reason.to_owned()))
}

#[derive(Debug)]
pub struct QueryError {
    /// The parameter at fault, once known.
    field: Option<String>,
    rule: Rule,
    reason: String,
}

impl QueryError {
    fn new(rule: Rule, reason: impl Into<String>) -> Self {
        QueryError {
            field: None,
            rule,
            reason: reason.into(),
        }
    }

    fn at(mut self, field: &str) -> Self {
        self.field.get_or_insert_with(|| field.to_owned());
        self
    }

    fn into_field_error<T: QueryParams>(self) -> FieldError {
        let reason = match (&self.rule, T::KNOWN) {
            (Rule::UnknownProperty, "") => "is not a known query parameter".to_owned(),
            (Rule::UnknownProperty, known) => {
                format!("is not a known query parameter; use {known}")
            }
            _ => self.reason,
        };
        FieldError::new(
            self.field.unwrap_or_else(|| "query".to_owned()),
            self.rule,
            reason,
        )
        .in_source(Source::Query)
    }
}

impl Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for QueryError {}

impl de::Error for QueryError {
    fn custom<M: Display>(msg: M) -> Self {
        let message = msg.to_string();
        match parse_fault(&message) {
            Some((rule, "", reason)) => QueryError::new(rule, reason),
            Some((rule, field, reason)) => QueryError::new(rule, reason).at(field),
            None => QueryError::new(Rule::Invalid, message),
        }
    }

    fn unknown_field(field: &str, _: &'static [&'static str]) -> Self {
        QueryError::new(Rule::UnknownProperty, "").at(field)
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        QueryError::new(
            Rule::Enum(expected.iter().map(|s| (*s).to_owned()).collect()),
            format!("[{variant}] is not one of the allowed values"),
        )
    }
}

/// The whole query: a map from parameter names to values.
struct Pairs<'a>(&'a [(String, String)]);

/// One entry the struct's visitor sees.
enum Entry<'a> {
    One(&'a str),
    Group(Vec<(&'a str, &'a str)>),
}

impl<'de, 'a> Deserializer<'de> for Pairs<'a> {
    type Error = QueryError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        self.deserialize_struct("", &[], visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, QueryError> {
        let mut entries: Vec<(&str, Entry<'a>)> = Vec::new();
        for (name, value) in self.0 {
            let group = (!fields.contains(&name.as_str()))
                .then(|| {
                    fields.iter().find(|f| {
                        name.strip_prefix(**f)
                            .is_some_and(|rest| rest.starts_with('['))
                    })
                })
                .flatten();
            match group {
                Some(field) => match entries.iter_mut().find(|(k, _)| k == field) {
                    Some((_, Entry::Group(members))) => members.push((name, value)),
                    _ => entries.push((field, Entry::Group(vec![(name, value)]))),
                },
                None => {
                    entries.retain(|(k, _)| *k != name.as_str());
                    entries.push((name, Entry::One(value)));
                }
            }
        }
        visitor.visit_map(EntriesAccess {
            entries: entries.into_iter(),
            current: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

struct EntriesAccess<'a, I> {
    entries: I,
    current: Option<(&'a str, Entry<'a>)>,
}

impl<'de, 'a, I: Iterator<Item = (&'a str, Entry<'a>)>> MapAccess<'de> for EntriesAccess<'a, I> {
    type Error = QueryError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, QueryError> {
        let Some((name, entry)) = self.entries.next() else {
            return Ok(None);
        };
        self.current = Some((name, entry));
        seed.deserialize(name.into_deserializer())
            .map(Some)
            .map_err(|e: QueryError| e.at(name))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, QueryError> {
        let (name, entry) = self
            .current
            .take()
            .ok_or_else(|| QueryError::new(Rule::Invalid, "value without a name"))?;
        match entry {
            Entry::One(value) => seed.deserialize(Value(value)).map_err(|e| e.at(name)),
            Entry::Group(members) => seed.deserialize(GroupDeserializer(members)),
        }
    }
}

/// The `p[…]` parameters a field `p` takes, keyed by their whole names.
struct GroupDeserializer<'a>(Vec<(&'a str, &'a str)>);

impl<'de, 'a> Deserializer<'de> for GroupDeserializer<'a> {
    type Error = QueryError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_map(GroupAccess {
            members: self.0.into_iter(),
            current: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct GroupAccess<'a> {
    members: std::vec::IntoIter<(&'a str, &'a str)>,
    current: Option<(&'a str, &'a str)>,
}

impl<'de, 'a> MapAccess<'de> for GroupAccess<'a> {
    type Error = QueryError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, QueryError> {
        let Some((name, value)) = self.members.next() else {
            return Ok(None);
        };
        self.current = Some((name, value));
        seed.deserialize(name.into_deserializer())
            .map(Some)
            .map_err(|e: QueryError| e.at(name))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, QueryError> {
        let (name, value) = self
            .current
            .take()
            .ok_or_else(|| QueryError::new(Rule::Invalid, "value without a name"))?;
        seed.deserialize(Value(value)).map_err(|e| e.at(name))
    }
}

/// One parameter's value.
struct Value<'a>(&'a str);

impl<'de, 'a> Deserializer<'de> for Value<'a> {
    type Error = QueryError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_str(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_some(self)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        match self.0 {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            _ => Err(QueryError::new(Rule::Type, "must be true or false")),
        }
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        match self.0.parse() {
            Ok(n) => visitor.visit_u64(n),
            Err(_) => Err(QueryError::new(
                Rule::Type,
                format!("[{}] is not a whole number", self.0),
            )),
        }
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, QueryError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, QueryError> {
        visitor.visit_enum(self.0.into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

/// A whole number within `MIN..=MAX` (a page number, a page size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded<const MIN: u64, const MAX: u64>(pub u64);

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(deserializer)?;
        if n < MIN {
            return Err(fault(Rule::Min(MIN), format!("must be at least {MIN}")));
        }
        if n > MAX {
            return Err(fault(Rule::Max(MAX), format!("must be at most {MAX}")));
        }
        Ok(Bounded(n))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Sample {
        #[serde(rename = "page[size]")]
        size: Option<Bounded<1, 10>>,
        flag: Option<bool>,
        filter: BTreeMap<String, String>,
    }

    impl QueryParams for Sample {
        const KNOWN: &'static str = "page[size], flag or filter[…]";
    }

    fn problems(raw: &str) -> Vec<(String, Rule, String)> {
        match from_query::<Sample>(Some(raw)) {
            Err(Error::Invalid(errors)) => errors
                .into_iter()
                .map(|e| (e.field, e.rule, e.reason))
                .collect(),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn typed_values_and_groups() {
        let s = from_query::<Sample>(Some(
            "page%5Bsize%5D=3&filter[a]=1&filter[b][eq]=2&flag=true",
        ))
        .unwrap();
        assert_eq!(s.size, Some(Bounded(3)));
        assert_eq!(s.flag, Some(true));
        assert_eq!(
            s.filter.into_iter().collect::<Vec<_>>(),
            [
                ("filter[a]".into(), "1".into()),
                ("filter[b][eq]".into(), "2".into())
            ]
        );
        assert_eq!(from_query::<Sample>(None).unwrap().size, None);
        // The last of a repeated parameter wins.
        assert_eq!(
            from_query::<Sample>(Some("page[size]=1&page[size]=2"))
                .unwrap()
                .size,
            Some(Bounded(2))
        );
    }

    #[test]
    fn every_offender_by_name_in_order() {
        assert_eq!(
            problems("page[size]=11&limit=3&flag=maybe&page[size]=x"),
            [
                (
                    "page[size]".into(),
                    Rule::Max(10),
                    "must be at most 10".into()
                ),
                (
                    "limit".into(),
                    Rule::UnknownProperty,
                    "is not a known query parameter; use page[size], flag or filter[…]".into()
                ),
                ("flag".into(), Rule::Type, "must be true or false".into()),
                (
                    "page[size]".into(),
                    Rule::Type,
                    "[x] is not a whole number".into()
                ),
            ]
        );
    }
}
