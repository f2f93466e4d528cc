//! Creating checkout sessions (v3 and v1) against the Stripe emulator: the
//! result, the exact Stripe parameters, the call discipline, every
//! validation rule, and concurrency.

use serde_json::{Value, json};

use crate::apps::install_stripe_app;
use crate::contract::{Spec, assert_checkout_result, assert_response};
use crate::customers_v3::customer;
use crate::harness::{Backend, Resp, TestApp};
use crate::support::{
    assert_problem, assert_rfc3339, assert_ulid, invalid_problem, problem_of, with_members,
};

fn checkout_path(customer_id: &str) -> String {
    format!("/api/v3/openmeter/customers/{customer_id}/billing/stripe/checkout-sessions")
}

async fn checkout(app: &TestApp, customer_id: &str, options: Value) -> Resp {
    let resp = app
        .post(
            &checkout_path(customer_id),
            json!({"stripe_options": options}),
        )
        .await;
    crate::apps::assert_v3(
        &resp,
        "create-customer-stripe-checkout-session",
        &[201, 400, 404],
    );
    if resp.status == 201 {
        assert_checkout_result(&resp.body);
    }
    resp
}

/// (method, path, params, idempotency key) of each Stripe call since `since`.
fn calls(app: &TestApp, since: u64) -> Vec<(String, String, Value, Option<String>)> {
    app.emu
        .requests(since)
        .into_iter()
        .map(|r| (r.method, r.path, r.params, r.idempotency_key))
        .collect()
}

fn last_seq(app: &TestApp) -> u64 {
    app.emu.requests(0).last().map_or(0, |r| r.seq)
}

/// An installed app with a default profile and a customer with a currency.
async fn setup(app: &TestApp) -> (Value, String, String) {
    let (stripe_app, key, _) = install_stripe_app(app, true).await;
    let c = customer(
        app,
        json!({"name": "ACME Inc.", "key": "acme", "primary_email": "billing@acme.example", "currency": "USD"}),
    )
    .await;
    (stripe_app, key, c["id"].as_str().unwrap().to_owned())
}

/// An app id of another namespace is 404 for the v1 checkout, like an unknown one.
async fn foreign_app_is_not_found(backend: Backend) {
    let app = TestApp::start_with(backend, |args| {
        args.api_tokens = vec![
            ("tok-a".into(), "team-a".into()),
            ("tok-b".into(), "team-b".into()),
        ];
    })
    .await;
    let send = |token: &'static str, path: &str, body: Value| {
        let req = app
            .client
            .post(format!("{}{path}", app.base))
            .bearer_auth(token)
            .json(&body);
        async move { Resp::from(req.send().await.unwrap()).await }
    };
    let (_, key) = app.emu.create_account().await;
    let Resp {
        status,
        body: installed,
        ..
    } = send(
        "tok-a",
        "/api/v3/openmeter/app-catalog/install",
        json!({"type": "stripe", "name": "A", "create_billing_profile": true, "api_key": key}),
    )
    .await;
    assert_eq!(status, 201, "{installed}");
    let Resp { status, .. } = send(
        "tok-b",
        "/api/v1/customers",
        json!({"name": "B", "key": "b", "currency": "USD"}),
    )
    .await;
    assert_eq!(status, 201);
    let app_id = installed["app"]["id"].as_str().unwrap();
    let resp = send("tok-b", "/api/v1/stripe/checkout/sessions", json!({
        "appId": app_id, "customer": {"key": "b"}, "options": {"successURL": "https://x.example/s"}})).await;
    assert_problem(&resp, problem_of(404, &format!("app [{app_id}] not found")));
}

crate::both_backends!(
    foreign_app_is_not_found,
    hosted_session_cold_then_warm,
    embedded_session_has_a_client_secret,
    every_option_reaches_stripe_by_its_current_name,
    invalid_options_never_reach_stripe,
    customers_and_apps_that_cannot_check_out,
    fifty_concurrent_first_checkouts_make_one_stripe_customer,
    stripe_failures_become_clear_errors,
    v1_checkout_by_id_key_and_inline_customer,
    warm_checkouts_reuse_stripe_connections,
    embedded_return_url_is_left_to_stripe,
    warm_checkouts_read_once_and_write_once,
    concurrent_writes_all_land,
    concurrent_sessions_are_recorded_together,
);

