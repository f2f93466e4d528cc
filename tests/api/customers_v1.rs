//! v1 customers (what the official OpenMeter SDKs call), and v1/v3 being two
//! views of one customer table.

use serde_json::{Value, json};

use crate::contract::{Spec, assert_response};
use crate::customers_v3::customer as create_v3;
use crate::harness::{Backend, Resp, TestApp};
use crate::support::{
    assert_problem, assert_rfc3339, assert_ulid, invalid_problem, problem_of, with_members,
};

const CUSTOMERS: &str = "/api/v1/customers";

async fn create(app: &TestApp, body: Value) -> Resp {
    let resp = app.post(CUSTOMERS, body).await;
    assert_response(
        Spec::V1,
        "createCustomer",
        resp.status,
        &resp.content_type,
        &resp.body,
    );
    resp
}

crate::both_backends!(
    v1_create_and_read_by_id_or_key,
    v1_and_v3_are_views_of_one_customer,
    v1_key_or_subject_keys_is_required,
    v1_errors_use_v1_field_names,
    v1_replace_update_and_delete,
    v1_list_pages_orders_and_filters,
);

async fn v1_create_and_read_by_id_or_key(backend: Backend) {
    let app = TestApp::start(backend).await;
    let resp = create(&app, json!({
        "name": "ACME Inc.", "key": "acme", "description": "d",
        "metadata": {"externalId": "ext-1"},
        "usageAttribution": {"subjectKeys": ["acme-events"]},
        "primaryEmail": "ap@acme.example", "currency": "USD",
        "billingAddress": {"country": "US", "postalCode": "94107", "city": "SF", "line1": "1 Main", "phoneNumber": "+1 555"},
    })).await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    let id = assert_ulid(&resp.body["id"]);
    let at = assert_rfc3339(&resp.body["createdAt"]);
    let expected = json!({
        "id": id, "name": "ACME Inc.", "key": "acme", "description": "d",
        "metadata": {"externalId": "ext-1"},
        "usageAttribution": {"subjectKeys": ["acme-events"]},
        "primaryEmail": "ap@acme.example", "currency": "USD",
        "billingAddress": {"country": "US", "postalCode": "94107", "city": "SF", "line1": "1 Main", "phoneNumber": "+1 555"},
        "createdAt": at, "updatedAt": at,
    });
    assert_eq!(resp.body, expected);
    for path in [
        format!("{CUSTOMERS}/{id}"),
        format!("{CUSTOMERS}/acme"),
        format!("{CUSTOMERS}/{}", id.to_lowercase()),
    ] {
        let got = app.get(&path).await;
        assert_response(
            Spec::V1,
            "getCustomer",
            got.status,
            &got.content_type,
            &got.body,
        );
        assert_eq!(got.body, expected, "{path}");
    }
    let expanded = app
        .get(&format!("{CUSTOMERS}/acme?expand=subscriptions"))
        .await;
    assert_response(
        Spec::V1,
        "getCustomer",
        200,
        &expanded.content_type,
        &expanded.body,
    );
    assert_eq!(expanded.body["subscriptions"], json!([]));

    let missing = app.get(&format!("{CUSTOMERS}/nobody")).await;
    assert_response(
        Spec::V1,
        "getCustomer",
        404,
        &missing.content_type,
        &missing.body,
    );
    assert_eq!(
        missing.problem(),
        problem_of(404, "customer [nobody] not found")
    );
}

async fn v1_and_v3_are_views_of_one_customer(backend: Backend) {
    let app = TestApp::start(backend).await;
    let v1 = create(
        &app,
        json!({"name": "Both", "key": "both", "metadata": {"plan": "pro"},
        "billingAddress": {"postalCode": "1000"}}),
    )
    .await
    .body;
    let v3 = app
        .get(&format!(
            "/api/v3/openmeter/customers/{}",
            v1["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        v3.body,
        json!({
            "id": v1["id"], "name": "Both", "key": "both", "labels": {"plan": "pro"},
            "usage_attribution": {"subject_keys": []}, "billing_address": {"postal_code": "1000"},
            "created_at": v1["createdAt"], "updated_at": v1["updatedAt"],
        })
    );

    let made_in_v3 = create_v3(
        &app,
        json!({"name": "Three", "key": "three", "currency": "EUR",
        "usage_attribution": {"subject_keys": ["s"]}}),
    )
    .await;
    let seen_in_v1 = app.get(&format!("{CUSTOMERS}/three")).await;
    assert_eq!(
        seen_in_v1.body,
        json!({
            "id": made_in_v3["id"], "name": "Three", "key": "three", "currency": "EUR",
            "usageAttribution": {"subjectKeys": ["s"]},
            "createdAt": made_in_v3["created_at"], "updatedAt": made_in_v3["updated_at"],
        })
    );
}

async fn v1_key_or_subject_keys_is_required(backend: Backend) {
    let app = TestApp::start(backend).await;
    let resp = create(&app, json!({"name": "Nameless"})).await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "key", "rule": "required", "source": "body",
        "reason": "either key or usageAttribution.subjectKeys must be provided"}]),
        ),
    );
    // Subject keys alone are enough; the key then defaults to the id, so v3 can show it.
    let ok = create(
        &app,
        json!({"name": "Subject only", "usageAttribution": {"subjectKeys": ["only"]}}),
    )
    .await;
    assert_eq!(ok.status, 201);
    assert_eq!(ok.body["key"], ok.body["id"]);
}

