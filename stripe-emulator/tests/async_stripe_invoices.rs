//! Invoices, invoice items and their payments driven with async-stripe 1.0.0-rc.10's typed
//! requests (API version 2026-09-30.endive): every response deserialises into its typed
//! object, errors arrive as Stripe errors, and the webhook payloads verify and parse with
//! async-stripe-webhook.

mod common;

use serde_json::json;
use stripe::{Client, ClientBuilder, StripeError};
use stripe_billing::invoice::CreateInvoice;
use stripe_billing::invoice::{
    AddLinesInvoice, AddLinesInvoiceLines, DeleteInvoice, FinalizeInvoiceInvoice, ListInvoice,
    MarkUncollectibleInvoice, PayInvoice, RemoveLinesInvoice, RemoveLinesInvoiceLines,
    RemoveLinesInvoiceLinesBehavior, RetrieveInvoice, SendInvoiceInvoice, UpdateInvoice,
    UpdateLinesInvoice, UpdateLinesInvoiceLines, VoidInvoiceInvoice,
};
use stripe_billing::invoice_item::{
    CreateInvoiceItem, DeleteInvoiceItem, ListInvoiceItem, RetrieveInvoiceItem, UpdateInvoiceItem,
};
use stripe_billing::invoice_line_item::{ListInvoiceInvoiceLineItem, UpdateInvoiceLineItem};
use stripe_billing::invoice_payment::ListInvoicePayment;
use stripe_billing::{InvoiceCollectionMethod, InvoiceStatus};
use stripe_core::PaymentIntentStatus;
use stripe_core::charge::RetrieveCharge;
use stripe_core::customer::{CreateCustomer, UpdateCustomer, UpdateCustomerInvoiceSettings};
use stripe_core::payment_intent::RetrievePaymentIntent;
use stripe_misc::webhook_endpoint::{CreateWebhookEndpoint, CreateWebhookEndpointEnabledEvents};

fn client(t: &common::T) -> Client {
    ClientBuilder::new(t.key.clone())
        .url(format!("{}/", t.emu.base_url()))
        .build()
        .expect("client")
}

/// A customer whose default payment method is card `number` saved through Checkout.
async fn customer_with_card(t: &common::T, c: &Client, number: &str) -> String {
    let customer = CreateCustomer::new()
        .email("typed-invoices@example.com")
        .send(c)
        .await
        .expect("customer");
    let session = t.hosted_session(customer.id.as_str()).await;
    let done = t
        .ctl_post(
            &format!(
                "/_emulator/checkout/sessions/{}/complete",
                session["id"].as_str().unwrap()
            ),
            json!({"card_number": number}),
        )
        .await;
    let pm = done.body["session"]["setup_intent"].as_str().unwrap();
    let pm = t.get(&format!("/v1/setup_intents/{pm}")).await.body["payment_method"]
        .as_str()
        .unwrap()
        .to_string();
    UpdateCustomer::new(customer.id.clone())
        .invoice_settings(UpdateCustomerInvoiceSettings {
            default_payment_method: Some(pm),
            ..Default::default()
        })
        .send(c)
        .await
        .expect("default pm");
    customer.id.as_str().to_string()
}

fn stripe_error(error: StripeError) -> stripe::ApiErrors {
    match error {
        StripeError::Stripe(error, _) => *error,
        other => panic!("expected a Stripe error, got {other:?}"),
    }
}