/// Whether an embedded session needs `return_url` depends on the payment
/// methods it may offer: meterpay lets Stripe decide and reports Stripe's
/// refusal on its own field.
async fn embedded_return_url_is_left_to_stripe(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, _, id) = setup(&app).await;
    let refused = |reason: &str| {
        invalid_problem(
            json!([{"field": "stripe_options.return_url", "rule": "invalid",
            "source": "body", "reason": format!("Stripe refused the request: {reason}")}]),
        )
    };
    let needed = "`return_url` is required when `ui_mode` is `embedded_page` and \
        redirect-based payment methods are enabled, unless `redirect_on_completion` is `never`.";
    for options in [
        json!({"ui_mode": "embedded"}),
        json!({"ui_mode": "embedded", "redirect_on_completion": "if_required"}),
        json!({"ui_mode": "embedded", "redirect_on_completion": "always",
            "payment_method_types": ["card", "ideal"]}),
    ] {
        let resp = checkout(&app, &id, options.clone()).await;
        assert_problem(&resp, refused(needed));
    }
    for options in [
        json!({"ui_mode": "embedded", "redirect_on_completion": "if_required",
            "payment_method_types": ["card"]}),
        json!({"ui_mode": "embedded", "payment_method_types": ["card", "sepa_debit"]}),
        json!({"ui_mode": "embedded", "redirect_on_completion": "never"}),
    ] {
        let resp = checkout(&app, &id, options.clone()).await;
        assert_eq!(resp.status, 201, "{options}: {}", resp.body);
        assert_eq!(resp.body.get("return_url"), None, "{}", resp.body);
    }
}

/// Every Stripe call goes through one pooled HTTP client: a hundred warm
/// checkouts one after another open a handful of connections, not a hundred.
async fn warm_checkouts_reuse_stripe_connections(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, _, id) = setup(&app).await;
    let options = json!({"success_url": "https://app.example/ok"});
    // The first checkout creates the Stripe customer; the rest are warm.
    assert_eq!(checkout(&app, &id, options.clone()).await.status, 201);
    let before = app.emu.connections_accepted();
    let since = last_seq(&app);
    for _ in 0..100 {
        let resp = checkout(&app, &id, options.clone()).await;
        assert_eq!(resp.status, 201, "{}", resp.body);
    }
    let opened = app.emu.connections_accepted() - before;
    let paths: Vec<String> = calls(&app, since).into_iter().map(|c| c.1).collect();
    assert_eq!(paths, vec!["/v1/checkout/sessions".to_owned(); 100]);
    assert!(
        opened <= 3,
        "100 sequential warm checkouts opened {opened} connections to Stripe"
    );
}

/// The warm checkout's database work, counted by the store (no timing): v3
/// reads the customer, its payment app, the app's key and the Stripe
/// customer in one statement and records the session in a second; v1 with
/// an explicit app reads the customer, then the app with its key and the
/// Stripe customer, then records.
async fn warm_checkouts_read_once_and_write_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (stripe_app, _, id) = setup(&app).await;
    let app_id = stripe_app["id"].as_str().unwrap().to_owned();
    let store = app.server.store();
    let options = json!({"success_url": "https://app.example/ok"});
    // The first checkout creates the Stripe customer; the rest are warm.
    assert_eq!(checkout(&app, &id, options.clone()).await.status, 201);
    // On SQLite the reads run on the request's own thread (no handoff to a
    // connection thread); PostgreSQL has no such reader.
    let local = |reads: u64| match backend {
        Backend::Sqlite => reads,
        Backend::Postgres => 0,
    };
    for _ in 0..3 {
        let before = store.acquisitions();
        let reads_before = store.local_reads();
        let resp = checkout(&app, &id, options.clone()).await;
        assert_eq!(resp.status, 201, "{}", resp.body);
        assert_eq!(store.acquisitions() - before, 2, "v3 warm checkout");
        let reads = store.local_reads();
        assert_eq!(reads.reads - reads_before.reads, local(1), "v3 local reads");
        assert_eq!(reads.busy, 0);
    }
    let v1 = json!({"appId": app_id, "customer": {"id": id},
        "options": {"successURL": "https://x.example/s"}});
    for _ in 0..2 {
        let before = store.acquisitions();
        let reads_before = store.local_reads();
        let resp = app
            .post("/api/v1/stripe/checkout/sessions", v1.clone())
            .await;
        assert_eq!(resp.status, 201, "{}", resp.body);
        assert_eq!(store.acquisitions() - before, 3, "v1 warm checkout");
        let reads = store.local_reads();
        assert_eq!(reads.reads - reads_before.reads, local(2), "v1 local reads");
    }
}

/// 24 customers created and 24 checkouts (12 of them cold: the Stripe
/// customer is linked too) at the same moment all land; on SQLite they
/// queue for the one writing connection instead of racing for the file lock.
async fn concurrent_writes_all_land(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, _, warm) = setup(&app).await;
    let options = json!({"success_url": "https://app.example/ok"});
    assert_eq!(checkout(&app, &warm, options.clone()).await.status, 201);
    let mut cold = Vec::new();
    for n in 0..12 {
        let c = customer(
            &app,
            json!({"name": format!("Cold {n}"), "key": format!("cold-{n}"), "currency": "USD"}),
        )
        .await;
        cold.push(c["id"].as_str().unwrap().to_owned());
    }
    let mut tasks = Vec::new();
    for n in 0..48 {
        let (path, body) = match n {
            0..24 => (
                "/api/v3/openmeter/customers".to_owned(),
                json!({"name": format!("New {n}"), "key": format!("new-{n}")}),
            ),
            24..36 => (checkout_path(&warm), json!({"stripe_options": options})),
            _ => (
                checkout_path(&cold[n - 36]),
                json!({"stripe_options": options}),
            ),
        };
        let req = app.client.post(format!("{}{path}", app.base)).json(&body);
        tasks.push(tokio::spawn(async move {
            Resp::from(req.send().await.unwrap()).await
        }));
    }
    for task in tasks {
        let resp = task.await.unwrap();
        assert_eq!(resp.status, 201, "{}", resp.body);
    }
    let listed = app.get("/api/v3/openmeter/customers?page[size]=100").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["meta"]["page"]["total"], 1 + 12 + 24);
    for id in &cold {
        let billing = app
            .get(&format!("/api/v3/openmeter/customers/{id}/billing"))
            .await;
        assert!(
            billing.body["app_data"]["stripe"]["customer_id"]
                .as_str()
                .is_some_and(|c| c.starts_with("cus_")),
            "{}",
            billing.body
        );
    }
    if backend == Backend::Sqlite {
        assert_eq!(app.server.store().write_connections(), 1);
    }
}