async fn v1_errors_use_v1_field_names(backend: Backend) {
    let app = TestApp::start(backend).await;
    let resp = create(
        &app,
        json!({"name": "", "key": "k", "currency": "eur",
        "billingAddress": {"country": "usa"}, "metadata": {"_x": "y"},
        "usageAttribution": {"subjectKeys": [""]}}),
    )
    .await;
    assert_eq!(resp.status, 400);
    assert_problem(
        &resp,
        invalid_problem(json!([
            {"field": "name", "rule": "min_length", "minimum": 1, "source": "body", "reason": "must be at least 1 character(s) long"},
            {"field": "metadata._x", "rule": "invalid", "source": "body", "reason": "label keys must not start with [_]"},
            {"field": "usageAttribution.subjectKeys[0]", "rule": "min_length", "minimum": 1, "source": "body", "reason": "must be at least 1 character(s) long"},
            {"field": "currency", "rule": "matches_regex", "source": "body", "reason": "must be a three-letter upper-case ISO 4217 code such as USD"},
            {"field": "billingAddress.country", "rule": "matches_regex", "source": "body", "reason": "must be an ISO 3166-1 alpha-2 country code such as US"},
        ])),
    );
    let typed = create(
        &app,
        json!({"name": "n", "key": "k", "usageAttribution": {"subjectKeys": "s"}}),
    )
    .await;
    assert_problem(
        &typed,
        invalid_problem(
            json!([{"field": "usageAttribution.subjectKeys", "rule": "type",
        "source": "body", "reason": "invalid type: string \"s\", expected a sequence"}]),
        ),
    );
    let dup = create(&app, json!({"name": "n", "key": "k"})).await;
    assert_eq!(dup.status, 201);
    let conflict = create(&app, json!({"name": "n", "key": "k"})).await;
    assert_problem(
        &conflict,
        with_members(
            problem_of(
                409,
                &format!(
                    "key [k] is already used by customer [{}]",
                    dup.body["id"].as_str().unwrap()
                ),
            ),
            json!({"field": "key"}),
        ),
    );
}

async fn v1_replace_update_and_delete(backend: Backend) {
    let app = TestApp::start(backend).await;
    let c = create(
        &app,
        json!({"name": "Old", "key": "old", "currency": "USD"}),
    )
    .await
    .body;
    let id = c["id"].as_str().unwrap();
    let put = app
        .put(
            &format!("{CUSTOMERS}/old"),
            json!({"name": "New", "key": "renamed",
        "usageAttribution": {"subjectKeys": ["n1"]}}),
        )
        .await;
    assert_response(
        Spec::V1,
        "updateCustomer",
        put.status,
        &put.content_type,
        &put.body,
    );
    assert_eq!(put.status, 200, "{}", put.body);
    let updated_at = assert_rfc3339(&put.body["updatedAt"]);
    assert_eq!(
        put.body,
        json!({"id": id, "name": "New", "key": "renamed",
        "usageAttribution": {"subjectKeys": ["n1"]}, "createdAt": c["createdAt"], "updatedAt": updated_at})
    );
    assert_problem(
        &app.get(&format!("{CUSTOMERS}/old")).await,
        problem_of(404, "customer [old] not found"),
    );

    let del = app.delete(&format!("{CUSTOMERS}/renamed")).await;
    assert_response(
        Spec::V1,
        "deleteCustomer",
        del.status,
        &del.content_type,
        &del.body,
    );
    assert_eq!(del.status, 204);
    let read = app.get(&format!("{CUSTOMERS}/{id}")).await;
    assert_rfc3339(&read.body["deletedAt"]);
    let gone = problem_of(
        410,
        &format!("customer [{id}] was deleted; it can be read but not changed or billed"),
    );
    assert_eq!(
        app.put(&format!("{CUSTOMERS}/{id}"), json!({"name": "x"}))
            .await
            .problem(),
        gone
    );
    assert_eq!(
        app.delete(&format!("{CUSTOMERS}/renamed")).await.problem(),
        gone
    );
}

