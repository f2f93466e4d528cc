//! The shape of Stripe's object ids, checked before a request is sent so a
//! mistyped id is a 400 naming the field rather than a round trip to Stripe.

/// `prefix` followed by 1 to 255 ASCII letters and digits.
fn is_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 255 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// A customer: `cus_…`.
pub fn is_customer_id(id: &str) -> bool {
    is_id(id, "cus_")
}

/// Something Stripe charges: a payment method (`pm_…`), or the older
/// cards (`card_…`) and sources (`src_…`) it still accepts as one.
pub fn is_payment_method_id(id: &str) -> bool {
    ["pm_", "card_", "src_"]
        .iter()
        .any(|prefix| is_id(id, prefix))
}

/// A customer portal configuration: `bpc_…`.
pub fn is_portal_configuration_id(id: &str) -> bool {
    is_id(id, "bpc_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_alphanumerics() {
        assert!(is_customer_id("cus_Abc123"));
        for bad in ["cus_", "cus_a-b", "acme", "pm_123", "cus_é"] {
            assert!(!is_customer_id(bad), "{bad}");
        }
        assert!(!is_customer_id(&format!("cus_{}", "a".repeat(256))));
        for good in ["pm_1", "card_1", "src_1"] {
            assert!(is_payment_method_id(good), "{good}");
        }
        assert!(!is_payment_method_id("visa"));
        assert!(is_portal_configuration_id("bpc_1"));
        assert!(!is_portal_configuration_id("bpc"));
    }
}
