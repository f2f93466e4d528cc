//! Invoices in Stripe, in meterpay's vocabulary: the requests of an invoice
//! sync (a draft invoice, one invoice item per line, finalize, pay), what
//! meterpay keeps of Stripe's answers, and amounts in Stripe's minor units.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use stripe_billing::invoice::{
    CreateInvoice, CreateInvoiceAutomaticTax, FinalizeInvoiceInvoice, PayInvoice,
    VoidInvoiceInvoice,
};
use stripe_billing::invoice_item::{CreateInvoiceItem, CreateInvoiceItemTaxBehavior};
use stripe_shared::InvoiceCollectionMethod;

use super::transformers::{META_APP_ID, META_CUSTOMER_ID, META_NAMESPACE, wire};
use crate::billing::currency::CurrencyCode;
use crate::ids::StripeCustomerId;

/// Metadata keys meterpay writes on the invoices and items it creates.
pub const META_INVOICE_ID: &str = "meterpay_invoice_id";
pub const META_INVOICE_LINE_ID: &str = "meterpay_invoice_line_id";

// ---- amounts ----------------------------------------------------------------
//
// Stripe's minor units are not always ISO 4217's (docs.stripe.com/currencies):
// - zero-decimal in Stripe: BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND
//   VUV XAF XOF XPF (MGA has two decimals in ISO 4217);
// - ISK is zero-decimal in ISO 4217 and in effect in Stripe, but Stripe's
//   amounts keep two decimals ("500" is 5 ISK) and must be whole krónur;
// - three-decimal BHD JOD KWD OMR TND: amounts in the minor unit whose last
//   digit is 0, so Stripe charges them to 0.01;
// - every other currency two decimals, including ISO's three-decimal IQD and
//   LYD (Stripe lists them as neither), and HUF and TWD (whose special case is
//   payouts only).
// meterpay bills each line to what Stripe charges exactly ([`charge_decimals`]),
// so an amount beyond it never reaches Stripe and never fails a sync.

/// Currencies Stripe charges without a minor unit (amount 100 = ¥100).
/// From Stripe's documented list of zero-decimal currencies.
const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];
/// Currencies Stripe takes with three decimals; their amounts must end in 0.
const THREE_DECIMAL: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];
/// Two decimals in Stripe's amounts, whole units only.
const WHOLE_UNITS: &[&str] = &["ISK"];

/// How many decimals Stripe's integer amounts carry in `currency`.
pub fn stripe_decimals(currency: &CurrencyCode) -> u32 {
    let code = currency.as_str();
    if ZERO_DECIMAL.contains(&code) {
        0
    } else if THREE_DECIMAL.contains(&code) {
        3
    } else {
        2
    }
}

/// The decimals (of the major unit) Stripe charges `currency` to exactly:
/// 0 for its zero-decimal currencies and ISK, 2 for every other (three-decimal
/// ones included: their amounts end in 0).
pub fn charge_decimals(currency: &CurrencyCode) -> u32 {
    let code = currency.as_str();
    if ZERO_DECIMAL.contains(&code) || WHOLE_UNITS.contains(&code) {
        0
    } else {
        2
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("{amount} {currency} has more decimals than Stripe charges in {currency} ({decimals})")]
    TooPrecise {
        amount: Decimal,
        currency: String,
        decimals: u32,
    },
    #[error("{amount} {currency} is too large for Stripe")]
    TooLarge { amount: Decimal, currency: String },
}

/// `amount` as the integer Stripe expects: ¥500 → 500, $12.34 → 1234,
/// 1.230 KWD → 1230, 5 ISK → 500. Never rounds: an amount Stripe cannot
/// charge exactly is an error, so what is charged is what the invoice says.
pub fn minor_units(currency: &CurrencyCode, amount: Decimal) -> Result<i64, AmountError> {
    let exact = charge_decimals(currency);
    if amount.round_dp(exact) != amount {
        return Err(AmountError::TooPrecise {
            amount,
            currency: currency.as_str().to_owned(),
            decimals: exact,
        });
    }
    let scaled = amount * Decimal::from(10i64.pow(stripe_decimals(currency)));
    i64::try_from(scaled.trunc()).map_err(|_| AmountError::TooLarge {
        amount,
        currency: currency.as_str().to_owned(),
    })
}