/// A session record as the checkout path writes it, for `customer_id` in
/// `app_id` (both existing unless a test wants a row the database refuses).
fn session_record(
    n: usize,
    app_id: &str,
    customer_id: &str,
) -> meterpay::store::checkout_sessions::CheckoutSessionRecord {
    // Whole seconds, like Stripe's `created`: sessions of the same second
    // are ordered by when meterpay recorded them.
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    meterpay::store::checkout_sessions::CheckoutSessionRecord {
        id: format!("cs_test_batch_{n:03}"),
        app_id: app_id.parse().unwrap(),
        customer_id: customer_id.parse().unwrap(),
        stripe_customer_id: "cus_batch".to_owned().into(),
        setup_intent_id: Some(format!("seti_batch_{n:03}")),
        status: meterpay::billing::checkout::CheckoutSessionStatus::Open,
        ui_mode: "hosted".into(),
        currency: Some("usd".into()),
        url: Some(format!("https://checkout.example/{n}")),
        success_url: Some("https://app.example/ok".into()),
        cancel_url: None,
        return_url: None,
        client_reference_id: None,
        customer_email: Some("billing@acme.example".into()),
        metadata: None,
        payment_method_id: None,
        failure_reason: None,
        expires_at: Some(now + time::Duration::hours(24)),
        created_at: now,
        updated_at: now,
    }
}

/// Queues every record on `store` at once (one task polls them all); their
/// outcomes and the connections the store took meanwhile, one a statement.
async fn record_together(
    store: &meterpay::store::Store,
    records: &[meterpay::store::checkout_sessions::CheckoutSessionRecord],
) -> (Vec<meterpay::error::Result<()>>, u64) {
    let before = store.acquisitions();
    let outcomes = futures_util::future::join_all(
        records
            .iter()
            .map(|r| store.record_checkout_session("default", r.clone())),
    )
    .await;
    (outcomes, store.acquisitions() - before)
}

/// Session records that arrive together are written together: thirty
/// queued at once cost the store one statement, not thirty. A row the
/// database refuses (here: a customer that does not exist) fails only its
/// own caller; the statement is then retried row by row and every other
/// session is recorded. Counted with a store of its own on a
/// single-threaded runtime, where all thirty are queued before its writer
/// task first runs, so the count does not depend on timing.
async fn concurrent_sessions_are_recorded_together(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (stripe_app, _, id) = setup(&app).await;
    let app_id = stripe_app["id"].as_str().unwrap().to_owned();
    let url = app.database_url.clone();
    let missing = meterpay::ids::CustomerId::new().to_string();
    let customer_id = id.clone();
    let (together, alone) = tokio::task::spawn_blocking(move || {
        let id = customer_id;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = meterpay::store::Store::connect(&url).await.unwrap();
            // The writer's connection, opened before counting.
            let first = session_record(0, &app_id, &id);
            store
                .record_checkout_session("default", first)
                .await
                .unwrap();

            let records: Vec<_> = (1..=30).map(|n| session_record(n, &app_id, &id)).collect();
            let (outcomes, together) = record_together(&store, &records).await;
            assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");

            let mut records: Vec<_> = (31..=40).map(|n| session_record(n, &app_id, &id)).collect();
            records[4] = session_record(35, &app_id, &missing);
            let (outcomes, alone) = record_together(&store, &records).await;
            for (n, outcome) in outcomes.iter().enumerate() {
                assert_eq!(outcome.is_ok(), n != 4, "session {}: {outcome:?}", n + 31);
            }
            store.close().await;
            (together, alone)
        })
    })
    .await
    .unwrap();
    assert_eq!(together, 1, "statements for 30 sessions queued together");
    // The batch, then each of its ten sessions on its own.
    assert_eq!(alone, 1 + 10, "statements for 10 sessions, one refused");

    let history = app
        .get(&format!("{}?page[size]=100", checkout_path(&id)))
        .await;
    assert_eq!(history.status, 200, "{}", history.body);
    let ids: Vec<&str> = history.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    // Newest first: a batch keeps the order its sessions were queued in.
    let expected: Vec<String> = (0..=40)
        .rev()
        .filter(|n| *n != 35)
        .map(|n| format!("cs_test_batch_{n:03}"))
        .collect();
    assert_eq!(ids, expected);
}

