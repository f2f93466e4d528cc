//! meterpay's OpenAPI 3.1 document, `GET /api/openapi.json` (no token).
//!
//! Every operation of the upstream OpenMeter API that meterpay serves keeps
//! its upstream method, path and operationId, so generated clients line up.
//! Operations beyond the upstream API carry `x-meterpay-addition: true`.
//! Request and response bodies are typed from the handlers' own structs
//! (`utoipa::ToSchema`) where meterpay defines the shape (checkout and
//! portal results, the history); the others follow the upstream schema the
//! operation names.

use std::sync::LazyLock;

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref,
    Required, ResponseBuilder, ResponsesBuilder,
};

use super::AppState;
use super::checkout::ResultV3 as CheckoutResultV3;
use super::checkout_history::CheckoutSessionBody;
use super::page::{PageMeta, PaginatedMeta};
use super::portal;

pub const PATH: &str = "/api/openapi.json";

pub fn router() -> Router<AppState> {
    Router::new().route(PATH, get(serve))
}

async fn serve() -> Json<Value> {
    Json(DOCUMENT.clone())
}

static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
    serde_json::to_value(document()).unwrap_or_else(|e| {
        tracing::error!(error = %e, "could not serialize the OpenAPI document");
        Value::Null
    })
});

/// One documented operation.
struct Op {
    method: HttpMethod,
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    tag: &'static str,
    /// Not in the upstream OpenMeter API.
    addition: bool,
    /// Needs `Authorization: Bearer <token>` when tokens are configured.
    auth: bool,
    request: Option<&'static str>,
    /// (status, schema component of the body, if meterpay types it).
    responses: &'static [(u16, Option<&'static str>)],
    query: &'static [(&'static str, &'static str)],
}

const fn op(
    method: HttpMethod,
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    tag: &'static str,
    responses: &'static [(u16, Option<&'static str>)],
) -> Op {
    Op {
        method,
        path,
        id,
        summary,
        tag,
        addition: false,
        auth: true,
        request: None,
        responses,
        query: &[],
    }
}

const fn with_body(mut o: Op, schema: &'static str) -> Op {
    o.request = Some(schema);
    o
}

const fn addition(mut o: Op) -> Op {
    o.addition = true;
    o
}

const fn public(mut o: Op) -> Op {
    o.auth = false;
    o
}

const fn with_query(mut o: Op, query: &'static [(&'static str, &'static str)]) -> Op {
    o.query = query;
    o
}

use HttpMethod::{Delete, Get, Post, Put};

const V3: &str = "OpenMeter v3";
const V1: &str = "OpenMeter v1";
const OPS_TAG: &str = "Operations";

const PAGE_V3: &[(&str, &str)] = &[
    ("page[number]", "1-based page number (default 1)"),
    ("page[size]", "items per page, 1 to 1000 (default 20)"),
];
const PAGE_V1: &[(&str, &str)] = &[
    ("page", "1-based page number (default 1)"),
    ("pageSize", "items per page, 1 to 1000 (default 100)"),
];

const OK: &[(u16, Option<&str>)] = &[(200, None), (400, None), (404, None)];
const CREATED: &[(u16, Option<&str>)] = &[(201, None), (400, None), (404, None), (409, None)];
const UPDATED: &[(u16, Option<&str>)] = &[(200, None), (400, None), (404, None), (409, None)];
const DELETED: &[(u16, Option<&str>)] = &[(204, None), (400, None), (404, None), (409, None)];
const STRIPE_CALL: &[(u16, Option<&str>)] = &[(200, None), (400, None), (404, None), (503, None)];
const CREATED_VIA_STRIPE: &[(u16, Option<&str>)] = &[
    (201, None),
    (400, None),
    (404, None),
    (409, None),
    (503, None),
];