/// The inverse of [`minor_units`]: Stripe's integer amount as a decimal.
pub fn from_minor_units(currency: &CurrencyCode, units: i64) -> Decimal {
    Decimal::new(units, stripe_decimals(currency))
}

// ---- requests -----------------------------------------------------------------

/// How Stripe collects an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collection {
    /// Stripe charges the payment method: this one, else the customer's default.
    ChargeAutomatically {
        default_payment_method: Option<String>,
    },
    /// Stripe emails the invoice; the customer pays within `days_until_due`.
    SendInvoice { days_until_due: u32 },
}

/// A draft Stripe invoice for one meterpay invoice. Created with
/// `auto_advance` off: items are added first, then [`super::StripeClient::finalize_invoice`]
/// hands collection to Stripe.
#[derive(Debug, Clone)]
pub struct StripeInvoiceFor<'a> {
    pub namespace: &'a str,
    pub app_id: &'a str,
    pub customer_id: &'a str,
    pub invoice_id: &'a str,
    pub stripe_customer_id: &'a StripeCustomerId,
    pub currency: &'a CurrencyCode,
    pub collection: &'a Collection,
    pub automatic_tax: bool,
    pub description: Option<&'a str>,
}

impl From<StripeInvoiceFor<'_>> for CreateInvoice {
    fn from(i: StripeInvoiceFor<'_>) -> Self {
        let metadata = HashMap::from([
            (META_NAMESPACE.to_owned(), i.namespace.to_owned()),
            (META_APP_ID.to_owned(), i.app_id.to_owned()),
            (META_CUSTOMER_ID.to_owned(), i.customer_id.to_owned()),
            (META_INVOICE_ID.to_owned(), i.invoice_id.to_owned()),
        ]);
        let mut req = CreateInvoice::new()
            .customer(i.stripe_customer_id.as_str().to_owned())
            .currency(wire::<stripe_types::Currency>(
                &i.currency.as_str().to_ascii_lowercase(),
            ))
            .auto_advance(false)
            .automatic_tax(CreateInvoiceAutomaticTax::new(i.automatic_tax))
            // Only the items this sync adds, never pending items of the customer's.
            .pending_invoice_items_behavior(
                stripe_billing::invoice::CreateInvoicePendingInvoiceItemsBehavior::Exclude,
            )
            .metadata(metadata);
        req = match i.collection {
            Collection::ChargeAutomatically {
                default_payment_method,
            } => {
                let req = req.collection_method(InvoiceCollectionMethod::ChargeAutomatically);
                match default_payment_method {
                    Some(pm) => req.default_payment_method(pm.clone()),
                    None => req,
                }
            }
            Collection::SendInvoice { days_until_due } => req
                .collection_method(InvoiceCollectionMethod::SendInvoice)
                .days_until_due(*days_until_due),
        };
        if let Some(description) = i.description {
            req = req.description(description.to_owned());
        }
        req
    }
}

/// Whether a line's amount includes tax (Stripe's `tax_behavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaxBehavior {
    Inclusive,
    Exclusive,
}

/// One invoice item: one meterpay line on the Stripe invoice.
#[derive(Debug, Clone)]
pub struct StripeInvoiceItemFor<'a> {
    pub invoice_id: &'a str,
    pub line_id: &'a str,
    pub stripe_customer_id: &'a StripeCustomerId,
    pub stripe_invoice_id: &'a str,
    pub currency: &'a CurrencyCode,
    /// Stripe's minor units ([`minor_units`]).
    pub amount: i64,
    pub description: &'a str,
    /// Unix seconds.
    pub period: Option<(i64, i64)>,
    pub tax_behavior: Option<TaxBehavior>,
    pub tax_code: Option<&'a str>,
}

