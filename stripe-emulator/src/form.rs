//! Stripe's form encoding: `application/x-www-form-urlencoded` with bracket notation.
//!
//! `metadata[k]=v`, `custom_text[submit][message]=…`, `allowed_payment_method_types[0]=card`
//! and `expand[]=setup_intent` are decoded into a JSON tree whose leaves are strings
//! (Stripe's form values are untyped; endpoint specs interpret them).

use serde_json::{Map, Value};

/// A decoding error, naming the offending key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormError {
    pub param: String,
    pub message: String,
}

#[derive(Debug)]
enum Node {
    Leaf(String),
    /// Ordered children; `None` key = appended with `[]`.
    Branch(Vec<(Option<String>, Node)>),
}

/// Splits `a[b][c]` into `["a", "b", "c"]`; `a[]` gives `["a", ""]`.
fn split_key(key: &str) -> Option<Vec<String>> {
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if head.is_empty() {
        return None;
    }
    let mut parts = vec![head.to_string()];
    while !rest.is_empty() {
        if !rest.starts_with('[') {
            return None;
        }
        let close = rest.find(']')?;
        parts.push(rest[1..close].to_string());
        rest = &rest[close + 1..];
    }
    Some(parts)
}

fn insert(
    node: &mut Vec<(Option<String>, Node)>,
    path: &[String],
    value: String,
    full: &str,
) -> Result<(), FormError> {
    let err = || FormError {
        param: full.to_string(),
        message: format!("Invalid parameter structure at {full}"),
    };
    let (first, rest) = match path.split_first() {
        Some(x) => x,
        None => return Err(err()),
    };
    let key = if first.is_empty() {
        None
    } else {
        Some(first.clone())
    };
    if rest.is_empty() {
        if let Some(k) = &key {
            // Last value wins for repeated scalar keys.
            if let Some(pos) = node
                .iter()
                .position(|(nk, _)| nk.as_deref() == Some(k.as_str()))
            {
                if matches!(node[pos].1, Node::Branch(_)) {
                    return Err(err());
                }
                node[pos].1 = Node::Leaf(value);
                return Ok(());
            }
        }
        node.push((key, Node::Leaf(value)));
        return Ok(());
    }
    // Nested: find or create a branch. `[]` followed by more segments creates a new element
    // unless the last element lacks the next key (e.g. `items[][price]=a&items[][quantity]=1`).
    let existing = match &key {
        Some(k) => node
            .iter()
            .position(|(nk, _)| nk.as_deref() == Some(k.as_str())),
        None => match node.last() {
            Some((None, Node::Branch(children)))
                if !children
                    .iter()
                    .any(|(ck, _)| ck.as_deref() == Some(rest[0].as_str())) =>
            {
                Some(node.len() - 1)
            }
            _ => None,
        },
    };
    let idx = match existing {
        Some(i) => i,
        None => {
            node.push((key, Node::Branch(Vec::new())));
            node.len() - 1
        }
    };
    match &mut node[idx].1 {
        Node::Branch(children) => insert(children, rest, value, full),
        Node::Leaf(_) => Err(err()),
    }
}

fn to_value(children: Vec<(Option<String>, Node)>) -> Value {
    let all_index = !children.is_empty()
        && children
            .iter()
            .all(|(k, _)| k.as_ref().is_none_or(|k| k.parse::<usize>().is_ok()));
    let conv = |n: Node| match n {
        Node::Leaf(s) => Value::String(s),
        Node::Branch(c) => to_value(c),
    };
    if all_index {
        let mut items: Vec<(usize, usize, Value)> = children
            .into_iter()
            .enumerate()
            .map(|(pos, (k, n))| {
                let idx = k
                    .and_then(|k| k.parse::<usize>().ok())
                    .unwrap_or(usize::MAX);
                (idx, pos, conv(n))
            })
            .collect();
        // Explicit indices sort numerically; `[]` entries keep their arrival order.
        items.sort_by_key(|(i, p, _)| {
            if *i == usize::MAX {
                (usize::MAX, *p)
            } else {
                (*i, 0)
            }
        });
        Value::Array(items.into_iter().map(|(_, _, v)| v).collect())
    } else {
        let mut m = Map::new();
        for (k, n) in children {
            m.insert(k.unwrap_or_default(), conv(n));
        }
        Value::Object(m)
    }
}

/// Decodes a form body or query string into a JSON object.
pub fn parse(input: &[u8]) -> Result<Value, FormError> {
    let mut root: Vec<(Option<String>, Node)> = Vec::new();
    for (k, v) in form_urlencoded::parse(input) {
        if k.is_empty() {
            continue;
        }
        let path = split_key(&k).ok_or_else(|| FormError {
            param: k.to_string(),
            message: format!("Invalid parameter name: {k}"),
        })?;
        insert(&mut root, &path, v.into_owned(), &k)?;
    }
    if root.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match to_value(root) {
        v @ Value::Object(_) => Ok(v),
        // Top-level keys that are all numbers: keep them as an object.
        Value::Array(items) => Ok(Value::Object(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
        )),
        _ => Ok(Value::Object(Map::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn brackets() {
        let v = parse(
            b"metadata[k]=v&custom_text[submit][message]=hi%20there&allowed_payment_method_types[0]=card&allowed_payment_method_types[1]=link&expand[]=setup_intent&expand[]=customer&mode=setup",
        )
        .expect("parse");
        assert_eq!(
            v,
            json!({"metadata":{"k":"v"},"custom_text":{"submit":{"message":"hi there"}},
                "allowed_payment_method_types":["card","link"],"expand":["setup_intent","customer"],"mode":"setup"})
        );
    }

    #[test]
    fn arrays_of_objects() {
        let v = parse(b"line_items[0][price]=p&line_items[0][quantity]=1&line_items[1][price]=q")
            .expect("parse");
        assert_eq!(
            v,
            json!({"line_items":[{"price":"p","quantity":"1"},{"price":"q"}]})
        );
        let v = parse(b"a[][x]=1&a[][y]=2&a[][x]=3").expect("parse");
        assert_eq!(v, json!({"a":[{"x":"1","y":"2"},{"x":"3"}]}));
    }

    #[test]
    fn bad_structure() {
        assert!(parse(b"a=1&a[b]=2").is_err());
        assert!(parse(b"a[b=2").is_err());
    }
}