async fn hosted_session_cold_then_warm(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (stripe_app, _key, id) = setup(&app).await;
    let app_id = stripe_app["id"].as_str().unwrap().to_owned();
    let since = last_seq(&app);
    let resp = checkout(
        &app,
        &id,
        json!({
            "success_url": "https://app.example/ok?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://app.example/cancel",
            "metadata": {"order": "42"}
        }),
    )
    .await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    let b = &resp.body;
    let session_id = b["session_id"].as_str().unwrap().to_owned();
    let stripe_customer = b["stripe_customer_id"].as_str().unwrap().to_owned();
    let session = app.emu.object(&session_id).expect("session in Stripe");
    assert!(session_id.starts_with("cs_test_"));
    assert_eq!(
        b,
        &json!({
            "customer_id": id,
            "stripe_customer_id": stripe_customer,
            "session_id": session_id,
            "setup_intent_id": session["setup_intent"],
            "customer_email": "billing@acme.example",
            "currency": "USD",
            "created_at": assert_rfc3339(&b["created_at"]),
            "expires_at": assert_rfc3339(&b["expires_at"]),
            "metadata": {"order": "42"},
            "status": "open",
            "url": session["url"],
            "mode": "setup",
            "cancel_url": "https://app.example/cancel",
            "success_url": "https://app.example/ok?session={CHECKOUT_SESSION_ID}",
        })
    );
    let stripe_cus = app.emu.object(&stripe_customer).expect("Stripe customer");
    assert_eq!(stripe_cus["email"], "billing@acme.example");
    assert_eq!(stripe_cus["name"], "ACME Inc.");
    assert_eq!(stripe_cus["metadata"]["meterpay_customer_id"], json!(id));

    // Cold path: exactly two Stripe calls, each POST with an idempotency key.
    let cold = calls(&app, since);
    assert_eq!(cold.len(), 2, "{cold:?}");
    assert_eq!(
        (cold[0].0.as_str(), cold[0].1.as_str()),
        ("POST", "/v1/customers")
    );
    assert_eq!(
        (cold[1].0.as_str(), cold[1].1.as_str()),
        ("POST", "/v1/checkout/sessions")
    );
    assert!(cold.iter().all(|c| c.3.is_some()));
    assert_eq!(
        cold[1].2,
        json!({
            "mode": "setup",
            "customer": stripe_customer,
            "currency": "usd",
            "ui_mode": "hosted_page",
            "success_url": "https://app.example/ok?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://app.example/cancel",
            "metadata": {"order": "42"},
            "setup_intent_data": {"metadata": {
                "meterpay_namespace": "default", "meterpay_app_id": app_id, "meterpay_customer_id": id}}
        })
    );

    // Warm path: one call, same Stripe customer.
    let since = last_seq(&app);
    let again = checkout(&app, &id, json!({"success_url": "https://app.example/ok"})).await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.body["stripe_customer_id"], json!(stripe_customer));
    let warm = calls(&app, since);
    assert_eq!(warm.len(), 1, "{warm:?}");
    assert_eq!(warm[0].1, "/v1/checkout/sessions");
    // The billing data shows the mapping.
    let billing = app
        .get(&format!("/api/v3/openmeter/customers/{id}/billing"))
        .await;
    assert_eq!(
        billing.body["app_data"]["stripe"]["customer_id"],
        json!(stripe_customer)
    );
}

async fn embedded_session_has_a_client_secret(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, _, id) = setup(&app).await;
    let resp = checkout(&app, &id, json!({
        "ui_mode": "embedded", "return_url": "https://app.example/return?session={CHECKOUT_SESSION_ID}",
        "currency": "EUR", "payment_method_types": ["card", "sepa_debit"]
    })).await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert!(
        resp.body["client_secret"]
            .as_str()
            .unwrap()
            .starts_with("cs_test_")
    );
    assert!(resp.body.get("url").is_none());
    assert_eq!(resp.body["currency"], "EUR");
    assert_eq!(
        resp.body["return_url"],
        "https://app.example/return?session={CHECKOUT_SESSION_ID}"
    );
    let params = app.emu.requests(0).last().unwrap().params.clone();
    assert_eq!(params["ui_mode"], "embedded_page");
    assert_eq!(
        params["allowed_payment_method_types"],
        json!(["card", "sepa_debit"])
    );
    assert_eq!(params["currency"], "eur");
}