impl From<StripeInvoiceItemFor<'_>> for CreateInvoiceItem {
    fn from(i: StripeInvoiceItemFor<'_>) -> Self {
        let metadata = HashMap::from([
            (META_INVOICE_ID.to_owned(), i.invoice_id.to_owned()),
            (META_INVOICE_LINE_ID.to_owned(), i.line_id.to_owned()),
        ]);
        let mut req = CreateInvoiceItem::new()
            .customer(i.stripe_customer_id.as_str().to_owned())
            .invoice(i.stripe_invoice_id.to_owned())
            .currency(wire::<stripe_types::Currency>(
                &i.currency.as_str().to_ascii_lowercase(),
            ))
            .amount(i.amount)
            .description(i.description.to_owned())
            .metadata(metadata);
        if let Some((start, end)) = i.period {
            req = req.period(stripe_billing::invoice_item::Period::new(end, start));
        }
        if let Some(behavior) = i.tax_behavior {
            req = req.tax_behavior(match behavior {
                TaxBehavior::Inclusive => CreateInvoiceItemTaxBehavior::Inclusive,
                TaxBehavior::Exclusive => CreateInvoiceItemTaxBehavior::Exclusive,
            });
        }
        if let Some(code) = i.tax_code {
            req = req.tax_code(code.to_owned());
        }
        req
    }
}

pub(super) fn finalize_request(stripe_invoice_id: &str) -> FinalizeInvoiceInvoice {
    // Stripe collects (and retries) by the account's settings from here on.
    FinalizeInvoiceInvoice::new(stripe_invoice_id).auto_advance(true)
}

/// `POST /v1/invoices/{id}/pay`, off session; with `payment_method` Stripe
/// charges that one (the customer's default now) instead of the invoice's own.
pub(super) fn pay_request(stripe_invoice_id: &str, payment_method: Option<&str>) -> PayInvoice {
    let request = PayInvoice::new(stripe_invoice_id).off_session(true);
    match payment_method {
        Some(pm) => request.payment_method(pm),
        None => request,
    }
}

pub(super) fn void_request(stripe_invoice_id: &str) -> VoidInvoiceInvoice {
    VoidInvoiceInvoice::new(stripe_invoice_id)
}

// ---- answers ------------------------------------------------------------------

/// A Stripe invoice's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StripeInvoiceStatus {
    Draft,
    Open,
    Paid,
    Uncollectible,
    Void,
}

impl StripeInvoiceStatus {
    /// Stripe's wire name (`draft`, `open`, …); `None` for one this version does not know.
    pub fn from_wire(status: &str) -> Option<Self> {
        Some(match status {
            "draft" => Self::Draft,
            "open" => Self::Open,
            "paid" => Self::Paid,
            "uncollectible" => Self::Uncollectible,
            "void" => Self::Void,
            _ => return None,
        })
    }
}

/// What meterpay keeps of a Stripe invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeInvoice {
    pub id: String,
    pub status: Option<StripeInvoiceStatus>,
    pub number: Option<String>,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    /// Stripe's minor units.
    pub amount_due: i64,
    pub amount_paid: i64,
    pub amount_remaining: i64,
    /// Unix seconds.
    pub due_date: Option<i64>,
    /// Why Stripe could not finalize it: its message, else its code.
    pub last_finalization_error: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

impl From<stripe_shared::Invoice> for StripeInvoice {
    fn from(i: stripe_shared::Invoice) -> Self {
        StripeInvoice {
            id: i.id.map(|id| id.as_str().to_owned()).unwrap_or_default(),
            status: i
                .status
                .and_then(|s| StripeInvoiceStatus::from_wire(s.as_str())),
            number: i.number,
            hosted_invoice_url: i.hosted_invoice_url,
            invoice_pdf: i.invoice_pdf,
            amount_due: i.amount_due,
            amount_paid: i.amount_paid,
            amount_remaining: i.amount_remaining,
            due_date: i.due_date,
            last_finalization_error: i
                .last_finalization_error
                .and_then(|e| e.message.or(e.code.map(|c| c.as_str().to_owned()))),
            metadata: i.metadata.unwrap_or_default().into_iter().collect(),
        }
    }
}