fn operations() -> Vec<Op> {
    vec![
        // v3 customers
        with_query(
            op(
                Get,
                "/api/v3/openmeter/customers",
                "list-customers",
                "List customers",
                V3,
                OK,
            ),
            &[
                ("page[number]", "1-based page number"),
                ("page[size]", "items per page"),
                ("sort", "e.g. `name desc,created_at`"),
                (
                    "filter[key]",
                    "filter[field]=value or filter[field][operator]=value",
                ),
            ],
        ),
        op(
            Post,
            "/api/v3/openmeter/customers",
            "create-customer",
            "Create customer",
            V3,
            CREATED,
        ),
        op(
            Get,
            "/api/v3/openmeter/customers/{customerId}",
            "get-customer",
            "Get customer",
            V3,
            OK,
        ),
        op(
            Put,
            "/api/v3/openmeter/customers/{customerId}",
            "upsert-customer",
            "Upsert customer",
            V3,
            UPDATED,
        ),
        op(
            Delete,
            "/api/v3/openmeter/customers/{customerId}",
            "delete-customer",
            "Delete customer",
            V3,
            DELETED,
        ),
        op(
            Get,
            "/api/v3/openmeter/customers/{customerId}/billing",
            "get-customer-billing",
            "Get customer billing data",
            V3,
            OK,
        ),
        op(
            Put,
            "/api/v3/openmeter/customers/{customerId}/billing",
            "update-customer-billing",
            "Update customer billing data",
            V3,
            STRIPE_CALL,
        ),
        op(
            Put,
            "/api/v3/openmeter/customers/{customerId}/billing/app-data",
            "update-customer-billing-app-data",
            "Update customer billing app data",
            V3,
            STRIPE_CALL,
        ),
        op(
            Post,
            "/api/v3/openmeter/customers/{customerId}/billing/stripe/checkout-sessions",
            "create-customer-stripe-checkout-session",
            "Create Stripe Checkout Session (setup mode)",
            V3,
            &[
                (201, Some("BillingAppStripeCreateCheckoutSessionResult")),
                (400, None),
                (404, None),
                (409, None),
                (503, None),
            ],
        ),
        addition(with_query(
            op(
                Get,
                "/api/v3/openmeter/customers/{customerId}/billing/stripe/checkout-sessions",
                "list-customer-stripe-checkout-sessions",
                "List the customer's checkout sessions, newest first",
                V3,
                &[
                    (200, Some("MeterpayCheckoutSessionPage")),
                    (400, None),
                    (404, None),
                ],
            ),
            &[
                ("page[number]", "1-based page number (default 1)"),
                ("page[size]", "items per page, 1 to 1000 (default 20)"),
                ("filter[status]", "one of open, complete, expired, failed"),
                ("filter[status][oeq]", "comma-separated statuses"),
            ],
        )),
        addition(op(
            Get,
            "/api/v3/openmeter/customers/{customerId}/billing/stripe/checkout-sessions/{sessionId}",
            "get-customer-stripe-checkout-session",
            "Get one of the customer's checkout sessions",
            V3,
            &[
                (200, Some("MeterpayCheckoutSessionRecord")),
                (400, None),
                (404, None),
            ],
        )),
        with_body(
            op(
                Post,
                "/api/v3/openmeter/customers/{customerId}/billing/stripe/portal-sessions",
                "create-customer-stripe-portal-session",
                "Create Stripe customer portal session",
                V3,
                &[
                    (
                        201,
                        Some("BillingAppStripeCreateCustomerPortalSessionResult"),
                    ),
                    (400, None),
                    (404, None),
                    (503, None),
                ],
            ),
            "BillingCustomerStripeCreateCustomerPortalSessionRequest",
        ),
        // v3 apps and catalog
        with_query(
            op(
                Get,
                "/api/v3/openmeter/apps",
                "list-apps",
                "List apps",
                V3,
                OK,
            ),
            PAGE_V3,
        ),
        op(
            Get,
            "/api/v3/openmeter/apps/{appId}",
            "get-app",
            "Get app",
            V3,
            OK,
        ),
        op(
            Put,
            "/api/v3/openmeter/apps/{appId}",
            "update-app",
            "Update app",
            V3,
            STRIPE_CALL,
        ),
        op(
            Delete,
            "/api/v3/openmeter/apps/{appId}",
            "uninstall-app",
            "Uninstall app",
            V3,
            DELETED,
        ),
        with_query(
            op(
                Get,
                "/api/v3/openmeter/app-catalog",
                "list-app-catalog",
                "List app catalog",
                V3,
                OK,
            ),
            PAGE_V3,
        ),
        op(
            Post,
            "/api/v3/openmeter/app-catalog/install",
            "install-app",
            "Install app",
            V3,
            &[(201, None), (400, None), (409, None), (503, None)],
        ),
        op(
            Get,
            "/api/v3/openmeter/app-catalog/{appType}",
            "get-app-catalog-item",
            "Get app catalog item",
            V3,
            OK,
        ),
        // v3 billing profiles
        with_query(
            op(
                Get,
                "/api/v3/openmeter/profiles",
                "list-billing-profiles",
                "List billing profiles",
                V3,
                OK,
            ),
            PAGE_V3,
        ),
        op(
            Post,
            "/api/v3/openmeter/profiles",
            "create-billing-profile",
            "Create billing profile",
            V3,
            CREATED,
        ),
        op(
            Get,
            "/api/v3/openmeter/profiles/{id}",
            "get-billing-profile",
            "Get billing profile",
            V3,
            OK,
        ),
        op(
            Put,
            "/api/v3/openmeter/profiles/{id}",
            "update-billing-profile",
            "Update billing profile",
            V3,
            UPDATED,
        ),
        op(
            Delete,
            "/api/v3/openmeter/profiles/{id}",
            "delete-billing-profile",
            "Delete billing profile",
            V3,
            DELETED,
        ),
        // v1 billing profiles and customer overrides
        with_query(
            op(
                Get,
                "/api/v1/billing/profiles",
                "listBillingProfiles",
                "List billing profiles",
                V1,
                OK,
            ),
            &[
                (
                    "includeArchived",
                    "include deleted profiles (default false)",
                ),
                ("expand", "apps: fill in the profile's apps"),
                ("page", "1-based page number (default 1)"),
                ("pageSize", "items per page, 1 to 1000 (default 100)"),
                ("order", "ASC or DESC"),
                ("orderBy", "createdAt, updatedAt, default or name"),
            ],
        ),
        op(
            Post,
            "/api/v1/billing/profiles",
            "createBillingProfile",
            "Create billing profile",
            V1,
            CREATED,
        ),
        with_query(
            op(
                Get,
                "/api/v1/billing/profiles/{id}",
                "getBillingProfile",
                "Get billing profile",
                V1,
                OK,
            ),
            &[("expand", "apps: fill in the profile's apps")],
        ),
        op(
            Put,
            "/api/v1/billing/profiles/{id}",
            "updateBillingProfile",
            "Update billing profile",
            V1,
            UPDATED,
        ),
        op(
            Delete,
            "/api/v1/billing/profiles/{id}",
            "deleteBillingProfile",
            "Delete billing profile",
            V1,
            DELETED,
        ),
        with_query(
            op(
                Get,
                "/api/v1/billing/customers",
                "listBillingProfileCustomerOverrides",
                "List customer overrides",
                V1,
                OK,
            ),
            &[
                ("billingProfile", "only customers pinned to these profiles"),
                (
                    "customersWithoutPinnedProfile",
                    "include customers on the default profile",
                ),
                ("includeAllCustomers", "include every customer"),
                ("customerId", "only these customers"),
                ("customerName", "customer name contains"),
                ("customerKey", "customer key equals"),
                ("customerPrimaryEmail", "customer primary email contains"),
                ("expand", "apps, customer"),
                ("order", "ASC or DESC"),
                (
                    "orderBy",
                    "customerId, customerName, customerKey, customerPrimaryEmail or customerCreatedAt",
                ),
                ("page", "1-based page number (default 1)"),
                ("pageSize", "items per page, 1 to 1000 (default 100)"),
            ],
        ),
        op(
            Put,
            "/api/v1/billing/customers/{customerId}",
            "upsertBillingProfileCustomerOverride",
            "Create or update a customer override",
            V1,
            UPDATED,
        ),
        with_query(
            op(
                Get,
                "/api/v1/billing/customers/{customerId}",
                "getBillingProfileCustomerOverride",
                "Get a customer override",
                V1,
                OK,
            ),
            &[("expand", "apps, customer")],
        ),
        op(
            Delete,
            "/api/v1/billing/customers/{customerId}",
            "deleteBillingProfileCustomerOverride",
            "Delete a customer override",
            V1,
            DELETED,
        ),
        // v1 customers
        with_query(
            op(
                Get,
                "/api/v1/customers",
                "listCustomers",
                "List customers",
                V1,
                OK,
            ),
            PAGE_V1,
        ),
        op(
            Post,
            "/api/v1/customers",
            "createCustomer",
            "Create customer",
            V1,
            CREATED,
        ),
        op(
            Get,
            "/api/v1/customers/{customerIdOrKey}",
            "getCustomer",
            "Get customer",
            V1,
            OK,
        ),
        op(
            Put,
            "/api/v1/customers/{customerIdOrKey}",
            "updateCustomer",
            "Update customer",
            V1,
            UPDATED,
        ),
        op(
            Delete,
            "/api/v1/customers/{customerIdOrKey}",
            "deleteCustomer",
            "Delete customer",
            V1,
            DELETED,
        ),
        op(
            Get,
            "/api/v1/customers/{customerIdOrKey}/stripe",
            "getCustomerStripeAppData",
            "Get customer Stripe app data",
            V1,
            OK,
        ),
        op(
            Put,
            "/api/v1/customers/{customerIdOrKey}/stripe",
            "upsertCustomerStripeAppData",
            "Upsert customer Stripe app data",
            V1,
            STRIPE_CALL,
        ),
        with_body(
            op(
                Post,
                "/api/v1/customers/{customerIdOrKey}/stripe/portal",
                "createCustomerStripePortalSession",
                "Create Stripe customer portal session",
                V1,
                &[
                    (201, Some("StripeCustomerPortalSession")),
                    (400, None),
                    (404, None),
                    (503, None),
                ],
            ),
            "CreateStripeCustomerPortalSessionParams",
        ),
        with_query(
            op(
                Get,
                "/api/v1/customers/{customerIdOrKey}/apps",
                "listCustomerAppData",
                "List customer app data",
                V1,
                OK,
            ),
            PAGE_V1,
        ),
        op(
            Put,
            "/api/v1/customers/{customerIdOrKey}/apps",
            "upsertCustomerAppData",
            "Upsert customer app data",
            V1,
            STRIPE_CALL,
        ),
        op(
            Delete,
            "/api/v1/customers/{customerIdOrKey}/apps/{appId}",
            "deleteCustomerAppData",
            "Delete customer app data",
            V1,
            DELETED,
        ),
        // v1 apps and marketplace
        with_query(
            op(Get, "/api/v1/apps", "listApps", "List apps", V1, OK),
            PAGE_V1,
        ),
        op(Get, "/api/v1/apps/{id}", "getApp", "Get app", V1, OK),
        op(
            Put,
            "/api/v1/apps/{id}",
            "updateApp",
            "Update app",
            V1,
            STRIPE_CALL,
        ),
        op(
            Delete,
            "/api/v1/apps/{id}",
            "uninstallApp",
            "Uninstall app",
            V1,
            DELETED,
        ),
        op(
            Put,
            "/api/v1/apps/{id}/stripe/api-key",
            "updateStripeAPIKey",
            "Update the Stripe API key",
            V1,
            STRIPE_CALL,
        ),
        public(op(
            Post,
            "/api/v1/apps/{id}/stripe/webhook",
            "appStripeWebhook",
            "Stripe webhook (verified by its Stripe-Signature, not by API token)",
            V1,
            &[
                (200, None),
                (400, None),
                (404, None),
                (413, None),
                (503, None),
            ],
        )),
        with_query(
            op(
                Get,
                "/api/v1/marketplace/listings",
                "listMarketplaceListings",
                "List marketplace listings",
                V1,
                OK,
            ),
            PAGE_V1,
        ),
        op(
            Get,
            "/api/v1/marketplace/listings/{type}",
            "getMarketplaceListing",
            "Get marketplace listing",
            V1,
            OK,
        ),
        op(
            Post,
            "/api/v1/marketplace/listings/{type}/install/apikey",
            "marketplaceAppAPIKeyInstall",
            "Install an app with an API key",
            V1,
            CREATED_VIA_STRIPE,
        ),
        op(
            Post,
            "/api/v1/stripe/checkout/sessions",
            "createStripeCheckoutSession",
            "Create Stripe Checkout Session (setup mode)",
            V1,
            CREATED_VIA_STRIPE,
        ),
        // Operations
        addition(public(op(
            Get,
            "/healthz",
            "meterpay-healthz",
            "Liveness: the process is up",
            OPS_TAG,
            &[(200, None)],
        ))),
        addition(public(op(
            Get,
            "/readyz",
            "meterpay-readyz",
            "Readiness: the database is reachable and migrated",
            OPS_TAG,
            &[(200, None), (503, None)],
        ))),
        addition(public(op(
            Get,
            PATH,
            "meterpay-openapi",
            "This OpenAPI document",
            OPS_TAG,
            &[(200, None)],
        ))),
    ]
}

