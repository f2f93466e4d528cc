//! Accounts: `GET /v1/account`, the account the API key belongs to.

use serde_json::{Value, json};

use crate::error::ApiResult;
use crate::spec::{self, check};
use crate::state::State;

/// `GET /v1/account`
pub fn retrieve(state: &State, account: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::RETRIEVE, params, "")?;
    Ok(account_object(state, account))
}

/// The business name of every emulated account (its dashboard display name,
/// the invoices' `account_name`, the merchant the hosted pages show).
pub(crate) const ACCOUNT_NAME: &str = "meterpay emulated account";

/// The account object: a standard US account with payments and payouts enabled.
fn account_object(state: &State, account: &str) -> Value {
    let created = state
        .accounts
        .get(account)
        .map(|stored| stored.created)
        .unwrap_or(0);
    json!({
        "business_profile": {
            "annual_revenue": null, "estimated_worker_count": null, "mcc": null,
            "minority_owned_business_designation": null, "name": ACCOUNT_NAME,
            "product_description": null, "support_address": null, "support_email": null,
            "support_phone": null, "support_url": null, "url": null
        },
        "business_type": null,
        "capabilities": {"card_payments": "active", "transfers": "active"},
        "charges_enabled": true,
        "controller": {"type": "account"},
        "country": "US",
        "created": created,
        "default_currency": "usd",
        "details_submitted": true,
        "email": "emulator@example.com",
        "external_accounts": {"data": [], "has_more": false, "object": "list", "url": format!("/v1/accounts/{account}/external_accounts")},
        "future_requirements": {"alternatives": [], "current_deadline": null, "currently_due": [], "disabled_reason": null, "errors": [], "eventually_due": [], "past_due": [], "pending_verification": []},
        "id": account,
        "metadata": {},
        "object": "account",
        "payouts_enabled": true,
        "requirements": {"alternatives": [], "current_deadline": null, "currently_due": [], "disabled_reason": null, "errors": [], "eventually_due": [], "past_due": [], "pending_verification": []},
        "settings": {
            "bacs_debit_payments": {"display_name": null, "service_user_number": null},
            "branding": {"icon": null, "logo": null, "primary_color": null, "secondary_color": null},
            "card_issuing": {"tos_acceptance": {"date": null, "ip": null}},
            "card_payments": {"decline_on": {"avs_failure": false, "cvc_failure": false}, "statement_descriptor_prefix": null, "statement_descriptor_prefix_kana": null, "statement_descriptor_prefix_kanji": null},
            "dashboard": {"display_name": ACCOUNT_NAME, "timezone": "Etc/UTC"},
            "invoices": {"default_account_tax_ids": null, "hosted_payment_method_save": "always"},
            "payments": {"statement_descriptor": null, "statement_descriptor_kana": null, "statement_descriptor_kanji": null, "statement_descriptor_prefix_kana": null, "statement_descriptor_prefix_kanji": null},
            "payouts": {"debit_negative_balances": true, "schedule": {"delay_days": 2, "interval": "daily"}, "statement_descriptor": null},
            "sepa_debit_payments": {}
        },
        "tos_acceptance": {"date": null, "ip": null, "user_agent": null},
        "type": "standard"
    })
}