/// The outcome of asking Stripe to charge an open invoice now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentAttempt {
    /// Stripe collected it (now, or before: an invoice already paid).
    Paid,
    /// The charge failed: Stripe's message (and decline code when given).
    Failed {
        message: String,
        code: Option<String>,
    },
    /// The customer must authenticate (3-D Secure) on the hosted invoice page.
    ActionRequired { message: String },
}

/// Sorts a refused `POST /v1/invoices/{id}/pay` into a payment outcome:
/// card errors and authentication are the customer's payment, not a failure
/// of the call. `None`: the refusal is about the request (or the invoice's
/// state: Stripe refuses to pay a paid invoice without an error code, so the
/// client looks at the invoice then).
pub(super) fn payment_refusal(
    code: Option<&str>,
    kind: &str,
    message: &str,
) -> Option<PaymentAttempt> {
    match (kind, code) {
        (
            _,
            Some(
                "invoice_payment_intent_requires_action"
                | "authentication_required"
                | "payment_intent_action_required",
            ),
        ) => Some(PaymentAttempt::ActionRequired {
            message: message.to_owned(),
        }),
        ("card_error", code) => Some(PaymentAttempt::Failed {
            message: message.to_owned(),
            code: code.map(str::to_owned),
        }),
        (_, Some("invoice_no_customer_line_items" | "invoice_no_payment_method_types")) => None,
        (_, Some(code))
            if code.starts_with("card_")
                || code == "expired_card"
                || code == "incorrect_cvc"
                || code == "processing_error"
                || code == "payment_intent_payment_attempt_failed"
                || code == "payment_intent_authentication_failure" =>
        {
            Some(PaymentAttempt::Failed {
                message: message.to_owned(),
                code: Some(code.to_owned()),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn code(c: &str) -> CurrencyCode {
        CurrencyCode::parse(c).unwrap()
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn minor_units_follow_stripe_decimals() {
        assert_eq!(minor_units(&code("USD"), dec("12.34")), Ok(1234));
        assert_eq!(minor_units(&code("USD"), dec("12.3")), Ok(1230));
        assert_eq!(minor_units(&code("JPY"), dec("500")), Ok(500));
        assert_eq!(minor_units(&code("KWD"), dec("1.230")), Ok(1230));
        assert_eq!(minor_units(&code("ISK"), dec("100")), Ok(10000));
        // Stripe's zero-decimal UGX and MGA; IQD and LYD (ISO three-decimal) as two.
        assert_eq!(minor_units(&code("UGX"), dec("1500")), Ok(1500));
        assert_eq!(minor_units(&code("MGA"), dec("1500")), Ok(1500));
        assert_eq!(minor_units(&code("IQD"), dec("1.25")), Ok(125));
        assert_eq!(minor_units(&code("HUF"), dec("10.45")), Ok(1045));
        assert_eq!(minor_units(&code("USD"), dec("0")), Ok(0));
        assert_eq!(minor_units(&code("USD"), dec("-1.50")), Ok(-150));
    }

    #[test]
    fn amounts_stripe_cannot_hold_are_errors_not_rounding() {
        assert_eq!(
            minor_units(&code("JPY"), dec("0.5")),
            Err(AmountError::TooPrecise {
                amount: dec("0.5"),
                currency: "JPY".into(),
                decimals: 0
            })
        );
        assert_eq!(
            minor_units(&code("KWD"), dec("1.235")),
            Err(AmountError::TooPrecise {
                amount: dec("1.235"),
                currency: "KWD".into(),
                decimals: 2
            })
        );
        for (currency, amount) in [("ISK", "5.5"), ("MGA", "10.5"), ("UGX", "1.5")] {
            assert!(
                matches!(
                    minor_units(&code(currency), dec(amount)),
                    Err(AmountError::TooPrecise { decimals: 0, .. })
                ),
                "{amount} {currency}"
            );
        }
        assert!(matches!(
            minor_units(&code("USD"), dec("100000000000000000000")),
            Err(AmountError::TooLarge { .. })
        ));
    }

    #[test]
    fn charge_decimals_are_at_most_what_stripe_charges_exactly() {
        let of = |c: &str| charge_decimals(&code(c));
        assert_eq!(
            [
                "USD", "JPY", "KWD", "ISK", "UGX", "MGA", "IQD", "LYD", "HUF", "TWD"
            ]
            .map(of),
            [2, 0, 2, 0, 0, 0, 2, 2, 2, 2]
        );
    }

    #[test]
    fn minor_units_round_trip() {
        for (c, a) in [("USD", "12.34"), ("JPY", "500"), ("KWD", "1.230")] {
            let units = minor_units(&code(c), dec(a)).unwrap();
            assert_eq!(from_minor_units(&code(c), units), dec(a));
        }
    }

    #[test]
    fn refused_payments_sort_into_outcomes() {
        assert_eq!(
            payment_refusal(
                Some("card_declined"),
                "card_error",
                "Your card was declined."
            ),
            Some(PaymentAttempt::Failed {
                message: "Your card was declined.".into(),
                code: Some("card_declined".into())
            })
        );
        assert_eq!(
            payment_refusal(
                Some("invoice_payment_intent_requires_action"),
                "invalid_request_error",
                "This payment requires additional user action before it can be completed successfully."
            ),
            Some(PaymentAttempt::ActionRequired {
                message: "This payment requires additional user action before it can be completed successfully.".into()
            })
        );
        assert_eq!(
            payment_refusal(
                Some("resource_missing"),
                "invalid_request_error",
                "No such invoice"
            ),
            None
        );
    }
}

/// The translator against the emulator: what Stripe receives and answers.
#[cfg(test)]
mod against_the_emulator {
    use std::str::FromStr;

    use serde_json::{Value, json};
    use stripe_emulator::{CardInput, Emulator, EmulatorConfig};

    use super::*;
    use crate::stripe::{Stripe, StripeClient, StripeConfig, StripeError};

    const KEY: &str = "sk_test_emulator";

    async fn emulator() -> (Emulator, StripeClient) {
        let emu = Emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorConfig::default())
            .await
            .unwrap();
        let client = Stripe::new(StripeConfig::new(emu.base_url())).client(KEY);
        (emu, client)
    }

    async fn post(emu: &Emulator, path: &str, form: &[(&str, &str)]) -> Value {
        reqwest::Client::new()
            .post(format!("{}{path}", emu.base_url()))
            .bearer_auth(KEY)
            .form(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A Stripe customer whose default payment method is `card`, saved
    /// through a setup-mode checkout session as meterpay's flow does.
    async fn customer_with_card(emu: &Emulator, card: &str) -> StripeCustomerId {
        let customer = post(emu, "/v1/customers", &[("email", "payer@example.com")]).await;
        let id = customer["id"].as_str().unwrap().to_owned();
        let session = post(
            emu,
            "/v1/checkout/sessions",
            &[
                ("mode", "setup"),
                ("customer", &id),
                ("currency", "usd"),
                ("success_url", "https://example.com/ok"),
            ],
        )
        .await;
        let card = CardInput {
            number: card.to_owned(),
            exp_month: 12,
            exp_year: 2040,
            name: None,
            email: None,
            address: None,
        };
        emu.complete_checkout_session(session["id"].as_str().unwrap(), &card, true)
            .unwrap();
        let intent = emu
            .object(session["setup_intent"].as_str().unwrap())
            .unwrap();
        let pm = intent["payment_method"].as_str().unwrap();
        post(
            emu,
            &format!("/v1/customers/{id}"),
            &[("invoice_settings[default_payment_method]", pm)],
        )
        .await;
        StripeCustomerId::from(id.as_str())
    }

    /// Stripe charges the customer's default card.
    fn charge_default_card() -> Collection {
        Collection::ChargeAutomatically {
            default_payment_method: None,
        }
    }

    async fn issue(
        client: &StripeClient,
        customer: &StripeCustomerId,
        currency: &str,
        amounts: &[&str],
        collection: Collection,
    ) -> StripeInvoice {
        let currency = CurrencyCode::parse(currency).unwrap();
        let draft = client
            .create_invoice(
                StripeInvoiceFor {
                    namespace: "ns",
                    app_id: "app1",
                    customer_id: "cust1",
                    invoice_id: "inv1",
                    stripe_customer_id: customer,
                    currency: &currency,
                    collection: &collection,
                    automatic_tax: false,
                    description: Some("Usage for November"),
                },
                &format!("test-invoice-{}", customer.as_str()),
            )
            .await
            .unwrap();
        assert_eq!(draft.status, Some(StripeInvoiceStatus::Draft));
        for (n, amount) in amounts.iter().enumerate() {
            let line = format!("line{n}");
            let units = minor_units(&currency, Decimal::from_str(amount).unwrap()).unwrap();
            client
                .create_invoice_item(
                    StripeInvoiceItemFor {
                        invoice_id: "inv1",
                        line_id: &line,
                        stripe_customer_id: customer,
                        stripe_invoice_id: &draft.id,
                        currency: &currency,
                        amount: units,
                        description: "API calls",
                        period: Some((1_790_000_000, 1_792_000_000)),
                        tax_behavior: None,
                        tax_code: None,
                    },
                    &format!("test-item-{}-{line}", draft.id),
                )
                .await
                .unwrap();
        }
        let lines = client.invoice_items_by_line(&draft.id).await.unwrap();
        assert_eq!(
            lines.keys().cloned().collect::<Vec<_>>(),
            (0..amounts.len())
                .map(|n| format!("line{n}"))
                .collect::<Vec<_>>()
        );
        client.finalize_invoice(&draft.id).await.unwrap()
    }

    #[tokio::test]
    async fn a_charged_invoice_is_paid_and_keeps_meterpays_ids() {
        let (emu, client) = emulator().await;
        let customer = customer_with_card(&emu, "4242424242424242").await;
        let open = issue(
            &client,
            &customer,
            "KWD",
            &["1.230", "0.500"],
            charge_default_card(),
        )
        .await;
        assert_eq!(open.status, Some(StripeInvoiceStatus::Open));
        assert_eq!(open.amount_due, 1730);
        assert!(open.number.is_some() && open.hosted_invoice_url.is_some());
        assert_eq!(
            open.metadata.get(META_INVOICE_ID).map(String::as_str),
            Some("inv1")
        );
        assert_eq!(
            client.pay_invoice(&open.id, None).await,
            Ok(PaymentAttempt::Paid)
        );
        // Paying again is not an error: the invoice is paid.
        assert_eq!(
            client.pay_invoice(&open.id, None).await,
            Ok(PaymentAttempt::Paid)
        );
        let paid = client.retrieve_invoice(&open.id).await.unwrap();
        assert_eq!(
            (paid.status, paid.amount_paid, paid.amount_remaining),
            (Some(StripeInvoiceStatus::Paid), 1730, 0)
        );
        let created = &emu
            .requests(0)
            .into_iter()
            .find(|r| r.method == "POST" && r.path == "/v1/invoices")
            .unwrap();
        assert_eq!(
            created.params,
            json!({
                "customer": customer.as_str(), "currency": "kwd", "auto_advance": "false",
                "automatic_tax": {"enabled": "false"}, "collection_method": "charge_automatically",
                "pending_invoice_items_behavior": "exclude", "description": "Usage for November",
                "metadata": {"meterpay_namespace": "ns", "meterpay_app_id": "app1",
                             "meterpay_customer_id": "cust1", "meterpay_invoice_id": "inv1"}
            })
        );
        assert_eq!(
            created.idempotency_key.as_deref(),
            Some(format!("test-invoice-{}", customer.as_str()).as_str())
        );
    }

    #[tokio::test]
    async fn declined_and_authentication_are_payment_outcomes() {
        let (emu, client) = emulator().await;
        let declined = customer_with_card(&emu, "4000000000000341").await;
        let open = issue(&client, &declined, "USD", &["12.34"], charge_default_card()).await;
        assert!(matches!(
            client.pay_invoice(&open.id, None).await,
            Ok(PaymentAttempt::Failed { code: Some(c), .. }) if c == "card_declined"
        ));
        let authenticate = customer_with_card(&emu, "4000002760003184").await;
        let open = issue(
            &client,
            &authenticate,
            "JPY",
            &["500"],
            charge_default_card(),
        )
        .await;
        assert!(matches!(
            client.pay_invoice(&open.id, None).await,
            Ok(PaymentAttempt::ActionRequired { .. })
        ));
    }

    #[tokio::test]
    async fn a_named_payment_method_is_charged_and_a_foreign_one_falls_back() {
        let (emu, client) = emulator().await;
        let declined = customer_with_card(&emu, "4000000000000341").await;
        let open = issue(&client, &declined, "USD", &["12.34"], charge_default_card()).await;
        // A payment method of another Stripe customer: Stripe refuses it for
        // this invoice, so the invoice's own default (declined) is charged.
        let other = customer_with_card(&emu, "4242424242424242").await;
        let foreign =
            emu.object(other.as_str()).unwrap()["invoice_settings"]["default_payment_method"]
                .as_str()
                .unwrap()
                .to_owned();
        assert!(matches!(
            client.pay_invoice(&open.id, Some(&foreign)).await,
            Ok(PaymentAttempt::Failed { code: Some(c), .. }) if c == "card_declined"
        ));
        // A new card of the invoice's customer, named: it pays.
        let session = post(
            &emu,
            "/v1/checkout/sessions",
            &[
                ("mode", "setup"),
                ("customer", declined.as_str()),
                ("currency", "usd"),
                ("success_url", "https://example.com/ok"),
            ],
        )
        .await;
        let card = CardInput {
            number: "4242424242424242".into(),
            exp_month: 12,
            exp_year: 2040,
            name: None,
            email: None,
            address: None,
        };
        emu.complete_checkout_session(session["id"].as_str().unwrap(), &card, true)
            .unwrap();
        let intent = emu
            .object(session["setup_intent"].as_str().unwrap())
            .unwrap();
        let new_card = intent["payment_method"].as_str().unwrap();
        assert_eq!(
            client.pay_invoice(&open.id, Some(new_card)).await,
            Ok(PaymentAttempt::Paid)
        );
        let pays: Vec<Value> = emu
            .requests(0)
            .into_iter()
            .filter(|r| r.path == format!("/v1/invoices/{}/pay", open.id))
            .map(|r| json!([r.params["payment_method"], r.status]))
            .collect();
        assert_eq!(
            pays,
            [
                json!([foreign, 400]),
                json!([null, 402]),
                json!([new_card, 200])
            ]
        );
    }

    #[tokio::test]
    async fn sent_invoices_void_and_drafts_delete() {
        let (emu, client) = emulator().await;
        let customer = customer_with_card(&emu, "4242424242424242").await;
        let open = issue(
            &client,
            &customer,
            "USD",
            &["10"],
            Collection::SendInvoice { days_until_due: 14 },
        )
        .await;
        assert_eq!(open.status, Some(StripeInvoiceStatus::Open));
        assert!(open.due_date.is_some());
        let void = client.void_invoice(&open.id).await.unwrap();
        assert_eq!(void.status, Some(StripeInvoiceStatus::Void));
        assert!(matches!(
            client.delete_invoice(&open.id).await,
            Err(StripeError::Rejected { status: 400, .. })
        ));
        assert_eq!(client.delete_invoice("in_gone").await, Ok(()));
    }
}
