//! Raw-HTTP tests of the emulator's Stripe wire format and behaviours.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn auth_missing_invalid_bearer_and_basic() {
    let t = start().await;
    let r = reqwest::get(t.url("/v1/customers")).await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    // Stripe's wire type for 401 is invalid_request_error (SDKs map the status to AuthenticationError).
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("You did not provide an API key")
    );

    let r = t.get_as("sk_test_nope", "/v1/customers").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.err_type(), "invalid_request_error");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid API Key provided: sk_test_")
    );

    // HTTP basic with the key as user, as Stripe accepts.
    let r = t
        .http
        .get(t.url("/v1/account"))
        .basic_auth(&t.key, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let acct: serde_json::Value = r.json().await.unwrap();
    assert_eq!(acct["object"], "account");
    assert_eq!(
        acct["id"].as_str(),
        t.emu.account_for_key(&t.key).as_deref()
    );
    assert!(acct["id"].as_str().unwrap().starts_with("acct_"));

    // Stable account id per key across emulator restarts.
    let t2 = start().await;
    assert_eq!(
        t2.emu.account_for_key(&t.key),
        t.emu.account_for_key(&t.key)
    );
    // Unknown URL is Stripe's 404.
    let r = t.get("/v1/nothing_here").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.err_type(), "invalid_request_error");
}

