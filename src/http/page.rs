//! Page-based pagination for list endpoints that take nothing else:
//! v3 `page[size]`/`page[number]` with a `meta.page` block, v1
//! `page`/`pageSize` with `totalCount`. Unknown query parameters are refused
//! by name.

use serde::Serialize;

use super::extract::{query_error, query_int, query_pairs};
use crate::error::{Error, Rule};

pub const V3_DEFAULT_SIZE: u64 = 20;
pub const V1_DEFAULT_SIZE: u64 = 100;
pub const MAX_SIZE: u64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// 1-based.
    pub number: u64,
    pub size: u64,
}

impl Page {
    pub fn offset(&self) -> u64 {
        self.number.saturating_sub(1).saturating_mul(self.size)
    }

    /// `page[size]` and `page[number]` only.
    pub fn from_v3_query(raw: Option<&str>) -> Result<Page, Error> {
        Page::parse(raw, "page[number]", "page[size]", V3_DEFAULT_SIZE)
    }

    /// `page` and `pageSize` only.
    pub fn from_v1_query(raw: Option<&str>) -> Result<Page, Error> {
        Page::parse(raw, "page", "pageSize", V1_DEFAULT_SIZE)
    }

    fn parse(
        raw: Option<&str>,
        number: &str,
        size: &str,
        default_size: u64,
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
            } else {
                Err(query_error(
                    &name,
                    Rule::UnknownProperty,
                    format!("is not a known query parameter; use {number} or {size}"),
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
#[derive(Debug, Serialize)]
pub struct PaginatedMeta {
    pub page: PageMeta,
}

#[derive(Debug, Serialize)]
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