/// The problem+json body of every 4xx/5xx answer.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct Problem {
    /// `https://httpstatuses.com/{status}`
    #[serde(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    /// What went wrong and, where it helps, what to do about it.
    detail: String,
    /// `urn:request:{request id}`; the same id is the `x-request-id` header.
    instance: String,
    /// One entry per refused input field (400 only).
    invalid_parameters: Option<Vec<InvalidParameter>>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct InvalidParameter {
    /// The field's dotted path in the request's own spelling (`stripe_options.locale`, `returnUrl`).
    field: String,
    /// `body`, `query`, `path` or `header`.
    source: String,
    /// `required`, `unknown_property`, `type`, `matches_regex`, `is_date_time`, `invalid`,
    /// `min_length`, `max_length`, `min_items`, `max_items`, `min`, `max`, `enum`.
    rule: String,
    reason: String,
    /// The allowed values (rule `enum`).
    choices: Option<Vec<String>>,
    /// The bound (length, item and value rules).
    minimum: Option<u64>,
    maximum: Option<u64>,
}

/// The history page.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct MeterpayCheckoutSessionPage {
    data: Vec<CheckoutSessionBody>,
    meta: PaginatedMeta,
}

const ADDITION_NOTE: &str = "An addition beyond the upstream OpenMeter API.";

