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
    json!({
        "description": "A hosted session (ui_mode hosted, the default) needs success_url; an \
            embedded one (ui_mode embedded) returns to return_url. expires_at: Unix seconds, \
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
