//! Drives the emulator with async-stripe 1.0.0-rc.10 (generated from Stripe's OpenAPI spec at
//! API version 2026-09-30.endive) and checks every response deserialises into its typed object.

mod common;

use std::collections::HashMap;

use stripe::{Client, ClientBuilder, StripeRequest};
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionAllowedPaymentMethodTypes,
    CreateCheckoutSessionSetupIntentData, ExpireCheckoutSession, ListCheckoutSession,
    RetrieveCheckoutSession,
};
use stripe_checkout::{CheckoutSessionMode, CheckoutSessionStatus, CheckoutSessionUiMode};
use stripe_connect::account::RetrieveForMyAccountAccount;
use stripe_core::customer::{
    CreateCustomer, DeleteCustomer, ListCustomer, ListPaymentMethodsCustomer, RetrieveCustomer,
    RetrieveCustomerReturned, UpdateCustomer, UpdateCustomerInvoiceSettings,
};
use stripe_core::event::{ListEvent, RetrieveEvent};
use stripe_core::setup_intent::RetrieveSetupIntent;
use stripe_misc::webhook_endpoint::{
    CreateWebhookEndpoint, CreateWebhookEndpointEnabledEvents, DeleteWebhookEndpoint,
    ListWebhookEndpoint, RetrieveWebhookEndpoint, UpdateWebhookEndpoint,
};
use stripe_payment::payment_method::{AttachPaymentMethod, RetrievePaymentMethod};

fn client(t: &common::T, key: &str) -> Client {
    // async-stripe appends `v1/...` to the base, so it needs the trailing slash.
    ClientBuilder::new(key)
        .url(format!("{}/", t.emu.base_url()))
        .build()
        .expect("client")
}