async fn every_option_reaches_stripe_by_its_current_name(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, _, id) = setup(&app).await;
    let expires_at = app.emu.now() + 3600;
    let resp = checkout(&app, &id, json!({
        "billing_address_collection": "required",
        "cancel_url": "https://app.example/cancel",
        "client_reference_id": "ref-1",
        "customer_update": {"address": "auto", "name": "auto", "shipping": "never"},
        "consent_collection": {"payment_method_reuse_agreement": {"position": "hidden"},
                               "promotions": "auto", "terms_of_service": "none"},
        "currency": "GBP",
        "custom_text": {"after_submit": {"message": "Thanks"}, "shipping_address": {"message": "Ship"},
                        "submit": {"message": "Save card"}, "terms_of_service_acceptance": {"message": "ToS"}},
        "expires_at": expires_at,
        "locale": "fr",
        "metadata": {"a": "1"},
        "success_url": "https://app.example/ok",
        "ui_mode": "hosted",
        "payment_method_types": ["card"],
        "tax_id_collection": {"enabled": true, "required": "if_supported"}
    })).await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(resp.body["client_reference_id"], "ref-1");
    assert_eq!(resp.body["currency"], "GBP");
    let params = app.emu.requests(0).last().unwrap().params.clone();
    let mut expected = json!({
        "mode": "setup",
        "customer": resp.body["stripe_customer_id"],
        "billing_address_collection": "required",
        "cancel_url": "https://app.example/cancel",
        "client_reference_id": "ref-1",
        "customer_update": {"address": "auto", "name": "auto", "shipping": "never"},
        "consent_collection": {"payment_method_reuse_agreement": {"position": "hidden"},
                               "promotions": "auto", "terms_of_service": "none"},
        "currency": "gbp",
        "custom_text": {"after_submit": {"message": "Thanks"}, "shipping_address": {"message": "Ship"},
                        "submit": {"message": "Save card"}, "terms_of_service_acceptance": {"message": "ToS"}},
        "expires_at": expires_at.to_string(),
        "locale": "fr",
        "metadata": {"a": "1"},
        "success_url": "https://app.example/ok",
        "ui_mode": "hosted_page",
        "allowed_payment_method_types": ["card"],
        "tax_id_collection": {"enabled": "true", "required": "if_supported"},
    });
    expected["setup_intent_data"] = params["setup_intent_data"].clone();
    assert_eq!(params, expected);

    // Whole seconds written as a JSON float (the document's integer takes
    // them) reach Stripe as whole seconds.
    let resp = checkout(
        &app,
        &id,
        json!({"success_url": "https://app.example/ok", "currency": "GBP", "expires_at": expires_at as f64}),
    )
    .await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    let params = app.emu.requests(0).last().unwrap().params.clone();
    assert_eq!(params["expires_at"], expires_at.to_string());

    // Embedded-only option.
    let resp = checkout(&app, &id, json!({
        "ui_mode": "embedded", "redirect_on_completion": "if_required", "return_url": "https://app.example/r"
    })).await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(
        app.emu.requests(0).last().unwrap().params["redirect_on_completion"],
        "if_required"
    );
}