/// The document: built once per process.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    let mut by_path: Vec<(&str, PathItem)> = Vec::new();
    for o in operations() {
        let item = PathItem::new(o.method.clone(), operation(&o));
        match by_path.iter_mut().find(|(p, _)| *p == o.path) {
            Some((_, existing)) => existing.merge_operations(item),
            None => by_path.push((o.path, item)),
        }
    }
    for (path, item) in by_path {
        paths = paths.path(path, item);
    }
    let components = ComponentsBuilder::new()
        .schema_from::<Problem>()
        .schema_from::<InvalidParameter>()
        .schema_from::<CheckoutSessionBody>()
        .schema_from::<MeterpayCheckoutSessionPage>()
        .schema_from::<PaginatedMeta>()
        .schema_from::<PageMeta>()
        .schema_from::<CheckoutResultV3>()
        .schema_from::<portal::CreateV3>()
        .schema_from::<portal::OptionsV3>()
        .schema_from::<portal::ResultV3>()
        .schema_from::<portal::CreateV1>()
        .schema_from::<portal::ResultV1>()
        .security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        )
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("meterpay")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The OpenMeter / Konnect Metering & Billing API's customers, apps, billing \
                     profiles and Stripe payment-method flow (v3 under /api/v3/openmeter, v1 under \
                     /api/v1). Operations marked x-meterpay-addition are not in the upstream API.",
                )),
        )
        .paths(paths.build())
        .components(Some(components))
        .build()
}

