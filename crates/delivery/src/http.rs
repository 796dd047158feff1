//! Sending one webhook request and classifying the response.
//!
//! A request is a POST of a JSON body with HTTP Basic credentials (as Connec!
//! did) and the Standard Webhooks headers. Redirects are never followed: a
//! receiver moving must update its URL, and following would send the
//! credentials and data to wherever a compromised endpoint points.

use std::error::Error as _;
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::{Response, StatusCode};

use crate::schedule::parse_retry_after;
use crate::signature::{WebhookSecret, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};

/// How much of a response body is kept for the delivery log.
pub const BODY_EXCERPT_LIMIT: usize = 4096;
/// Upper bound of the connect timeout, whatever the overall timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// `User-Agent` of webhook requests.
const USER_AGENT: &str = concat!("sharehub/", env!("CARGO_PKG_VERSION"));

/// A client for webhook requests: redirects not followed, `timeout` for the
/// whole request (connect timeout at most 10s), user agent `sharehub/<version>`.
pub fn build_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
        .timeout(timeout)
        .user_agent(USER_AGENT)
        .build()
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    /// Endpoint URL of the application.
    pub url: &'a str,
    /// HTTP Basic user name.
    pub api_id: &'a str,
    /// HTTP Basic password.
    pub api_key: &'a str,
    /// Key signing the request.
    pub secret: &'a WebhookSecret,
    /// `webhook-id`: the same on every attempt of a message.
    pub msg_id: &'a str,
    /// The JSON body.
    pub body: bytes::Bytes,
}

/// How the receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Any 2xx.
    Delivered {
        /// The response status.
        status: u16,
    },
    /// 410: the endpoint asks to be disabled.
    Gone,
    /// Anything else: 1xx, 3xx (redirects are not followed), 4xx, 5xx,
    /// timeouts, connection and protocol errors.
    Failed {
        /// The response status, `None` when no response was received.
        status: Option<u16>,
        /// The wait the receiver asked for with `Retry-After`.
        retry_after: Option<Duration>,
        /// Short human sentence, e.g. "503 Service Unavailable" or "connection refused".
        error: String,
    },
}

/// The result of one attempt, for the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// How the receiver answered.
    pub outcome: Outcome,
    /// Time from sending the request to reading the response (excerpt).
    pub elapsed: Duration,
    /// `webhook-timestamp` sent, in unix seconds.
    pub timestamp: i64,
    /// At most [`BODY_EXCERPT_LIMIT`] bytes of the response body (lossy
    /// UTF-8), `None` when empty or not received.
    pub body_excerpt: Option<String>,
}

/// POSTs the body with `Content-Type: application/json`, HTTP Basic
/// (`api_id:api_key`) and the Standard Webhooks headers (`webhook-id` =
/// `msg_id`, `webhook-timestamp` = now, `webhook-signature`). Never panics;
/// reads at most [`BODY_EXCERPT_LIMIT`] bytes of the response body.
pub async fn send(client: &reqwest::Client, delivery: Delivery<'_>) -> Attempt {
    let timestamp = jiff::Timestamp::now().as_second();
    let signature = delivery.secret.sign(delivery.msg_id, timestamp, &delivery.body);
    let request = client
        .post(delivery.url)
        .basic_auth(delivery.api_id, Some(delivery.api_key))
        .header(CONTENT_TYPE, "application/json")
        .header(HEADER_ID, delivery.msg_id)
        .header(HEADER_TIMESTAMP, timestamp)
        .header(HEADER_SIGNATURE, signature)
        .body(delivery.body);
    let started = Instant::now();
    let (outcome, body_excerpt) = match request.send().await {
        Ok(response) => classify(response).await,
        Err(err) => (failure(None, None, describe_error(&err)), None),
    };
    Attempt { outcome, elapsed: started.elapsed(), timestamp, body_excerpt }
}

/// Turns a response into an outcome, reading the start of its body.
async fn classify(response: Response) -> (Outcome, Option<String>) {
    let status = response.status();
    let retry_after = header_str(&response, RETRY_AFTER).and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));
    let location = header_str(&response, LOCATION).map(str::to_owned);
    let excerpt = read_excerpt(response).await;
    let outcome = if status.is_success() {
        Outcome::Delivered { status: status.as_u16() }
    } else if status == StatusCode::GONE {
        Outcome::Gone
    } else {
        let error = describe_status(status, location.as_deref());
        failure(Some(status.as_u16()), retry_after, error)
    };
    (outcome, excerpt)
}

