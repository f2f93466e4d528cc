#![allow(dead_code)]

use reqwest::header::HeaderMap;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use stripe_emulator::{Emulator, EmulatorConfig};

pub struct T {
    pub emu: Emulator,
    pub http: reqwest::Client,
    pub key: String,
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: HeaderMap,
}

impl Resp {
    pub fn err_param(&self) -> &str {
        self.body["error"]["param"].as_str().unwrap_or("")
    }
    pub fn err_type(&self) -> &str {
        self.body["error"]["type"].as_str().unwrap_or("")
    }
}

pub async fn start() -> T {
    start_with(EmulatorConfig {
        webhook_retry_base_ms: 20,
        ..Default::default()
    })
    .await
}

pub async fn start_with(cfg: EmulatorConfig) -> T {
    let key = cfg.api_keys.first().cloned().unwrap_or_default();
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap(), cfg)
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    T { emu, http, key }
}

impl T {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.emu.base_url(), path)
    }
    async fn resp(r: reqwest::Response) -> Resp {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            body,
            headers,
        }
    }
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Resp {
        self.post_as(&self.key, path, form, None).await
    }
    pub async fn post_idem(&self, path: &str, form: &[(&str, &str)], idem: &str) -> Resp {
        self.post_as(&self.key, path, form, Some(idem)).await
    }
    pub async fn post_as(
        &self,
        key: &str,
        path: &str,
        form: &[(&str, &str)],
        idem: Option<&str>,
    ) -> Resp {
        let mut rb = self.http.post(self.url(path)).bearer_auth(key).form(form);
        if let Some(k) = idem {
            rb = rb.header("Idempotency-Key", k);
        }
        Self::resp(rb.send().await.unwrap()).await
    }
    pub async fn get(&self, path: &str) -> Resp {
        self.get_as(&self.key, path).await
    }
    pub async fn get_as(&self, key: &str, path: &str) -> Resp {
        Self::resp(
            self.http
                .get(self.url(path))
                .bearer_auth(key)
                .send()
                .await
                .unwrap(),
        )
        .await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        Self::resp(
            self.http
                .delete(self.url(path))
                .bearer_auth(&self.key)
                .send()
                .await
                .unwrap(),
        )
        .await
    }
    pub async fn ctl_post(&self, path: &str, body: Value) -> Resp {
        Self::resp(
            self.http
                .post(self.url(path))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }
    pub async fn ctl_get(&self, path: &str) -> Resp {
        Self::resp(self.http.get(self.url(path)).send().await.unwrap()).await
    }
    pub async fn customer(&self) -> String {
        let r = self
            .post(
                "/v1/customers",
                &[("email", "jenny@example.com"), ("name", "Jenny")],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }
    pub async fn hosted_session(&self, customer: &str) -> Value {
        let r = self
            .post(
                "/v1/checkout/sessions",
                &[
                    ("mode", "setup"),
                    ("currency", "usd"),
                    ("customer", customer),
                    (
                        "success_url",
                        "https://example.com/ok?session_id={CHECKOUT_SESSION_ID}",
                    ),
                    ("cancel_url", "https://example.com/cancel"),
                    ("setup_intent_data[metadata][plan]", "pro"),
                    ("metadata[app]", "meterpay"),
                ],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    }
    /// Waits until `pred` holds for the list of event types the emulator recorded.
    pub async fn wait_for<F: Fn() -> bool>(&self, pred: F) {
        for _ in 0..200 {
            if pred() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("condition not met in time");
    }
}

/// A webhook receiver on an ephemeral port recording (Stripe-Signature, body) and failing the first `fail_first` requests with 500.
#[derive(Clone, Default)]
pub struct Receiver {
    pub got: Arc<Mutex<Vec<(String, String, u16)>>>,
    pub fail_first: Arc<Mutex<u32>>,
}

pub async fn receiver(fail_first: u32) -> (Receiver, String) {
    use axum::{Router, body::Bytes, extract::State, http::HeaderMap as HM, routing::post};
    let r = Receiver {
        got: Default::default(),
        fail_first: Arc::new(Mutex::new(fail_first)),
    };
    async fn hook(State(r): State<Receiver>, h: HM, body: Bytes) -> axum::http::StatusCode {
        let sig = h
            .get("stripe-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let mut f = r.fail_first.lock().unwrap();
        let status = if *f > 0 {
            *f -= 1;
            500
        } else {
            200
        };
        r.got
            .lock()
            .unwrap()
            .push((sig, String::from_utf8(body.to_vec()).unwrap(), status));
        axum::http::StatusCode::from_u16(status).unwrap()
    }
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(r.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (r, url)
}

pub fn event_types(emu: &Emulator) -> Vec<String> {
    emu.events()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}