fn operation(o: &Op) -> utoipa::openapi::path::Operation {
    let mut b = OperationBuilder::new()
        .operation_id(Some(o.id))
        .summary(Some(o.summary))
        .tag(o.tag);
    if o.addition {
        b = b.description(Some(ADDITION_NOTE)).extensions(Some(
            ExtensionsBuilder::new()
                .add("x-meterpay-addition", true)
                .build(),
        ));
    }
    if o.auth {
        b = b.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
    }
    for name in path_params(o.path) {
        b = b.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(string_schema())),
        );
    }
    for (name, description) in o.query {
        b = b.parameter(
            ParameterBuilder::new()
                .name(*name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(*description))
                .schema(Some(if name.starts_with("page") {
                    integer_schema()
                } else {
                    string_schema()
                })),
        );
    }
    if let Some(schema) = o.request {
        b = b.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(schema)))
                        .build(),
                )
                .build(),
        ));
    }
    let mut responses = ResponsesBuilder::new();
    for (status, schema) in o.responses {
        responses = responses.response(status.to_string(), response(*status, *schema));
    }
    b.responses(responses.build()).build()
}

fn response(status: u16, schema: Option<&str>) -> utoipa::openapi::Response {
    let reason = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Response");
    let mut r = ResponseBuilder::new().description(reason);
    if status >= 400 {
        r = r.content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        );
    } else if let Some(schema) = schema {
        r = r.content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build(),
        );
    }
    r.build()
}

fn string_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .build()
}

fn integer_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .minimum(Some(1))
        .build()
}

/// `{name}` segments of a path template.
fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}
