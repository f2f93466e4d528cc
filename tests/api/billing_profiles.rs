//! v3 billing profiles, black box: create / read / list / update / delete,
//! one default per namespace, app references, and the delete rules.

use serde_json::{Value, json};

use crate::apps::{assert_v3, install_stripe_app};
use crate::contract::{Spec, assert_response};
use crate::harness::{Backend, Resp, TestApp};
use crate::support::{assert_problem, invalid_problem, problem_of};

const PROFILES: &str = "/api/v3/openmeter/profiles";

fn body(name: &str, app_id: &str, default: bool) -> Value {
    json!({
        "name": name,
        "supplier": {"name": "Meter Inc.", "addresses": {"billing_address": {"country": "US"}}},
        "workflow": {},
        "apps": {"tax": {"id": app_id}, "invoicing": {"id": app_id}, "payment": {"id": app_id}},
        "default": default,
    })
}

async fn create(app: &TestApp, body: Value) -> Resp {
    let resp = app.post(PROFILES, body).await;
    assert_response(
        Spec::V3,
        "create-billing-profile",
        resp.status,
        &resp.content_type,
        &resp.body,
    );
    resp
}

async fn defaults(app: &TestApp) -> Vec<String> {
    let list = app.get(&format!("{PROFILES}?page[size]=100")).await;
    assert_response(
        Spec::V3,
        "list-billing-profiles",
        list.status,
        &list.content_type,
        &list.body,
    );
    list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["default"] == true)
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

crate::both_backends!(
    profiles_crud_and_one_default,
    profile_input_is_checked,
    a_customer_override_picks_the_checkout_app,
);

async fn profiles_crud_and_one_default(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (stripe_app, _, _) = install_stripe_app(&app, false).await;
    let app_id = stripe_app["id"].as_str().unwrap().to_owned();
    let first = create(&app, body("Main", &app_id, true)).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let first_id = first.body["id"].as_str().unwrap().to_owned();
    assert_eq!(first.body["apps"]["payment"]["id"], json!(app_id));
    assert_eq!(first.body["default"], true);
    assert!(first.body["workflow"].is_object());

    let got = app.get(&format!("{PROFILES}/{first_id}")).await;
    assert_response(
        Spec::V3,
        "get-billing-profile",
        got.status,
        &got.content_type,
        &got.body,
    );
    assert_eq!(got.body, first.body);

    // A second default takes over atomically: exactly one default.
    let second = create(&app, body("EU", &app_id, true)).await;
    assert_eq!(second.status, 201, "{}", second.body);
    let second_id = second.body["id"].as_str().unwrap().to_owned();
    assert_eq!(defaults(&app).await, std::slice::from_ref(&second_id));

    // Racing switches still leave exactly one default.
    let mut upsert = body("Main", &app_id, true);
    upsert.as_object_mut().unwrap().remove("apps");
    let mut upsert2 = body("EU", &app_id, true);
    upsert2.as_object_mut().unwrap().remove("apps");
    let (path_a, path_b) = (
        format!("{PROFILES}/{first_id}"),
        format!("{PROFILES}/{second_id}"),
    );
    let (a, b) = tokio::join!(
        app.put(&path_a, upsert.clone()),
        app.put(&path_b, upsert2.clone()),
    );
    assert_eq!((a.status, b.status), (200, 200), "{} / {}", a.body, b.body);
    assert_response(
        Spec::V3,
        "update-billing-profile",
        a.status,
        &a.content_type,
        &a.body,
    );
    assert_eq!(defaults(&app).await.len(), 1);

    // The default cannot be deleted; another can, and stays readable.
    let default_id = defaults(&app).await.remove(0);
    let other_id = if default_id == first_id {
        second_id.clone()
    } else {
        first_id.clone()
    };
    let refused = app.delete(&format!("{PROFILES}/{default_id}")).await;
    assert_problem(
        &refused,
        problem_of(
            409,
            &format!(
                "billing profile [{default_id}] is the default profile and cannot be deleted; make another profile the default first"
            ),
        ),
    );
    let deleted = app.delete(&format!("{PROFILES}/{other_id}")).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let read = app.get(&format!("{PROFILES}/{other_id}")).await;
    assert!(read.body["deleted_at"].is_string(), "{}", read.body);
    let gone = app.put(&format!("{PROFILES}/{other_id}"), upsert).await;
    assert_problem(
        &gone,
        problem_of(
            410,
            &format!("billing profile [{other_id}] was deleted; it can be read but not changed"),
        ),
    );
    let unknown = app
        .get(&format!("{PROFILES}/01J00000000000000000000000"))
        .await;
    assert_problem(
        &unknown,
        problem_of(
            404,
            "billing profile [01J00000000000000000000000] not found",
        ),
    );
    let malformed = app.get(&format!("{PROFILES}/nope")).await;
    assert_problem(
        &malformed,
        invalid_problem(
            json!([{"field": "id", "reason": "[nope] is not a ULID (26 characters, e.g. 01G65Z755AFWAKHE12NY0CQ9FH)", "rule": "matches_regex", "source": "path"}]),
        ),
    );
}