async fn v1_list_pages_orders_and_filters(backend: Backend) {
    let app = TestApp::start(backend).await;
    for (name, key, subject) in [
        ("Bravo", "b-key", "sub-b"),
        ("alpha", "a-key", "sub-a"),
        ("Charlie", "c-key", "other"),
    ] {
        create(
            &app,
            json!({"name": name, "key": key, "usageAttribution": {"subjectKeys": [subject]},
            "primaryEmail": format!("{key}@example.com")}),
        )
        .await;
    }
    let gone = create(&app, json!({"name": "Zed", "key": "z-key"}))
        .await
        .body;
    app.delete(&format!("{CUSTOMERS}/z-key")).await;

    let list = |query: &'static str| {
        let app = &app;
        async move {
            let resp = app.get(&format!("{CUSTOMERS}{query}")).await;
            assert_response(
                Spec::V1,
                "listCustomers",
                resp.status,
                &resp.content_type,
                &resp.body,
            );
            assert_eq!(resp.status, 200, "{query}: {}", resp.body);
            resp.body
        }
    };
    let keys = |body: &Value| {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["key"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    let all = list("").await;
    assert_eq!(
        (
            all["totalCount"].clone(),
            all["page"].clone(),
            all["pageSize"].clone()
        ),
        (json!(3), json!(1), json!(100))
    );
    assert_eq!(keys(&all), ["b-key", "c-key", "a-key"]);
    assert_eq!(
        keys(&list("?orderBy=createdAt&order=DESC").await),
        ["c-key", "a-key", "b-key"]
    );
    let page = list("?page=2&pageSize=2&orderBy=id").await;
    assert_eq!(
        (
            page["totalCount"].clone(),
            page["page"].clone(),
            page["pageSize"].clone()
        ),
        (json!(3), json!(2), json!(2))
    );
    assert_eq!(keys(&page), ["c-key"]);
    assert_eq!(keys(&list("?key=A-KEY").await), ["a-key"]);
    assert_eq!(keys(&list("?name=har").await), ["c-key"]);
    assert_eq!(keys(&list("?primaryEmail=b-key%40").await), ["b-key"]);
    assert_eq!(keys(&list("?subject=SUB").await), ["b-key", "a-key"]);
    assert_eq!(keys(&list("?planKey=pro").await), Vec::<String>::new());
    let with_deleted = list("?includeDeleted=true&orderBy=createdAt").await;
    assert_eq!(keys(&with_deleted), ["b-key", "a-key", "c-key", "z-key"]);
    assert_eq!(with_deleted["items"][3]["id"], gone["id"]);
    let expanded = list("?expand=subscriptions&pageSize=1").await;
    assert_eq!(expanded["items"][0]["subscriptions"], json!([]));

    let bad = app.get(&format!("{CUSTOMERS}?orderBy=email&order=up&pageSize=5000&includeDeleted=maybe&expand=invoices&sort=name")).await;
    assert_response(Spec::V1, "listCustomers", 400, &bad.content_type, &bad.body);
    assert_problem(
        &bad,
        invalid_problem(json!([
            {"field": "orderBy", "rule": "enum", "choices": ["id", "name", "createdAt"], "source": "query",
             "reason": "[email] is not a sort field; use id, name or createdAt"},
            {"field": "order", "rule": "enum", "choices": ["ASC", "DESC"], "source": "query", "reason": "[up] is not an order; use ASC or DESC"},
            {"field": "pageSize", "rule": "max", "maximum": 1000, "source": "query", "reason": "must be at most 1000"},
            {"field": "includeDeleted", "rule": "type", "source": "query", "reason": "must be true or false"},
            {"field": "expand", "rule": "enum", "choices": ["subscriptions"], "source": "query",
             "reason": "[invoices] cannot be expanded; the only choice is subscriptions"},
            {"field": "sort", "rule": "unknown_property", "source": "query", "reason": "is not a known query parameter"},
        ])),
    );
}