#[tokio::test]
async fn typed_client_drives_every_invoice_endpoint() {
    let t = common::start().await;
    let c = client(&t);
    let customer = customer_with_card(&t, &c, "4242424242424242").await;

    let invoice = CreateInvoice::new()
        .customer(customer.clone())
        .currency(stripe_types::Currency::USD)
        .description("Typed")
        .send(&c)
        .await
        .expect("create invoice");
    assert_eq!(invoice.status, Some(InvoiceStatus::Draft));
    let invoice_id = invoice.id.clone().unwrap();
    let item = CreateInvoiceItem::new()
        .customer(customer.clone())
        .invoice(invoice_id.as_str())
        .unit_amount_decimal("250")
        .quantity(4u64)
        .description("Seats")
        .send(&c)
        .await
        .expect("create item");
    assert_eq!(item.amount, 1000);
    assert_eq!(item.quantity, 4);
    let item = UpdateInvoiceItem::new(item.id.clone())
        .quantity(5u64)
        .send(&c)
        .await
        .expect("update item");
    assert_eq!(item.amount, 1250);
    let got = RetrieveInvoiceItem::new(item.id.clone())
        .send(&c)
        .await
        .expect("retrieve item");
    assert_eq!(got.description.as_deref(), Some("Seats"));
    let pending = CreateInvoiceItem::new()
        .customer(customer.clone())
        .currency(stripe_types::Currency::USD)
        .amount(99)
        .send(&c)
        .await
        .expect("pending item");
    let listed = ListInvoiceItem::new()
        .pending(true)
        .send(&c)
        .await
        .expect("list items");
    assert_eq!(listed.data[0].id, pending.id);
    DeleteInvoiceItem::new(pending.id.clone())
        .send(&c)
        .await
        .expect("delete item");

    let invoice = AddLinesInvoice::new(
        invoice_id.clone(),
        vec![AddLinesInvoiceLines {
            amount: Some(500),
            description: Some("Setup fee".into()),
            ..AddLinesInvoiceLines::new()
        }],
    )
    .send(&c)
    .await
    .expect("add lines");
    assert_eq!(invoice.total, 1750);
    let fee = invoice
        .lines
        .data
        .iter()
        .find(|line| line.description.as_deref() == Some("Setup fee"))
        .unwrap()
        .id
        .clone();
    let invoice = UpdateLinesInvoice::new(
        invoice_id.clone(),
        vec![UpdateLinesInvoiceLines {
            amount: Some(600),
            ..UpdateLinesInvoiceLines::new(fee.as_str())
        }],
    )
    .send(&c)
    .await
    .expect("update lines");
    assert_eq!(invoice.total, 1850);
    let line = UpdateInvoiceLineItem::new(invoice_id.clone(), fee.as_str())
        .description("Onboarding")
        .send(&c)
        .await
        .expect("update line");
    assert_eq!(line.description.as_deref(), Some("Onboarding"));
    let lines = ListInvoiceInvoiceLineItem::new(invoice_id.clone())
        .send(&c)
        .await
        .expect("lines");
    assert_eq!(lines.data.len(), 2);
    let invoice = RemoveLinesInvoice::new(
        invoice_id.clone(),
        vec![RemoveLinesInvoiceLines::new(
            RemoveLinesInvoiceLinesBehavior::Delete,
            fee.as_str(),
        )],
    )
    .send(&c)
    .await
    .expect("remove lines");
    assert_eq!(invoice.total, 1250);
    let invoice = UpdateInvoice::new(invoice_id.clone())
        .footer("Thank you")
        .send(&c)
        .await
        .expect("update invoice");
    assert_eq!(invoice.footer.as_deref(), Some("Thank you"));
    let list = ListInvoice::new()
        .customer(customer.clone())
        .status(InvoiceStatus::Draft)
        .send(&c)
        .await
        .expect("list");
    assert_eq!(list.data.len(), 1);

    let invoice = FinalizeInvoiceInvoice::new(invoice_id.clone())
        .send(&c)
        .await
        .expect("finalize");
    assert_eq!(invoice.status, Some(InvoiceStatus::Open));
    assert!(invoice.number.is_some());
    assert!(invoice.hosted_invoice_url.is_some());
    let invoice = PayInvoice::new(invoice_id.clone())
        .send(&c)
        .await
        .expect("pay");
    assert_eq!(invoice.status, Some(InvoiceStatus::Paid));
    assert_eq!(invoice.amount_paid, 1250);
    let error = stripe_error(
        PayInvoice::new(invoice_id.clone())
            .send(&c)
            .await
            .unwrap_err(),
    );
    assert_eq!(error.message.as_deref(), Some("Invoice is already paid"));
    let invoice = RetrieveInvoice::new(invoice_id.clone())
        .expand(vec!["payments".to_string()])
        .send(&c)
        .await
        .expect("retrieve");
    let payment = &invoice.payments.as_ref().unwrap().data[0];
    let payment_intent = payment
        .payment
        .payment_intent
        .as_ref()
        .unwrap()
        .id()
        .clone();
    let payments = ListInvoicePayment::new()
        .invoice(invoice_id.as_str())
        .send(&c)
        .await
        .expect("payments");
    assert_eq!(payments.data[0].status, "paid");
    let intent = RetrievePaymentIntent::new(payment_intent)
        .send(&c)
        .await
        .expect("payment intent");
    assert_eq!(intent.status, PaymentIntentStatus::Succeeded);
    let charge = RetrieveCharge::new(intent.latest_charge.unwrap().id().clone())
        .send(&c)
        .await
        .expect("charge");
    assert!(charge.paid);

    // Declines arrive as card errors; void and mark_uncollectible; send; delete a draft.
    let declining = customer_with_card(&t, &c, "4000000000000341").await;
    let invoice = CreateInvoice::new()
        .customer(declining.clone())
        .send(&c)
        .await
        .expect("create");
    let id = invoice.id.clone().unwrap();
    CreateInvoiceItem::new()
        .customer(declining.clone())
        .invoice(id.as_str())
        .amount(300)
        .send(&c)
        .await
        .expect("item");
    let error = stripe_error(PayInvoice::new(id.clone()).send(&c).await.unwrap_err());
    assert_eq!(error.decline_code.as_deref(), Some("generic_decline"));
    let invoice = MarkUncollectibleInvoice::new(id.clone())
        .send(&c)
        .await
        .expect("uncollectible");
    assert_eq!(invoice.status, Some(InvoiceStatus::Uncollectible));
    let invoice = VoidInvoiceInvoice::new(id.clone())
        .send(&c)
        .await
        .expect("void");
    assert_eq!(invoice.status, Some(InvoiceStatus::Void));
    let sent = CreateInvoice::new()
        .customer(declining.clone())
        .collection_method(InvoiceCollectionMethod::SendInvoice)
        .days_until_due(14u32)
        .send(&c)
        .await
        .expect("send_invoice");
    let sent = SendInvoiceInvoice::new(sent.id.unwrap())
        .send(&c)
        .await
        .expect("send");
    assert_eq!(sent.status, Some(InvoiceStatus::Paid)); // nothing due: paid on finalize
    let draft = CreateInvoice::new()
        .customer(declining)
        .send(&c)
        .await
        .expect("draft");
    let deleted = DeleteInvoice::new(draft.id.unwrap())
        .send(&c)
        .await
        .expect("delete");
    assert!(deleted.id.as_str().starts_with("in_"));
}