#[tokio::test]
async fn async_stripe_typed_client_round_trips_every_endpoint() {
    let t = common::start().await;
    let c = client(&t, &t.key.clone());

    let acct = RetrieveForMyAccountAccount::new()
        .send(&c)
        .await
        .expect("account");
    assert_eq!(
        Some(acct.id.as_str().to_string()),
        t.emu.account_for_key(&t.key)
    );

    // Customers.
    let cus = CreateCustomer::new()
        .email("typed@example.com")
        .name("Typed")
        .metadata(HashMap::from([("tenant".to_string(), "t1".to_string())]))
        .send(&c)
        .await
        .expect("create customer");
    assert!(cus.id.as_str().starts_with("cus_"));
    let got = RetrieveCustomer::new(cus.id.clone())
        .send(&c)
        .await
        .expect("retrieve customer");
    match got {
        RetrieveCustomerReturned::Customer(x) => {
            assert_eq!(x.email.as_deref(), Some("typed@example.com"))
        }
        RetrieveCustomerReturned::DeletedCustomer(_) => panic!("not deleted"),
    }
    let upd = UpdateCustomer::new(cus.id.clone())
        .name("Typed 2")
        .send(&c)
        .await
        .expect("update customer");
    assert_eq!(upd.name.as_deref(), Some("Typed 2"));
    let list = ListCustomer::new()
        .limit(1)
        .send(&c)
        .await
        .expect("list customers");
    assert_eq!(list.data.len(), 1);

    // Webhook endpoints.
    let (_rx, url) = common::receiver(0).await;
    let we = CreateWebhookEndpoint::new(
        vec![
            CreateWebhookEndpointEnabledEvents::CheckoutSessionCompleted,
            CreateWebhookEndpointEnabledEvents::SetupIntentSucceeded,
        ],
        url.clone(),
    )
    .description("typed")
    .send(&c)
    .await
    .expect("create webhook endpoint");
    assert!(
        we.secret
            .as_deref()
            .is_some_and(|s| s.starts_with("whsec_"))
    );
    RetrieveWebhookEndpoint::new(we.id.clone())
        .send(&c)
        .await
        .expect("retrieve we");
    let we2 = UpdateWebhookEndpoint::new(we.id.clone())
        .description("typed 2")
        .send(&c)
        .await
        .expect("update we");
    assert_eq!(we2.description.as_deref(), Some("typed 2"));
    assert_eq!(
        ListWebhookEndpoint::new()
            .send(&c)
            .await
            .expect("list we")
            .data
            .len(),
        1
    );

    // Checkout session, hosted.
    let cs = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Setup)
        .currency(stripe_types::Currency::USD)
        .customer(cus.id.as_str())
        .success_url("https://example.com/ok?id={CHECKOUT_SESSION_ID}")
        .cancel_url("https://example.com/cancel")
        .setup_intent_data(CreateCheckoutSessionSetupIntentData {
            metadata: Some(HashMap::from([("plan".to_string(), "pro".to_string())])),
            ..Default::default()
        })
        .send(&c)
        .await
        .expect("create checkout session");
    assert_eq!(cs.status, Some(CheckoutSessionStatus::Open));
    assert_eq!(cs.ui_mode, Some(CheckoutSessionUiMode::HostedPage));
    let url = cs.url.clone().expect("hosted url");
    let seti_id = cs.setup_intent.as_ref().expect("seti").id().clone();

    let expanded = RetrieveCheckoutSession::new(cs.id.clone())
        .expand(vec!["setup_intent".to_string(), "customer".to_string()])
        .send(&c)
        .await
        .expect("retrieve expanded session");
    let si = expanded
        .setup_intent
        .as_ref()
        .and_then(|e| e.as_object())
        .expect("expanded seti");
    assert_eq!(
        si.metadata
            .as_ref()
            .and_then(|m| m.get("plan"))
            .map(String::as_str),
        Some("pro")
    );

    // Embedded session and expiry.
    let emb = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Setup)
        .ui_mode(CheckoutSessionUiMode::EmbeddedPage)
        .allowed_payment_method_types(vec![CreateCheckoutSessionAllowedPaymentMethodTypes::Card])
        .return_url("https://example.com/return?id={CHECKOUT_SESSION_ID}")
        .send(&c)
        .await
        .expect("create embedded session");
    assert!(emb.client_secret.is_some());
    let expired = ExpireCheckoutSession::new(emb.id.clone())
        .send(&c)
        .await
        .expect("expire");
    assert_eq!(expired.status, Some(CheckoutSessionStatus::Expired));
    assert_eq!(
        ListCheckoutSession::new()
            .send(&c)
            .await
            .expect("list sessions")
            .data
            .len(),
        2
    );

    // Complete the hosted session through its page.
    let r = t
        .http
        .post(&url)
        .form(&[
            ("card_number", "4242424242424242"),
            ("exp", "12/34"),
            ("cvc", "123"),
            ("name", "Typed"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    let si = RetrieveSetupIntent::new(seti_id.clone())
        .send(&c)
        .await
        .expect("retrieve setup intent");
    let pm_id = si.payment_method.as_ref().expect("pm").id().clone();
    let pm = RetrievePaymentMethod::new(pm_id.clone())
        .send(&c)
        .await
        .expect("retrieve pm");
    assert_eq!(pm.card.as_ref().map(|c| c.last4.as_str()), Some("4242"));
    let pms = ListPaymentMethodsCustomer::new(cus.id.clone())
        .send(&c)
        .await
        .expect("customer pms");
    assert_eq!(pms.data.len(), 1);
    let upd = UpdateCustomer::new(cus.id.clone())
        .invoice_settings(UpdateCustomerInvoiceSettings {
            default_payment_method: Some(pm_id.as_str().to_string()),
            ..Default::default()
        })
        .send(&c)
        .await
        .expect("set default pm");
    assert_eq!(
        upd.invoice_settings
            .as_ref()
            .and_then(|s| s.default_payment_method.as_ref())
            .map(|e| e.id().as_str().to_string()),
        Some(pm_id.as_str().to_string())
    );
    let done = RetrieveCheckoutSession::new(cs.id.clone())
        .expand(vec!["setup_intent.payment_method".to_string()])
        .send(&c)
        .await
        .expect("retrieve completed session");
    assert_eq!(done.status, Some(CheckoutSessionStatus::Complete));

    // A second customer and a payment method attach.
    let cus2 = CreateCustomer::new()
        .send(&c)
        .await
        .expect("create customer 2");
    let emb2 = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Setup)
        .currency(stripe_types::Currency::EUR)
        .ui_mode(CheckoutSessionUiMode::EmbeddedPage)
        .return_url("https://example.com/return")
        .send(&c)
        .await
        .expect("embedded 2");
    let completed = t
        .emu
        .complete_checkout_session(
            emb2.id.as_str(),
            &stripe_emulator::CardInput {
                number: "4242424242424242".into(),
                exp_month: 2,
                exp_year: 2031,
                ..Default::default()
            },
            true,
        )
        .expect("complete");
    let si2 = RetrieveSetupIntent::new(completed["setup_intent"].as_str().unwrap())
        .send(&c)
        .await
        .expect("seti 2");
    let pm2 = si2.payment_method.as_ref().unwrap().id().clone();
    let attached = AttachPaymentMethod::new(pm2)
        .customer(cus2.id.as_str())
        .send(&c)
        .await
        .expect("attach");
    assert_eq!(
        attached
            .customer
            .as_ref()
            .map(|e| e.id().as_str().to_string()),
        Some(cus2.id.as_str().to_string())
    );

    // Billing portal.
    let bps = CreateBillingPortalSession::new()
        .customer(cus.id.as_str())
        .return_url("https://example.com/account")
        .send(&c)
        .await
        .expect("portal session");
    assert!(bps.id.as_str().starts_with("bps_"));

    // Events.
    let events = ListEvent::new()
        .limit(100)
        .send(&c)
        .await
        .expect("list events");
    assert!(events.data.len() >= 8);
    for e in &events.data {
        RetrieveEvent::new(e.id.clone())
            .send(&c)
            .await
            .expect("retrieve event");
    }

    // Deletes.
    DeleteWebhookEndpoint::new(we.id.clone())
        .send(&c)
        .await
        .expect("delete we");
    let del = DeleteCustomer::new(cus2.id.clone())
        .send(&c)
        .await
        .expect("delete customer");
    assert_eq!(del.id.as_str(), cus2.id.as_str());
    match RetrieveCustomer::new(cus2.id.clone())
        .send(&c)
        .await
        .expect("retrieve deleted")
    {
        RetrieveCustomerReturned::DeletedCustomer(_) => {}
        RetrieveCustomerReturned::Customer(_) => panic!("expected deleted customer"),
    }

    // Errors come back as Stripe errors.
    let err = RetrieveCustomer::new("cus_missing")
        .send(&c)
        .await
        .expect_err("missing");
    assert!(format!("{err:?}").contains("resource_missing"), "{err:?}");
    let bad = client(&t, "sk_test_wrong");
    let err = ListCustomer::new().send(&bad).await.expect_err("bad key");
    assert!(format!("{err:?}").contains("Invalid API Key"), "{err:?}");
}

#[tokio::test]
async fn webhook_payloads_parse_and_verify_with_async_stripe_webhook() {
    let t = common::start().await;
    let c = client(&t, &t.key.clone());
    let (rx, url) = common::receiver(0).await;
    let we = CreateWebhookEndpoint::new(vec![CreateWebhookEndpointEnabledEvents::All], url)
        .send(&c)
        .await
        .expect("we");
    let secret = we.secret.clone().unwrap();
    let cus = CreateCustomer::new()
        .email("w@example.com")
        .send(&c)
        .await
        .expect("customer");
    UpdateCustomer::new(cus.id.clone())
        .name("W")
        .send(&c)
        .await
        .expect("update");
    let cs = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Setup)
        .currency(stripe_types::Currency::USD)
        .customer(cus.id.as_str())
        .success_url("https://example.com/ok")
        .send(&c)
        .await
        .expect("cs");
    let r = t
        .http
        .post(cs.url.clone().unwrap())
        .form(&[
            ("card_number", "4000000000000002"),
            ("exp", "12/34"),
            ("cvc", "123"),
            ("name", "W"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    t.emu
        .complete_checkout_session(
            cs.id.as_str(),
            &stripe_emulator::CardInput {
                number: "4242424242424242".into(),
                exp_month: 12,
                exp_year: 2034,
                ..Default::default()
            },
            true,
        )
        .expect("complete");
    let cs2 = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Setup)
        .currency(stripe_types::Currency::USD)
        .success_url("https://example.com/ok")
        .send(&c)
        .await
        .expect("cs2");
    ExpireCheckoutSession::new(cs2.id.clone())
        .send(&c)
        .await
        .expect("expire");

    let want = [
        "customer.created",
        "customer.updated",
        "setup_intent.created",
        "setup_intent.setup_failed",
        "payment_method.attached",
        "setup_intent.succeeded",
        "checkout.session.completed",
        "setup_intent.canceled",
        "checkout.session.expired",
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
    for (sig, body, _) in &got {
        let ev = stripe_webhook::Webhook::construct_event(body, sig, &secret)
            .unwrap_or_else(|e| panic!("construct_event failed: {e:?}\n{body}"));
        assert!(
            !matches!(ev.data.object, stripe_webhook::EventObject::Unknown(_)),
            "untyped event object for {:?}",
            ev.type_
        );
    }
    assert!(stripe_webhook::Webhook::construct_event(&got[0].1, &got[0].0, "whsec_wrong").is_err());
}

#[tokio::test]
async fn async_stripe_retries_through_injected_faults_with_one_idempotency_key() {
    let t = common::start().await;
    let c = client(&t, &t.key.clone());
    t.emu.set_faults(vec![
        "POST /v1/customers:error=500,count=1".parse().unwrap(),
        "POST /v1/customers:error=drop,count=1".parse().unwrap(),
    ]);
    let cus = CreateCustomer::new()
        .email("retry@example.com")
        .customize()
        .request_strategy(stripe::RequestStrategy::Retry(4))
        .send(&c)
        .await
        .expect("retried create");
    let log = t.emu.requests(0);
    assert_eq!(log.len(), 3, "{log:#?}");
    assert_eq!(log[0].status, 500);
    assert_eq!(log[1].status, 0, "dropped");
    assert_eq!(log[2].status, 200);
    let key = log[0]
        .idempotency_key
        .clone()
        .expect("async-stripe sends an idempotency key when retrying");
    assert!(
        log.iter()
            .all(|e| e.idempotency_key.as_deref() == Some(key.as_str()))
    );
    assert_eq!(ListCustomer::new().send(&c).await.unwrap().data.len(), 1);
    assert!(cus.id.as_str().starts_with("cus_"));

    // The response of an executed request is lost: the retry replays it instead of creating twice.
    t.emu.clear_requests();
    t.emu.set_faults(vec![
        "POST /v1/customers:error=drop_after,count=1"
            .parse()
            .unwrap(),
    ]);
    let again = CreateCustomer::new()
        .email("lost@example.com")
        .customize()
        .request_strategy(stripe::RequestStrategy::Retry(3))
        .send(&c)
        .await
        .expect("retried after lost response");
    let log = t.emu.requests(0);
    assert_eq!(log.len(), 2, "{log:#?}");
    assert_eq!(log[0].fault.as_deref(), Some("drop_after"));
    assert!(log[1].idempotent_replayed);
    assert_eq!(log[1].idempotency_key, log[0].idempotency_key);
    let all = ListCustomer::new().send(&c).await.unwrap().data;
    assert_eq!(all.len(), 2, "no duplicate customer");
    assert!(all.iter().any(|x| x.id == again.id));
}
