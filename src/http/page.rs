//! Page-based pagination: v3 `page[size]`/`page[number]` with a `meta.page`
//! block, v1 `page`/`pageSize` with `totalCount`. The query structs here are
//! read by [`ApiQuery`](super::query::ApiQuery); list endpoints that take
//! more parameters repeat the two page fields in their own struct.

use serde::{Deserialize, Serialize};

use super::query::{Bounded, QueryParams};

pub const V3_DEFAULT_SIZE: u64 = 20;
pub const V1_DEFAULT_SIZE: u64 = 100;
pub const MAX_SIZE: u64 = 1000;
pub const MAX_NUMBER: u64 = u32::MAX as u64;

/// A 1-based page number.
pub type PageNumber = Bounded<1, MAX_NUMBER>;
/// Items per page.
pub type PageSize = Bounded<1, MAX_SIZE>;

pub use crate::store::Page;

/// `page[number]` and `page[size]` only.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct V3PageQuery {
    #[serde(rename = "page[number]")]
    #[param(value_type = Option<u64>, minimum = 1, maximum = 4294967295u64)]
    pub number: Option<PageNumber>,
    #[serde(rename = "page[size]")]
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    pub size: Option<PageSize>,
}

impl QueryParams for V3PageQuery {
    const KNOWN: &'static str = "page[number] or page[size]";
}

impl V3PageQuery {
    pub fn page(&self) -> Page {
        Page::of(self.number, self.size, V3_DEFAULT_SIZE)
    }
}

/// `page` and `pageSize` only.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct V1PageQuery {
    #[param(value_type = Option<u64>, minimum = 1, maximum = 4294967295u64)]
    pub page: Option<PageNumber>,
    #[serde(rename = "pageSize")]
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    pub page_size: Option<PageSize>,
}

impl QueryParams for V1PageQuery {
    const KNOWN: &'static str = "page or pageSize";
}

impl V1PageQuery {
    pub fn page(&self) -> Page {
        Page::of(self.page, self.page_size, V1_DEFAULT_SIZE)
    }
}

/// Helpers for the HTTP layer's page parameters.
pub trait PageExt {
    fn of(number: Option<PageNumber>, size: Option<PageSize>, default_size: u64) -> Page;
    fn v3_meta(&self, total: u64) -> PaginatedMeta;
}

impl PageExt for Page {
    fn of(number: Option<PageNumber>, size: Option<PageSize>, default_size: u64) -> Page {
        Page {
            number: number.map_or(1, |n| n.0),
            size: size.map_or(default_size, |s| s.0),
        }
    }

    fn v3_meta(&self, total: u64) -> PaginatedMeta {
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct V3Page<T> {
    pub data: Vec<T>,
    pub meta: PaginatedMeta,
}

/// A v1 paginated response: `{totalCount, page, pageSize, items}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
