//! `expand[]`: replacing id-valued fields of a response by the objects they name, nested with
//! dots up to 4 levels (https://docs.stripe.com/api/expanding_objects).

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::params;
use crate::state::State;

/// Expands `response` along every path of the request's `expand` parameter.
pub fn expand(
    state: &State,
    account: &str,
    mut response: Value,
    params: &Value,
) -> ApiResult<Value> {
    let Some(paths) = params::string_array(params, "expand") else {
        return Ok(response);
    };
    for (index, path) in paths.iter().enumerate() {
        let fields: Vec<&str> = path.split('.').collect();
        if fields.len() > 4 {
            return Err(ApiError::invalid(
                format!("You cannot expand more than 4 levels of a property. Property: {path}"),
                format!("expand[{index}]"),
            ));
        }
        expand_path(state, account, &mut response, &fields, index)?;
    }
    Ok(response)
}

/// Expands one path (`fields`, the `index`th of `expand`) inside `object`.
fn expand_path(
    state: &State,
    account: &str,
    object: &mut Value,
    fields: &[&str],
    index: usize,
) -> ApiResult<()> {
    let Some((first, rest)) = fields.split_first() else {
        return Ok(());
    };
    if object["object"] == "list" && *first == "data" {
        if let Some(items) = object.get_mut("data").and_then(Value::as_array_mut) {
            for item in items {
                expand_path(state, account, item, rest, index)?;
            }
        }
        return Ok(());
    }
    let cannot_expand = || {
        ApiError::invalid(
            format!("This property cannot be expanded ({}).", fields.join(".")),
            format!("expand[{index}]"),
        )
    };
    let Some(field) = object.get_mut(*first) else {
        return Err(cannot_expand());
    };
    if let Value::String(id) = field {
        match state.object(account, id) {
            Some(found) => *field = found,
            None if id.contains('_') => {}
            None => return Err(cannot_expand()),
        }
    } else if !field.is_object() && !field.is_null() {
        return Err(cannot_expand());
    }
    if !rest.is_empty() && field.is_object() {
        expand_path(state, account, field, rest, index)?;
    }
    Ok(())
}