#[tokio::test]
async fn invoice_webhooks_verify_and_parse_with_async_stripe_webhook() {
    let t = common::start().await;
    let c = client(&t);
    let (rx, url) = common::receiver(0).await;
    let endpoint = CreateWebhookEndpoint::new(vec![CreateWebhookEndpointEnabledEvents::All], url)
        .send(&c)
        .await
        .expect("endpoint");
    let secret = endpoint.secret.clone().unwrap();
    let paying = customer_with_card(&t, &c, "4242424242424242").await;
    let declining = customer_with_card(&t, &c, "4000000000000341").await;
    let authenticating = customer_with_card(&t, &c, "4000002760003184").await;
    let mut ids = Vec::new();
    for customer in [&paying, &declining, &authenticating] {
        let invoice = CreateInvoice::new()
            .customer(customer.clone())
            .send(&c)
            .await
            .expect("invoice");
        let id = invoice.id.clone().unwrap();
        let item = CreateInvoiceItem::new()
            .customer(customer.clone())
            .invoice(id.as_str())
            .amount(100)
            .send(&c)
            .await
            .expect("item");
        let _ = PayInvoice::new(id.clone()).send(&c).await;
        ids.push((id, item.id));
    }
    // Items deleted, invoices voided, marked uncollectible, sent and overdue.
    let extra = CreateInvoiceItem::new()
        .customer(paying.clone())
        .currency(stripe_types::Currency::USD)
        .amount(5)
        .send(&c)
        .await
        .expect("pending");
    DeleteInvoiceItem::new(extra.id)
        .send(&c)
        .await
        .expect("delete");
    MarkUncollectibleInvoice::new(ids[1].0.clone())
        .send(&c)
        .await
        .expect("uncollectible");
    VoidInvoiceInvoice::new(ids[2].0.clone())
        .send(&c)
        .await
        .expect("void");
    let sent = CreateInvoice::new()
        .customer(paying.clone())
        .collection_method(InvoiceCollectionMethod::SendInvoice)
        .days_until_due(1u32)
        .send(&c)
        .await
        .expect("send_invoice");
    let sent_id = sent.id.unwrap();
    CreateInvoiceItem::new()
        .customer(paying.clone())
        .invoice(sent_id.as_str())
        .amount(100)
        .send(&c)
        .await
        .expect("item");
    SendInvoiceInvoice::new(sent_id)
        .send(&c)
        .await
        .expect("send");
    t.emu.advance_clock(2 * 86_400);
    let no_email = CreateCustomer::new().send(&c).await.expect("no email");
    let refused = CreateInvoice::new()
        .customer(no_email.id.as_str())
        .collection_method(InvoiceCollectionMethod::SendInvoice)
        .days_until_due(1u32)
        .send(&c)
        .await
        .expect("refused");
    assert!(
        FinalizeInvoiceInvoice::new(refused.id.unwrap())
            .send(&c)
            .await
            .is_err()
    );
    let want = [
        "invoice.created",
        "invoice.updated",
        "invoice.finalized",
        "invoice.finalization_failed",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.payment_failed",
        "invoice.payment_action_required",
        "invoice.voided",
        "invoice.marked_uncollectible",
        "invoice.sent",
        "invoice.overdue",
        "invoice_payment.paid",
        "invoiceitem.created",
        "invoiceitem.deleted",
        "payment_intent.created",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.requires_action",
        "payment_intent.canceled",
        "charge.succeeded",
        "charge.failed",
    ];
    t.wait_for(|| {
        let got = rx.got.lock().unwrap();
        want.iter().all(|w| {
            got.iter()
                .any(|(_, b, _)| b.contains(&format!("\"type\": \"{w}\"")))
        })
    })
    .await;
    let got = rx.got.lock().unwrap().clone();
    for (signature, body, _) in &got {
        let event = stripe_webhook::Webhook::construct_event(body, signature, &secret)
            .unwrap_or_else(|e| panic!("construct_event failed: {e:?}\n{body}"));
        assert!(
            !matches!(event.data.object, stripe_webhook::EventObject::Unknown(_)),
            "untyped event object for {:?}: {body}",
            event.type_
        );
    }
}
