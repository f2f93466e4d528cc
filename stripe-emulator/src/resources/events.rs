//! Events: retrieve and list (`/v1/events`). Events are recorded, and queued for webhook
//! delivery, by `State::emit`.

use serde_json::Value;

use crate::error::ApiResult;
use crate::pagination::list as list_page;
use crate::params;
use crate::resources::find;
use crate::spec::{self, check};
use crate::state::State;

/// `GET /v1/events/{id}`
pub fn retrieve(state: &State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::RETRIEVE, params, "")?;
    find(state, account, id, "event", "event")
}

/// `GET /v1/events` (filters: `type`, `types[]`; both take `prefix.*` patterns).
pub fn list(state: &State, account: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::EVENT_LIST, params, "")?;
    let wanted_type = params::non_empty(params, "type").map(str::to_string);
    let wanted_types = params::string_array(params, "types");
    list_page(state, account, "event", params, "/v1/events", |event| {
        let event_type = event["type"].as_str().unwrap_or_default();
        wanted_type
            .as_deref()
            .is_none_or(|pattern| type_matches(pattern, event_type))
            && wanted_types.as_ref().is_none_or(|patterns| {
                patterns
                    .iter()
                    .any(|pattern| type_matches(pattern, event_type))
            })
    })
}

/// Whether an event type matches a filter: exactly, or by prefix for `prefix.*`.
fn type_matches(pattern: &str, event_type: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => event_type.starts_with(prefix),
        None => pattern == event_type,
    }
}

#[cfg(test)]
mod tests {
    use super::type_matches;

    #[test]
    fn event_type_filters() {
        assert!(type_matches("customer.created", "customer.created"));
        assert!(!type_matches("customer.created", "customer.updated"));
        assert!(type_matches("customer.*", "customer.updated"));
        assert!(!type_matches("customer.*", "checkout.session.completed"));
        assert!(type_matches("*", "setup_intent.succeeded"));
    }
}
