//! v1 billing profiles and customer overrides (what the official OpenMeter
//! SDKs call), black box: the same profiles and rules as v3, in v1's shapes.
//! Every response is checked against the v1 contract.

use reqwest::Method;
use serde_json::{Value, json};

use crate::apps::install_stripe_app;
use crate::contract::{Spec, assert_response};
use crate::harness::{Backend, Resp, TestApp};
use crate::support::{assert_rfc3339, assert_ulid, problem_400, problem_of};

const PROFILES: &str = "/api/v1/billing/profiles";
const OVERRIDES: &str = "/api/v1/billing/customers";
const UNKNOWN: &str = "01J00000000000000000000000";

crate::both_backends!(
    v1_profile_crud_and_v3_sees_the_same_profile,
    v1_list_pages_orders_and_includes_archived,
    v1_default_switch_leaves_one_default,
    v1_profile_input_is_checked,
    v1_customer_overrides,
);

/// Sends a v1 request and checks the answer against the contract's `operation`.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
    operation: &str,
) -> Resp {
    let resp = app.request(method, path, body.as_ref()).await;
    assert_response(
        Spec::V1,
        operation,
        resp.status,
        &resp.content_type,
        &resp.body,
    );
    resp
}

async fn create(app: &TestApp, body: Value) -> Resp {
    call(
        app,
        Method::POST,
        PROFILES,
        Some(body),
        "createBillingProfile",
    )
    .await
}

async fn get_profile(app: &TestApp, id: &str) -> Resp {
    call(
        app,
        Method::GET,
        &format!("{PROFILES}/{id}"),
        None,
        "getBillingProfile",
    )
    .await
}

async fn list(app: &TestApp, query: &str) -> Resp {
    call(
        app,
        Method::GET,
        &format!("{PROFILES}{query}"),
        None,
        "listBillingProfiles",
    )
    .await
}

fn create_body(name: &str, app_id: &str, default: bool) -> Value {
    json!({
        "name": name,
        "supplier": {"name": "Meter Inc.", "addresses": [{"country": "US"}]},
        "workflow": {},
        "apps": {"tax": app_id, "invoicing": app_id, "payment": app_id},
        "default": default,
    })
}

/// A profile created from `create_body`, as v1 returns it.
async fn created(app: &TestApp, name: &str, app_id: &str, default: bool) -> Value {
    let resp = create(app, create_body(name, app_id, default)).await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    resp.body
}

fn default_workflow() -> Value {
    json!({
        "collection": {"alignment": {"type": "subscription"}, "interval": "PT1H"},
        "invoicing": {"autoAdvance": true, "draftPeriod": "P0D", "dueAfter": "P30D",
                      "progressiveBilling": true, "subscriptionEndProrationMode": "bill_actual_period"},
        "payment": {"collectionMethod": "charge_automatically"},
        "tax": {"enabled": true, "enforced": false},
    })
}

fn refs(app_id: &str) -> Value {
    json!({"tax": {"id": app_id}, "invoicing": {"id": app_id}, "payment": {"id": app_id}})
}

async fn stripe_app(app: &TestApp) -> String {
    let (stripe_app, _, _) = install_stripe_app(app, false).await;
    assert_ulid(&stripe_app["id"])
}