fn failure(status: Option<u16>, retry_after: Option<Duration>, error: String) -> Outcome {
    Outcome::Failed { status, retry_after, error }
}

fn header_str(response: &Response, name: reqwest::header::HeaderName) -> Option<&str> {
    response.headers().get(name)?.to_str().ok()
}

/// "503 Service Unavailable", or for redirects
/// "302 Found: redirect to https://x (redirects are not followed)".
fn describe_status(status: StatusCode, location: Option<&str>) -> String {
    let line = match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    };
    match location {
        Some(to) if status.is_redirection() => {
            format!("{line}: redirect to {to} (redirects are not followed)")
        }
        _ if status.is_redirection() => format!("{line} (redirects are not followed)"),
        _ => line,
    }
}

/// A short sentence for a request that got no response.
fn describe_error(err: &reqwest::Error) -> String {
    let cause = root_cause(err);
    if err.is_builder() {
        format!("invalid request: {cause}")
    } else if err.is_timeout() && err.is_connect() {
        "connection timed out".to_owned()
    } else if err.is_timeout() {
        "request timed out".to_owned()
    } else if io_kind(err) == Some(std::io::ErrorKind::ConnectionRefused) {
        "connection refused".to_owned()
    } else if err.is_connect() {
        format!("connection failed: {cause}")
    } else {
        format!("request failed: {cause}")
    }
}