async fn invalid_options_never_reach_stripe(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, _, id) = setup(&app).await;
    let now = app.emu.now();
    let cases: Vec<(Value, Value)> = vec![
        (
            json!({}),
            invalid_problem(
                json!([{"field": "stripe_options.success_url", "reason": "is required when ui_mode is hosted", "rule": "required", "source": "body"}]),
            ),
        ),
        (
            json!({"ui_mode": "embedded", "return_url": "https://x.example/r", "success_url": "https://x.example/s"}),
            invalid_problem(
                json!([{"field": "stripe_options.success_url", "reason": "cannot be used when ui_mode is embedded; use return_url", "rule": "invalid", "source": "body"}]),
            ),
        ),
        (
            json!({"ui_mode": "embedded", "return_url": "https://x.example/r", "cancel_url": "https://x.example/c"}),
            invalid_problem(
                json!([{"field": "stripe_options.cancel_url", "reason": "cannot be used when ui_mode is embedded; use return_url", "rule": "invalid", "source": "body"}]),
            ),
        ),
        (
            json!({"success_url": "https://x.example/s", "return_url": "https://x.example/r"}),
            invalid_problem(
                json!([{"field": "stripe_options.return_url", "reason": "can only be used when ui_mode is embedded", "rule": "invalid", "source": "body"}]),
            ),
        ),
        (
            json!({"success_url": "https://x.example/s", "redirect_on_completion": "never"}),
            invalid_problem(
                json!([{"field": "stripe_options.redirect_on_completion", "reason": "can only be used when ui_mode is embedded", "rule": "invalid", "source": "body"}]),
            ),
        ),
        (
            json!({"success_url": "https://x.example/s", "currency": "XYZ"}),
            invalid_problem(
                json!([{"field": "stripe_options.currency", "reason": "[XYZ] is not an ISO 4217 currency code", "rule": "invalid", "source": "body"}]),
            ),
        ),
        (
            json!({"success_url": "not a url"}),
            invalid_problem(
                json!([{"field": "stripe_options.success_url", "reason": "must be an absolute http:// or https:// URL", "rule": "invalid", "source": "body"}]),
            ),
        ),
        (
            json!({"success_url": "https://x.example/s", "metadata": {"meterpay_customer_id": "x"}}),
            invalid_problem(
                json!([{"field": "stripe_options.metadata.meterpay_customer_id", "reason": "metadata keys starting with [meterpay_] are reserved for meterpay", "rule": "invalid", "source": "body"}]),
            ),
        ),
        (
            json!({"success_url": "https://x.example/s", "metadata": {"k": "v".repeat(501)}}),
            invalid_problem(
                json!([{"field": "stripe_options.metadata.k", "maximum": 500, "reason": "metadata values must be at most 500 characters long", "rule": "max_length", "source": "body"}]),
            ),
        ),
        (
            json!({"success_url": "https://x.example/s", "ui_mode": "popup"}),
            invalid_problem(
                json!([{"choices": ["hosted", "embedded"], "field": "stripe_options.ui_mode", "reason": "[popup] is not one of the allowed values", "rule": "enum", "source": "body"}]),
            ),
        ),
        (
            json!({"success_url": "https://x.example/s", "locale": "xx"}),
            invalid_problem(
                json!([{"choices": ["auto", "bg", "cs", "da", "de", "el", "en", "en-GB", "es", "es-419", "et", "fi", "fil", "fr", "fr-CA", "hr", "hu", "id", "it", "ja", "ko", "lt", "lv", "ms", "mt", "nb", "nl", "pl", "pt", "pt-BR", "ro", "ru", "sk", "sl", "sv", "th", "tr", "vi", "zh", "zh-HK", "zh-TW"], "field": "stripe_options.locale", "reason": "[xx] is not a locale Stripe Checkout supports", "rule": "enum", "source": "body"}]),
            ),
        ),
        (
            json!({"success_url": "https://x.example/s", "custom_text": {"submit": {"message": "m".repeat(1201)}}}),
            invalid_problem(
                json!([{"field": "stripe_options.custom_text.submit.message", "maximum": 1200, "reason": "must be at most 1200 characters long", "rule": "max_length", "source": "body"}]),
            ),
        ),
        (
            json!({"success_url": "https://x.example/s", "payment_method_types": ["bitcoin"]}),
            invalid_problem(
                json!([{"choices": ["acss_debit", "amazon_pay", "au_becs_debit", "bacs_debit", "bancontact", "boleto", "card", "cashapp", "ideal", "kakao_pay", "kr_card", "link", "naver_pay", "nz_bank_account", "paypal", "payto", "revolut_pay", "sepa_debit", "sofort", "us_bank_account"], "field": "stripe_options.payment_method_types[0]", "reason": "[bitcoin] is not a payment method type Stripe Checkout can set up", "rule": "enum", "source": "body"}]),
            ),
        ),
        (
            json!({"success_url": "https://x.example/s", "surprise": true}),
            invalid_problem(
                json!([{"field": "stripe_options.surprise", "reason": "is not a known property; expected one of `billing_address_collection`, `cancel_url`, `client_reference_id`, `customer_update`, `consent_collection`, `currency`, `custom_text`, `expires_at`, `locale`, `metadata`, `return_url`, `success_url`, `ui_mode`, `payment_method_types`, `redirect_on_completion`, `tax_id_collection`", "rule": "unknown_property", "source": "body"}]),
            ),
        ),
    ];
    let since = last_seq(&app);
    for (options, expected) in cases {
        let resp = checkout(&app, &id, options).await;
        assert_problem(&resp, expected);
    }
    // expires_at less than 30 minutes or more than 24 hours away. The bounds
    // follow the server's clock, read from the answer (it may have ticked
    // past `now`).
    for got in [now + 60, now + 25 * 3600] {
        let resp = checkout(
            &app,
            &id,
            json!({"success_url": "https://x.example/s", "expires_at": got}),
        )
        .await;
        let reason = resp.body["invalid_parameters"][0]["reason"]
            .as_str()
            .unwrap_or_default();
        let server_now = reason
            .split("Unix seconds ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|earliest| earliest.parse::<i64>().ok())
            .map_or(now, |earliest| earliest - 1800);
        assert!((now..now + 60).contains(&server_now), "{}", resp.body);
        let reason = format!(
            "must be between 30 minutes and 24 hours from now (Unix seconds {} to {}); got {got}",
            server_now + 1800,
            server_now + 24 * 3600
        );
        assert_problem(
            &resp,
            invalid_problem(
                json!([{"field": "stripe_options.expires_at", "rule": "invalid",
                "source": "body", "reason": reason}]),
            ),
        );
    }
    // A fraction of a second is not Unix seconds (whole ones written as a
    // float are: `every_option_reaches_stripe_by_its_current_name`).
    let resp = checkout(
        &app,
        &id,
        json!({"success_url": "https://x.example/s", "expires_at": 1.5}),
    )
    .await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "stripe_options.expires_at", "rule": "type",
            "source": "body", "reason": "invalid type: number `1.5`, expected whole Unix seconds (an i64)"}]),
        ),
    );
    let too_many: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    let resp = checkout(
        &app,
        &id,
        json!({"success_url": "https://x.example/s", "metadata": too_many}),
    )
    .await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "stripe_options.metadata", "maximum": 50, "reason": "Stripe allows at most 50 metadata keys", "rule": "max_items", "source": "body"}]),
        ),
    );
    // A customer without a currency and no payment method types.
    let plain = customer(&app, json!({"name": "Plain", "key": "plain"})).await;
    let resp = checkout(
        &app,
        plain["id"].as_str().unwrap(),
        json!({"success_url": "https://x.example/s"}),
    )
    .await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "stripe_options.currency", "reason": "is required in setup mode when payment_method_types is not given and the customer has no currency", "rule": "required", "source": "body"}]),
        ),
    );
    assert!(
        calls(&app, since).is_empty(),
        "a Stripe call was made for invalid input"
    );
}