fn ids(list: &Resp) -> Vec<String> {
    list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn v1_profile_crud_and_v3_sees_the_same_profile(backend: Backend) {
    let app = TestApp::start(backend).await;
    let app_id = stripe_app(&app).await;
    let resp = create(
        &app,
        json!({
            "name": "Main", "description": "d", "metadata": {"team": "billing"},
            "supplier": {"name": "Meter Inc.", "taxId": {"code": "DE123"},
                         "addresses": [{"country": "DE", "postalCode": "10115", "city": "Berlin"}]},
            "workflow": {"invoicing": {"autoAdvance": false}, "tax": {"enforced": true}},
            "apps": {"tax": app_id, "invoicing": app_id, "payment": app_id},
            "default": true,
        }),
    )
    .await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    let id = assert_ulid(&resp.body["id"]);
    let at = assert_rfc3339(&resp.body["createdAt"]);
    let mut workflow = default_workflow();
    workflow["invoicing"]["autoAdvance"] = json!(false);
    workflow["tax"]["enforced"] = json!(true);
    let expected = json!({
        "id": id, "name": "Main", "description": "d", "metadata": {"team": "billing"},
        "createdAt": at, "updatedAt": at,
        "supplier": {"name": "Meter Inc.", "taxId": {"code": "DE123"},
                     "addresses": [{"country": "DE", "postalCode": "10115", "city": "Berlin"}]},
        "workflow": workflow, "apps": refs(&app_id), "default": true,
    });
    assert_eq!(resp.body, expected);
    assert_eq!(get_profile(&app, &id).await.body, expected);

    // v3 reads the same stored profile.
    let v3 = app.get(&format!("/api/v3/openmeter/profiles/{id}")).await;
    assert_eq!(v3.status, 200, "{}", v3.body);
    assert_eq!(
        v3.body,
        json!({
            "id": id, "name": "Main", "description": "d", "labels": {"team": "billing"},
            "created_at": at, "updated_at": at,
            "supplier": {"name": "Meter Inc.", "tax_id": {"code": "DE123"},
                         "addresses": {"billing_address": {"country": "DE", "postal_code": "10115", "city": "Berlin"}}},
            "workflow": {
                "collection": {"alignment": {"type": "subscription"}, "interval": "PT1H"},
                "invoicing": {"auto_advance": false, "draft_period": "P0D", "progressive_billing": true,
                              "subscription_end_proration_mode": "bill_actual_period"},
                "payment": {"collection_method": "charge_automatically"},
                "tax": {"enabled": true, "enforced": true},
            },
            "apps": refs(&app_id), "default": true,
        })
    );

    // expand=apps fills the apps in.
    let expanded = call(
        &app,
        Method::GET,
        &format!("{PROFILES}/{id}?expand=apps"),
        None,
        "getBillingProfile",
    )
    .await;
    assert_eq!(expanded.status, 200, "{}", expanded.body);
    let stripe = app.get(&format!("/api/v1/apps/{app_id}")).await.body;
    assert_eq!(
        expanded.body["apps"],
        json!({"tax": stripe, "invoicing": stripe, "payment": stripe})
    );

    // A whole replacement, the way the SDK sends it (the echoed apps are accepted).
    let update = json!({
        "name": "Main EU", "supplier": {"name": "Meter GmbH"}, "default": true,
        "apps": refs(&app_id),
        "workflow": {
            "collection": {"alignment": {"type": "anchored",
                "recurringPeriod": {"interval": "MONTH", "anchor": "2024-01-01T00:00:00Z"}}, "interval": "PT2H"},
            "invoicing": {"dueAfter": "P7D", "draftPeriod": "P1D"},
            "payment": {"collectionMethod": "send_invoice"},
        },
    });
    let put = call(
        &app,
        Method::PUT,
        &format!("{PROFILES}/{id}"),
        Some(update),
        "updateBillingProfile",
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let updated_at = assert_rfc3339(&put.body["updatedAt"]);
    let expected = json!({
        "id": id, "name": "Main EU", "createdAt": at, "updatedAt": updated_at,
        "supplier": {"name": "Meter GmbH"},
        "workflow": {
            "collection": {"alignment": {"type": "anchored",
                "recurringPeriod": {"interval": "P1M", "anchor": "2024-01-01T00:00:00.000000Z"}}, "interval": "PT2H"},
            "invoicing": {"autoAdvance": true, "draftPeriod": "P1D", "dueAfter": "P7D",
                          "progressiveBilling": true, "subscriptionEndProrationMode": "bill_actual_period"},
            "payment": {"collectionMethod": "send_invoice"},
            "tax": {"enabled": true, "enforced": false},
        },
        "apps": refs(&app_id), "default": true,
    });
    assert_eq!(put.body, expected);
    assert_eq!(get_profile(&app, &id).await.body, expected);
    let v3 = app
        .get(&format!("/api/v3/openmeter/profiles/{id}"))
        .await
        .body;
    assert_eq!(
        v3["workflow"]["payment"],
        json!({"collection_method": "send_invoice", "due_after": "P7D"})
    );

    // Deleting: the default cannot go; another can, and stays readable.
    let refused = call(
        &app,
        Method::DELETE,
        &format!("{PROFILES}/{id}"),
        None,
        "deleteBillingProfile",
    )
    .await;
    assert_eq!(
        refused.problem(),
        problem_of(
            409,
            &format!(
                "billing profile [{id}] is the default profile and cannot be deleted; make another profile the default first"
            )
        )
    );
    let other = created(&app, "Other", &app_id, false).await;
    let other_id = other["id"].as_str().unwrap();
    let deleted = call(
        &app,
        Method::DELETE,
        &format!("{PROFILES}/{other_id}"),
        None,
        "deleteBillingProfile",
    )
    .await;
    assert_eq!((deleted.status, &deleted.body), (204, &Value::Null));
    let read = get_profile(&app, other_id).await;
    let deleted_at = assert_rfc3339(&read.body["deletedAt"]);
    let mut expected_deleted = other.clone();
    expected_deleted["deletedAt"] = json!(deleted_at);
    expected_deleted["updatedAt"] = json!(deleted_at);
    assert_eq!(read.body, expected_deleted);
    let gone = call(
        &app,
        Method::DELETE,
        &format!("{PROFILES}/{other_id}"),
        None,
        "deleteBillingProfile",
    )
    .await;
    assert_eq!(
        gone.problem(),
        problem_of(
            410,
            &format!("billing profile [{other_id}] was deleted; it can be read but not changed")
        )
    );

    // Unknown and malformed ids.
    let missing = get_profile(&app, UNKNOWN).await;
    assert_eq!(
        missing.problem(),
        problem_of(404, &format!("billing profile [{UNKNOWN}] not found"))
    );
    let missing = call(
        &app,
        Method::DELETE,
        &format!("{PROFILES}/{UNKNOWN}"),
        None,
        "deleteBillingProfile",
    )
    .await;
    assert_eq!(
        missing.problem(),
        problem_of(404, &format!("billing profile [{UNKNOWN}] not found"))
    );
    let reason = "[nope] is not a ULID (26 characters, e.g. 01G65Z755AFWAKHE12NY0CQ9FH)";
    assert_eq!(
        get_profile(&app, "nope").await.problem(),
        problem_400(
            &format!("Invalid path [id]: {reason}"),
            json!([{"field": "id", "source": "path", "rule": "matches_regex", "reason": reason}])
        )
    );
}

async fn v1_list_pages_orders_and_includes_archived(backend: Backend) {
    let app = TestApp::start(backend).await;
    let app_id = stripe_app(&app).await;
    let b = created(&app, "B", &app_id, false).await;
    let a = created(&app, "A", &app_id, true).await;
    let c = created(&app, "C", &app_id, false).await;
    let id = |p: &Value| p["id"].as_str().unwrap().to_owned();

    // Default order: the default first, then oldest first (as v3).
    let all = list(&app, "").await;
    assert_eq!(
        all.body,
        json!({"totalCount": 3, "page": 1, "pageSize": 100, "items": [a, b, c]})
    );
    let by_name = list(&app, "?orderBy=name&order=DESC").await;
    assert_eq!(ids(&by_name), [id(&c), id(&b), id(&a)]);
    let by_created = list(&app, "?orderBy=createdAt").await;
    assert_eq!(ids(&by_created), [id(&b), id(&a), id(&c)]);
    let by_default = list(&app, "?orderBy=default&order=DESC").await;
    assert_eq!(ids(&by_default)[0], id(&a));
    let page = list(&app, "?page=2&pageSize=1&orderBy=name").await;
    assert_eq!(
        page.body,
        json!({"totalCount": 3, "page": 2, "pageSize": 1, "items": [b]})
    );

    // Deleted profiles only with includeArchived=true.
    assert_eq!(
        app.delete(&format!("{PROFILES}/{}", id(&c))).await.status,
        204
    );
    assert_eq!(ids(&list(&app, "").await), [id(&a), id(&b)]);
    assert_eq!(
        list(&app, "?includeArchived=false").await.body["totalCount"],
        2
    );
    let archived = list(&app, "?includeArchived=true&orderBy=name").await;
    assert_eq!(ids(&archived), [id(&a), id(&b), id(&c)]);
    assert_eq!(archived.body["totalCount"], 3);
    assert!(archived.body["items"][2]["deletedAt"].is_string());

    // expand=apps on a list.
    let expanded = list(&app, "?expand=apps&pageSize=1").await;
    assert_eq!(
        expanded.body["items"][0]["apps"]["payment"]["id"],
        json!(app_id)
    );
    assert_eq!(
        expanded.body["items"][0]["apps"]["payment"]["type"],
        "stripe"
    );

    // Bad parameters are named.
    let reason = "[size] is not a sort field; use createdAt, updatedAt, default or name";
    assert_eq!(
        list(&app, "?orderBy=size").await.problem(),
        problem_400(
            &format!("Invalid query [orderBy]: {reason}"),
            json!([{"field": "orderBy", "source": "query", "rule": "enum",
                    "choices": ["createdAt", "updatedAt", "default", "name"], "reason": reason}])
        )
    );
    let reason = "[customer] cannot be expanded; the choices are apps";
    assert_eq!(
        list(&app, "?expand=customer").await.problem(),
        problem_400(
            &format!("Invalid query [expand]: {reason}"),
            json!([{"field": "expand", "source": "query", "rule": "enum", "choices": ["apps"], "reason": reason}])
        )
    );
    let bad_size = list(&app, "?pageSize=0").await;
    assert_eq!(bad_size.status, 400);
    assert_eq!(
        bad_size.problem()["invalid_parameters"][0]["field"],
        "pageSize"
    );
}

async fn v1_default_switch_leaves_one_default(backend: Backend) {
    let app = TestApp::start(backend).await;
    let app_id = stripe_app(&app).await;
    let first = created(&app, "First", &app_id, true).await;
    let second = created(&app, "Second", &app_id, true).await;
    let (first_id, second_id) = (
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    );
    assert_eq!(get_profile(&app, first_id).await.body["default"], false);
    assert_eq!(get_profile(&app, second_id).await.body["default"], true);

    // The default cannot be unset, only replaced.
    let mut body = create_body("Second", &app_id, false);
    body.as_object_mut().unwrap().remove("apps");
    let refused = call(
        &app,
        Method::PUT,
        &format!("{PROFILES}/{second_id}"),
        Some(body),
        "updateBillingProfile",
    )
    .await;
    let reason = format!(
        "billing profile [{second_id}] is the default profile and stays the default; make another profile the default instead"
    );
    assert_eq!(
        refused.problem(),
        problem_400(
            &format!("Invalid body [default]: {reason}"),
            json!([{"field": "default", "source": "body", "rule": "invalid", "reason": reason}])
        )
    );

    // Racing switches: exactly one default afterwards.
    let switch = |name: &str| {
        let mut body = create_body(name, &app_id, true);
        body.as_object_mut().unwrap().remove("apps");
        body
    };
    let (path_a, path_b) = (
        format!("{PROFILES}/{first_id}"),
        format!("{PROFILES}/{second_id}"),
    );
    let (a, b) = tokio::join!(
        app.put(&path_a, switch("First")),
        app.put(&path_b, switch("Second")),
    );
    assert_eq!((a.status, b.status), (200, 200), "{} / {}", a.body, b.body);
    let defaults: Vec<_> = list(&app, "").await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["default"] == true)
        .map(|p| p["id"].clone())
        .collect();
    assert_eq!(defaults.len(), 1, "{defaults:?}");
    let v3 = app.get("/api/v3/openmeter/profiles").await.body;
    let v3_defaults: Vec<_> = v3["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["default"] == true)
        .map(|p| p["id"].clone())
        .collect();
    assert_eq!(v3_defaults, defaults);
}

async fn v1_profile_input_is_checked(backend: Backend) {
    let app = TestApp::start(backend).await;
    let app_id = stripe_app(&app).await;

    // dueAfter applies only to send_invoice.
    let mut body = create_body("x", &app_id, true);
    body["workflow"] = json!({"invoicing": {"dueAfter": "P7D"}});
    let reason = "[P7D] applies only with collectionMethod send_invoice; with charge_automatically \
                  meterpay keeps no due period (leave it out or give P30D)";
    assert_eq!(
        create(&app, body).await.problem(),
        problem_400(
            &format!("Invalid body [workflow.invoicing.dueAfter]: {reason}"),
            json!([{"field": "workflow.invoicing.dueAfter", "source": "body", "rule": "invalid", "reason": reason}])
        )
    );

    // Unknown apps are named by their v1 field.
    let reason = format!("app [{UNKNOWN}] does not exist in this namespace");
    let mut body = create_body("x", &app_id, true);
    body["apps"]["payment"] = json!(UNKNOWN);
    assert_eq!(
        create(&app, body).await.problem(),
        problem_400(
            &format!("Invalid body [apps.payment]: {reason}"),
            json!([{"field": "apps.payment", "source": "body", "rule": "invalid", "reason": reason}])
        )
    );

    // v3's rules, v1's names.
    let mut body = create_body("x", &app_id, true);
    body["supplier"]["addresses"] = json!([{"country": "us"}]);
    body["workflow"] = json!({"invoicing": {"draftPeriod": "1 day"}});
    let bad = create(&app, body).await;
    assert_eq!(bad.status, 400);
    let fields: Vec<_> = bad.problem()["invalid_parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        fields,
        [
            "supplier.addresses[0].country",
            "workflow.invoicing.draftPeriod"
        ]
    );

    let mut body = create_body("x", &app_id, true);
    body["supplier"]["addresses"] = json!([{"country": "US"}, {"country": "DE"}]);
    let reason = "holds at most one address (the billing address)";
    assert_eq!(
        create(&app, body).await.problem(),
        problem_400(
            &format!("Invalid body [supplier.addresses]: {reason}"),
            json!([{"field": "supplier.addresses", "source": "body", "rule": "max_items", "maximum": 1, "reason": reason}])
        )
    );

    // Nothing was stored.
    assert_eq!(list(&app, "").await.body["totalCount"], 0);

    // Changing a profile's apps is refused, naming the field.
    let profile = created(&app, "P", &app_id, true).await;
    let id = profile["id"].as_str().unwrap();
    let mut body = create_body("P", &app_id, true);
    body["apps"]["tax"] = json!(UNKNOWN);
    let reason = "a billing profile's apps are fixed when it is created; create another profile to use other apps (or leave apps out)";
    let resp = call(
        &app,
        Method::PUT,
        &format!("{PROFILES}/{id}"),
        Some(body),
        "updateBillingProfile",
    )
    .await;
    assert_eq!(
        resp.problem(),
        problem_400(
            &format!("Invalid body [apps.tax]: {reason}"),
            json!([{"field": "apps.tax", "source": "body", "rule": "invalid", "reason": reason}])
        )
    );
    assert_eq!(get_profile(&app, id).await.body, profile);
    let missing = call(
        &app,
        Method::PUT,
        &format!("{PROFILES}/{UNKNOWN}"),
        Some(create_body("P", &app_id, true)),
        "updateBillingProfile",
    )
    .await;
    assert_eq!(
        missing.problem(),
        problem_of(404, &format!("billing profile [{UNKNOWN}] not found"))
    );
}

async fn v1_customer_overrides(backend: Backend) {
    let app = TestApp::start(backend).await;
    let app_id = stripe_app(&app).await;
    let main = created(&app, "Main", &app_id, true).await;
    let enterprise = created(&app, "Enterprise", &app_id, false).await;
    let (main_id, ent_id) = (
        main["id"].as_str().unwrap(),
        enterprise["id"].as_str().unwrap(),
    );
    let c1 = app
        .post("/api/v1/customers", json!({"name": "One", "key": "one"}))
        .await
        .body;
    let c2 = app
        .post(
            "/api/v1/customers",
            json!({"name": "Two", "key": "two", "primaryEmail": "two@x.example"}),
        )
        .await
        .body;
    let (c1_id, c2_id) = (assert_ulid(&c1["id"]), assert_ulid(&c2["id"]));
    let customer_profile = |p: &Value| json!({"supplier": p["supplier"], "workflow": p["workflow"], "apps": p["apps"]});

    // Without an override the default profile's values apply.
    let got = call(
        &app,
        Method::GET,
        &format!("{OVERRIDES}/{c1_id}"),
        None,
        "getBillingProfileCustomerOverride",
    )
    .await;
    assert_eq!(
        got.body,
        json!({"baseBillingProfileId": main_id, "customerProfile": customer_profile(&main)})
    );

    // Pin customer one to the enterprise profile.
    let put = call(
        &app,
        Method::PUT,
        &format!("{OVERRIDES}/{c1_id}"),
        Some(json!({"billingProfileId": ent_id})),
        "upsertBillingProfileCustomerOverride",
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let at = assert_rfc3339(&put.body["customerOverride"]["createdAt"]);
    let pinned = json!({
        "customerOverride": {"createdAt": at, "updatedAt": at, "billingProfileId": ent_id, "customerId": c1_id},
        "baseBillingProfileId": ent_id,
        "customerProfile": customer_profile(&enterprise),
    });
    assert_eq!(put.body, pinned);
    let got = call(
        &app,
        Method::GET,
        &format!("{OVERRIDES}/{c1_id}"),
        None,
        "getBillingProfileCustomerOverride",
    )
    .await;
    assert_eq!(got.body, pinned);
    // v3 sees the same override.
    let v3 = app
        .get(&format!("/api/v3/openmeter/customers/{c1_id}/billing"))
        .await;
    assert_eq!(v3.body["billing_profile"], json!({"id": ent_id}));

    // Expansions.
    let expanded = call(
        &app,
        Method::GET,
        &format!("{OVERRIDES}/{c1_id}?expand=customer&expand=apps"),
        None,
        "getBillingProfileCustomerOverride",
    )
    .await;
    assert_eq!(
        expanded.body["customer"],
        app.get(&format!("/api/v1/customers/{c1_id}")).await.body
    );
    assert_eq!(
        expanded.body["customerProfile"]["apps"]["tax"]["id"],
        json!(app_id)
    );

    // A pinned profile cannot be deleted (as in v3).
    let refused = call(
        &app,
        Method::DELETE,
        &format!("{PROFILES}/{ent_id}"),
        None,
        "deleteBillingProfile",
    )
    .await;
    assert_eq!(
        refused.problem(),
        problem_of(
            409,
            &format!(
                "billing profile [{ent_id}] is pinned by customer [{c1_id}]; move them to another billing profile before deleting it"
            )
        )
    );

    // Lists.
    let listed = |query: String| {
        let app = &app;
        async move {
            let resp = call(
                app,
                Method::GET,
                &format!("{OVERRIDES}{query}"),
                None,
                "listBillingProfileCustomerOverrides",
            )
            .await;
            assert_eq!(resp.status, 200, "{}", resp.body);
            resp.body
        }
    };
    let unpinned =
        json!({"baseBillingProfileId": main_id, "customerProfile": customer_profile(&main)});
    let all = listed("?orderBy=customerName".into()).await;
    assert_eq!(
        all,
        json!({"totalCount": 2, "page": 1, "pageSize": 100, "items": [pinned, unpinned]})
    );
    assert_eq!(
        listed("?includeAllCustomers=false".into()).await["items"],
        json!([pinned])
    );
    assert_eq!(
        listed("?customersWithoutPinnedProfile=true".into()).await["items"],
        json!([unpinned])
    );
    assert_eq!(
        listed(format!("?billingProfile={ent_id}")).await["items"],
        json!([pinned])
    );
    assert_eq!(
        listed(format!("?customerId={c2_id}")).await["items"],
        json!([unpinned])
    );
    assert_eq!(
        listed("?customerPrimaryEmail=two@".into()).await["totalCount"],
        1
    );
    assert_eq!(
        listed("?customerKey=one".into()).await["items"],
        json!([pinned])
    );
    let page = listed("?orderBy=customerName&order=DESC&pageSize=1&page=2".into()).await;
    assert_eq!(
        page,
        json!({"totalCount": 2, "page": 2, "pageSize": 1, "items": [pinned]})
    );
    let with_customer = listed("?expand=customer&customerKey=two".into()).await;
    assert_eq!(with_customer["items"][0]["customer"]["id"], json!(c2_id));
    let bad = app.get(&format!("{OVERRIDES}?billingProfile=nope")).await;
    let reason = "[nope] is not a ULID (26 characters, e.g. 01G65Z755AFWAKHE12NY0CQ9FH)";
    assert_eq!(
        bad.problem(),
        problem_400(
            &format!("Invalid query [billingProfile]: {reason}"),
            json!([{"field": "billingProfile", "source": "query", "rule": "matches_regex", "reason": reason}])
        )
    );

    // Unknown profile or customer.
    let resp = call(
        &app,
        Method::PUT,
        &format!("{OVERRIDES}/{c2_id}"),
        Some(json!({"billingProfileId": UNKNOWN})),
        "upsertBillingProfileCustomerOverride",
    )
    .await;
    let reason = format!("billing profile [{UNKNOWN}] does not exist");
    assert_eq!(
        resp.problem(),
        problem_400(
            &format!("Invalid body [billingProfileId]: {reason}"),
            json!([{"field": "billingProfileId", "source": "body", "rule": "invalid", "reason": reason}])
        )
    );
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let operation = match method {
            Method::GET => "getBillingProfileCustomerOverride",
            Method::PUT => "upsertBillingProfileCustomerOverride",
            _ => "deleteBillingProfileCustomerOverride",
        };
        let body = (method == Method::PUT).then(|| json!({"billingProfileId": ent_id}));
        let resp = call(
            &app,
            method,
            &format!("{OVERRIDES}/{UNKNOWN}"),
            body,
            operation,
        )
        .await;
        assert_eq!(
            resp.problem(),
            problem_of(404, &format!("customer [{UNKNOWN}] not found"))
        );
    }

    // PUT without a profile clears the pin: meterpay keeps no override
    // without one (the default profile applies, looked up when read).
    let put = |body: Value| {
        let app = &app;
        let path = format!("{OVERRIDES}/{c1_id}");
        async move {
            call(
                app,
                Method::PUT,
                &path,
                Some(body),
                "upsertBillingProfileCustomerOverride",
            )
            .await
        }
    };
    let cleared = put(json!({})).await;
    let unpinned_c1 =
        json!({"baseBillingProfileId": main_id, "customerProfile": customer_profile(&main)});
    assert_eq!((cleared.status, &cleared.body), (200, &unpinned_c1));
    let v3 = app
        .get(&format!("/api/v3/openmeter/customers/{c1_id}/billing"))
        .await;
    assert!(v3.body.get("billing_profile").is_none(), "{}", v3.body);
    assert_eq!(put(json!({"billingProfileId": ent_id})).await.status, 200);

    // Deleting the override: the default applies again, and the profile can go.
    let deleted = call(
        &app,
        Method::DELETE,
        &format!("{OVERRIDES}/{c1_id}"),
        None,
        "deleteBillingProfileCustomerOverride",
    )
    .await;
    assert_eq!((deleted.status, &deleted.body), (204, &Value::Null));
    let got = call(
        &app,
        Method::GET,
        &format!("{OVERRIDES}/{c1_id}"),
        None,
        "getBillingProfileCustomerOverride",
    )
    .await;
    assert_eq!(
        got.body,
        json!({"baseBillingProfileId": main_id, "customerProfile": customer_profile(&main)})
    );
    let again = call(
        &app,
        Method::DELETE,
        &format!("{OVERRIDES}/{c1_id}"),
        None,
        "deleteBillingProfileCustomerOverride",
    )
    .await;
    assert_eq!(
        again.problem(),
        problem_of(
            404,
            &format!("customer [{c1_id}] has no billing profile override")
        )
    );
    assert_eq!(
        app.get(&format!("/api/v3/openmeter/customers/{c1_id}/billing"))
            .await
            .body["billing_profile"],
        Value::Null
    );
    assert_eq!(
        app.delete(&format!("{PROFILES}/{ent_id}")).await.status,
        204
    );
}
