//! v3 customers, black box: every operation, its whole response, and the
//! contract's schema for it.

use serde_json::{Value, json};

use crate::contract::{Spec, assert_response, assert_schema};
use crate::harness::{Backend, Resp, TestApp};
use crate::support::{
    assert_problem, assert_rfc3339, assert_ulid, invalid_problem, problem_400, problem_of,
    with_members,
};

const CUSTOMERS: &str = "/api/v3/openmeter/customers";

async fn create(app: &TestApp, body: Value) -> Resp {
    let resp = app.post(CUSTOMERS, body).await;
    if resp.status == 201 {
        assert_response(
            Spec::V3,
            "create-customer",
            201,
            &resp.content_type,
            &resp.body,
        );
    }
    resp
}

/// Creates a customer and returns its body (asserting 201).
pub async fn customer(app: &TestApp, body: Value) -> Value {
    let resp = create(app, body).await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    resp.body
}

crate::both_backends!(
    create_customer_returns_every_field,
    create_minimal_customer,
    create_customer_rejects_bad_input_naming_the_field,
    malformed_json_is_a_400_naming_the_body,
    non_json_content_type_is_415,
    body_over_one_mebibyte_is_413,
    duplicate_key_is_a_conflict_until_the_holder_is_deleted,
    subject_keys_belong_to_one_live_customer,
    concurrent_creates_with_one_key_make_one_customer,
    unknown_and_malformed_ids,
    upsert_replaces_the_settable_fields,
    deleted_customer_is_readable_but_gone_for_changes,
    list_pages_and_sorts,
    list_filters,
    list_refuses_unknown_parameters_by_name,
);

async fn create_customer_returns_every_field(backend: Backend) {
    let app = TestApp::start(backend).await;
    let resp = create(
        &app,
        json!({
            "name": "ACME Inc.",
            "key": "acme-db-id-1",
            "description": "Our first customer",
            "labels": {"env": "test", "tier": "gold"},
            "usage_attribution": {"subject_keys": ["acme-subject", "acme-2"]},
            "primary_email": "billing@acme.example",
            "currency": "EUR",
            "billing_address": {
                "country": "DE", "postal_code": "10115", "state": "Berlin", "city": "Berlin",
                "line1": "Invalidenstraße 1", "line2": "3rd floor", "phone_number": "+49 30 123456"
            }
        }),
    )
    .await;
    assert_eq!(resp.status, 201);
    let id = assert_ulid(&resp.body["id"]);
    let created_at = assert_rfc3339(&resp.body["created_at"]);
    assert_eq!(
        resp.body,
        json!({
            "id": id,
            "name": "ACME Inc.",
            "key": "acme-db-id-1",
            "description": "Our first customer",
            "labels": {"env": "test", "tier": "gold"},
            "usage_attribution": {"subject_keys": ["acme-subject", "acme-2"]},
            "primary_email": "billing@acme.example",
            "currency": "EUR",
            "billing_address": {
                "country": "DE", "postal_code": "10115", "state": "Berlin", "city": "Berlin",
                "line1": "Invalidenstraße 1", "line2": "3rd floor", "phone_number": "+49 30 123456"
            },
            "created_at": created_at,
            "updated_at": created_at,
        })
    );

    let fetched = app.get(&format!("{CUSTOMERS}/{id}")).await;
    assert_eq!(fetched.status, 200);
    assert_response(
        Spec::V3,
        "get-customer",
        200,
        &fetched.content_type,
        &fetched.body,
    );
    assert_eq!(fetched.body, resp.body);
}

async fn create_minimal_customer(backend: Backend) {
    let app = TestApp::start(backend).await;
    let body = customer(&app, json!({"name": "Solo", "key": "solo"})).await;
    let id = assert_ulid(&body["id"]);
    let at = assert_rfc3339(&body["created_at"]);
    assert_eq!(
        body,
        json!({
            "id": id, "name": "Solo", "key": "solo",
            "usage_attribution": {"subject_keys": []},
            "created_at": at, "updated_at": at,
        })
    );
}

