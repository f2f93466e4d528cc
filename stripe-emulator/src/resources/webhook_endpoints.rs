//! Webhook Endpoints: create, retrieve, update, list and delete (`/v1/webhook_endpoints`).
//! Deliveries to them are made by `webhooks.rs`.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::ids::{new_id, random_alphanumeric};
use crate::pagination::list as list_page;
use crate::params::{self, nullable_string};
use crate::resources::find;
use crate::spec::{self, check};
use crate::state::State;

fn get(state: &State, account: &str, id: &str) -> ApiResult<Value> {
    find(state, account, id, "webhook_endpoint", "webhook endpoint")
}

/// `POST /v1/webhook_endpoints`: the response (only this one) carries the signing `secret`.
pub fn create(state: &mut State, account: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::WEBHOOK_CREATE, params, "")?;
    let url = params::non_empty(params, "url").ok_or_else(|| ApiError::missing_param("url"))?;
    params::check_url(url, "url")?;
    if params
        .get("enabled_events")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        return Err(ApiError::missing_param("enabled_events"));
    }
    check_enabled_events(params)?;
    let id = new_id("we");
    let secret = format!("whsec_{}", random_alphanumeric(32));
    let endpoint = json!({
        "api_version": nullable_string(params, "api_version"),
        "application": null,
        "created": state.now(),
        "description": nullable_string(params, "description"),
        "enabled_events": params["enabled_events"],
        "id": id,
        "livemode": false,
        "metadata": params::merge_metadata(&json!({}), params.get("metadata").unwrap_or(&Value::Null)),
        "object": "webhook_endpoint",
        "status": "enabled",
        "url": url,
    });
    state.insert(account, "webhook_endpoint", &endpoint)?;
    state
        .account_mut(account)?
        .webhook_secrets
        .insert(id, secret.clone());
    let mut response = endpoint;
    response["secret"] = secret.into();
    Ok(response)
}

/// `GET /v1/webhook_endpoints/{id}`
pub fn retrieve(state: &State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::RETRIEVE, params, "")?;
    get(state, account, id)
}

/// `POST /v1/webhook_endpoints/{id}`: `disabled=true` stops deliveries.
pub fn update(state: &mut State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::WEBHOOK_UPDATE, params, "")?;
    let mut endpoint = get(state, account, id)?;
    if let Some(url) = params.get("url") {
        let url = url.as_str().unwrap_or_default();
        params::check_url(url, "url")?;
        endpoint["url"] = url.into();
    }
    if let Some(enabled_events) = params.get("enabled_events") {
        check_enabled_events(params)?;
        if enabled_events.as_array().is_none_or(Vec::is_empty) {
            return Err(ApiError::invalid(
                "Invalid array".to_string(),
                "enabled_events",
            ));
        }
        endpoint["enabled_events"] = enabled_events.clone();
    }
    if params.get("description").is_some() {
        endpoint["description"] = nullable_string(params, "description");
    }
    if let Some(disabled) = params::string(params, "disabled") {
        endpoint["status"] = if disabled == "true" {
            "disabled"
        } else {
            "enabled"
        }
        .into();
    }
    if let Some(metadata) = params.get("metadata") {
        endpoint["metadata"] = params::merge_metadata(&endpoint["metadata"], metadata);
    }
    state.save(account, endpoint.clone())?;
    Ok(endpoint)
}

/// `GET /v1/webhook_endpoints`
pub fn list(state: &State, account: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::PLAIN_LIST, params, "")?;
    list_page(
        state,
        account,
        "webhook_endpoint",
        params,
        "/v1/webhook_endpoints",
        |_| true,
    )
}

/// `DELETE /v1/webhook_endpoints/{id}`
pub fn delete(state: &mut State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::DELETE, params, "")?;
    get(state, account, id)?;
    let stored = state.account_mut(account)?;
    stored.objects.remove(id);
    stored.webhook_secrets.remove(id);
    if let Some(endpoint_ids) = stored.lists.get_mut("webhook_endpoint") {
        endpoint_ids.retain(|listed| listed != id);
    }
    Ok(json!({"id": id, "object": "webhook_endpoint", "deleted": true}))
}

/// `enabled_events[i]` must be `*` or look like an event type (`noun.verb`, lowercase).
fn check_enabled_events(params: &Value) -> ApiResult<()> {
    if let Some(enabled_events) = params.get("enabled_events").and_then(Value::as_array) {
        for (index, event_type) in enabled_events.iter().enumerate() {
            let event_type = event_type.as_str().unwrap_or_default();
            let valid = event_type == "*"
                || (event_type.contains('.')
                    && event_type
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'));
            if !valid {
                return Err(ApiError::invalid(
                    format!(
                        "Invalid enabled_events[{index}]: must be one of the event types Stripe sends, or '*'"
                    ),
                    format!("enabled_events[{index}]"),
                ));
            }
        }
    }
    Ok(())
}
