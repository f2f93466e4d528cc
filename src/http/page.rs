//! Page-based pagination for list endpoints that take nothing else:
//! v3 `page[size]`/`page[number]` with a `meta.page` block, v1
//! `page`/`pageSize` with `totalCount`. Unknown query parameters are refused
//! by name.

use serde::Serialize;

use super::extract::{query_error, query_int, query_pairs};
use crate::error::{Error, FieldError, Rule};

pub const V3_DEFAULT_SIZE: u64 = 20;
pub const V1_DEFAULT_SIZE: u64 = 100;
pub const MAX_SIZE: u64 = 1000;

pub use crate::store::Page;

impl Page {
    /// `page[size]` and `page[number]` only.
    pub fn from_v3_query(raw: Option<&str>) -> Result<Page, Error> {
        Page::from_v3_query_with(raw, "", |_, _| None)
    }

    /// `page[size]`, `page[number]`, and the parameters `other` takes: it
    /// answers `None` for a name that is not its own. `others` names them
    /// for the message that refuses an unknown parameter.
    pub fn from_v3_query_with(
        raw: Option<&str>,
        others: &str,
        other: impl FnMut(&str, &str) -> Option<Result<(), FieldError>>,
    ) -> Result<Page, Error> {
        Page::parse(
            raw,
            ("page[number]", "page[size]"),
            V3_DEFAULT_SIZE,
            others,
            other,
        )
    }

    /// `page` and `pageSize` only.
    pub fn from_v1_query(raw: Option<&str>) -> Result<Page, Error> {
        Page::parse(raw, ("page", "pageSize"), V1_DEFAULT_SIZE, "", |_, _| None)
    }

    fn parse(
        raw: Option<&str>,
        (number, size): (&str, &str),
        default_size: u64,
        others: &str,
        mut other: impl FnMut(&str, &str) -> Option<Result<(), FieldError>>,
    ) -> Result<Page, Error> {
        let mut page = Page {
            number: 1,
            size: default_size,
        };
        let mut errors = Vec::new();
        for (name, value) in query_pairs(raw) {
            let outcome = if name == number {
                query_int(&name, &value, 1, u64::from(u32::MAX)).map(|n| page.number = n)
            } else if name == size {
                query_int(&name, &value, 1, MAX_SIZE).map(|n| page.size = n)
            } else if let Some(outcome) = other(&name, &value) {
                outcome
            } else {
                let known = if others.is_empty() {
                    format!("{number} or {size}")
                } else {
                    format!("{number}, {size} or {others}")
                };
                Err(query_error(
                    &name,
                    Rule::UnknownProperty,
                    format!("is not a known query parameter; use {known}"),
                ))
            };
            if let Err(e) = outcome {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(page)
        } else {
            Err(Error::Invalid(errors))
        }
    }

    pub fn v3_meta(&self, total: u64) -> PaginatedMeta {
        PaginatedMeta {
            page: PageMeta {
                number: self.number,
                size: self.size,
                total,
            },
        }
    }
}

/// v3 `PaginatedMeta`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaginatedMeta {
    pub page: PageMeta,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PageMeta {
    pub number: u64,
    pub size: u64,
    pub total: u64,
}

/// A v3 page-paginated response: `{data, meta}`.
#[derive(Debug, Serialize)]
pub struct V3Page<T> {
    pub data: Vec<T>,
    pub meta: PaginatedMeta,
}

/// A v1 paginated response: `{totalCount, page, pageSize, items}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct V1Page<T> {
    pub total_count: u64,
    pub page: u64,
    pub page_size: u64,
    pub items: Vec<T>,
}

impl<T> V1Page<T> {
    pub fn new(page: Page, total: u64, items: Vec<T>) -> V1Page<T> {
        V1Page {
            total_count: total,
            page: page.number,
            page_size: page.size,
            items,
        }
    }
}