async fn create_customer_rejects_bad_input_naming_the_field(backend: Backend) {
    let app = TestApp::start(backend).await;
    let cases: Vec<(Value, Value)> = vec![
        (
            json!({"key": "k"}),
            json!([{"field": "name", "rule": "required", "source": "body", "reason": "is a required field"}]),
        ),
        (
            json!({"name": "n"}),
            json!([{"field": "key", "rule": "required", "source": "body", "reason": "is a required field"}]),
        ),
        (
            json!({"name": 42, "key": "k"}),
            json!([{"field": "name", "rule": "type", "source": "body", "reason": "invalid type: integer `42`, expected a string"}]),
        ),
        (
            json!({"name": "n", "key": "k", "nickname": "x"}),
            json!([{"field": "nickname", "rule": "unknown_property", "source": "body",
                 "reason": "is not a known property; expected one of `name`, `key`, `description`, `labels`, `usage_attribution`, `primary_email`, `currency`, `billing_address`"}]),
        ),
        (
            json!({"name": "n", "key": "k", "billing_address": {"zip": "1"}}),
            json!([{"field": "billing_address.zip", "rule": "unknown_property", "source": "body",
                 "reason": "is not a known property; expected one of `country`, `postal_code`, `state`, `city`, `line1`, `line2`, `phone_number`"}]),
        ),
        (
            json!({"name": "", "key": "k"}),
            json!([{"field": "name", "rule": "min_length", "minimum": 1, "source": "body", "reason": "must be at least 1 character(s) long"}]),
        ),
        (
            json!({"name": "n".repeat(257), "key": "k"}),
            json!([{"field": "name", "rule": "max_length", "maximum": 256, "source": "body", "reason": "must be at most 256 characters long"}]),
        ),
        (
            json!({"name": "n", "key": "k", "description": "d".repeat(1025)}),
            json!([{"field": "description", "rule": "max_length", "maximum": 1024, "source": "body", "reason": "must be at most 1024 characters long"}]),
        ),
        (
            json!({"name": "n", "key": "k", "currency": "usd"}),
            json!([{"field": "currency", "rule": "matches_regex", "source": "body", "reason": "must be a three-letter upper-case ISO 4217 code such as USD"}]),
        ),
        (
            json!({"name": "n", "key": "k", "currency": "USS"}),
            json!([{"field": "currency", "rule": "invalid", "source": "body", "reason": "[USS] is not an ISO 4217 currency code"}]),
        ),
        (
            json!({"name": "n", "key": "k", "billing_address": {"country": "Germany"}}),
            json!([{"field": "billing_address.country", "rule": "matches_regex", "source": "body", "reason": "must be an ISO 3166-1 alpha-2 country code such as US"}]),
        ),
        (
            json!({"name": "n", "key": "k", "primary_email": "not-an-email"}),
            json!([{"field": "primary_email", "rule": "invalid", "source": "body", "reason": "must be an email address such as billing@example.com"}]),
        ),
        (
            json!({"name": "n", "key": "k", "labels": {"kong-x": "a", "ok": "no spaces"}}),
            json!([
                {"field": "labels.kong-x", "rule": "invalid", "source": "body", "reason": "label keys must not start with [kong]"},
                {"field": "labels.ok", "rule": "matches_regex", "source": "body", "reason": "label values must be 1 to 63 characters of letters, digits, '-', '.', '_', starting and ending with a letter or digit"}
            ]),
        ),
        (
            json!({"name": "n", "key": "k", "usage_attribution": {"subject_keys": ["a", "a", ""]}}),
            json!([
                {"field": "usage_attribution.subject_keys[1]", "rule": "invalid", "source": "body", "reason": "duplicates subject key [a]"},
                {"field": "usage_attribution.subject_keys[2]", "rule": "min_length", "minimum": 1, "source": "body", "reason": "must be at least 1 character(s) long"}
            ]),
        ),
        (
            json!({"name": "n", "key": "k", "usage_attribution": {}}),
            json!([{"field": "usage_attribution.subject_keys", "rule": "required", "source": "body", "reason": "is a required field"}]),
        ),
    ];
    for (body, invalid) in cases {
        let resp = create(&app, body.clone()).await;
        assert_eq!(resp.status, 400, "{body}: {}", resp.body);
        assert_response(
            Spec::V3,
            "create-customer",
            400,
            &resp.content_type,
            &resp.body,
        );
        assert_problem(&resp, invalid_problem(invalid));
    }
    // Nothing was written by any of them.
    let list = app.get(CUSTOMERS).await;
    assert_eq!(list.body["meta"]["page"]["total"], 0);
}