async fn profile_input_is_checked(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (stripe_app, _, _) = install_stripe_app(&app, false).await;
    let app_id = stripe_app["id"].as_str().unwrap().to_owned();
    let cases = [
        (
            body("x", "01J00000000000000000000000", true),
            invalid_problem(
                json!([{"field": "apps.tax.id", "reason": "app [01J00000000000000000000000] does not exist in this namespace", "rule": "invalid", "source": "body"}, {"field": "apps.invoicing.id", "reason": "app [01J00000000000000000000000] does not exist in this namespace", "rule": "invalid", "source": "body"}, {"field": "apps.payment.id", "reason": "app [01J00000000000000000000000] does not exist in this namespace", "rule": "invalid", "source": "body"}]),
            ),
        ),
        (
            json!({"name": "x", "supplier": {}, "workflow": {}, "default": true,
                "apps": {"tax": {"id": app_id}, "invoicing": {"id": app_id}, "payment": {"id": app_id}},
                "extra": 1}),
            invalid_problem(
                json!([{"field": "extra", "reason": "is not a known property; expected one of `name`, `description`, `labels`, `supplier`, `workflow`, `apps`, `default`", "rule": "unknown_property", "source": "body"}]),
            ),
        ),
        (
            body(&"n".repeat(257), &app_id, true),
            invalid_problem(
                json!([{"field": "name", "maximum": 256, "reason": "must be at most 256 characters long", "rule": "max_length", "source": "body"}]),
            ),
        ),
    ];
    for (input, expected) in cases {
        let resp = create(&app, input).await;
        assert_problem(&resp, expected);
    }
}

async fn a_customer_override_picks_the_checkout_app(backend: Backend) {
    let app = TestApp::start(backend).await;
    // Default profile on app A; an override profile on app B for one customer.
    let (app_a, _, _) = install_stripe_app(&app, true).await;
    let (app_b, _, _) = install_stripe_app(&app, false).await;
    let b_id = app_b["id"].as_str().unwrap().to_owned();
    let profile_b = create(&app, body("B", &b_id, false)).await;
    assert_eq!(profile_b.status, 201, "{}", profile_b.body);
    let c =
        crate::customers_v3::customer(&app, json!({"name": "C", "key": "c", "currency": "USD"}))
            .await;
    let id = c["id"].as_str().unwrap();
    let billing = app
        .put(
            &format!("/api/v3/openmeter/customers/{id}/billing"),
            json!({"billing_profile": {"id": profile_b.body["id"]}}),
        )
        .await;
    assert_eq!(billing.status, 200, "{}", billing.body);
    let resp = app
        .post(
            &format!("/api/v3/openmeter/customers/{id}/billing/stripe/checkout-sessions"),
            json!({"stripe_options": {"success_url": "https://x.example/s"}}),
        )
        .await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    let last = app.emu.requests(0).into_iter().last().unwrap();
    assert_eq!(
        last.params["setup_intent_data"]["metadata"]["meterpay_app_id"],
        json!(b_id)
    );
    assert_ne!(app_a["id"], app_b["id"]);
    // A profile pinned by a customer cannot be deleted.
    let profile_b_id = profile_b.body["id"].as_str().unwrap();
    let pinned = app.delete(&format!("{PROFILES}/{profile_b_id}")).await;
    assert_v3(&pinned, "delete-billing-profile", &[204, 400, 404]);
    assert_problem(
        &pinned,
        problem_of(
            409,
            &format!(
                "billing profile [{profile_b_id}] is pinned by customer [{id}]; move them to another billing profile before deleting it"
            ),
        ),
    );
}