/// The innermost error message, which is the informative one with reqwest
/// (the outer ones read like "error sending request for url (...)").
fn root_cause(err: &reqwest::Error) -> String {
    let mut current: &dyn std::error::Error = err;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

/// The kind of the I/O error underlying `err`, if any.
fn io_kind(err: &reqwest::Error) -> Option<std::io::ErrorKind> {
    let mut current = err.source();
    while let Some(source) = current {
        if let Some(io) = source.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        current = source.source();
    }
    None
}

/// Reads at most [`BODY_EXCERPT_LIMIT`] bytes; a failing read keeps what came.
async fn read_excerpt(mut response: Response) -> Option<String> {
    let mut buf = Vec::new();
    while buf.len() < BODY_EXCERPT_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    buf.truncate(BODY_EXCERPT_LIMIT);
    let text = String::from_utf8_lossy(&buf).trim().to_owned();
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, StatusCode as AxStatus};
    use axum::routing::post;
    use axum::Router;
    use base64::Engine as _;
    use std::sync::{Arc, Mutex};

    const BODY: &str = r#"{"changes":[{"id":1}]}"#;

    /// Serves `router` on a free local port; returns its `/hook` URL.
    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        format!("http://{addr}/hook")
    }

    async fn send_to(url: &str, secret: &WebhookSecret, timeout: Duration) -> Attempt {
        let client = build_client(timeout).unwrap();
        let delivery = Delivery {
            url,
            api_id: "app-1",
            api_key: "s3cr3t",
            secret,
            msg_id: "msg_0001",
            body: bytes::Bytes::from_static(BODY.as_bytes()),
        };
        send(&client, delivery).await
    }

    async fn send_default(url: &str) -> Attempt {
        send_to(url, &WebhookSecret::generate(), Duration::from_secs(5)).await
    }

    /// A receiver answering `status` with `headers` and a fixed body.
    fn fixed(status: u16, headers: &'static [(&'static str, &'static str)]) -> Router {
        let handler = move || async move {
            let status = AxStatus::from_u16(status).unwrap();
            let mut map = HeaderMap::new();
            for (name, value) in headers {
                map.insert(*name, value.parse().unwrap());
            }
            (status, map, "receiver says no")
        };
        Router::new().route("/hook", post(handler))
    }

    #[tokio::test]
    async fn delivered_with_auth_and_verifiable_signature() {
        let secret = WebhookSecret::generate();
        let verifier = Arc::new(standardwebhooks::Webhook::new(&secret.to_whsec()).unwrap());
        let seen = Arc::new(Mutex::new(Vec::<HeaderMap>::new()));
        let recorded = seen.clone();
        let handler = move |headers: HeaderMap, body: bytes::Bytes| async move {
            recorded.lock().unwrap().push(headers.clone());
            let expected = base64::engine::general_purpose::STANDARD.encode("app-1:s3cr3t");
            if headers["authorization"] != format!("Basic {expected}").as_str() {
                return (AxStatus::UNAUTHORIZED, "bad auth");
            }
            match verifier.verify(&body, &headers) {
                Ok(()) => (AxStatus::OK, "thanks"),
                Err(_) => (AxStatus::BAD_REQUEST, "bad signature"),
            }
        };
        let url = serve(Router::new().route("/hook", post(handler))).await;
        let attempt = send_to(&url, &secret, Duration::from_secs(5)).await;
        assert_eq!(attempt.outcome, Outcome::Delivered { status: 200 });
        assert_eq!(attempt.body_excerpt.as_deref(), Some("thanks"));
        let seen = seen.lock().unwrap();
        let headers = &seen[0];
        assert_eq!(headers["webhook-id"], "msg_0001");
        assert_eq!(headers["webhook-timestamp"], attempt.timestamp.to_string().as_str());
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["user-agent"], USER_AGENT);
        assert!(USER_AGENT.starts_with("sharehub/0."));
    }

    #[tokio::test]
    async fn server_error_fails() {
        let url = serve(fixed(500, &[])).await;
        let attempt = send_default(&url).await;
        let error = "500 Internal Server Error".to_owned();
        let expected = failure(Some(500), None, error);
        assert_eq!(attempt.outcome, expected);
        assert_eq!(attempt.body_excerpt.as_deref(), Some("receiver says no"));
    }

    #[tokio::test]
    async fn unavailable_with_retry_after() {
        let url = serve(fixed(503, &[("retry-after", "7")])).await;
        let attempt = send_default(&url).await;
        let error = "503 Service Unavailable".to_owned();
        let expected = failure(Some(503), Some(Duration::from_secs(7)), error);
        assert_eq!(attempt.outcome, expected);
    }

    #[tokio::test]
    async fn gone_asks_to_be_disabled() {
        let url = serve(fixed(410, &[])).await;
        let attempt = send_default(&url).await;
        assert_eq!(attempt.outcome, Outcome::Gone);
    }

    #[tokio::test]
    async fn redirects_are_failures_and_not_followed() {
        let hits = Arc::new(Mutex::new(0));
        let counter = hits.clone();
        let target = Router::new().route("/hook", post(move || async move { *counter.lock().unwrap() += 1 }));
        let location = serve(target).await;
        for status in [301u16, 302, 307, 308] {
            let target_url = location.clone();
            let handler = move || async move {
                let status = AxStatus::from_u16(status).unwrap();
                (status, [("location", target_url)])
            };
            let url = serve(Router::new().route("/hook", post(handler))).await;
            let attempt = send_default(&url).await;
            let Outcome::Failed { status: got, error, .. } = attempt.outcome else {
                panic!("{attempt:?}");
            };
            assert_eq!(got, Some(status));
            assert!(error.contains(&format!("redirect to {location}")), "{error}");
            assert!(error.ends_with("(redirects are not followed)"), "{error}");
        }
        assert_eq!(*hits.lock().unwrap(), 0);
    }

    #[tokio::test]
    async fn slow_receiver_times_out() {
        let handler = || async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "too late"
        };
        let url = serve(Router::new().route("/hook", post(handler))).await;
        let secret = WebhookSecret::generate();
        let attempt = send_to(&url, &secret, Duration::from_millis(300)).await;
        let expected = failure(None, None, "request timed out".to_owned());
        assert_eq!(attempt.outcome, expected);
        assert!(attempt.elapsed < Duration::from_secs(3), "{attempt:?}");
    }

    #[tokio::test]
    async fn closed_port_is_refused() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let attempt = send_default(&format!("http://{addr}/hook")).await;
        let expected = failure(None, None, "connection refused".to_owned());
        assert_eq!(attempt.outcome, expected);
        assert_eq!(attempt.body_excerpt, None);
    }

    #[tokio::test]
    async fn invalid_url_fails_without_panicking() {
        let attempt = send_default("not a url").await;
        let Outcome::Failed { status: None, error, .. } = attempt.outcome else {
            panic!("{attempt:?}");
        };
        assert!(error.starts_with("invalid request"), "{error}");
    }

    #[tokio::test]
    async fn long_response_is_truncated() {
        let handler = || async { "x".repeat(100_000) };
        let url = serve(Router::new().route("/hook", post(handler))).await;
        let attempt = send_default(&url).await;
        assert_eq!(attempt.outcome, Outcome::Delivered { status: 200 });
        assert_eq!(attempt.body_excerpt.map(|b| b.len()), Some(BODY_EXCERPT_LIMIT));
    }
}