async fn customers_and_apps_that_cannot_check_out(backend: Backend) {
    let app = TestApp::start(backend).await;
    let ok = json!({"success_url": "https://x.example/s", "currency": "USD"});
    // No app at all.
    let c = customer(&app, json!({"name": "ACME", "key": "acme"})).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let resp = checkout(&app, &id, ok.clone()).await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "app_id", "reason": "no Stripe app is set up for this customer: install one (POST /api/v3/openmeter/app-catalog/install with create_billing_profile: true), or make a billing profile with a Stripe payment app the default", "rule": "required", "source": "body"}]),
        ),
    );
    assert!(app.emu.requests(0).is_empty());
    // Unknown and deleted customers.
    install_stripe_app(&app, true).await;
    assert_eq!(
        checkout(&app, "01J00000000000000000000000", ok.clone())
            .await
            .problem(),
        problem_of(404, "customer [01J00000000000000000000000] not found")
    );
    app.delete(&format!("/api/v3/openmeter/customers/{id}"))
        .await;
    assert_problem(
        &checkout(&app, &id, ok.clone()).await,
        problem_of(
            410,
            &format!("customer [{id}] was deleted; it can be read but not changed or billed"),
        ),
    );
    assert_problem(
        &checkout(&app, "not-a-ulid", ok.clone()).await,
        invalid_problem(
            json!([{"field": "customerId", "reason": "[not-a-ulid] is not a ULID (26 characters, e.g. 01G65Z755AFWAKHE12NY0CQ9FH)", "rule": "matches_regex", "source": "path"}]),
        ),
    );
}

async fn fifty_concurrent_first_checkouts_make_one_stripe_customer(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, _, id) = setup(&app).await;
    let since = last_seq(&app);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let client = app.client.clone();
        let url = format!("{}{}", app.base, checkout_path(&id));
        tasks.push(tokio::spawn(async move {
            let resp = client
                .post(url)
                .json(&json!({"stripe_options": {"success_url": "https://x.example/s"}}))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }));
    }
    let mut stripe_customers = std::collections::BTreeSet::new();
    let mut sessions = std::collections::BTreeSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 201, "{body}");
        stripe_customers.insert(body["stripe_customer_id"].as_str().unwrap().to_owned());
        sessions.insert(body["session_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(stripe_customers.len(), 1);
    assert_eq!(sessions.len(), 50);
    let created: Vec<_> = app
        .emu
        .requests(since)
        .into_iter()
        .filter(|r| r.path == "/v1/customers" && r.status == 200 && !r.idempotent_replayed)
        .collect();
    assert_eq!(created.len(), 1, "Stripe customers created: {created:?}");
    let cus = stripe_customers.into_iter().next().unwrap();
    for s in &sessions {
        assert_eq!(app.emu.object(s).unwrap()["customer"], json!(cus));
    }
    let ulid: meterpay::ids::CustomerId = id.parse().unwrap();
    assert_eq!(
        app.server
            .store()
            .count_checkout_sessions("default", ulid)
            .await
            .unwrap(),
        50
    );
}

async fn stripe_failures_become_clear_errors(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (stripe_app, key, id) = setup(&app).await;
    let ok = json!({"success_url": "https://x.example/s"});
    // A transient 429 is retried under the same key.
    app.emu.set_faults(vec![
        "POST /v1/checkout/sessions:error=429,count=1"
            .parse()
            .unwrap(),
    ]);
    let since = last_seq(&app);
    let resp = checkout(&app, &id, ok.clone()).await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    let tries: Vec<_> = calls(&app, since)
        .into_iter()
        .filter(|c| c.1 == "/v1/checkout/sessions")
        .collect();
    assert_eq!(tries.len(), 2);
    assert_eq!(tries[0].3, tries[1].3);
    // Persistent 500s: 503 with Retry-After.
    app.emu.set_faults(vec![
        "POST /v1/checkout/sessions:error=500".parse().unwrap(),
    ]);
    let resp = checkout(&app, &id, ok.clone()).await;
    assert_problem(
        &resp,
        problem_of(
            503,
            "Stripe is unavailable: create checkout session: Stripe answered 500: Something went wrong on Stripe's end. (Injected by the emulator.)",
        ),
    );
    assert!(resp.headers.get("retry-after").is_some());
    app.emu.clear_faults();
    // A revoked key: 400 saying so, and the app shows unauthorized.
    app.emu.revoke_api_key(&key);
    let resp = checkout(&app, &id, ok.clone()).await;
    let app_id = stripe_app["id"].as_str().unwrap();
    let reason = format!(
        "the Stripe API key of app [{app_id}] is no longer valid (Stripe rejected it); \
         rotate it with PUT /api/v3/openmeter/apps/{app_id} giving secret_api_key"
    );
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "app_id", "reason": reason, "rule": "invalid", "source": "body"}]),
        ),
    );
    assert_eq!(
        app.get(&format!("/api/v3/openmeter/apps/{app_id}"))
            .await
            .body["status"],
        "unauthorized"
    );
}

