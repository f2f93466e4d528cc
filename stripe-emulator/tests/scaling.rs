//! The work of a request does not grow with what is stored: counted, not timed.

mod common;

use common::start;
use serde_json::json;

/// Creates `n` sessions over a few concurrent connections; returns their ids.
async fn create_sessions(t: &common::T, customer: &str, n: usize) -> Vec<String> {
    let workers = 8;
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let http = t.http.clone();
        let url = t.url("/v1/checkout/sessions");
        let key = t.key.clone();
        let customer = customer.to_string();
        let count = n / workers + usize::from(worker < n % workers);
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(count);
            for _ in 0..count {
                let response = http
                    .post(&url)
                    .bearer_auth(&key)
                    .form(&[
                        ("mode", "setup"),
                        ("currency", "usd"),
                        ("customer", customer.as_str()),
                        ("success_url", "https://example.com/ok"),
                    ])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let body: serde_json::Value = response.json().await.unwrap();
                ids.push(body["id"].as_str().unwrap().to_string());
            }
            ids
        }));
    }
    let mut ids = Vec::with_capacity(n);
    for task in tasks {
        ids.extend(task.await.unwrap());
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_work_per_request_does_not_grow_with_stored_sessions() {
    let t = start().await;
    let customer = t.customer().await;
    let stored = 20_000;
    let ids = create_sessions(&t, &customer, stored).await;
    assert_eq!(ids.len(), stored);

    // None is due: requests (API and control) look at no stored session at all.
    let before = t.emu.expiry_sessions_examined();
    assert_eq!(before, 0);
    let one_more = t.hosted_session(&customer).await;
    let r = t.get(&format!("/v1/checkout/sessions/{}", ids[0])).await;
    assert_eq!(r.body["status"], "open");
    let after = t.emu.expiry_sessions_examined();
    assert!(
        after - before <= 2,
        "one request examined {} sessions with {stored} stored",
        after - before
    );
    let stats = t.ctl_get("/_emulator/stats").await;
    assert_eq!(stats.body["expiry_sessions_examined"], json!(after));

    // Passing every `expires_at` examines each session exactly once and expires it ...
    t.emu.advance_clock(86_400 + 60);
    assert_eq!(t.emu.expiry_sessions_examined(), stored as u64 + 1);
    let last = t
        .get(&format!("/v1/checkout/sessions/{}", ids[stored - 1]))
        .await;
    assert_eq!(last.body["status"], "expired");
    let one_more = t
        .get(&format!(
            "/v1/checkout/sessions/{}",
            one_more["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(one_more.body["status"], "expired");
    // ... and later requests examine none again.
    t.hosted_session(&customer).await;
    t.get("/v1/checkout/sessions?limit=1").await;
    assert_eq!(t.emu.expiry_sessions_examined(), stored as u64 + 1);
}

#[tokio::test]
async fn request_log_is_a_bounded_ring_and_seq_keeps_counting() {
    let t = common::start_with(stripe_emulator::EmulatorConfig {
        request_log_capacity: 5,
        ..Default::default()
    })
    .await;
    for _ in 0..12 {
        assert_eq!(t.get("/v1/account").await.status, 200);
    }
    let all = t.emu.requests(0);
    let seqs: Vec<u64> = all.iter().map(|entry| entry.seq).collect();
    assert_eq!(seqs, vec![8, 9, 10, 11, 12]);
    let since: Vec<u64> = t.emu.requests(10).iter().map(|entry| entry.seq).collect();
    assert_eq!(since, vec![11, 12]);
    let r = t.ctl_get("/_emulator/requests?since=9").await;
    assert_eq!(r.body["last_seq"], 12);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 3);
    assert_eq!(r.body["data"][0]["seq"], 10);
    t.emu.clear_requests();
    t.get("/v1/account").await;
    let seqs: Vec<u64> = t.emu.requests(0).iter().map(|entry| entry.seq).collect();
    assert_eq!(seqs, vec![13]);
}

#[tokio::test]
async fn connections_accepted_counts_tcp_connections() {
    let t = start().await;
    assert_eq!(t.emu.connections_accepted(), 0);
    // One keep-alive client: many requests, one connection.
    for _ in 0..10 {
        assert_eq!(t.get("/v1/account").await.status, 200);
    }
    assert_eq!(t.emu.connections_accepted(), 1);
    let r = t.ctl_get("/_emulator/connections").await;
    assert_eq!(r.body, json!({"accepted": 1}));
    // A client without pooling opens one per request.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for _ in 0..3 {
        let response = fresh.get(t.url("/_emulator/health")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(t.emu.connections_accepted(), 4);
}
