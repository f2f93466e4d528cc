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

/// A string schema of `min..=max` characters.
pub fn string_length(min: usize, max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(min))
        .max_length(Some(max))
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

schema_type!(
    /// A label map (`billing::customer::validate_labels`): at most 50
    /// entries; keys of 1 to 63 characters not starting with a reserved
    /// prefix (kong, konnect, mesh, kic, _); values of 1 to 63 letters,
    /// digits, `-`, `.`, `_`, starting and ending with a letter or digit.
    Labels => ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(50))
        .property_names(Some(
            string_length(1, 63).pattern(Some(LABEL_KEY_PATTERN)),
        ))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(LABEL_VALUE_PATTERN)),
        ))
        .into()
);

/// Label keys must not start with a reserved prefix.
pub const LABEL_KEY_PATTERN: &str = "^(?!kong|konnect|mesh|kic|_)";
/// `^[a-z0-9A-Z]{1}([a-z0-9A-Z-._]*[a-z0-9A-Z]+)?$`, 1 to 63 characters.
pub const LABEL_VALUE_PATTERN: &str = "^[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$";

schema_type!(
    /// An ISO 4217 code ISO currently lists (`billing::currency`).
    Currency => string_choices(crate::billing::currency::CurrencyCode::ALL.iter().copied())
);

schema_type!(
    /// An email address as `billing::customer` checks it: something, `@`,
    /// a domain holding a dot but neither starting nor ending with one, no
    /// whitespace, at most 254 bytes. The schema keeps to printable ASCII,
    /// where characters are bytes.
    Email => string_length(3, 254).pattern(Some(EMAIL_PATTERN)).into()
);

pub const EMAIL_PATTERN: &str = r"^[\x21-\x7e]+@[\x21-\x2d\x2f-\x3f\x41-\x7e][\x21-\x3f\x41-\x7e]*\.[\x21-\x3f\x41-\x7e]*[\x21-\x2d\x2f-\x3f\x41-\x7e]$";

schema_type!(
    /// A Stripe secret or restricted key (`billing::app::check_api_key`).
    StripeApiKey => string_pattern(r"^(sk|rk)_(test|live)_[A-Za-z0-9]{1,500}$")
);

schema_type!(
    /// Subject keys: each 1 to 256 characters, no duplicates.
    SubjectKeys => ArrayBuilder::new()
        .items(string_length(1, 256))
        .unique_items(true)
        .into()
);

schema_type!(
    /// The only app type meterpay installs (other known types answer 400).
    SupportedAppType => string_choices(crate::billing::app::SUPPORTED_TYPES.iter().copied())
);

schema_type!(
    /// A member that may only be absent or null.
    NullOnly => ObjectBuilder::new().schema_type(Type::Null).into()
);

schema_type!(
    /// A redirect URL as `billing::checkout::check_url` takes it: http(s),
    /// a host, no whitespace, at most 5000 bytes. The schema keeps to
    /// printable ASCII, where characters are bytes.
    RedirectUrl => ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(5000))
        .pattern(Some(r"^https?://[\x21\x22\x24-\x2e\x30-\x3e\x40-\x7e][\x21-\x7e]*$"))
        .into()
);

schema_type!(
    /// Invoice statuses (`listInvoices`' `statuses`), repeated or comma-separated.
    InvoiceStatuses => array_of(string_choices(
        crate::billing::invoice::Status::ALL.iter().map(|s| s.as_str())
    ))
);

schema_type!(
    /// An invoice status v3 lists (`filter[status]`): gathering invoices are v1's.
    InvoiceStatusV3 => string_choices(
        crate::billing::invoice::Status::ALL[1..].iter().map(|s| s.as_str())
    )
);

schema_type!(
    /// `listInvoices`' and `getInvoice`'s `expand`.
    InvoiceExpand => array_of(string_choices(super::v1_invoices::INVOICE_EXPAND.iter().copied()))
);

schema_type!(
    /// `listInvoices`' sort fields.
    InvoiceOrderBy => string_choices(super::v1_invoices::INVOICE_ORDER_BY.map(|(name, _)| name))
);

schema_type!(
    /// A ULID, either case (a query parameter's).
    Ulid => string_pattern(super::openapi::ULID_PATTERN)
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
        entry::<Labels>(),
        entry::<Currency>(),
        entry::<Email>(),
        entry::<StripeApiKey>(),
        entry::<SubjectKeys>(),
        entry::<SupportedAppType>(),
        entry::<NullOnly>(),
        entry::<RedirectUrl>(),
        entry::<InvoiceStatuses>(),
        entry::<InvoiceStatusV3>(),
        entry::<InvoiceExpand>(),
        entry::<InvoiceOrderBy>(),
        entry::<Ulid>(),
    ]
}
