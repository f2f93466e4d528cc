//! Stripe's list objects and cursor pagination: `limit`, `starting_after`, `ending_before`,
//! newest first (https://docs.stripe.com/api/pagination).

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::params;
use crate::state::State;

/// One page of the account's objects of a list kind (`customer`, `checkout.session`, ...) that
/// pass `filter`, as a list object whose `url` is `url`.
pub fn list(
    state: &State,
    account: &str,
    kind: &'static str,
    params: &Value,
    url: &str,
    filter: impl Fn(&Value) -> bool,
) -> ApiResult<Value> {
    let limit = match params::non_empty(params, "limit") {
        None => 10,
        Some(limit) => match limit.parse::<i64>() {
            Ok(limit) if (1..=100).contains(&limit) => limit as usize,
            _ => {
                return Err(ApiError::invalid(
                    "Invalid limit: must be between 1 and 100".to_string(),
                    "limit",
                ));
            }
        },
    };
    let no_ids = Vec::new();
    let account = state.accounts.get(account);
    let ids = account
        .and_then(|account| account.lists.get(kind))
        .unwrap_or(&no_ids);
    let newest_first: Vec<&Value> = ids
        .iter()
        .rev()
        .filter_map(|id| account.and_then(|account| account.objects.get(id)))
        .filter(|object| filter(object))
        .collect();
    let position_of = |param: &str, id: &str| -> ApiResult<usize> {
        newest_first
            .iter()
            .position(|object| object["id"] == id)
            .ok_or_else(|| {
                ApiError::invalid(format!("No such {kind}: '{id}'"), param).code("resource_missing")
            })
    };
    let (page, has_more): (Vec<&Value>, bool) =
        if let Some(after) = params::non_empty(params, "starting_after") {
            let older = &newest_first[position_of("starting_after", after)? + 1..];
            (
                older.iter().take(limit).copied().collect(),
                older.len() > limit,
            )
        } else if let Some(before) = params::non_empty(params, "ending_before") {
            let newer = &newest_first[..position_of("ending_before", before)?];
            let start = newer.len().saturating_sub(limit);
            (newer[start..].to_vec(), start > 0)
        } else {
            (
                newest_first.iter().take(limit).copied().collect(),
                newest_first.len() > limit,
            )
        };
    Ok(json!({
        "object": "list",
        "data": page.into_iter().cloned().collect::<Vec<_>>(),
        "has_more": has_more,
        "url": url,
    }))
}
