//! A customer's billing data: its billing profile override and its Stripe
//! side (Stripe customer, default payment method) per Stripe app.

use std::collections::BTreeMap;

use super::Context;
use super::apps::{client_for, note_key_rejected, stripe_error};
use crate::billing::app::App;
use crate::billing::customer::Customer;
use crate::error::{Error, FieldError, Remedy, Result, Rule, Violations};
use crate::ids::{AppId, ProfileId, StripeCustomerId};
use crate::store::customer_stripe::CustomerStripe;
use crate::stripe::{StripeError, ids};

/// What a client may set on a customer's Stripe data.
#[derive(Debug, Clone, Default)]
pub struct StripeDataInput {
    pub customer_id: Option<String>,
    pub default_payment_method_id: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
}

/// The v3 names of [`StripeDataInput`]'s fields, used in errors (the v1 API
/// renames them).
const CUSTOMER_ID_FIELD: &str = "app_data.stripe.customer_id";
const PAYMENT_METHOD_FIELD: &str = "app_data.stripe.default_payment_method_id";
const LABELS_FIELD: &str = "app_data.stripe.labels";

/// The refusal when no Stripe app can be found for a customer.
pub fn no_app_error(field: &str, rule: Rule, or_name_app: bool) -> Error {
    Error::Invalid(vec![
        FieldError::new(field, rule, "no Stripe app is set up for this customer")
            .with_remedy(Remedy::SetUpStripeApp { or_name_app }),
    ])
}

/// DESIGN step 2: the explicit app, else the payment app of the customer's
/// billing profile override, else that of the namespace's default profile.
/// `Ok(None)` when none is set up.
pub async fn resolve_stripe_app(
    ctx: &Context,
    ns: &str,
    customer: &Customer,
    explicit: Option<AppId>,
) -> Result<Option<App>> {
    if let Some(id) = explicit {
        return ctx.store.live_app(ns, id).await.map(Some);
    }
    ctx.store.payment_app_for_customer(ns, customer.id).await
}

/// The Stripe app a customer with this billing profile override (None: the
/// namespace default) would use.
pub async fn resolve_with_profile(
    ctx: &Context,
    ns: &str,
    profile_override: Option<ProfileId>,
) -> Result<Option<App>> {
    ctx.store
        .payment_app_for_profile(ns, profile_override)
        .await
}

/// Checks the client's Stripe data for `app` and stores it.
pub async fn set_stripe_data(
    ctx: &Context,
    ns: &str,
    customer: &Customer,
    app: &App,
    input: StripeDataInput,
) -> Result<CustomerStripe> {
    let row = prepare_stripe_data(ctx, ns, customer, app, input).await?;
    ctx.store
        .upsert_customer_stripe(ns, &row)
        .await
        .map_err(name_conflict)
}

/// A Stripe-customer conflict from the store, naming the Stripe data's field.
pub fn name_conflict(err: Error) -> Error {
    match err {
        Error::Conflict {
            field: Some(_),
            detail,
        } => Error::conflict(CUSTOMER_ID_FIELD, detail),
        other => other,
    }
}