async fn malformed_json_is_a_400_naming_the_body(backend: Backend) {
    let app = TestApp::start(backend).await;
    let resp = app
        .send_raw(
            reqwest::Method::POST,
            CUSTOMERS,
            "application/json",
            "{\"name\": ",
        )
        .await;
    assert_eq!(
        resp.problem(),
        problem_400(
            "Invalid body [body]: malformed JSON: EOF while parsing a value at line 1 column 9",
            json!([{"field": "body", "rule": "invalid", "source": "body",
                "reason": "malformed JSON: EOF while parsing a value at line 1 column 9"}]),
        )
    );
    // An array is never an object, at the top or inside (serde alone would
    // read `[name, key]` as the customer's fields in order).
    for (body, field) in [
        (json!(["ACME", "acme"]), "body"),
        (
            json!({"name": "ACME", "key": "acme", "billing_address": ["US"]}),
            "billing_address",
        ),
    ] {
        let resp = app
            .send_raw(
                reqwest::Method::POST,
                CUSTOMERS,
                "application/json",
                &body.to_string(),
            )
            .await;
        let reason = "invalid type: sequence, expected an object";
        assert_problem(
            &resp,
            invalid_problem(
                json!([{"field": field, "rule": "type", "source": "body", "reason": reason}]),
            ),
        );
    }
    let empty = app
        .send_raw(reqwest::Method::POST, CUSTOMERS, "application/json", "")
        .await;
    assert_problem(
        &empty,
        invalid_problem(json!([{"field": "body", "rule": "required",
        "source": "body", "reason": "the request body is empty; send a JSON object"}])),
    );
}

async fn non_json_content_type_is_415(backend: Backend) {
    let app = TestApp::start(backend).await;
    let resp = app
        .send_raw(
            reqwest::Method::POST,
            CUSTOMERS,
            "application/x-www-form-urlencoded",
            "name=x",
        )
        .await;
    assert_eq!(
        resp.problem(),
        problem_of(
            415,
            "The request body must be JSON: send it with [Content-Type: application/json], not [application/x-www-form-urlencoded]"
        )
    );
}

async fn body_over_one_mebibyte_is_413(backend: Backend) {
    let app = TestApp::start(backend).await;
    let big = format!(
        "{{\"name\": \"{}\", \"key\": \"k\"}}",
        "x".repeat(1024 * 1024)
    );
    let resp = app
        .send_raw(reqwest::Method::POST, CUSTOMERS, "application/json", &big)
        .await;
    assert_eq!(
        resp.problem(),
        problem_of(413, "The request body is larger than 1048576 bytes")
    );
}

async fn duplicate_key_is_a_conflict_until_the_holder_is_deleted(backend: Backend) {
    let app = TestApp::start(backend).await;
    let first = customer(&app, json!({"name": "A", "key": "same"})).await;
    let resp = create(&app, json!({"name": "B", "key": "same"})).await;
    let holder = first["id"].as_str().unwrap();
    assert_eq!(
        resp.problem(),
        json!({
            "type": "https://httpstatuses.com/409", "title": "Conflict", "status": 409,
            "detail": format!("key [same] is already used by customer [{holder}]"),
            "field": "key", "instance": "urn:request:…",
        })
    );
    assert_schema(Spec::V3, "BaseError", &resp.body);

    assert_eq!(
        app.delete(&format!("{CUSTOMERS}/{holder}")).await.status,
        204
    );
    let again = create(&app, json!({"name": "B", "key": "same"})).await;
    assert_eq!(again.status, 201, "{}", again.body);
}

async fn subject_keys_belong_to_one_live_customer(backend: Backend) {
    let app = TestApp::start(backend).await;
    let first = customer(
        &app,
        json!({"name": "A", "key": "a", "usage_attribution": {"subject_keys": ["s1", "s2"]}}),
    )
    .await;
    let holder = first["id"].as_str().unwrap();
    let resp = create(
        &app,
        json!({"name": "B", "key": "b", "usage_attribution": {"subject_keys": ["s3", "s2"]}}),
    )
    .await;
    assert_eq!(
        resp.problem(),
        json!({
            "type": "https://httpstatuses.com/409", "title": "Conflict", "status": 409,
            "detail": format!("subject key [s2] is already attributed to customer [{holder}]"),
            "field": "usage_attribution.subject_keys", "instance": "urn:request:…",
        })
    );
    // The failed create left nothing behind: s3 is still free.
    customer(
        &app,
        json!({"name": "C", "key": "c", "usage_attribution": {"subject_keys": ["s3"]}}),
    )
    .await;
    // An upsert moving s1 to another customer conflicts too.
    let c = app.get(&format!("{CUSTOMERS}?filter[key]=c")).await.body["data"][0]["id"].clone();
    let moved = app
        .put(
            &format!("{CUSTOMERS}/{}", c.as_str().unwrap()),
            json!({"name": "C", "usage_attribution": {"subject_keys": ["s3", "s1"]}}),
        )
        .await;
    assert_problem(
        &moved,
        with_members(
            problem_of(
                409,
                &format!("subject key [s1] is already attributed to customer [{holder}]"),
            ),
            json!({"field": "usage_attribution.subject_keys"}),
        ),
    );
}

