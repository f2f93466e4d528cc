//! Customer Portal Sessions: create (`POST /v1/billing_portal/sessions`). The session's `url`
//! serves a small portal page (see `hosted.rs`).

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::ids::new_id;
use crate::params::{self, nullable_string};
use crate::resources::customers;
use crate::spec::{self, check};
use crate::state::State;

/// `POST /v1/billing_portal/sessions`
pub fn create(state: &mut State, account: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::PORTAL_CREATE, params, "")?;
    let customer =
        params::non_empty(params, "customer").ok_or_else(|| ApiError::missing_param("customer"))?;
    if !customers::exists(state, account, customer) {
        return Err(customers::no_such_customer(customer));
    }
    if let Some(return_url) = params::non_empty(params, "return_url") {
        params::check_url(return_url, "return_url")?;
    }
    let id = new_id("bps");
    let configuration = default_configuration(state, account);
    // The account has one portal configuration, its default; Stripe refuses
    // any other id.
    if let Some(asked) = params::non_empty(params, "configuration")
        && asked != configuration
    {
        return Err(ApiError::invalid(
            format!("No such configuration: '{asked}'"),
            "configuration",
        )
        .code("resource_missing"));
    }
    let session = json!({
        "configuration": configuration,
        "created": state.now(),
        "customer": customer,
        "customer_account": null,
        "flow": null,
        "id": id,
        "livemode": false,
        "locale": nullable_string(params, "locale"),
        "object": "billing_portal.session",
        "on_behalf_of": nullable_string(params, "on_behalf_of"),
        "return_url": nullable_string(params, "return_url"),
        "url": format!("{}/p/session/{}", state.public_url, id),
    });
    state.insert(account, "billing_portal.session", &session)?;
    Ok(session)
}

/// The id of the account's default portal configuration (`bpc_1…`, derived from the account id).
fn default_configuration(state: &State, account: &str) -> String {
    state
        .accounts
        .get(account)
        .map(|stored| {
            format!(
                "bpc_1{}",
                stored
                    .id
                    .trim_start_matches("acct_1")
                    .chars()
                    .take(23)
                    .collect::<String>()
            )
        })
        .unwrap_or_default()
}