/// Checks the client's Stripe data for `app` and returns the row to store.
/// A new Stripe customer id is verified to exist in the app's Stripe account
/// (one Stripe call, with no database connection held). Writes nothing.
pub async fn prepare_stripe_data(
    ctx: &Context,
    ns: &str,
    customer: &Customer,
    app: &App,
    input: StripeDataInput,
) -> Result<CustomerStripe> {
    customer.ensure_live()?;
    let mut v = Violations::default();
    if let Some(id) = &input.customer_id
        && !ids::is_customer_id(id)
    {
        v.push(
            CUSTOMER_ID_FIELD,
            Rule::MatchesRegex,
            "must be a Stripe customer id (cus_…)",
        );
    }
    if let Some(pm) = &input.default_payment_method_id
        && !ids::is_payment_method_id(pm)
    {
        v.push(
            PAYMENT_METHOD_FIELD,
            Rule::MatchesRegex,
            "must be a Stripe payment method id (pm_…)",
        );
    }
    if let Some(labels) = &input.labels {
        let mut label_errors = Violations::default();
        crate::billing::customer::validate_labels(&mut label_errors, labels);
        v.extend_prefixed(label_errors, "labels", LABELS_FIELD);
    }
    v.into_result()?;

    let existing = ctx
        .store
        .get_customer_stripe(ns, app.id, customer.id)
        .await?;
    let stripe_customer_id = match (&input.customer_id, &existing) {
        (Some(id), _) => StripeCustomerId::from(id.clone()),
        (None, Some(existing)) => existing.stripe_customer_id.clone(),
        (None, None) => {
            return Err(Error::field(
                CUSTOMER_ID_FIELD,
                Rule::Required,
                format!(
                    "the customer has no Stripe customer for app [{}] yet; give its Stripe customer id",
                    app.id
                ),
            ));
        }
    };
    let changed = existing
        .as_ref()
        .is_none_or(|e| e.stripe_customer_id != stripe_customer_id);
    let new_payment_method = input.default_payment_method_id.as_ref().filter(|pm| {
        changed
            || existing
                .as_ref()
                .is_none_or(|e| e.default_payment_method_id.as_ref() != Some(*pm))
    });
    if changed || new_payment_method.is_some() {
        let client = client_for(ctx, ns, app.id).await?;
        let stripe_failed = |err: StripeError| async move {
            note_key_rejected(ctx, ns, app.id, &err).await;
            stripe_error(err)
        };
        if changed {
            let exists = match client.customer_exists(&stripe_customer_id).await {
                Ok(exists) => exists,
                Err(err) => return Err(stripe_failed(err).await),
            };
            if !exists {
                return Err(Error::field(
                    CUSTOMER_ID_FIELD,
                    Rule::Invalid,
                    format!(
                        "Stripe customer [{stripe_customer_id}] does not exist in Stripe account [{}]",
                        app.stripe_account_id
                    ),
                ));
            }
        }
        if let Some(pm) = new_payment_method {
            let owner = match client.payment_method_owner(pm).await {
                Ok(owner) => owner,
                Err(err) => return Err(stripe_failed(err).await),
            };
            payment_method_belongs(pm, owner, &stripe_customer_id, app)?;
        }
    }
    let now = crate::timestamp::now();
    Ok(CustomerStripe {
        app_id: app.id,
        customer_id: customer.id,
        stripe_customer_id,
        default_payment_method_id: input.default_payment_method_id.or_else(|| {
            // Keep the known default unless the Stripe customer changed.
            existing
                .filter(|_| !changed)
                .and_then(|e| e.default_payment_method_id)
        }),
        labels: input.labels,
        created_at: now,
        updated_at: now,
    })
}

/// A default payment method must be one of the Stripe customer's own:
/// Stripe refuses to charge a payment method attached to nobody or to
/// another customer, so storing it would only fail later, at invoice time.
fn payment_method_belongs(
    pm: &str,
    owner: Option<Option<StripeCustomerId>>,
    stripe_customer_id: &StripeCustomerId,
    app: &App,
) -> Result<()> {
    let detail = match owner {
        Some(Some(owner)) if owner == *stripe_customer_id => return Ok(()),
        None => format!(
            "payment method [{pm}] does not exist in Stripe account [{}]",
            app.stripe_account_id
        ),
        Some(None) => format!(
            "payment method [{pm}] is not attached to Stripe customer [{stripe_customer_id}]; \
             attach it first (a checkout session in setup mode does)"
        ),
        Some(Some(owner)) => format!(
            "payment method [{pm}] belongs to another Stripe customer [{owner}], \
             not [{stripe_customer_id}]"
        ),
    };
    Err(Error::field(PAYMENT_METHOD_FIELD, Rule::Invalid, detail))
}

/// Validates a billing profile override: it must be a live profile of the namespace.
pub async fn check_profile(ctx: &Context, ns: &str, field: &str, id: ProfileId) -> Result<()> {
    match ctx.store.get_profile(ns, id).await? {
        Some(profile) if profile.deleted_at.is_none() => Ok(()),
        Some(_) => Err(Error::field(
            field,
            Rule::Invalid,
            format!("billing profile [{id}] was deleted"),
        )),
        None => Err(Error::field(
            field,
            Rule::Invalid,
            format!("billing profile [{id}] does not exist"),
        )),
    }
}