async fn concurrent_creates_with_one_key_make_one_customer(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = app.client.clone();
        let url = format!("{}{CUSTOMERS}", app.base);
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"name": format!("racer {i}"), "key": "race"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "{statuses:?}"
    );
    let list = app.get(&format!("{CUSTOMERS}?filter[key]=race")).await;
    assert_eq!(list.body["meta"]["page"]["total"], 1);
}

async fn unknown_and_malformed_ids(backend: Backend) {
    let app = TestApp::start(backend).await;
    let missing = app
        .get(&format!("{CUSTOMERS}/01G65Z755AFWAKHE12NY0CQ9FH"))
        .await;
    assert_response(
        Spec::V3,
        "get-customer",
        404,
        &missing.content_type,
        &missing.body,
    );
    assert_eq!(
        missing.problem(),
        problem_of(404, "customer [01G65Z755AFWAKHE12NY0CQ9FH] not found")
    );

    let bad = app.get(&format!("{CUSTOMERS}/not-a-ulid")).await;
    assert_response(Spec::V3, "get-customer", 400, &bad.content_type, &bad.body);
    assert_problem(
        &bad,
        invalid_problem(json!([{
            "field": "customerId", "rule": "matches_regex", "source": "path",
            "reason": "[not-a-ulid] is not a ULID (26 characters, e.g. 01G65Z755AFWAKHE12NY0CQ9FH)"
        }])),
    );
    for resp in [
        app.put(
            &format!("{CUSTOMERS}/01G65Z755AFWAKHE12NY0CQ9FH"),
            json!({"name": "x"}),
        )
        .await,
        app.delete(&format!("{CUSTOMERS}/01G65Z755AFWAKHE12NY0CQ9FH"))
            .await,
    ] {
        assert_eq!(
            resp.problem(),
            problem_of(404, "customer [01G65Z755AFWAKHE12NY0CQ9FH] not found")
        );
    }
}

