//! The one place v1's spellings live: v1 names fields in camelCase, calls
//! labels `metadata`, and nests checkout options under `options` with its
//! own capitalisation (`successURL`). Services speak v3 names; the v1
//! handlers and `V1Error` re-spell them here.

pub use super::problem::rename_fields;

/// v1 spells fields in camelCase and calls labels `metadata`.
pub fn v1_field_name(field: &str) -> String {
    let field = field
        .strip_prefix("labels")
        .map(|rest| format!("metadata{rest}"))
        .unwrap_or_else(|| field.to_owned());
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for ch in field.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            out.extend(ch.to_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

/// A checkout option's v3 field name spelled as in v1 (`stripe_options.success_url`
/// → `options.successURL`).
pub fn v1_option_field(v3: &str) -> String {
    let Some(rest) = v3.strip_prefix("stripe_options.") else {
        return v3.to_owned();
    };
    let mut out = String::from("options.");
    for (i, segment) in rest.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        if i > 0 && rest.starts_with("metadata.") {
            out.push_str(segment);
            continue;
        }
        let camel = v1_field_name(segment);
        let camel = camel
            .replace("Url", "URL")
            .replace("ReferenceId", "ReferenceID");
        out.push_str(&camel);
    }
    out
}

/// v1's names for the API key an app update rotates.
pub const API_KEY_FIELDS: &[(&str, &str)] = &[("secret_api_key", "secretAPIKey")];

/// v1's names for a customer's Stripe data (v3 nests them under `app_data.stripe`).
pub const STRIPE_DATA_FIELDS: &[(&str, &str)] = &[
    ("app_data.stripe.customer_id", "stripeCustomerId"),
    (
        "app_data.stripe.default_payment_method_id",
        "stripeDefaultPaymentMethodId",
    ),
    ("app_data.stripe.labels", "labels"),
];

/// v1's names for a billing profile's fields where v1 differs from v3 by
/// more than camelCase: the due period and the default tax config sit under
/// the invoicing settings, the supplier's address is a list, apps are ids.
/// The more specific entries come first.
pub const PROFILE_FIELDS: &[(&str, &str)] = &[
    (
        "workflow.tax.default_tax_config.external_invoicing",
        "workflow.invoicing.defaultTaxConfig.customInvoicing",
    ),
    (
        "workflow.tax.default_tax_config",
        "workflow.invoicing.defaultTaxConfig",
    ),
    ("workflow.payment.due_after", "workflow.invoicing.dueAfter"),
    (
        "supplier.addresses.billing_address",
        "supplier.addresses[0]",
    ),
    ("apps.tax.id", "apps.tax"),
    ("apps.invoicing.id", "apps.invoicing"),
    ("apps.payment.id", "apps.payment"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_names_are_camel_case() {
        assert_eq!(
            v1_field_name("billing_address.postal_code"),
            "billingAddress.postalCode"
        );
        assert_eq!(
            v1_field_name("usage_attribution.subject_keys[0]"),
            "usageAttribution.subjectKeys[0]"
        );
        assert_eq!(v1_field_name("labels"), "metadata");
        assert_eq!(v1_field_name("name"), "name");
    }

    #[test]
    fn v1_names() {
        assert_eq!(
            v1_option_field("stripe_options.success_url"),
            "options.successURL"
        );
        assert_eq!(
            v1_option_field("stripe_options.client_reference_id"),
            "options.clientReferenceID"
        );
        assert_eq!(
            v1_option_field("stripe_options.custom_text.after_submit.message"),
            "options.customText.afterSubmit.message"
        );
        assert_eq!(
            v1_option_field("stripe_options.metadata.my_key"),
            "options.metadata.my_key"
        );
    }
}