#[tokio::test]
async fn accounts_are_isolated_and_created_by_control_route() {
    let t = start().await;
    let r = t.ctl_post("/_emulator/accounts", json!({})).await;
    assert_eq!(r.status, 200);
    let key2 = r.body["secret_key"].as_str().unwrap().to_string();
    assert!(key2.starts_with("sk_test_"));
    let acct2 = r.body["account_id"].as_str().unwrap().to_string();
    let (acct3, key3) = t.emu.create_account().await;
    assert_ne!(acct2, acct3);
    let me = t.get_as(&key2, "/v1/account").await;
    assert_eq!(me.body["id"], acct2.as_str());

    let cus = t.customer().await;
    let r = t.get_as(&key3, &format!("/v1/customers/{cus}")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["code"], "resource_missing");
    let r = t.get_as(&key2, "/v1/customers").await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn customers_crud_with_metadata_and_default_payment_method() {
    let t = start().await;
    let r = t
        .post(
            "/v1/customers",
            &[
                ("email", "a@example.com"),
                ("name", "A"),
                ("metadata[tenant]", "t1"),
                ("metadata[plan]", "free"),
                ("address[country]", "US"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let c = &r.body;
    let id = c["id"].as_str().unwrap();
    assert!(id.starts_with("cus_"));
    assert_eq!(c["object"], "customer");
    assert_eq!(c["livemode"], false);
    assert!(c["created"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(c["metadata"], json!({"tenant": "t1", "plan": "free"}));
    assert_eq!(c["address"]["country"], "US");
    assert_eq!(
        c["invoice_settings"]["default_payment_method"],
        serde_json::Value::Null
    );

    let r = t.get(&format!("/v1/customers/{id}")).await;
    assert_eq!(r.body, *c);

    // Update merges metadata; empty value removes a key.
    let r = t
        .post(
            &format!("/v1/customers/{id}"),
            &[("metadata[plan]", ""), ("metadata[x]", "y"), ("name", "B")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["metadata"], json!({"tenant": "t1", "x": "y"}));
    assert_eq!(r.body["name"], "B");

    // Default payment method must exist and be attached to this customer.
    let r = t
        .post(
            &format!("/v1/customers/{id}"),
            &[("invoice_settings[default_payment_method]", "pm_missing")],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.err_param(), "invoice_settings[default_payment_method]");
    assert_eq!(r.body["error"]["code"], "resource_missing");

    // Complete an embedded session to get an attached card, then set it as default.
    let cs = t
        .post(
            "/v1/checkout/sessions",
            &[
                ("mode", "setup"),
                ("currency", "usd"),
                ("customer", id),
                ("ui_mode", "embedded_page"),
                (
                    "return_url",
                    "https://example.com/r?id={CHECKOUT_SESSION_ID}",
                ),
            ],
        )
        .await;
    assert_eq!(cs.status, 200, "{}", cs.body);
    let done = t
        .ctl_post(
            &format!(
                "/_emulator/checkout/sessions/{}/complete",
                cs.body["id"].as_str().unwrap()
            ),
            json!({"card_number": "4242 4242 4242 4242"}),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let si = t
        .get(&format!(
            "/v1/setup_intents/{}",
            done.body["session"]["setup_intent"].as_str().unwrap()
        ))
        .await;
    let pm = si.body["payment_method"].as_str().unwrap().to_string();
    let r = t
        .post(
            &format!("/v1/customers/{id}"),
            &[("invoice_settings[default_payment_method]", &pm)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["invoice_settings"]["default_payment_method"],
        pm.as_str()
    );
    let r = t
        .get(&format!(
            "/v1/customers/{id}?expand[]=invoice_settings.default_payment_method"
        ))
        .await;
    assert_eq!(
        r.body["invoice_settings"]["default_payment_method"]["id"],
        pm.as_str()
    );
    let r = t.get(&format!("/v1/customers/{id}/payment_methods")).await;
    assert_eq!(r.body["data"][0]["id"], pm.as_str());

    // List filters by email.
    t.customer().await;
    let r = t.get("/v1/customers?email=a@example.com").await;
    assert_eq!(r.body["object"], "list");
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);

    // Delete.
    let r = t.delete(&format!("/v1/customers/{id}")).await;
    assert_eq!(
        r.body,
        json!({"id": id, "object": "customer", "deleted": true})
    );
    let r = t.get(&format!("/v1/customers/{id}")).await;
    assert_eq!(r.body["deleted"], true);
    let r = t.delete(&format!("/v1/customers/{id}")).await;
    assert_eq!(r.status, 404);
    let types = event_types(&t.emu);
    assert!(types.contains(&"customer.created".to_string()));
    assert!(types.contains(&"customer.updated".to_string()));
    let upd = t
        .emu
        .events()
        .into_iter()
        .find(|e| e["type"] == "customer.updated")
        .unwrap();
    assert_eq!(upd["data"]["previous_attributes"]["name"], "A");
}

#[tokio::test]
async fn unknown_and_invalid_params_name_the_param() {
    let t = start().await;
    let r = t.post("/v1/customers", &[("emial", "x@example.com")]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.err_type(), "invalid_request_error");
    assert_eq!(r.err_param(), "emial");
    assert_eq!(
        r.body["error"]["message"],
        "Received unknown parameter: emial"
    );
    let r = t
        .post("/v1/customers", &[("invoice_settings[foo]", "x")])
        .await;
    assert_eq!(r.err_param(), "invoice_settings[foo]");
    let r = t.post("/v1/customers", &[("balance", "abc")]).await;
    assert_eq!((r.status, r.err_param()), (400, "balance"));
    let r = t
        .post("/v1/customers", &[("metadata[k]", &"v".repeat(501))])
        .await;
    assert_eq!((r.status, r.err_param()), (400, "metadata[k]"));
    let r = t
        .post("/v1/customers", &[("k".repeat(41).as_str(), "v")])
        .await;
    assert_eq!(r.status, 400);
    let long_key = format!("metadata[{}]", "k".repeat(41));
    let r = t.post("/v1/customers", &[(long_key.as_str(), "v")]).await;
    assert_eq!((r.status, r.err_param()), (400, long_key.as_str()));
    let many: Vec<(String, String)> = (0..51)
        .map(|i| (format!("metadata[k{i}]"), "v".to_string()))
        .collect();
    let many_ref: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let r = t.post("/v1/customers", &many_ref).await;
    assert_eq!((r.status, r.err_param()), (400, "metadata"));
    let r = t.get("/v1/customers?limit=101").await;
    assert_eq!((r.status, r.err_param()), (400, "limit"));
    let r = t.get("/v1/customers/cus_nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["code"], "resource_missing");
    assert_eq!(r.body["error"]["message"], "No such customer: 'cus_nope'");
}

#[tokio::test]
async fn idempotency_replay_and_mismatch() {
    let t = start().await;
    let a = t
        .post_idem("/v1/customers", &[("email", "i@example.com")], "key-1")
        .await;
    assert_eq!(a.status, 200);
    assert!(a.headers.get("idempotent-replayed").is_none());
    let b = t
        .post_idem("/v1/customers", &[("email", "i@example.com")], "key-1")
        .await;
    assert_eq!(b.status, 200);
    assert_eq!(b.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(a.body, b.body);
    let list = t.get("/v1/customers").await;
    assert_eq!(
        list.body["data"].as_array().unwrap().len(),
        1,
        "replay must not create a second customer"
    );
    let c = t
        .post_idem("/v1/customers", &[("email", "other@example.com")], "key-1")
        .await;
    assert_eq!(c.status, 400);
    assert_eq!(c.err_type(), "idempotency_error");
    // Keys are per account.
    let (_, key2) = t.emu.create_account().await;
    let d = t
        .post_as(
            &key2,
            "/v1/customers",
            &[("email", "other@example.com")],
            Some("key-1"),
        )
        .await;
    assert_eq!(d.status, 200);
    // Validation failures are not saved: the key can be reused after fixing the request.
    let e = t
        .post_idem("/v1/customers", &[("bogus", "1")], "key-2")
        .await;
    assert_eq!(e.status, 400);
    let f = t
        .post_idem("/v1/customers", &[("email", "z@example.com")], "key-2")
        .await;
    assert_eq!(f.status, 200);
    // The request log records the idempotency key and replay.
    let log = t.emu.requests(0);
    assert_eq!(log[1].idempotency_key.as_deref(), Some("key-1"));
    assert!(log[1].idempotent_replayed);
    assert_eq!(log[0].params, json!({"email": "i@example.com"}));
    assert_eq!(log[0].account, t.emu.account_for_key(&t.key));
}

#[tokio::test]
async fn list_pagination_starting_after_ending_before() {
    let t = start().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = t
            .post("/v1/customers", &[("email", &format!("c{i}@example.com"))])
            .await;
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    ids.reverse(); // newest first, as Stripe lists
    let p1 = t.get("/v1/customers?limit=2").await;
    let got: Vec<&str> = p1.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[0].as_str(), ids[1].as_str()]);
    assert_eq!(p1.body["has_more"], true);
    assert_eq!(p1.body["url"], "/v1/customers");
    let p2 = t
        .get(&format!("/v1/customers?limit=2&starting_after={}", ids[1]))
        .await;
    let got: Vec<&str> = p2.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[2].as_str(), ids[3].as_str()]);
    assert_eq!(p2.body["has_more"], true);
    let p3 = t
        .get(&format!("/v1/customers?limit=2&starting_after={}", ids[3]))
        .await;
    assert_eq!(p3.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(p3.body["has_more"], false);
    let back = t
        .get(&format!("/v1/customers?limit=2&ending_before={}", ids[3]))
        .await;
    let got: Vec<&str> = back.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[1].as_str(), ids[2].as_str()]);
    assert_eq!(back.body["has_more"], true);
    let bad = t.get("/v1/customers?starting_after=cus_unknown").await;
    assert_eq!((bad.status, bad.err_param()), (400, "starting_after"));
}

#[tokio::test]
async fn checkout_setup_mode_validation() {
    let t = start().await;
    let cus = t.customer().await;
    let v501 = "v".repeat(501);
    let ok_hosted: Vec<(&str, &str)> = vec![
        ("mode", "setup"),
        ("currency", "usd"),
        ("success_url", "https://example.com/s"),
    ];
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("currency", "usd")], "mode"),
        (
            vec![
                ("mode", "setup"),
                ("currency", "usd"),
                ("payment_method_types[0]", "card"),
            ],
            "payment_method_types",
        ),
        (
            vec![
                ("mode", "setup"),
                ("currency", "usd"),
                ("ui_mode", "hosted"),
            ],
            "ui_mode",
        ),
        (
            vec![
                ("mode", "setup"),
                ("currency", "usd"),
                ("ui_mode", "embedded"),
                ("return_url", "https://e.com"),
            ],
            "ui_mode",
        ),
        (
            vec![
                ("mode", "setup"),
                ("currency", "usd"),
                ("line_items[0][price]", "price_1"),
                ("line_items[0][quantity]", "1"),
            ],
            "line_items",
        ),
        (vec![("mode", "setup")], "currency"),
        (
            vec![
                ("mode", "setup"),
                ("currency", "usd"),
                ("ui_mode", "embedded_page"),
                ("return_url", "https://e.com"),
                ("success_url", "https://e.com/s"),
            ],
            "success_url",
        ),
        (
            vec![
                ("mode", "setup"),
                ("currency", "usd"),
                ("ui_mode", "embedded_page"),
                ("return_url", "https://e.com"),
                ("cancel_url", "https://e.com/c"),
            ],
            "cancel_url",
        ),
        (
            vec![
                ("mode", "setup"),
                ("currency", "usd"),
                ("ui_mode", "embedded_page"),
            ],
            "return_url",
        ),
        (
            vec![
                ("mode", "setup"),
                ("currency", "usd"),
                ("return_url", "https://e.com"),
            ],
            "return_url",
        ),
        (
            vec![
                ("mode", "setup"),
                ("currency", "usd"),
                ("customer", "cus_missing"),
            ],
            "customer",
        ),
        (
            vec![
                ("mode", "setup"),
                ("currency", "usd"),
                ("customer", &cus),
                ("customer_email", "x@example.com"),
            ],
            "customer_email",
        ),
        (
            vec![
                ("mode", "setup"),
                ("currency", "usd"),
                ("customer_update[address]", "auto"),
            ],
            "customer_update",
        ),
        (
            vec![("mode", "setup"), ("currency", "usd"), ("expires_at", "1")],
            "expires_at",
        ),
        (
            vec![
                ("mode", "setup"),
                ("currency", "usd"),
                ("success_url", "not a url"),
            ],
            "success_url",
        ),
        (
            vec![
                ("mode", "setup"),
                ("allowed_payment_method_types[0]", "carrd"),
            ],
            "allowed_payment_method_types[0]",
        ),
        (
            vec![
                ("mode", "setup"),
                ("currency", "usd"),
                ("setup_intent_data[metadata][k]", &v501),
            ],
            "setup_intent_data[metadata][k]",
        ),
        (
            vec![
                ("mode", "setup"),
                ("currency", "usd"),
                ("custom_text[submit][msg]", "x"),
            ],
            "custom_text[submit][msg]",
        ),
        (
            vec![
                ("mode", "setup"),
                ("currency", "usd"),
                ("submit_type", "pay"),
            ],
            "submit_type",
        ),
    ];
    for (form, param) in cases {
        let r = t.post("/v1/checkout/sessions", &form).await;
        assert_eq!(r.status, 400, "{form:?} -> {}", r.body);
        assert_eq!(r.err_type(), "invalid_request_error");
        assert_eq!(r.err_param(), param, "{form:?} -> {}", r.body);
    }
    // Nested names and enums are checked against async-stripe's request types.
    let nested: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("consent_collection[foo]", "x")],
            "consent_collection[foo]",
        ),
        (
            vec![("consent_collection[promotions]", "sometimes")],
            "consent_collection[promotions]",
        ),
        (vec![("locale", "xx")], "locale"),
        (
            vec![
                ("setup_intent_data[metadata][a]", "x"),
                ("setup_intent_data[bogus]", "y"),
            ],
            "setup_intent_data[bogus]",
        ),
        (
            vec![("custom_fields[0][kind]", "text")],
            "custom_fields[0][kind]",
        ),
    ];
    for (extra, param) in nested {
        let mut form: Vec<(&str, &str)> = vec![("mode", "setup"), ("currency", "usd")];
        form.extend(extra);
        let r = t.post("/v1/checkout/sessions", &form).await;
        assert_eq!(
            (r.status, r.err_param()),
            (400, param),
            "{form:?} -> {}",
            r.body
        );
    }
    // expires_at bounds: 31 minutes ok, 25 hours not.
    let now = t.emu.now();
    let mut f = ok_hosted.clone();
    let soon = (now + 31 * 60).to_string();
    f.push(("expires_at", &soon));
    assert_eq!(t.post("/v1/checkout/sessions", &f).await.status, 200);
    let mut f = ok_hosted.clone();
    let late = (now + 25 * 3600).to_string();
    f.push(("expires_at", &late));
    let r = t.post("/v1/checkout/sessions", &f).await;
    assert_eq!((r.status, r.err_param()), (400, "expires_at"));
    // allowed_payment_method_types lifts the currency requirement; customer_update with customer is fine.
    let r = t
        .post(
            "/v1/checkout/sessions",
            &[
                ("mode", "setup"),
                ("allowed_payment_method_types[0]", "card"),
                ("customer", &cus),
                ("customer_update[address]", "auto"),
                ("success_url", "https://e.com/s"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["allowed_payment_method_types"], json!(["card"]));
    assert_eq!(r.body["currency"], serde_json::Value::Null);
}

#[tokio::test]
async fn checkout_session_create_retrieve_expand_expire_list() {
    let t = start().await;
    let cus = t.customer().await;
    let cs = t.hosted_session(&cus).await;
    let id = cs["id"].as_str().unwrap();
    assert!(id.starts_with("cs_test_"));
    assert_eq!(cs["object"], "checkout.session");
    assert_eq!(cs["mode"], "setup");
    assert_eq!(cs["ui_mode"], "hosted_page");
    assert_eq!(cs["status"], "open");
    assert_eq!(cs["customer"], cus.as_str());
    assert_eq!(cs["client_secret"], serde_json::Value::Null);
    assert_eq!(
        cs["url"],
        format!("{}/c/pay/{id}", t.emu.base_url()).as_str()
    );
    assert_eq!(
        cs["expires_at"].as_i64().unwrap() - cs["created"].as_i64().unwrap(),
        86_400
    );
    assert_eq!(cs["metadata"], json!({"app": "meterpay"}));
    let seti = cs["setup_intent"].as_str().unwrap();
    assert!(seti.starts_with("seti_"));
    let si = t.get(&format!("/v1/setup_intents/{seti}")).await;
    assert_eq!(si.body["metadata"], json!({"plan": "pro"}));
    assert_eq!(si.body["status"], "requires_payment_method");
    assert_eq!(si.body["customer"], cus.as_str());

    let r = t
        .get(&format!(
            "/v1/checkout/sessions/{id}?expand[]=setup_intent&expand[]=customer"
        ))
        .await;
    assert_eq!(r.body["setup_intent"]["id"], seti);
    assert_eq!(r.body["setup_intent"]["object"], "setup_intent");
    assert_eq!(r.body["customer"]["id"], cus.as_str());
    let r = t
        .get(&format!("/v1/checkout/sessions/{id}?expand[]=nope"))
        .await;
    assert_eq!((r.status, r.err_param()), (400, "expand[0]"));

    // Embedded session gets a client secret and no url.
    let e = t
        .post(
            "/v1/checkout/sessions",
            &[
                ("mode", "setup"),
                ("currency", "usd"),
                ("ui_mode", "embedded_page"),
                ("return_url", "https://example.com/r"),
            ],
        )
        .await;
    assert!(
        e.body["client_secret"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}_secret_", e.body["id"].as_str().unwrap()))
    );
    assert_eq!(e.body["url"], serde_json::Value::Null);
    assert_eq!(e.body["redirect_on_completion"], "always");

    let r = t
        .post(&format!("/v1/checkout/sessions/{id}/expire"), &[])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "expired");
    let r = t
        .post(&format!("/v1/checkout/sessions/{id}/expire"), &[])
        .await;
    assert_eq!(r.status, 400);
    let si = t.get(&format!("/v1/setup_intents/{seti}")).await;
    assert_eq!(si.body["status"], "canceled");
    assert!(event_types(&t.emu).contains(&"checkout.session.expired".to_string()));

    let l = t
        .get(&format!("/v1/checkout/sessions?customer={cus}"))
        .await;
    assert_eq!(l.body["data"].as_array().unwrap().len(), 1);
    let l = t.get("/v1/checkout/sessions?status=open").await;
    assert_eq!(l.body["data"].as_array().unwrap().len(), 1);
    let r = t.get("/v1/checkout/sessions/cs_test_nope").await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn hosted_page_success_redirects_and_emits_events() {
    let t = start().await;
    let cus = t.customer().await;
    let cs = t.hosted_session(&cus).await;
    let id = cs["id"].as_str().unwrap();
    let page = t
        .http
        .get(cs["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("name=\"card_number\"")
            && html.contains("name=\"cvc\"")
            && html.contains("name=\"exp\"")
            && html.contains("name=\"name\"")
    );
    let r = t
        .http
        .post(cs["url"].as_str().unwrap())
        .form(&[
            ("card_number", "4242 4242 4242 4242"),
            ("exp", "12 / 34"),
            ("cvc", "123"),
            ("name", "Jenny Rosen"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("https://example.com/ok?session_id={id}").as_str()
    );

    let s = t
        .get(&format!(
            "/v1/checkout/sessions/{id}?expand[]=setup_intent.payment_method"
        ))
        .await;
    assert_eq!(s.body["status"], "complete");
    assert_eq!(s.body["setup_intent"]["status"], "succeeded");
    let pm = &s.body["setup_intent"]["payment_method"];
    assert!(pm["id"].as_str().unwrap().starts_with("pm_"));
    assert_eq!(pm["customer"], cus.as_str());
    assert_eq!(pm["card"]["last4"], "4242");
    assert_eq!(pm["card"]["exp_year"], 2034);
    assert_eq!(pm["billing_details"]["name"], "Jenny Rosen");
    assert_eq!(s.body["customer_details"]["email"], "jenny@example.com");

    let types = event_types(&t.emu);
    let pos = |ty: &str| {
        types
            .iter()
            .position(|x| x == ty)
            .unwrap_or_else(|| panic!("{ty} missing in {types:?}"))
    };
    assert!(pos("setup_intent.created") < pos("setup_intent.succeeded"));
    assert!(pos("setup_intent.succeeded") < pos("checkout.session.completed"));
    // Page after completion says so.
    let html = t
        .http
        .get(t.url(&format!("/c/pay/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("data-status=\"complete\""));
    // events API lists them, filterable by type.
    let l = t.get("/v1/events?type=checkout.session.completed").await;
    assert_eq!(l.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(l.body["data"][0]["data"]["object"]["id"], id);
    let ev = t
        .get(&format!(
            "/v1/events/{}",
            l.body["data"][0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(ev.body["type"], "checkout.session.completed");
}

#[tokio::test]
async fn hosted_page_decline_keeps_session_open() {
    let t = start().await;
    let cus = t.customer().await;
    let cs = t.hosted_session(&cus).await;
    let id = cs["id"].as_str().unwrap();
    let r = t
        .http
        .post(cs["url"].as_str().unwrap())
        .form(&[
            ("card_number", "4000000000000002"),
            ("exp", "12/34"),
            ("cvc", "123"),
            ("name", "J"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    let html = r.text().await.unwrap();
    assert!(html.contains("Your card was declined."), "{html}");
    let s = t
        .get(&format!("/v1/checkout/sessions/{id}?expand[]=setup_intent"))
        .await;
    assert_eq!(s.body["status"], "open");
    assert_eq!(
        s.body["setup_intent"]["last_setup_error"]["code"],
        "card_declined"
    );
    assert_eq!(
        s.body["setup_intent"]["last_setup_error"]["decline_code"],
        "generic_decline"
    );
    assert!(event_types(&t.emu).contains(&"setup_intent.setup_failed".to_string()));
    assert!(!event_types(&t.emu).contains(&"checkout.session.completed".to_string()));
    // A good card afterwards still completes it.
    let r = t
        .http
        .post(cs["url"].as_str().unwrap())
        .form(&[
            ("card_number", "4242424242424242"),
            ("exp", "12/34"),
            ("cvc", "123"),
            ("name", "J"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // Embedded completion with a declined card is Stripe's 402 card_error.
    let e = t
        .post(
            "/v1/checkout/sessions",
            &[
                ("mode", "setup"),
                ("currency", "usd"),
                ("ui_mode", "embedded_page"),
                ("redirect_on_completion", "never"),
            ],
        )
        .await;
    assert_eq!(e.status, 200, "{}", e.body);
    let r = t
        .ctl_post(
            &format!(
                "/_emulator/checkout/sessions/{}/complete",
                e.body["id"].as_str().unwrap()
            ),
            json!({"card_number": "4000000000000002"}),
        )
        .await;
    assert_eq!(r.status, 402);
    assert_eq!(r.err_type(), "card_error");
    assert_eq!(r.body["error"]["code"], "card_declined");
}

#[tokio::test]
async fn hosted_page_3ds_confirm_step() {
    let t = start().await;
    let cus = t.customer().await;
    let cs = t.hosted_session(&cus).await;
    let id = cs["id"].as_str().unwrap();
    let form = [
        ("card_number", "4000 0000 0000 3220"),
        ("exp", "12/34"),
        ("cvc", "123"),
        ("name", "J"),
    ];
    let r = t
        .http
        .post(cs["url"].as_str().unwrap())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"three-d-secure\""));
    assert_eq!(
        t.get(&format!("/v1/checkout/sessions/{id}")).await.body["status"],
        "open"
    );
    // Failing authentication declines.
    let r = t
        .http
        .post(t.url(&format!("/c/pay/{id}/authenticate")))
        .form(&[
            ("card_number", "4000000000003220"),
            ("exp_month", "12"),
            ("exp_year", "2034"),
            ("action", "fail"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    assert!(event_types(&t.emu).contains(&"setup_intent.setup_failed".to_string()));
    // Completing it succeeds and redirects.
    let r = t
        .http
        .post(t.url(&format!("/c/pay/{id}/authenticate")))
        .form(&[
            ("card_number", "4000000000003220"),
            ("exp_month", "12"),
            ("exp_year", "2034"),
            ("action", "complete"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        t.get(&format!("/v1/checkout/sessions/{id}")).await.body["status"],
        "complete"
    );
}

#[tokio::test]
async fn webhooks_signed_filtered_retried_in_order() {
    let t = start().await;
    let (rx, url) = receiver(2).await;
    let we = t
        .post(
            "/v1/webhook_endpoints",
            &[
                ("url", &url),
                ("enabled_events[]", "checkout.session.completed"),
                ("enabled_events[]", "setup_intent.succeeded"),
                ("enabled_events[]", "customer.created"),
            ],
        )
        .await;
    assert_eq!(we.status, 200, "{}", we.body);
    let secret = we.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let we_id = we.body["id"].as_str().unwrap().to_string();
    assert!(we_id.starts_with("we_"));
    assert_eq!(we.body["status"], "enabled");
    // secret is only returned on create.
    let got = t.get(&format!("/v1/webhook_endpoints/{we_id}")).await;
    assert!(got.body.get("secret").is_none());
    let (_, all_url) = receiver(0).await;
    let we2 = t
        .post(
            "/v1/webhook_endpoints",
            &[("url", &all_url), ("enabled_events[0]", "*")],
        )
        .await;
    let we2_id = we2.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        t.get("/v1/webhook_endpoints").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let upd = t
        .post(
            &format!("/v1/webhook_endpoints/{we2_id}"),
            &[("disabled", "true"), ("description", "off")],
        )
        .await;
    assert_eq!(upd.body["status"], "disabled");
    let del = t.delete(&format!("/v1/webhook_endpoints/{we2_id}")).await;
    assert_eq!(del.body["deleted"], true);
    let r = t
        .post(
            "/v1/webhook_endpoints",
            &[("url", &url), ("enabled_events[0]", "customer.made_up")],
        )
        .await;
    assert_eq!((r.status, r.err_param()), (400, "enabled_events[0]"));
    let r = t.post("/v1/webhook_endpoints", &[("url", &url)]).await;
    assert_eq!((r.status, r.err_param()), (400, "enabled_events"));

    let cus = t.customer().await;
    let cs = t.hosted_session(&cus).await;
    let r = t
        .http
        .post(cs["url"].as_str().unwrap())
        .form(&[
            ("card_number", "4242424242424242"),
            ("exp", "12/34"),
            ("cvc", "123"),
            ("name", "J"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // customer.created fails twice then succeeds; the later events wait behind it (in order).
    t.wait_for(|| rx.got.lock().unwrap().iter().filter(|x| x.2 == 200).count() == 3)
        .await;
    let got = rx.got.lock().unwrap().clone();
    let ok: Vec<String> = got
        .iter()
        .filter(|x| x.2 == 200)
        .map(|(sig, body, _)| {
            assert!(
                stripe_emulator::verify_signature(&secret, sig, body),
                "bad signature {sig}"
            );
            assert!(!stripe_emulator::verify_signature("whsec_wrong", sig, body));
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["object"], "event");
            v["type"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        ok,
        [
            "customer.created",
            "setup_intent.succeeded",
            "checkout.session.completed"
        ]
    );
    assert_eq!(got.len(), 5, "two failed attempts plus three deliveries");
    // Independent HMAC check of the header format.
    let (sig, body, _) = &got[2];
    let t_part = sig.split(',').next().unwrap().strip_prefix("t=").unwrap();
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t_part}.{body}").as_bytes());
    assert_eq!(
        sig.split(",v1=").nth(1).unwrap(),
        hex::encode(mac.finalize().into_bytes())
    );
    let attempts = t.emu.webhook_deliveries();
    assert_eq!(
        attempts
            .iter()
            .filter(|a| a.event_type == "customer.created")
            .count(),
        3
    );
    let d = t.ctl_get("/_emulator/webhook_deliveries").await;
    assert_eq!(d.body["data"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn clock_advance_expires_sessions() {
    let t = start().await;
    let cus = t.customer().await;
    let cs = t.hosted_session(&cus).await;
    let id = cs["id"].as_str().unwrap();
    let c0 = t.ctl_get("/_emulator/clock").await.body["now"]
        .as_i64()
        .unwrap();
    let r = t
        .ctl_post("/_emulator/clock/advance", json!({"seconds": 3600}))
        .await;
    assert!(r.body["now"].as_i64().unwrap() >= c0 + 3600);
    assert_eq!(
        t.get(&format!("/v1/checkout/sessions/{id}")).await.body["status"],
        "open"
    );
    t.ctl_post("/_emulator/clock/advance", json!({"seconds": 86_400}))
        .await;
    let s = t.get(&format!("/v1/checkout/sessions/{id}")).await;
    assert_eq!(s.body["status"], "expired");
    assert_eq!(s.body["url"], serde_json::Value::Null);
    let evs = t.get("/v1/events?type=checkout.session.expired").await;
    assert_eq!(evs.body["data"][0]["data"]["object"]["id"], id);
    // The hosted page no longer accepts cards.
    let html = t
        .http
        .get(t.url(&format!("/c/pay/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("no longer active"));
    // New sessions are created relative to the moved clock.
    let cs2 = t.hosted_session(&cus).await;
    assert!(cs2["created"].as_i64().unwrap() >= c0 + 3600 + 86_400);
    assert_eq!(t.emu.advance_clock(0), t.emu.now());
}

#[tokio::test]
async fn fault_injection_by_count_rate_and_latency() {
    let t = start().await;
    let r = t
        .ctl_post(
            "/_emulator/faults",
            json!({"path": "/v1/customers", "method": "POST", "error": "429", "count": 1}),
        )
        .await;
    assert_eq!(r.status, 200);
    let a = t.post("/v1/customers", &[]).await;
    assert_eq!(a.status, 429);
    assert_eq!(a.err_type(), "invalid_request_error");
    assert_eq!(a.body["error"]["code"], "rate_limit");
    assert_eq!(t.post("/v1/customers", &[]).await.status, 200);
    // GET unaffected by a POST rule.
    t.ctl_post(
        "/_emulator/faults",
        json!({"rules": [{"path": "/v1/customers", "method": "POST", "error": "500", "count": 2}]}),
    )
    .await;
    assert_eq!(t.get("/v1/customers").await.status, 200);
    assert_eq!(t.post("/v1/customers", &[]).await.status, 500);
    assert_eq!(t.post("/v1/customers", &[]).await.status, 500);
    assert_eq!(t.post("/v1/customers", &[]).await.status, 200);
    // Dropped connection: no HTTP response at all.
    t.ctl_post(
        "/_emulator/faults",
        json!({"path": "/v1/account", "error": "drop", "count": 1}),
    )
    .await;
    let err = t
        .http
        .get(t.url("/v1/account"))
        .bearer_auth(&t.key)
        .send()
        .await;
    assert!(err.is_err(), "expected a dropped connection, got {err:?}");
    assert_eq!(t.get("/v1/account").await.status, 200);
    // Latency.
    t.emu.set_faults(vec![stripe_emulator::FaultRule {
        path: Some("/v1/account".into()),
        latency_ms: Some(300),
        ..Default::default()
    }]);
    let start = std::time::Instant::now();
    assert_eq!(t.get("/v1/account").await.status, 200);
    assert!(start.elapsed().as_millis() >= 300);
    // Rate 0 never fires; clearing removes rules.
    t.emu.set_faults(vec![stripe_emulator::FaultRule {
        error: Some("500".into()),
        rate: Some(0.0),
        ..Default::default()
    }]);
    assert_eq!(t.get("/v1/account").await.status, 200);
    // A rule whose error does not fire lets the next matching one try; latencies add up.
    t.emu.set_faults(vec![
        "/v1/account:error=500,rate=0,latency_ms=100"
            .parse()
            .unwrap(),
        "/v1/account:latency_ms=100".parse().unwrap(),
        "/v1/account:error=429,count=1".parse().unwrap(),
        "/v1/account:error=500,count=1".parse().unwrap(),
    ]);
    let start = std::time::Instant::now();
    assert_eq!(t.get("/v1/account").await.status, 429);
    assert!(start.elapsed().as_millis() >= 200);
    assert_eq!(t.get("/v1/account").await.status, 500);
    assert_eq!(t.get("/v1/account").await.status, 200);
    let r = Resp {
        ..reqwest_delete(&t, "/_emulator/faults").await
    };
    assert_eq!(r.status, 200);
    assert_eq!(
        t.ctl_get("/_emulator/faults").await.body["rules"],
        json!([])
    );
    // Faults are in the request log.
    let log = t.ctl_get("/_emulator/requests").await;
    let faults: Vec<&serde_json::Value> = log.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e["fault"].is_null())
        .collect();
    assert_eq!(faults.len(), 6);
    let r = t
        .ctl_post("/_emulator/faults", json!({"error": "418"}))
        .await;
    assert_eq!(r.status, 400);
}

async fn reqwest_delete(t: &T, path: &str) -> Resp {
    let r = t.http.delete(t.url(path)).send().await.unwrap();
    Resp {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.json().await.unwrap(),
    }
}

#[tokio::test]
async fn request_log_since_and_clear() {
    let t = start().await;
    t.post(
        "/v1/customers",
        &[
            ("metadata[k]", "v"),
            ("expand[]", "invoice_settings.default_payment_method"),
        ],
    )
    .await;
    t.get("/v1/customers?limit=3").await;
    let r = t.ctl_get("/_emulator/requests").await;
    let data = r.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["method"], "POST");
    assert_eq!(data[0]["path"], "/v1/customers");
    assert_eq!(
        data[0]["params"],
        json!({"metadata": {"k": "v"}, "expand": ["invoice_settings.default_payment_method"]})
    );
    assert_eq!(data[0]["status"], 200);
    assert_eq!(data[1]["params"], json!({"limit": "3"}));
    let since = data[0]["seq"].as_u64().unwrap();
    let r = t
        .ctl_get(&format!("/_emulator/requests?since={since}"))
        .await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    reqwest_delete(&t, "/_emulator/requests").await;
    assert!(t.emu.requests(0).is_empty());
}

#[tokio::test]
async fn portal_sessions_payment_methods_attach() {
    let t = start().await;
    let cus = t.customer().await;
    let r = t
        .post(
            "/v1/billing_portal/sessions",
            &[
                ("customer", &cus),
                ("return_url", "https://example.com/account"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["id"].as_str().unwrap().starts_with("bps_"));
    assert_eq!(r.body["object"], "billing_portal.session");
    let page = t
        .http
        .get(r.body["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let r = t
        .post("/v1/billing_portal/sessions", &[("customer", "cus_nope")])
        .await;
    assert_eq!((r.status, r.err_param()), (400, "customer"));
    let r = t.post("/v1/billing_portal/sessions", &[]).await;
    assert_eq!((r.status, r.err_param()), (400, "customer"));

    // A session without customer yields an unattached pm that can be attached later.
    let e = t
        .post(
            "/v1/checkout/sessions",
            &[
                ("mode", "setup"),
                ("currency", "usd"),
                ("ui_mode", "embedded_page"),
                ("return_url", "https://example.com/r"),
            ],
        )
        .await;
    let done = t.emu.complete_checkout_session(
        e.body["id"].as_str().unwrap(),
        &stripe_emulator::CardInput {
            number: "4242424242424242".into(),
            exp_month: 1,
            exp_year: 2040,
            ..Default::default()
        },
        true,
    );
    let cs = done.unwrap();
    let si = t
        .get(&format!(
            "/v1/setup_intents/{}",
            cs["setup_intent"].as_str().unwrap()
        ))
        .await;
    let pm = si.body["payment_method"].as_str().unwrap();
    assert_eq!(
        t.get(&format!("/v1/payment_methods/{pm}")).await.body["customer"],
        serde_json::Value::Null
    );
    let r = t
        .post(
            &format!("/v1/payment_methods/{pm}/attach"),
            &[("customer", &cus)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["customer"], cus.as_str());
    let r = t
        .post(&format!("/v1/payment_methods/{pm}/attach"), &[])
        .await;
    assert_eq!((r.status, r.err_param()), (400, "customer"));
    let r = t
        .post("/v1/payment_methods/pm_nope/attach", &[("customer", &cus)])
        .await;
    assert_eq!(r.status, 404);
    assert!(event_types(&t.emu).contains(&"payment_method.attached".to_string()));
}

#[tokio::test]
async fn restricted_and_publishable_keys_and_fault_flags() {
    let t = start_with(stripe_emulator::EmulatorConfig {
        api_keys: vec!["rk_test_restricted".into(), "sk_test_second".into()],
        faults: vec!["POST /v1/customers:error=500,count=1".parse().unwrap()],
        ..Default::default()
    })
    .await;
    let r = t.get_as("rk_test_restricted", "/v1/account").await;
    assert_eq!(r.status, 200);
    let r = t.get_as("sk_test_second", "/v1/account").await;
    assert_ne!(
        Some(r.body["id"].as_str().unwrap().to_string()),
        t.emu.account_for_key("rk_test_restricted")
    );
    let r = t.get_as("pk_test_abc", "/v1/account").await;
    assert_eq!(r.status, 401);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("publishable API key")
    );
    assert_eq!(t.post("/v1/customers", &[]).await.status, 500);
    assert_eq!(t.post("/v1/customers", &[]).await.status, 200);

    let f: stripe_emulator::FaultRule = "*:latency_ms=5".parse().unwrap();
    assert_eq!((f.path, f.latency_ms), (None, Some(5)));
    let f: stripe_emulator::FaultRule =
        "/v1/checkout/sessions:error=429,rate=0.25".parse().unwrap();
    assert_eq!(
        (f.method, f.path.as_deref(), f.error.as_deref(), f.rate),
        (None, Some("/v1/checkout/sessions"), Some("429"), Some(0.25))
    );
    assert!(
        "/v1/x:error=418"
            .parse::<stripe_emulator::FaultRule>()
            .is_err()
    );
    assert!("/v1/x".parse::<stripe_emulator::FaultRule>().is_err());
    assert!(
        "/v1/x:rate=2,error=500"
            .parse::<stripe_emulator::FaultRule>()
            .is_err()
    );
}

#[tokio::test]
async fn timeout_fault_holds_the_request() {
    let t = start().await;
    t.ctl_post(
        "/_emulator/faults",
        json!({"path": "/v1/account", "error": "timeout", "count": 1}),
    )
    .await;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(300))
        .build()
        .unwrap();
    let r = client
        .get(t.url("/v1/account"))
        .bearer_auth(&t.key)
        .send()
        .await;
    assert!(r.unwrap_err().is_timeout());
    assert_eq!(t.get("/v1/account").await.status, 200);
}

#[tokio::test]
async fn customer_creation_always_creates_customer_on_completion() {
    let t = start().await;
    let r = t
        .post(
            "/v1/checkout/sessions",
            &[
                ("mode", "setup"),
                ("currency", "usd"),
                ("customer_creation", "always"),
                ("customer_email", "new@example.com"),
                ("success_url", "https://example.com/s"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["customer_creation"], "always");
    let cus = t.customer().await;
    let bad = t
        .post(
            "/v1/checkout/sessions",
            &[
                ("mode", "setup"),
                ("currency", "usd"),
                ("customer_creation", "always"),
                ("customer", &cus),
            ],
        )
        .await;
    assert_eq!((bad.status, bad.err_param()), (400, "customer_creation"));
    let bad = t
        .post(
            "/v1/checkout/sessions",
            &[
                ("mode", "setup"),
                ("currency", "usd"),
                ("payment_method_collection", "always"),
            ],
        )
        .await;
    assert_eq!(
        (bad.status, bad.err_param()),
        (400, "payment_method_collection")
    );
    let resp = t
        .http
        .post(r.body["url"].as_str().unwrap())
        .form(&[
            ("card_number", "4242424242424242"),
            ("exp", "12/34"),
            ("cvc", "123"),
            ("name", "New Person"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let s = t
        .get(&format!(
            "/v1/checkout/sessions/{}?expand[]=customer&expand[]=setup_intent.payment_method",
            r.body["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s.body["customer"]["email"], "new@example.com");
    assert_eq!(s.body["customer"]["name"], "New Person");
    assert_eq!(
        s.body["setup_intent"]["payment_method"]["customer"],
        s.body["customer"]["id"]
    );
    // Embedded sessions have no hosted page.
    let e = t
        .post(
            "/v1/checkout/sessions",
            &[
                ("mode", "setup"),
                ("currency", "usd"),
                ("ui_mode", "embedded_page"),
                ("return_url", "https://example.com/r"),
            ],
        )
        .await;
    let page = t
        .http
        .get(t.url(&format!("/c/pay/{}", e.body["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
}

#[tokio::test]
async fn advance_clock_method_expires_sessions_with_events() {
    let t = start().await;
    let cs = t.hosted_session(&t.customer().await).await;
    let id = cs["id"].as_str().unwrap().to_string();
    let before = t.emu.now();
    let now = t.emu.advance_clock(86_400 + 5);
    assert!(now >= before + 86_405);
    let ev = t
        .emu
        .events()
        .into_iter()
        .find(|e| e["type"] == "checkout.session.expired")
        .expect("expired event");
    assert_eq!(ev["data"]["object"]["id"], id.as_str());
    assert_eq!(t.emu.object(&id).unwrap()["status"], "expired");
    let seti = t.emu.object(cs["setup_intent"].as_str().unwrap()).unwrap();
    assert_eq!(seti["status"], "canceled");
}

#[tokio::test]
async fn hosted_page_input_errors_and_customer_delete_detaches() {
    let t = start().await;
    let cus = t.customer().await;
    let cs = t.hosted_session(&cus).await;
    let url = cs["url"].as_str().unwrap();
    for (form, msg) in [
        (
            [
                ("card_number", "4242424242424242"),
                ("exp", "12/34"),
                ("cvc", ""),
            ],
            "security code",
        ),
        (
            [
                ("card_number", "4242424242424241"),
                ("exp", "12/34"),
                ("cvc", "123"),
            ],
            "card number is incorrect",
        ),
        (
            [
                ("card_number", "4242424242424242"),
                ("exp", "12/19"),
                ("cvc", "123"),
            ],
            "expiration year is in the past",
        ),
        (
            [
                ("card_number", "4242424242424242"),
                ("exp", "13/34"),
                ("cvc", "123"),
            ],
            "expiration month is invalid",
        ),
    ] {
        let r = t.http.post(url).form(&form).send().await.unwrap();
        assert_eq!(r.status(), 402, "{form:?}");
        assert!(r.text().await.unwrap().contains(msg), "{form:?}");
    }
    assert_eq!(
        t.get(&format!(
            "/v1/checkout/sessions/{}",
            cs["id"].as_str().unwrap()
        ))
        .await
        .body["status"],
        "open"
    );
    let r = t
        .http
        .post(url)
        .form(&[
            ("card_number", "4242424242424242"),
            ("exp", "12/34"),
            ("cvc", "123"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let pms = t.get(&format!("/v1/customers/{cus}/payment_methods")).await;
    let pm = pms.body["data"][0]["id"].as_str().unwrap().to_string();
    // Query parameters on POST are accepted too.
    let r = t
        .post(&format!("/v1/customers/{cus}?metadata[q]=1"), &[])
        .await;
    assert_eq!(r.body["metadata"]["q"], "1");
    t.delete(&format!("/v1/customers/{cus}")).await;
    assert_eq!(
        t.get(&format!("/v1/payment_methods/{pm}")).await.body["customer"],
        serde_json::Value::Null
    );
    assert!(event_types(&t.emu).contains(&"customer.deleted".to_string()));
}

#[tokio::test]
async fn public_url_is_used_for_hosted_and_portal_urls() {
    let t = start_with(stripe_emulator::EmulatorConfig {
        public_url: Some("https://stripe-emu.example.test/".into()),
        ..Default::default()
    })
    .await;
    let cus = t.customer().await;
    let cs = t.hosted_session(&cus).await;
    assert_eq!(
        cs["url"],
        format!(
            "https://stripe-emu.example.test/c/pay/{}",
            cs["id"].as_str().unwrap()
        )
        .as_str()
    );
    let bps = t
        .post("/v1/billing_portal/sessions", &[("customer", &cus)])
        .await;
    assert!(
        bps.body["url"]
            .as_str()
            .unwrap()
            .starts_with("https://stripe-emu.example.test/p/session/bps_")
    );
    assert!(t.emu.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(t.emu.base_url(), format!("http://{}", t.emu.local_addr()));
}