async fn upsert_replaces_the_settable_fields(backend: Backend) {
    let app = TestApp::start(backend).await;
    let before = customer(
        &app,
        json!({
            "name": "Old", "key": "keep-me", "description": "old", "currency": "USD",
            "labels": {"a": "b"}, "usage_attribution": {"subject_keys": ["x"]},
        }),
    )
    .await;
    let id = before["id"].as_str().unwrap();
    let resp = app
        .put(
            &format!("{CUSTOMERS}/{id}"),
            json!({
                "name": "New", "primary_email": "new@example.com",
                "usage_attribution": {"subject_keys": ["y"]},
                "billing_address": {"country": "US", "city": "Austin"},
            }),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_response(
        Spec::V3,
        "upsert-customer",
        200,
        &resp.content_type,
        &resp.body,
    );
    let updated_at = assert_rfc3339(&resp.body["updated_at"]);
    assert_ne!(updated_at, before["updated_at"]);
    assert_eq!(
        resp.body,
        json!({
            "id": id, "name": "New", "key": "keep-me", "primary_email": "new@example.com",
            "usage_attribution": {"subject_keys": ["y"]},
            "billing_address": {"country": "US", "city": "Austin"},
            "created_at": before["created_at"], "updated_at": updated_at,
        })
    );
    // x was released, so another customer may take it.
    customer(
        &app,
        json!({"name": "Other", "key": "other", "usage_attribution": {"subject_keys": ["x"]}}),
    )
    .await;

    let invalid = app
        .put(
            &format!("{CUSTOMERS}/{id}"),
            json!({"name": "n", "key": "nope"}),
        )
        .await;
    assert_response(
        Spec::V3,
        "upsert-customer",
        400,
        &invalid.content_type,
        &invalid.body,
    );
    assert_problem(
        &invalid,
        invalid_problem(
            json!([{"field": "key", "reason": "is not a known property; expected one of `name`, `description`, `labels`, `usage_attribution`, `primary_email`, `currency`, `billing_address`", "rule": "unknown_property", "source": "body"}]),
        ),
    );
}

async fn deleted_customer_is_readable_but_gone_for_changes(backend: Backend) {
    let app = TestApp::start(backend).await;
    let c = customer(&app, json!({"name": "Bye", "key": "bye", "usage_attribution": {"subject_keys": ["bye-subject"]}})).await;
    let id = c["id"].as_str().unwrap();
    let del = app.delete(&format!("{CUSTOMERS}/{id}")).await;
    assert_eq!((del.status, &del.body), (204, &Value::Null));
    assert_response(
        Spec::V3,
        "delete-customer",
        204,
        &del.content_type,
        &del.body,
    );

    let read = app.get(&format!("{CUSTOMERS}/{id}")).await;
    assert_eq!(read.status, 200);
    assert_response(
        Spec::V3,
        "get-customer",
        200,
        &read.content_type,
        &read.body,
    );
    let deleted_at = assert_rfc3339(&read.body["deleted_at"]);
    let mut expected = c.clone();
    expected["deleted_at"] = json!(deleted_at);
    expected["updated_at"] = json!(deleted_at);
    assert_eq!(read.body, expected);

    let gone = problem_of(
        410,
        &format!("customer [{id}] was deleted; it can be read but not changed or billed"),
    );
    let put = app
        .put(&format!("{CUSTOMERS}/{id}"), json!({"name": "Back"}))
        .await;
    assert_response(
        Spec::V3,
        "upsert-customer",
        410,
        &put.content_type,
        &put.body,
    );
    assert_eq!(put.problem(), gone);
    assert_eq!(
        app.delete(&format!("{CUSTOMERS}/{id}")).await.problem(),
        gone
    );

    // Not listed any more; its subject key is free again.
    assert_eq!(app.get(CUSTOMERS).await.body["meta"]["page"]["total"], 0);
    customer(&app, json!({"name": "New", "key": "new", "usage_attribution": {"subject_keys": ["bye-subject"]}})).await;
}

async fn list_pages_and_sorts(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut ids = Vec::new();
    for name in ["delta", "alpha", "Echo", "charlie", "bravo"] {
        ids.push(
            customer(&app, json!({"name": name, "key": format!("k-{name}")})).await["id"].clone(),
        );
    }
    let names = |resp: &Resp| {
        resp.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    let all = app.get(CUSTOMERS).await;
    assert_response(
        Spec::V3,
        "list-customers",
        200,
        &all.content_type,
        &all.body,
    );
    assert_eq!(names(&all), ["Echo", "alpha", "bravo", "charlie", "delta"]);
    assert_eq!(
        all.body["meta"],
        json!({"page": {"number": 1, "size": 20, "total": 5}})
    );

    let page = app
        .get(&format!(
            "{CUSTOMERS}?page[size]=2&page[number]=2&sort=name%20desc"
        ))
        .await;
    assert_eq!(names(&page), ["bravo", "alpha"]);
    assert_eq!(
        page.body["meta"],
        json!({"page": {"number": 2, "size": 2, "total": 5}})
    );

    let past_end = app
        .get(&format!("{CUSTOMERS}?page[size]=2&page[number]=9"))
        .await;
    assert_eq!(
        past_end.body,
        json!({"data": [], "meta": {"page": {"number": 9, "size": 2, "total": 5}}})
    );

    let by_created = app
        .get(&format!("{CUSTOMERS}?sort=created_at%20desc"))
        .await;
    assert_eq!(
        names(&by_created),
        ["bravo", "charlie", "Echo", "alpha", "delta"]
    );
    let by_id = app.get(&format!("{CUSTOMERS}?sort=id")).await;
    let listed: Vec<Value> = by_id.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].clone())
        .collect();
    assert_eq!(listed, ids);
}

