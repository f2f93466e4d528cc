//! JSON Schema for values whose Rust type says less than the server checks:
//! string choices read by hand-written parsers, and the patterns and lengths
//! `billing` enforces. Each schema states exactly what the server accepts, so
//! that a request valid by the document is one the server takes (and one
//! invalid by it is one the server refuses); the lists come from the same
//! constants the parsers use wherever there is one.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};

/// A string schema taking exactly `values`.
pub fn string_choices<'a>(values: impl IntoIterator<Item = &'a str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.into_iter().map(str::to_owned)))
        .into()
}

/// An array of `items` (a repeated or comma-separated query parameter).
pub fn array_of(items: RefOr<Schema>) -> RefOr<Schema> {
    ArrayBuilder::new().items(items).into()
}

/// A string schema matching `pattern`.
pub fn string_pattern(pattern: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .into()
}

/// Declares a schema-only type (`inline(Name)` in a parameter, `value_type =
/// Name` on a member) whose schema is the given expression.
macro_rules! schema_type {
    ($(#[$doc:meta])* $name:ident => $schema:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $schema
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use schema_type;

schema_type!(
    /// An app type of the v1 contract (`listing` / `AppType`).
    V1AppType => string_choices(super::v1_apps::V1_TYPES.iter().copied())
);

schema_type!(
    /// An app type of the v3 contract (`BillingAppType`).
    V3AppType => string_choices(super::apps::V3_TYPES.iter().copied())
);

schema_type!(
    /// A v1 sort order; the server takes either case.
    V1Order => string_choices(["ASC", "DESC", "asc", "desc"])
);

schema_type!(
    /// ULIDs, either case.
    UlidList => array_of(string_pattern(super::openapi::ULID_PATTERN))
);

schema_type!(
    /// `listBillingProfiles`' sort fields.
    ProfileOrderBy => string_choices(super::v1_profiles::PROFILE_ORDER_BY.map(|(name, _)| name))
);

schema_type!(
    /// `listBillingProfileCustomerOverrides`' sort fields.
    OverrideOrderBy => string_choices(super::v1_profiles::OVERRIDE_ORDER_BY.map(|(name, _)| name))
);

schema_type!(
    /// A billing profile's expansions.
    ProfileExpand => array_of(string_choices(super::v1_profiles::PROFILE_EXPAND.iter().copied()))
);

schema_type!(
    /// A customer override's expansions.
    OverrideExpand => array_of(string_choices(super::v1_profiles::OVERRIDE_EXPAND.iter().copied()))
);

/// The schema types above that parameters name by reference (`Option<T>`
/// cannot be inlined in a `#[utoipa::path]` parameter tuple); the document's
/// components hold them.
pub fn components() -> Vec<(String, RefOr<Schema>)> {
    use utoipa::{PartialSchema, ToSchema};
    fn entry<T: ToSchema>() -> (String, RefOr<Schema>) {
        (T::name().into_owned(), <T as PartialSchema>::schema())
    }
    vec![
        entry::<V1Order>(),
        entry::<UlidList>(),
        entry::<ProfileOrderBy>(),
        entry::<OverrideOrderBy>(),
        entry::<ProfileExpand>(),
        entry::<OverrideExpand>(),
    ]
}
