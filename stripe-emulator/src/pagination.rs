//! Stripe's list objects and cursor pagination: `limit`, `starting_after`, `ending_before`,
//! newest first (https://docs.stripe.com/api/pagination).

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::params;
use crate::state::{State, StoredObject};
use std::collections::VecDeque;

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
    // Objects are parsed one by one, newest first, and only as far as the page needs.
    let mut newest_first = ids
        .iter()
        .rev()
        .filter_map(|id| account.and_then(|account| account.objects.get(id)))
        .map(StoredObject::value)
        .filter(|object| filter(object));
    let missing = |param: &str, id: &str| {
        ApiError::invalid(format!("No such {kind}: '{id}'"), param).code("resource_missing")
    };
    let (page, has_more): (Vec<Value>, bool) =
        if let Some(after) = params::non_empty(params, "starting_after") {
            if !newest_first.any(|object| object["id"] == after) {
                return Err(missing("starting_after", after));
            }
            let mut older: Vec<Value> = newest_first.take(limit + 1).collect();
            let has_more = older.len() > limit;
            older.truncate(limit);
            (older, has_more)
        } else if let Some(before) = params::non_empty(params, "ending_before") {
            // The `limit` newer objects closest to the cursor.
            let mut newer: VecDeque<Value> = VecDeque::with_capacity(limit + 1);
            let mut dropped = false;
            let mut found = false;
            for object in newest_first.by_ref() {
                if object["id"] == before {
                    found = true;
                    break;
                }
                if newer.len() == limit {
                    newer.pop_front();
                    dropped = true;
                }
                newer.push_back(object);
            }
            if !found {
                return Err(missing("ending_before", before));
            }
            (newer.into(), dropped)
        } else {
            let mut first: Vec<Value> = newest_first.take(limit + 1).collect();
            let has_more = first.len() > limit;
            first.truncate(limit);
            (first, has_more)
        };
    Ok(json!({
        "object": "list",
        "data": page,
        "has_more": has_more,
        "url": url,
    }))
}
