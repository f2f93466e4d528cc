//! Request schemas written as JSON Schema, for shapes utoipa's derive and
//! builders cannot state: closed variants chosen by a member (a hosted or
//! an embedded checkout, an anchored or a subscription alignment), members
//! that may only be absent or null in one variant, and rules that span
//! members. Each says exactly what the handler and `billing` accept, from
//! the same constants wherever there is one, so that a request valid by the
//! document is one the server takes.
//!
//! A type declared here with [`json_schema_type!`] is, to utoipa, a
//! reference to its component; [`components`] holds the components' bodies,
//! which [`super::openapi`] puts into the served document.

use serde_json::{Map, Value, json};

use super::openapi::ULID_PATTERN;
use crate::billing::profile::DEFAULT_DUE_AFTER;
use crate::service::checkout::provider_rules;

/// Declares a type whose schema is the component `$component` of
/// [`components`].
macro_rules! json_schema_type {
    ($(#[$doc:meta])* $name:ident = $component:literal) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::Ref::from_schema_name($component).into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($component)
            }
        }
    };
}

json_schema_type!(
    /// v3 checkout options: a hosted or an embedded session.
    CheckoutOptionsV3 = "BillingAppStripeCreateCheckoutSessionRequestOptions"
);
json_schema_type!(
    /// v1 checkout options: a hosted or an embedded session.
    CheckoutOptionsV1 = "CreateStripeCheckoutSessionRequestOptions"
);
json_schema_type!(
    /// v1 checkout's `customer`: an id, a key, or a customer to create.
    CheckoutCustomerV1 = "CreateStripeCheckoutSessionCustomer"
);
json_schema_type!(
    /// A locale of Stripe's customer portal.
    PortalLocale = "BillingAppStripeCustomerPortalLocale"
);
json_schema_type!(
    /// v3 `BillingParty` in a request.
    PartySchemaV3 = "BillingPartyInput"
);
json_schema_type!(
    /// v3 `BillingWorkflow` in a request: every member optional.
    WorkflowSchemaV3 = "BillingWorkflowInput"
);
json_schema_type!(
    /// v1 `BillingParty` in a request.
    PartySchemaV1 = "BillingPartyInputV1"
);
json_schema_type!(
    /// v1 `BillingWorkflowCreate` in a request: every member optional.
    WorkflowSchemaV1 = "BillingWorkflowInputV1"
);

/// The components' bodies, by name.
pub fn components() -> Vec<(&'static str, Value)> {
    vec![
        (
            "BillingAppStripeCreateCheckoutSessionRequestOptions",
            checkout_options(Api::V3),
        ),
        (
            "CreateStripeCheckoutSessionRequestOptions",
            checkout_options(Api::V1),
        ),
        (
            "CreateStripeCheckoutSessionCustomer",
            checkout_customer_v1(),
        ),
        (
            "BillingAppStripeCustomerPortalLocale",
            json!({"type": "string", "enum": crate::service::portal::locales()}),
        ),
        ("BillingPartyInput", party(Api::V3)),
        ("BillingWorkflowInput", workflow(Api::V3)),
        ("BillingPartyInputV1", party(Api::V1)),
        ("BillingWorkflowInputV1", workflow(Api::V1)),
        // Invoicing requests: the utoipa components of these names, stated
        // exactly (`v1_invoices`, `invoices`).
        ("PendingLinesV1", pending_lines_v1()),
        ("LineV1", line(Api::V1)),
        ("InvoiceActionV1", invoice_action_v1()),
        ("InvoiceUpdateV1", invoice_update_v1()),
        ("VoidV1", void_v1()),
        ("UpdateInvoiceRequest", invoice_update_v3()),
        ("UpdateLine", line(Api::V3)),
    ]
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    /// snake_case names; unknown members refused.
    V3,
    /// camelCase names; unknown members ignored.
    V1,
}

impl Api {
    /// An object of these members, closed where the API refuses unknown ones.
    fn object(self, properties: Vec<(&str, Value)>, required: &[&str]) -> Value {
        let properties: Map<String, Value> = properties
            .into_iter()
            .map(|(name, schema)| (name.to_owned(), schema))
            .collect();
        let mut schema = json!({"type": "object", "properties": properties});
        if !required.is_empty() {
            schema["required"] = json!(required);
        }
        if self == Api::V3 {
            schema["additionalProperties"] = json!(false);
        }
        schema
    }
}

/// `schema` or null (an `Option` member: null reads as absent).
fn or_null(schema: Value) -> Value {
    json!({"anyOf": [schema, {"type": "null"}]})
}

fn null() -> Value {
    json!({"type": "null"})
}