async fn list_filters(backend: Backend) {
    let app = TestApp::start(backend).await;
    customer(
        &app,
        json!({"name": "Alpha Corp", "key": "alpha", "primary_email": "ops@alpha.io",
        "usage_attribution": {"subject_keys": ["alpha-1"]}}),
    )
    .await;
    customer(&app, json!({"name": "Beta LLC", "key": "beta", "usage_attribution": {"subject_keys": ["beta-1"]}})).await;
    customer(&app, json!({"name": "Gamma", "key": "gamma"})).await;
    let keys = |path: String| {
        let app = &app;
        async move {
            let resp = app.get(&path).await;
            assert_eq!(resp.status, 200, "{path}: {}", resp.body);
            resp.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["key"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        keys(format!("{CUSTOMERS}?filter[key]=beta")).await,
        ["beta"]
    );
    assert_eq!(
        keys(format!("{CUSTOMERS}?filter[key][eq]=beta")).await,
        ["beta"]
    );
    assert_eq!(
        keys(format!("{CUSTOMERS}?filter[key][neq]=beta")).await,
        ["alpha", "gamma"]
    );
    assert_eq!(
        keys(format!("{CUSTOMERS}?filter[key][oeq]=alpha,gamma")).await,
        ["alpha", "gamma"]
    );
    assert_eq!(
        keys(format!("{CUSTOMERS}?filter[name][contains]=CORP")).await,
        ["alpha"]
    );
    assert_eq!(
        keys(format!("{CUSTOMERS}?filter[name][ocontains]=llc,gam")).await,
        ["beta", "gamma"]
    );
    assert_eq!(
        keys(format!("{CUSTOMERS}?filter[key][gt]=alpha")).await,
        ["beta", "gamma"]
    );
    assert_eq!(
        keys(format!("{CUSTOMERS}?filter[key][lte]=beta")).await,
        ["alpha", "beta"]
    );
    assert_eq!(
        keys(format!("{CUSTOMERS}?filter[primary_email][exists]=true")).await,
        ["alpha"]
    );
    assert_eq!(
        keys(format!("{CUSTOMERS}?filter[primary_email][exists]=false")).await,
        ["beta", "gamma"]
    );
    assert_eq!(
        keys(format!(
            "{CUSTOMERS}?filter[usage_attribution_subject_key]=beta-1"
        ))
        .await,
        ["beta"]
    );
    assert_eq!(
        keys(format!(
            "{CUSTOMERS}?filter[usage_attribution_subject_key][contains]=-1"
        ))
        .await,
        ["alpha", "beta"]
    );
    assert_eq!(
        keys(format!(
            "{CUSTOMERS}?filter[usage_attribution_subject_key][exists]=false"
        ))
        .await,
        ["gamma"]
    );
    assert_eq!(
        keys(format!(
            "{CUSTOMERS}?filter[name][contains]=a&filter[key][neq]=alpha"
        ))
        .await,
        ["beta", "gamma"]
    );
    assert_eq!(
        keys(format!("{CUSTOMERS}?filter[name][contains]=50%25")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        keys(format!("{CUSTOMERS}?filter[plan_key]=pro")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        keys(format!(
            "{CUSTOMERS}?filter[billing_profile_id]=01G65Z755AFWAKHE12NY0CQ9FH"
        ))
        .await,
        Vec::<String>::new()
    );
}

async fn list_refuses_unknown_parameters_by_name(backend: Backend) {
    let app = TestApp::start(backend).await;
    let resp = app.get(&format!("{CUSTOMERS}?page[size]=0&page[number]=x&sort=email&filter[color]=red&filter[key][like]=a&limit=5&filter[billing_profile_id]=nope")).await;
    assert_response(
        Spec::V3,
        "list-customers",
        400,
        &resp.content_type,
        &resp.body,
    );
    assert_problem(
        &resp,
        invalid_problem(json!([
            {"field": "page[size]", "rule": "min", "minimum": 1, "source": "query", "reason": "must be at least 1"},
            {"field": "page[number]", "rule": "type", "source": "query", "reason": "[x] is not a whole number"},
            {"field": "sort", "rule": "enum", "choices": ["id", "name", "created_at"], "source": "query",
             "reason": "[email] is not a sort attribute; use id, name or created_at, optionally followed by asc or desc"},
            {"field": "filter[color]", "rule": "enum", "source": "query", "reason": "[color] is not a filterable field",
             "choices": ["key", "name", "primary_email", "usage_attribution_subject_key", "plan_key", "billing_profile_id"]},
            {"field": "filter[key][like]", "rule": "invalid", "source": "query", "reason": "[like] is not a filter operator for key"},
            {"field": "limit", "rule": "unknown_property", "source": "query",
             "reason": "is not a known query parameter; use page[size], page[number], sort or filter[…]"},
            {"field": "filter[billing_profile_id]", "rule": "matches_regex", "source": "query", "reason": "[nope] is not a ULID"},
        ])),
    );
    let too_big = app.get(&format!("{CUSTOMERS}?page[size]=1001")).await;
    assert_problem(
        &too_big,
        invalid_problem(json!([
        {"field": "page[size]", "rule": "max", "maximum": 1000, "source": "query", "reason": "must be at most 1000"}])),
    );
}