async fn v1_checkout_by_id_key_and_inline_customer(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (stripe_app, key, id) = setup(&app).await;
    let app_id = stripe_app["id"].as_str().unwrap().to_owned();
    let post = |body: Value| {
        let app = &app;
        async move {
            let resp = app.post("/api/v1/stripe/checkout/sessions", body).await;
            assert_response(
                Spec::V1,
                "createStripeCheckoutSession",
                resp.status,
                &resp.content_type,
                &resp.body,
            );
            resp
        }
    };
    let by_id =
        post(json!({"customer": {"id": id}, "options": {"successURL": "https://x.example/s"}}))
            .await;
    assert_eq!(by_id.status, 201, "{}", by_id.body);
    assert_eq!(by_id.body["customerId"], json!(id));
    assert_eq!(by_id.body["mode"], "setup");
    assert_eq!(by_id.body["successURL"], "https://x.example/s");
    assert_eq!(by_id.body["currency"], "USD");
    let by_key = post(json!({"appId": app_id, "customer": {"key": "acme"},
        "options": {"uiMode": "embedded", "returnURL": "https://x.example/r"}}))
    .await;
    assert_eq!(by_key.status, 201, "{}", by_key.body);
    assert_eq!(
        by_key.body["stripeCustomerId"],
        by_id.body["stripeCustomerId"]
    );
    assert!(by_key.body["clientSecret"].is_string());

    let cus = crate::customer_billing::stripe_customer(&app, &key, "new@example.com").await;
    let inline = post(
        json!({"customer": {"name": "New Co", "key": "new-co", "currency": "EUR"},
        "stripeCustomerId": cus, "options": {"successURL": "https://x.example/s"}}),
    )
    .await;
    assert_eq!(inline.status, 201, "{}", inline.body);
    let new_id = assert_ulid(&inline.body["customerId"]);
    assert_eq!(inline.body["stripeCustomerId"], json!(cus));
    assert_eq!(inline.body["currency"], "EUR");
    assert_eq!(
        app.get("/api/v1/customers/new-co").await.body["id"],
        json!(new_id)
    );
    assert_eq!(
        app.get("/api/v1/customers/new-co/stripe").await.body["stripeCustomerId"],
        json!(cus)
    );

    // A different Stripe customer than the linked one: 409.
    let other = crate::customer_billing::stripe_customer(&app, &key, "x@example.com").await;
    let resp = post(
        json!({"customer": {"key": "new-co"}, "stripeCustomerId": other,
        "options": {"successURL": "https://x.example/s"}}),
    )
    .await;
    assert_problem(
        &resp,
        with_members(
            problem_of(
                409,
                &format!(
                    "customer [{new_id}] is already linked to Stripe customer [{cus}], not [{other}]"
                ),
            ),
            json!({"field": "stripeCustomerId"}),
        ),
    );
    // v1 field names in errors; bad ids.
    let resp =
        post(json!({"customer": {"key": "acme"}, "options": {"returnURL": "https://x.example/r"}}))
            .await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "options.successURL", "reason": "is required when ui_mode is hosted", "rule": "required", "source": "body"}, {"field": "options.returnURL", "reason": "can only be used when ui_mode is embedded", "rule": "invalid", "source": "body"}]),
        ),
    );
    let resp = post(
        json!({"customer": {"key": "acme"}, "stripeCustomerId": "acme",
        "options": {"successURL": "https://x.example/s"}}),
    )
    .await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "stripeCustomerId", "reason": "must be a Stripe customer id (cus_…)", "rule": "matches_regex", "source": "body"}]),
        ),
    );
    let resp = post(
        json!({"customer": {"key": "nobody"}, "options": {"successURL": "https://x.example/s"}}),
    )
    .await;
    assert_problem(&resp, problem_of(404, "customer [nobody] not found"));
    // Stripe's own refusal comes back as a 400 naming our field, with Stripe's message.
    let resp = post(json!({"customer": {"name": "Ghost", "key": "ghost", "currency": "USD"},
        "stripeCustomerId": "cus_NoSuchCustomer1", "options": {"successURL": "https://x.example/s"}})).await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "stripeCustomerId", "reason": "Stripe refused the request: No such customer: 'cus_NoSuchCustomer1'", "rule": "invalid", "source": "body"}]),
        ),
    );
    // An app of another namespace is not found.
    let resp = post(
        json!({"appId": "01J00000000000000000000000", "customer": {"key": "acme"},
        "options": {"successURL": "https://x.example/s"}}),
    )
    .await;
    assert_problem(
        &resp,
        problem_of(404, "app [01J00000000000000000000000] not found"),
    );
}