fn choices(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

fn component(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn string_length(min: usize, max: usize) -> Value {
    json!({"type": "string", "minLength": min, "maxLength": max})
}

// ---- checkout options -------------------------------------------------------

/// Stripe's metadata rules (`ProviderRules::check_metadata`).
fn checkout_metadata() -> Value {
    let limits = provider_rules::METADATA_LIMITS;
    let reserved = limits.reserved_keys.join("|");
    json!({
        "type": "object",
        "maxProperties": limits.max_keys,
        "propertyNames": {
            "type": "string",
            "minLength": 1,
            "maxLength": limits.max_key_chars,
            "pattern": format!(
                "^(?!{})(?!(?:{reserved})$)[^\\[\\]]*$",
                limits.reserved_prefix
            ),
        },
        "additionalProperties": {"type": "string", "maxLength": limits.max_value_chars},
    })
}

/// The checkout options (`billing::checkout::CheckoutOptions::validate`): a
/// hosted session (the default) needs `success_url` and takes neither
/// `return_url` nor `redirect_on_completion`; an embedded one takes neither
/// `success_url` nor `cancel_url`. `expires_at` must lie 30 minutes to 24
/// hours ahead; `currency` is needed when the customer has none and no
/// `payment_method_types` are given.
fn checkout_options(api: Api) -> Value {
    let v1 = api == Api::V1;
    let name = |v3: &'static str, v1_name: &'static str| if v1 { v1_name } else { v3 };
    let message = json!({
        "type": "object",
        "properties": {"message": or_null(json!({"type": "string", "maxLength": 1200}))},
        "additionalProperties": false,
    });
    let behavior = or_null(choices(&["auto", "never"]));
    // `customer_update` and `tax_id_collection` are closed in both APIs.
    let customer_update = json!({
        "type": "object",
        "properties": {"address": behavior, "name": behavior, "shipping": behavior},
        "additionalProperties": false,
    });
    let tax_id_collection = json!({
        "type": "object",
        "properties": {
            "enabled": or_null(json!({"type": "boolean"})),
            "required": or_null(choices(&["if_supported", "never"])),
        },
        "additionalProperties": false,
    });
    let consent = api.object(
        vec![
            (
                name(
                    "payment_method_reuse_agreement",
                    "paymentMethodReuseAgreement",
                ),
                or_null(api.object(
                    vec![("position", or_null(choices(&["auto", "hidden"])))],
                    &[],
                )),
            ),
            ("promotions", or_null(choices(&["auto", "none"]))),
            (
                name("terms_of_service", "termsOfService"),
                or_null(choices(&["none", "required"])),
            ),
        ],
        &[],
    );
    let custom_text = api.object(
        vec![
            (
                name("after_submit", "afterSubmit"),
                or_null(message.clone()),
            ),
            (
                name("shipping_address", "shippingAddress"),
                or_null(message.clone()),
            ),
            ("submit", or_null(message.clone())),
            (
                name("terms_of_service_acceptance", "termsOfServiceAcceptance"),
                or_null(message),
            ),
        ],
        &[],
    );
    let url = component("RedirectUrl");
    let common = |ui_mode: Value, urls: Vec<(&'static str, Value)>| {
        let mut members = vec![
            (
                name("billing_address_collection", "billingAddressCollection"),
                or_null(choices(&["auto", "required"])),
            ),
            (
                name("client_reference_id", "clientReferenceID"),
                or_null(string_length(1, 200)),
            ),
            (
                name("customer_update", "customerUpdate"),
                or_null(customer_update.clone()),
            ),
            (
                name("consent_collection", "consentCollection"),
                or_null(consent.clone()),
            ),
            ("currency", or_null(component("Currency"))),
            (
                name("custom_text", "customText"),
                or_null(custom_text.clone()),
            ),
            (
                name("expires_at", "expiresAt"),
                or_null(json!({"type": "integer", "format": "int64"})),
            ),
            (
                "locale",
                or_null(json!({"type": "string", "enum": provider_rules::locales()})),
            ),
            ("metadata", or_null(checkout_metadata())),
            (
                name("payment_method_types", "paymentMethodTypes"),
                or_null(json!({
                    "type": "array",
                    "minItems": 1,
                    "uniqueItems": true,
                    "items": {"type": "string", "enum": provider_rules::setup_payment_method_types()},
                })),
            ),
            (
                name("tax_id_collection", "taxIdCollection"),
                or_null(tax_id_collection.clone()),
            ),
            (name("ui_mode", "uiMode"), ui_mode),
        ];
        members.extend(urls);
        members
    };
    let success = name("success_url", "successURL");
    let cancel = name("cancel_url", "cancelURL");
    let return_url = name("return_url", "returnURL");
    let redirect = name("redirect_on_completion", "redirectOnCompletion");
    let hosted = api.object(
        common(
            or_null(choices(&["hosted"])),
            vec![
                (success, url.clone()),
                (cancel, or_null(url.clone())),
                (return_url, null()),
                (redirect, null()),
            ],
        ),
        &[success],
    );
    let embedded = api.object(
        common(
            choices(&["embedded"]),
            vec![
                (success, null()),
                (cancel, null()),
                (return_url, or_null(url)),
                (
                    redirect,
                    or_null(choices(&["always", "if_required", "never"])),
                ),
            ],
        ),
        &[name("ui_mode", "uiMode")],
    );
    // Embedded: return_url where Stripe may redirect (a listed redirect-based
    // payment method) unless redirect_on_completion is never, which takes
    // none. Without payment_method_types the account's enabled methods
    // decide (Stripe's refusal, .ci/schemathesis.toml).
    let types = name("payment_method_types", "paymentMethodTypes");
    let mut embedded = embedded;
    embedded["anyOf"] = json!([
        {
            "required": [return_url],
            "properties": {return_url: {"type": "string"}, redirect: {"enum": ["always", "if_required", null]}},
        },
        {"required": [redirect], "properties": {redirect: {"const": "never"}, return_url: (null())}},
        {"properties": {
            return_url: (null()),
            types: or_null(json!({
                "type": "array",
                "items": {"enum": provider_rules::non_redirect_payment_method_types()},
            })),
        }},
    ]);
    json!({
        "description": "A hosted session (ui_mode hosted, the default) needs success_url; an \
            embedded one (ui_mode embedded) returns to return_url, needed where Stripe may redirect \
            (a redirect-based payment method) unless redirect_on_completion is never. \
            expires_at: Unix seconds, \
            30 minutes to 24 hours ahead. currency is required when the customer has no \
            currency and payment_method_types is not given.",
        "oneOf": [hosted, embedded],
    })
}

/// `{"id": …}`, `{"key": …}`, or a customer to create (it has a `name`).
fn checkout_customer_v1() -> Value {
    json!({
        "oneOf": [
            {
                "type": "object",
                "properties": {"id": {"type": "string", "pattern": ULID_PATTERN}},
                "required": ["id"],
                "additionalProperties": false,
            },
            {
                "type": "object",
                "properties": {"key": {"type": "string"}},
                "required": ["key"],
                "additionalProperties": false,
            },
            component("CustomerCreateV1"),
        ]
    })
}

// ---- billing profiles -------------------------------------------------------

/// `billing::profile::check_party`.
fn party(api: Api) -> Value {
    let v1 = api == Api::V1;
    let tax_id = json!({
        "type": "object",
        "properties": {"code": or_null(string_length(1, 32))},
        "additionalProperties": false,
    });
    let addresses = if v1 {
        // v1: a list holding at most the billing address.
        json!({"type": "array", "maxItems": 1, "items": component("AddressV1")})
    } else {
        api.object(
            vec![("billing_address", component("Address"))],
            &["billing_address"],
        )
    };
    api.object(
        vec![
            // Read-only: accepted and ignored.
            ("id", json!({})),
            ("key", or_null(string_length(1, 256))),
            ("name", or_null(json!({"type": "string"}))),
            (if v1 { "taxId" } else { "tax_id" }, or_null(tax_id)),
            ("addresses", or_null(addresses)),
        ],
        &[],
    )
}

/// The contract's `ISO8601Duration` as `billing::profile::iso_duration_is_zero`
/// reads it: `P[nY][nM][nW][nD][T[nH][nM][nS]]`, decimals allowed, at least
/// one component. (No lookaheads: generators such as schemathesis' turn a
/// lookahead into text.)
fn duration_pattern() -> String {
    let n = r"\d+(?:\.\d+)?";
    // Units in order, at least one: each alternative starts with a unit
    // and may be followed by any of the later ones.
    let some = |units: &[char]| -> String {
        (0..units.len())
            .map(|first| {
                let mut alternative = format!("{n}{}", units[first]);
                for unit in &units[first + 1..] {
                    alternative.push_str(&format!("(?:{n}{unit})?"));
                }
                alternative
            })
            .collect::<Vec<_>>()
            .join("|")
    };
    let date = some(&['Y', 'M', 'W', 'D']);
    let time = some(&['H', 'M', 'S']);
    format!("^P(?:(?:{date})(?:T(?:{time}))?|T(?:{time}))$")
}

fn duration() -> Value {
    json!({"type": "string", "pattern": duration_pattern()})
}

/// A duration longer than zero: some digit is not 0.
fn nonzero_duration() -> Value {
    json!({"allOf": [duration(), {"type": "string", "pattern": "[1-9]"}]})
}

/// `billing::profile::check_workflow` (and, for v1, `WorkflowInputV1::into_v3`).
fn workflow(api: Api) -> Value {
    let v1 = api == Api::V1;
    let name = |v3: &'static str, v1_name: &'static str| if v1 { v1_name } else { v3 };
    let boolean = or_null(json!({"type": "boolean"}));
    let recurring_interval = if v1 {
        // v1's `RecurringPeriodInterval` also takes these names.
        json!({"anyOf": [
            nonzero_duration(),
            choices(&["DAY", "WEEK", "MONTH", "YEAR"]),
        ]})
    } else {
        nonzero_duration()
    };
    let recurring_period = api.object(
        vec![
            ("anchor", json!({"type": "string", "format": "date-time"})),
            ("interval", recurring_interval),
        ],
        &["anchor", "interval"],
    );
    let recurring = name("recurring_period", "recurringPeriod");
    let alignment = json!({"oneOf": [
        api.object(vec![("type", choices(&["subscription"])), (recurring, null())], &["type"]),
        api.object(
            vec![("type", choices(&["anchored"])), (recurring, recurring_period)],
            &["type", recurring],
        ),
    ]});
    let collection = api.object(
        vec![
            ("alignment", or_null(alignment)),
            ("interval", or_null(duration())),
        ],
        &[],
    );
    // A tax code can no longer be added to a profile (deprecated upstream):
    // only the behaviour is taken.
    let tax_config = api.object(
        vec![
            ("behavior", or_null(choices(&["inclusive", "exclusive"]))),
            ("stripe", null()),
            (name("external_invoicing", "customInvoicing"), null()),
            (name("tax_code_id", "taxCodeId"), null()),
        ]
        .into_iter()
        .chain((!v1).then(|| ("tax_code", null())))
        .collect(),
        &[],
    );
    let mut invoicing = vec![
        (name("auto_advance", "autoAdvance"), boolean.clone()),
        (name("draft_period", "draftPeriod"), or_null(duration())),
        (
            name("progressive_billing", "progressiveBilling"),
            boolean.clone(),
        ),
        (
            name(
                "subscription_end_proration_mode",
                "subscriptionEndProrationMode",
            ),
            or_null(choices(&["bill_full_period", "bill_actual_period"])),
        ),
    ];
    let mut tax = vec![("enabled", boolean.clone()), ("enforced", boolean)];
    let payment = if v1 {
        invoicing.push(("dueAfter", or_null(duration())));
        invoicing.push(("defaultTaxConfig", or_null(tax_config)));
        api.object(
            vec![(
                "collectionMethod",
                or_null(choices(&["charge_automatically", "send_invoice"])),
            )],
            &[],
        )
    } else {
        tax.push(("default_tax_config", or_null(tax_config)));
        json!({"oneOf": [
            api.object(
                vec![
                    ("collection_method", choices(&["charge_automatically"])),
                    ("due_after", null()),
                ],
                &["collection_method"],
            ),
            api.object(
                vec![
                    ("collection_method", choices(&["send_invoice"])),
                    ("due_after", or_null(duration())),
                ],
                &["collection_method"],
            ),
        ]})
    };
    let members = api.object(
        vec![
            ("collection", or_null(collection)),
            ("invoicing", or_null(api.object(invoicing, &[]))),
            ("payment", or_null(payment)),
            ("tax", or_null(api.object(tax, &[]))),
        ],
        &[],
    );
    if !v1 {
        return members;
    }
    // v1 keeps `dueAfter` under the invoicing settings: other than the
    // default it needs collectionMethod send_invoice.
    let send_invoice = json!({
        "type": "object",
        "required": ["payment"],
        "properties": {"payment": {
            "type": "object",
            "required": ["collectionMethod"],
            "properties": {"collectionMethod": {"const": "send_invoice"}},
        }},
    });
    let default_due = json!({
        "type": "object",
        "properties": {"invoicing": or_null(json!({
            "type": "object",
            "properties": {"dueAfter": {"enum": [null, DEFAULT_DUE_AFTER]}},
        }))},
    });
    json!({
        "description": "invoicing.dueAfter other than P30D needs payment.collectionMethod send_invoice.",
        "allOf": [members, {"anyOf": [send_invoice, default_due]}],
    })
}

// ---- invoices ----------------------------------------------------------------

/// A ULID, either case.
fn ulid() -> Value {
    json!({"type": "string", "pattern": ULID_PATTERN})
}

fn date_time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

/// `money::parse_numeric` and not negative (`-0` is zero): an amount, a
/// quantity or a tier bound.
/// (At most 18 digits before the point and 10 after: `money::MAX_WHOLE_DIGITS`,
/// `money::MAX_FRACTION_DIGITS`; `numerics_agree_with_the_parser`.)
const NON_NEGATIVE: &str = r"^(?:[0-9]{1,18}(?:\.[0-9]{1,10})?|-0{1,18}(?:\.0{1,10})?)$";
/// Greater than zero: a package's size (`NON_NEGATIVE` with a digit not 0).
fn positive() -> Value {
    json!({"allOf": [non_negative(), {"type": "string", "pattern": "^[^-]*[1-9]"}]})
}

fn non_negative() -> Value {
    json!({"type": "string", "pattern": NON_NEGATIVE})
}

/// A string-to-string map (line and invoice metadata are stored as given).
fn string_map() -> Value {
    json!({"type": "object", "additionalProperties": {"type": "string"}})
}

/// The price types `money::check_price` prices without a quantity.
const FLAT: &[&str] = &["flat"];

/// A price tier: `money::check_tiers` (each tier a flat or a unit price or
/// both; bounds increasing, only the last open-ended — rules across tiers
/// the description states).
fn tier(api: Api) -> Value {
    let v1 = api == Api::V1;
    let name = |v3: &'static str, v1_name: &'static str| if v1 { v1_name } else { v3 };
    let amount = api.object(
        vec![
            ("type", json!({"type": "string"})),
            ("amount", non_negative()),
        ],
        &["type", "amount"],
    );
    let up_to = name("up_to_amount", "upToAmount");
    let flat = name("flat_price", "flatPrice");
    let unit = name("unit_price", "unitPrice");
    let mut schema = api.object(
        vec![
            (up_to, or_null(positive())),
            (flat, or_null(amount.clone())),
            (unit, or_null(amount)),
        ],
        &[],
    );
    schema["anyOf"] = json!([
        {"required": [flat], "properties": {flat: {"type": "object"}}},
        {"required": [unit], "properties": {unit: {"type": "object"}}},
    ]);
    schema
}

fn tiers(api: Api) -> Value {
    json!({
        "type": "array",
        "minItems": 1,
        "items": tier(api),
        "description": "Up-to amounts increase from tier to tier; only the last tier may leave \
                        it out (open-ended). A quantity beyond a bounded last tier is refused.",
    })
}

/// A line's price as `money::check_price` takes it. v1: `flat`, `unit`,
/// `tiered` (with a mode) and `package` (`dynamic` prices, spend
/// commitments and multipliers are refused). v3: `flat`, `unit`,
/// `graduated` and `volume` (`free` is refused).
fn price(api: Api) -> Value {
    let v1 = api == Api::V1;
    let kinds: &[&str] = if v1 {
        &["flat", "unit", "tiered", "package"]
    } else {
        &["flat", "unit", "graduated", "volume"]
    };
    let mut members = vec![
        ("type", choices(kinds)),
        ("amount", non_negative()),
        // Read only by the variant that needs them; typed for all.
        (
            "tiers",
            or_null(json!({"type": "array", "items": tier(api)})),
        ),
    ];
    if v1 {
        members.extend([
            (
                "paymentTerm",
                or_null(choices(&["in_advance", "in_arrears"])),
            ),
            ("mode", or_null(choices(&["volume", "graduated"]))),
            ("quantityPerPackage", or_null(json!({"type": "string"}))),
            // Refused: spend commitments and `dynamic`'s multiplier.
            ("minimumAmount", null()),
            ("maximumAmount", null()),
            ("multiplier", null()),
        ]);
    }
    let variant = |kind: &str, required: &[&str], extra: Vec<(&str, Value)>| {
        let mut properties = Map::new();
        properties.insert("type".to_owned(), json!({"const": kind}));
        for (name, schema) in extra {
            properties.insert(name.to_owned(), schema);
        }
        json!({"required": required, "properties": properties})
    };
    let variants = if v1 {
        vec![
            variant("flat", &["amount"], vec![]),
            variant("unit", &["amount"], vec![]),
            variant(
                "package",
                &["amount", "quantityPerPackage"],
                vec![("quantityPerPackage", positive())],
            ),
            variant(
                "tiered",
                &["mode", "tiers"],
                vec![
                    ("mode", choices(&["volume", "graduated"])),
                    ("tiers", tiers(api)),
                ],
            ),
        ]
    } else {
        vec![
            variant("flat", &["amount"], vec![]),
            variant("unit", &["amount"], vec![]),
            variant("graduated", &["tiers"], vec![("tiers", tiers(api))]),
            variant("volume", &["tiers"], vec![("tiers", tiers(api))]),
        ]
    };
    let mut schema = api.object(members, &["type"]);
    schema["oneOf"] = Value::Array(variants);
    schema
}

/// `{price: {type: one of kinds}}`-shaped constraint on whichever price a
/// line gives.
fn priced_as(api: Api, kinds: &[&str]) -> Value {
    let kind = json!({"type": "object", "properties": {"type": {"enum": kinds}}});
    if api == Api::V1 {
        json!({"properties": {
            "price": or_null(kind.clone()),
            "rateCard": or_null(json!({"type": "object", "properties": {"price": or_null(kind)}})),
        }})
    } else {
        json!({"properties": {"rate_card": {"type": "object", "properties": {"price": kind}}}})
    }
}

/// A line's tax config (`invoice::check_line_tax`): a behavior and a Stripe
/// product tax code; custom invoicing and tax code entities are refused.
fn line_tax_config() -> Value {
    Api::V1.object(
        vec![
            ("behavior", or_null(choices(&["inclusive", "exclusive"]))),
            (
                "stripe",
                or_null(json!({
                    "type": "object",
                    "properties": {"code": {"type": "string", "pattern": "^txcd_[0-9]{8}$"}},
                    "required": ["code"],
                    "additionalProperties": false,
                })),
            ),
            ("customInvoicing", null()),
            ("taxCodeId", null()),
        ],
        &[],
    )
}

/// An invoice line as `invoice::LineInput::check` takes it: v1's
/// `InvoicePendingLineCreate` / `InvoiceLineReplaceUpdate` (the price once,
/// as `rateCard.price` or the deprecated `price`), v3's
/// `UpdateInvoiceStandardLine`. meterpay has no meters: a usage-based price
/// needs the `quantity` (an addition), a flat price takes none. Features,
/// discounts and (v3) tax code entities are refused.
fn line(api: Api) -> Value {
    let v1 = api == Api::V1;
    let mut quantity = or_null(non_negative());
    quantity["x-meterpay-addition"] = json!(true);
    quantity["description"] = json!(
        "The quantity a usage-based price bills (meterpay has no meters); not given with a \
         flat price."
    );
    let period_from = json!({"type": "string", "format": "date-time"});
    let period = api.object(
        vec![
            ("from", period_from),
            (
                "to",
                json!({"type": "string", "format": "date-time", "description": "Not before from."}),
            ),
        ],
        &["from", "to"],
    );
    let usage: Vec<&str> = if v1 {
        vec!["unit", "tiered", "package"]
    } else {
        vec!["unit", "graduated", "volume"]
    };
    let quantity_rule = |required: bool| {
        let mut schema = priced_as(api, &usage);
        if required {
            schema["required"] = json!(["quantity"]);
            schema["properties"]["quantity"] = json!({"type": "string"});
        }
        schema
    };
    let flat_rule = {
        let mut schema = priced_as(api, FLAT);
        schema["properties"]["quantity"] = null();
        schema
    };
    if v1 {
        let rate_card = api.object(
            vec![
                ("featureKey", null()),
                ("taxConfig", or_null(line_tax_config())),
                ("price", or_null(price(api))),
                ("discounts", null()),
            ],
            &[],
        );
        let mut schema = api.object(
            vec![
                ("id", or_null(ulid())),
                ("name", string_length(1, 256)),
                (
                    "description",
                    or_null(json!({"type": "string", "maxLength": 1024})),
                ),
                ("metadata", or_null(string_map())),
                ("taxConfig", or_null(line_tax_config())),
                ("period", period),
                ("invoiceAt", date_time()),
                ("price", or_null(price(api))),
                ("featureKey", null()),
                ("rateCard", or_null(rate_card)),
                ("quantity", quantity.clone()),
            ],
            &["name", "period", "invoiceAt"],
        );
        // The price once: as rateCard.price, or as the deprecated price.
        let in_rate_card = json!({
            "required": ["rateCard"],
            "properties": {
                "price": (null()),
                "rateCard": {"type": "object", "required": ["price"], "properties": {"price": {"type": "object"}}},
            },
        });
        let deprecated = json!({
            "required": ["price"],
            "properties": {
                "price": {"type": "object"},
                "rateCard": or_null(json!({"type": "object", "properties": {"price": (null())}})),
            },
        });
        schema["allOf"] = json!([
            {"oneOf": [in_rate_card, deprecated]},
            {"anyOf": [flat_rule, quantity_rule(true)]},
        ]);
        schema
    } else {
        let rate_card = api.object(
            vec![
                ("price", price(api)),
                ("tax_config", null()),
                ("feature_key", null()),
                ("discounts", null()),
            ],
            &["price"],
        );
        let mut schema = api.object(
            vec![
                ("id", or_null(ulid())),
                ("name", string_length(1, 256)),
                (
                    "description",
                    or_null(json!({"type": "string", "maxLength": 1024})),
                ),
                ("labels", or_null(component("Labels"))),
                ("type", choices(&["standard_line"])),
                ("service_period", period),
                ("rate_card", rate_card),
                ("quantity", quantity.clone()),
            ],
            &["name", "type", "service_period", "rate_card"],
        );
        // An existing line (id) given without a quantity keeps its own.
        let existing = {
            let mut schema = priced_as(api, &usage);
            schema["required"] = json!(["id"]);
            schema["properties"]["id"] = json!({"type": "string"});
            schema
        };
        schema["anyOf"] = json!([flat_rule, quantity_rule(true), existing]);
        schema
    }
}

/// `InvoicePendingLineCreateInput`: new lines (meterpay gives the ids).
fn pending_lines_v1() -> Value {
    Api::V1.object(
        vec![
            ("currency", component("Currency")),
            (
                "lines",
                json!({
                    "type": "array",
                    "minItems": 1,
                    "items": {"allOf": [component("LineV1"), {"properties": {"id": (null())}}]},
                }),
            ),
        ],
        &["currency", "lines"],
    )
}

/// `InvoicePendingLinesActionInput` (`invoicing::invoice_pending_lines`):
/// meterpay does not bill progressively.
fn invoice_action_v1() -> Value {
    Api::V1.object(
        vec![
            ("customerId", ulid()),
            (
                "filters",
                or_null(Api::V1.object(
                    vec![(
                        "lineIds",
                        or_null(json!({"type": "array", "minItems": 1, "items": ulid()})),
                    )],
                    &[],
                )),
            ),
            ("asOf", or_null(date_time())),
            ("progressiveBillingOverride", json!({"enum": [false, null]})),
        ],
        &["customerId"],
    )
}

/// `VoidInvoiceActionInput`: meterpay voids a whole invoice and discards its
/// lines (100%, `discard`, no per-line overrides), for a stated reason.
fn void_v1() -> Value {
    let line_action = Api::V1.object(
        vec![
            ("type", json!({"const": "discard"})),
            ("nextInvoiceAt", or_null(json!({"type": "string"}))),
        ],
        &["type"],
    );
    Api::V1.object(
        vec![
            (
                "action",
                Api::V1.object(
                    vec![
                        ("percentage", json!({"type": "number", "const": 100})),
                        ("action", line_action),
                    ],
                    &["percentage", "action"],
                ),
            ),
            ("reason", json!({"type": "string", "pattern": r"\S"})),
            (
                "overrides",
                or_null(json!({"type": "array", "maxItems": 0})),
            ),
        ],
        &["action", "reason"],
    )
}

/// `InvoiceReplaceUpdate` (`v1_invoices::update`).
fn invoice_update_v1() -> Value {
    let api = Api::V1;
    let customer = api.object(
        vec![
            ("key", or_null(json!({"type": "string"}))),
            ("name", or_null(string_length(1, 256))),
            (
                "taxId",
                or_null(json!({
                    "type": "object",
                    "properties": {"code": or_null(json!({"type": "string"}))},
                    "additionalProperties": false,
                })),
            ),
            (
                "addresses",
                or_null(json!({"type": "array", "maxItems": 1, "items": component("AddressV1")})),
            ),
        ],
        &[],
    );
    let invoicing = api.object(
        vec![
            ("autoAdvance", or_null(json!({"type": "boolean"}))),
            ("draftPeriod", or_null(duration())),
            ("dueAfter", or_null(json!({"type": "string"}))),
        ],
        &[],
    );
    let payment = api.object(
        vec![(
            "collectionMethod",
            or_null(choices(&["charge_automatically", "send_invoice"])),
        )],
        &[],
    );
    // dueAfter counts only with a collection method: send_invoice reads it
    // as a duration; with charge_automatically only the default is taken.
    let method = |m: &str, due: Value| {
        json!({
            "required": ["payment"],
            "properties": {
                "payment": {"type": "object", "required": ["collectionMethod"], "properties": {"collectionMethod": {"const": m}}},
                "invoicing": or_null(json!({"type": "object", "properties": {"dueAfter": due}})),
            },
        })
    };
    let no_method = json!({"properties": {"payment": or_null(json!({
        "type": "object",
        "properties": {"collectionMethod": (null())},
    }))}});
    let mut settings = api.object(
        vec![
            ("invoicing", or_null(invoicing)),
            ("payment", or_null(payment)),
        ],
        &[],
    );
    settings["anyOf"] = json!([
        no_method,
        method("send_invoice", or_null(duration())),
        method(
            "charge_automatically",
            json!({"enum": [null, DEFAULT_DUE_AFTER]})
        ),
    ]);
    api.object(
        vec![
            (
                "description",
                or_null(json!({"type": "string", "maxLength": 1024})),
            ),
            ("metadata", or_null(string_map())),
            ("supplier", component("BillingPartyInputV1")),
            ("customer", customer),
            (
                "lines",
                json!({"type": "array", "items": component("LineV1")}),
            ),
            (
                "workflow",
                api.object(vec![("workflow", or_null(settings))], &[]),
            ),
        ],
        &["supplier", "customer", "lines", "workflow"],
    )
}

/// `UpdateInvoiceStandardRequest` (`invoices::update`).
fn invoice_update_v3() -> Value {
    let api = Api::V3;
    let tax_id = api.object(vec![("code", or_null(json!({"type": "string"})))], &[]);
    let supplier = api.object(
        vec![
            // Read-only: accepted and ignored.
            ("id", or_null(json!({"type": "string"}))),
            ("name", or_null(json!({"type": "string"}))),
            ("tax_id", or_null(tax_id)),
            (
                "addresses",
                or_null(api.object(
                    vec![("billing_address", component("Address"))],
                    &["billing_address"],
                )),
            ),
        ],
        &[],
    );
    let customer = api.object(
        vec![
            ("name", string_length(1, 256)),
            (
                "id",
                json!({"type": "string", "pattern": ULID_PATTERN, "description": "The invoice's own customer."}),
            ),
            ("usage_attribution", or_null(component("UsageAttribution"))),
            ("billing_address", or_null(component("Address"))),
            ("key", or_null(json!({"type": "string"}))),
        ],
        &["name", "id"],
    );
    let invoicing = api.object(
        vec![
            ("auto_advance", or_null(json!({"type": "boolean"}))),
            ("draft_period", or_null(duration())),
        ],
        &[],
    );
    let payment = json!({"oneOf": [
        api.object(
            vec![
                ("collection_method", choices(&["charge_automatically"])),
                ("due_after", json!({"enum": [null, DEFAULT_DUE_AFTER]})),
            ],
            &["collection_method"],
        ),
        api.object(
            vec![
                ("collection_method", choices(&["send_invoice"])),
                ("due_after", or_null(duration())),
            ],
            &["collection_method"],
        ),
    ]});
    let workflow = api.object(
        vec![(
            "workflow",
            api.object(
                vec![
                    ("invoicing", or_null(invoicing)),
                    ("payment", or_null(payment)),
                ],
                &[],
            ),
        )],
        &["workflow"],
    );
    api.object(
        vec![
            (
                "description",
                or_null(json!({"type": "string", "maxLength": 1024})),
            ),
            ("labels", or_null(component("Labels"))),
            ("supplier", supplier),
            ("customer", customer),
            ("type", choices(&["standard"])),
            ("workflow", workflow),
            (
                "lines",
                or_null(json!({"type": "array", "items": component("UpdateLine")})),
            ),
        ],
        &["supplier", "customer", "type", "workflow"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::profile::iso_duration_is_zero;

    fn matches(schema: &Value, text: &str) -> bool {
        jsonschema::validator_for(schema)
            .expect("a valid schema")
            .is_valid(&json!(text))
    }

    /// The duration patterns agree with the parser on its own test cases.
    #[test]
    fn duration_patterns_agree_with_the_parser() {
        for text in [
            "P0D",
            "PT1H",
            "P1D",
            "P30D",
            "P1Y2M3W4DT5H6M7S",
            "PT0.5S",
            "P0Y0DT0H",
            "PT1M",
            "P1M",
            "",
            "P",
            "PT",
            "1D",
            "P1",
            "PD",
            "P1DT",
            "P1H",
            "PT1D",
            "P1D1Y",
            "P1D1D",
            "p1d",
            "P-1D",
            "P1.D",
            "P.5D",
            "P1.2.3D",
            "P 1D",
            "PT1HX",
            "P1DT1H1Y",
        ] {
            let parsed = iso_duration_is_zero(text);
            assert_eq!(matches(&duration(), text), parsed.is_some(), "{text}");
            assert_eq!(
                matches(&nonzero_duration(), text),
                parsed == Some(false),
                "{text}"
            );
        }
    }

    /// The metadata key pattern refuses exactly the reserved keys and brackets.
    #[test]
    fn numerics_agree_with_the_parser() {
        use crate::billing::money::parse_numeric;
        let non_negative = non_negative();
        let positive = positive();
        let nine = |n: usize| "9".repeat(n);
        let zero = |n: usize| "0".repeat(n);
        for text in [
            "0".to_owned(),
            "-0".to_owned(),
            "-0.000".to_owned(),
            "12.5".to_owned(),
            "0.001".to_owned(),
            "-1".to_owned(),
            "1e3".to_owned(),
            ".5".to_owned(),
            format!("{}.{}", nine(18), nine(10)),
            format!("{}.{}", nine(19), nine(1)),
            format!("1.{}", nine(11)),
            format!("-{}.{}", zero(18), zero(10)),
            format!("-{}", zero(19)),
        ] {
            let parsed = parse_numeric(&text);
            let taken = parsed.is_some_and(|d| !d.is_sign_negative() || d.is_zero());
            let pattern = non_negative["pattern"].as_str().unwrap();
            assert_eq!(
                matches(&json!({"pattern": pattern}), &text),
                taken,
                "{text}"
            );
            let greater = parsed.is_some_and(|d| d > rust_decimal::Decimal::ZERO);
            let both = positive["allOf"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| matches(s, &text));
            assert_eq!(both, greater, "{text}");
        }
    }

    #[test]
    fn metadata_key_pattern() {
        let schema = checkout_metadata();
        let names = &schema["propertyNames"];
        let validator = jsonschema::validator_for(names).expect("a valid schema");
        for (key, ok) in [
            ("order", true),
            ("om_namespacex", true),
            ("om_namespace", false),
            ("om_app_id", false),
            ("meterpay_x", false),
            ("a[b", false),
            ("", false),
        ] {
            assert_eq!(validator.is_valid(&json!(key)), ok, "{key}");
        }
    }
}
