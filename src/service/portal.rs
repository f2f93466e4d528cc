//! Stripe customer portal sessions: where a customer manages their payment
//! methods, billing address and invoices. Only for a customer whose billing
//! profile's Stripe app already links them to a Stripe customer (a checkout
//! session creates that link; so does setting the Stripe customer id).

use time::OffsetDateTime;

use super::Context;
use super::apps::{client_for, note_key_rejected, stripe_error};
use super::checkout::key_invalid;
use super::customer_billing::{no_app_error, resolve_stripe_app};
use crate::billing::app::{App, AppStatus};
use crate::billing::checkout::check_url;
use crate::billing::customer::Customer;
pub use crate::billing::portal::PortalOptions;
use crate::error::{Error, FieldError, Remedy, Result, Rule, Source, Violations};
use crate::ids::{CustomerId, StripeCustomerId};
use crate::stripe::{
    CreatedPortalSession, PortalField, PortalSessionFor, StripeError, is_portal_locale,
    portal_field_for_param,
};

/// The created session (v3 `BillingAppStripeCreateCustomerPortalSessionResult`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalResult {
    pub id: String,
    pub stripe_customer_id: StripeCustomerId,
    pub configuration_id: String,
    pub livemode: bool,
    pub created_at: OffsetDateTime,
    /// The contract requires a string; Stripe's is null when none was given
    /// and the configuration has no default: then "".
    pub return_url: String,
    /// Stripe's null (no locale asked for) is its `auto`.
    pub locale: String,
    pub url: String,
}

/// Field names, in the v3 spelling the v1 layer re-spells.
pub const CONFIGURATION_ID: &str = "stripe_options.configuration_id";
pub const LOCALE: &str = "stripe_options.locale";
pub const RETURN_URL: &str = "stripe_options.return_url";
pub const CUSTOMER_ID: &str = "customerId";

/// The locales Stripe's customer portal knows (for the API document).
pub fn locales() -> Vec<String> {
    crate::stripe::portal_locales()
}

/// Everything about the options that can be checked without calling Stripe.
pub fn validate(options: &PortalOptions) -> Result<()> {
    let mut v = Violations::default();
    if let Some(id) = &options.configuration_id
        && !crate::stripe::ids::is_portal_configuration_id(id)
    {
        v.push(
            CONFIGURATION_ID,
            Rule::MatchesRegex,
            "must be the id of a Stripe customer portal configuration (bpc_…)",
        );
    }
    if let Some(locale) = &options.locale
        && !is_portal_locale(locale)
    {
        v.push(
            LOCALE,
            Rule::Invalid,
            format!(
                "[{locale}] is not a locale of Stripe's customer portal \
                 (e.g. auto, en, en-GB, de, fr-CA, pt-BR, zh-TW)"
            ),
        );
    }
    if let Some(url) = &options.return_url
        && let Err(reason) = check_url(url)
    {
        v.push(RETURN_URL, Rule::Invalid, reason);
    }
    v.into_result()
}

pub async fn create_portal_session(
    ctx: &Context,
    ns: &str,
    customer: &Customer,
    options: &PortalOptions,
) -> Result<PortalResult> {
    customer.ensure_live()?;
    validate(options)?;
    let app = resolve_stripe_app(ctx, ns, customer, None)
        .await?
        .ok_or_else(|| no_app_error("app_id", Rule::Required, false))?;
    if app.status == AppStatus::Unauthorized {
        return Err(key_invalid(&app));
    }
    let link = ctx
        .store
        .get_customer_stripe(ns, app.id, customer.id)
        .await?
        .ok_or_else(|| no_stripe_customer(customer.id, &app))?;
    let client = client_for(ctx, ns, app.id).await?;
    let created = client
        .create_portal_session(
            PortalSessionFor {
                stripe_customer_id: &link.stripe_customer_id,
                options,
            },
            &format!("meterpay-portal-{}", crate::ids::new_ulid()),
        )
        .await;
    match created {
        Ok(session) => to_result(session),
        Err(err) => {
            note_key_rejected(ctx, ns, app.id, &err).await;
            Err(portal_stripe_error(err, &app))
        }
    }
}

fn to_result(s: CreatedPortalSession) -> Result<PortalResult> {
    let created_at = OffsetDateTime::from_unix_timestamp(s.created)
        .map_err(|e| Error::Internal(anyhow::anyhow!("Stripe timestamp {}: {e}", s.created)))?;
    Ok(PortalResult {
        id: s.id,
        stripe_customer_id: s.customer.into(),
        configuration_id: s.configuration,
        livemode: s.livemode,
        created_at,
        return_url: s.return_url.unwrap_or_default(),
        locale: s.locale.unwrap_or_else(|| "auto".to_owned()),
        url: s.url,
    })
}

/// 400: the portal needs a Stripe customer and this customer has none yet.
fn no_stripe_customer(customer_id: CustomerId, app: &App) -> Error {
    let reason = format!(
        "customer [{customer_id}] has no Stripe customer in app [{}] yet: create a checkout \
         session for them first (it creates one)",
        app.id
    );
    Error::Invalid(vec![
        FieldError::new(CUSTOMER_ID, Rule::Invalid, reason)
            .in_source(Source::Path)
            .with_remedy(Remedy::LinkStripeCustomer { customer_id }),
    ])
}

/// An error about the customer the path names (v1 re-spells the field).
fn customer_error(reason: String) -> Error {
    Error::Invalid(vec![
        FieldError::new(CUSTOMER_ID, Rule::Invalid, reason).in_source(Source::Path),
    ])
}

/// Stripe's refusal, naming meterpay's field for Stripe's parameter.
fn portal_stripe_error(err: StripeError, app: &App) -> Error {
    match err {
        StripeError::KeyRejected { .. } => key_invalid(app),
        StripeError::Rejected { message, param, .. } => {
            let reason = format!("Stripe refused the request: {message}");
            let field = match portal_field_for_param(param.as_deref()) {
                Some(PortalField::ConfigurationId) => CONFIGURATION_ID,
                Some(PortalField::Locale) => LOCALE,
                Some(PortalField::ReturnUrl) => RETURN_URL,
                Some(PortalField::Customer) => return customer_error(reason),
                None => "stripe",
            };
            Error::field(field, Rule::Invalid, reason)
        }
        other => stripe_error(other),
    }
}
