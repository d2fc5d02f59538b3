//! The HTTP endpoint: `/metrics` (Prometheus), `/health`, and the web console
//! with its JSON API (`/api/...`), all from the one binary.
//!
//! It binds before the log is loaded, so `/health` can say "loading" (503)
//! until the broker is ready. It listens on loopback unless told otherwise.
//! The console can require a bearer token (`console.auth.token`; a browser
//! passes it once as `?token=` and keeps it in a same-site cookie) and can be
//! read-only. Every action that changes something must carry the
//! `X-Strom-Console` header — a page on another site cannot add it without a
//! CORS preflight, which is never granted — and is logged with the address of
//! who asked.

mod api;
mod assets;
mod limited;
mod live;
mod samples;
mod scrape;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

use crate::broker::Broker;
use crate::config::observe::ObserveConfig;
use crate::server::limits::ServerLimits;

/// The cookie a browser keeps the console token in.
const TOKEN_COOKIE: &str = "strom_console_token";
/// The header every changing request of the console carries.
pub const WRITE_HEADER: &str = "x-strom-console";

/// What the HTTP handlers share once the broker is up.
pub(crate) struct Ready {
    pub broker: Arc<Broker>,
    /// The request memory of the console's in-process connections (apart from
    /// the listeners', so the console cannot starve clients).
    pub limits: Arc<ServerLimits>,
    pub samples: samples::Samples,
}

pub(crate) struct AppInner {
    pub ready: OnceLock<Ready>,
    token: Option<String>,
    pub read_only: bool,
    /// Bound to loopback: only requests addressed to a loopback name are
    /// served (a DNS-rebinding page names its own host).
    loopback: bool,
    /// Live views (tails, the trace) open at once: each holds a task and reads.
    live_views: Arc<tokio::sync::Semaphore>,
    /// Scrapes and searches read many files: two at a time, the rest wait.
    heavy: tokio::sync::Semaphore,
}

/// Most live views (server-sent event streams) open at once.
const MAX_LIVE_VIEWS: usize = 64;
/// Most HTTP connections at once: more wait in the kernel's backlog, so the
/// console can never take the file descriptors Kafka clients need.
const MAX_HTTP_CONNECTIONS: usize = 256;

#[derive(Clone)]
pub(crate) struct App(pub Arc<AppInner>);

/// The HTTP endpoint, bound and serving.
pub struct HttpServer {
    pub addr: SocketAddr,
    app: App,
}

impl HttpServer {
    /// Bind `config.http_listen` (None: no endpoint) and serve until `shutdown`.
    pub async fn bind(config: &ObserveConfig, shutdown: watch::Receiver<bool>) -> std::io::Result<Option<HttpServer>> {
        let Some(addr) = config.http_listen else {
            return Ok(None);
        };
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) if !config.http_listen_explicit => {
                tracing::warn!(listen = %addr, error = %e, "no HTTP endpoint (metrics, console): the default address is taken; set --http-listen");
                return Ok(None);
            }
            Err(e) => return Err(std::io::Error::new(e.kind(), format!("HTTP endpoint {addr}: {e}"))),
        };
        let addr = listener.local_addr()?;
        let app = App(Arc::new(AppInner {
            ready: OnceLock::new(),
            token: config.console_token.clone(),
            read_only: config.console_read_only,
            loopback: addr.ip().is_loopback(),
            live_views: Arc::new(tokio::sync::Semaphore::new(MAX_LIVE_VIEWS)),
            heavy: tokio::sync::Semaphore::new(2),
        }));
        if !addr.ip().is_loopback() && config.console_token.is_none() {
            tracing::warn!(listen = %addr, "the console listens beyond loopback without a token: anyone who reaches it can change topics and offsets; set --console-token (or --console-read-only)");
        }
        let router = routes(app.clone());
        let listener = limited::Limited::new(listener, MAX_HTTP_CONNECTIONS);
        let mut stop = shutdown;
        tokio::spawn(async move {
            use axum::serve::ListenerExt;
            let listener = listener.tap_io(|_| {});
            let served = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "HTTP endpoint failed");
            }
        });
        tracing::info!(listen = %addr, console = %format!("http://{addr}/"), "HTTP endpoint (metrics, health, console)");
        Ok(Some(HttpServer { addr, app }))
    }

    /// The log is loaded: serve the broker.
    pub fn ready(&self, broker: Arc<Broker>) {
        let limits = ServerLimits::new(&broker.config);
        let samples = samples::Samples::default();
        samples::spawn_sampler(self.app.clone(), broker.shutting_down.clone());
        let _ = self.app.0.ready.set(Ready {
            broker,
            limits,
            samples,
        });
    }
}

fn routes(app: App) -> Router {
    let pages = get(assets::index);
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/", pages.clone())
        .route("/topics", pages.clone())
        .route("/topics/{name}", pages.clone())
        .route("/groups", pages.clone())
        .route("/groups/{id}", pages.clone())
        .route("/trace", pages)
        .route("/assets/{file}", get(assets::asset))
        .nest("/api", api::routes())
        .layer(axum::middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// A refusal, as JSON: `{"error": "..."}`.
#[derive(Debug)]
pub(crate) struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl App {
    /// A place for one more live view, or 503 when all are taken.
    pub(crate) fn live_view(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        self.0.live_views.clone().try_acquire_owned().map_err(|_| {
            ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{MAX_LIVE_VIEWS} live views are open already; close one"),
            )
        })
    }

    /// A turn at file-heavy work (a scrape, a search).
    pub(crate) async fn heavy_work(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.0.heavy.acquire().await.ok()
    }

    pub(crate) fn ready(&self) -> Result<&Ready, ApiError> {
        self.0
            .ready
            .get()
            .ok_or_else(|| ApiError(StatusCode::SERVICE_UNAVAILABLE, "strom is loading its log".into()))
    }
}

/// 200 once the log is loaded and the listeners serve; 503 before, and once
/// shutdown has begun.
async fn health(State(app): State<App>) -> Response {
    match app.0.ready.get() {
        Some(r) if !*r.broker.shutting_down.borrow() => (StatusCode::OK, "ok\n").into_response(),
        Some(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "loading\n").into_response(),
    }
}

/// OpenMetrics for scrapers that ask for it (Prometheus does), the classic
/// text format otherwise.
async fn metrics(State(app): State<App>, headers: HeaderMap) -> Response {
    let ready = match app.ready() {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if !ready.broker.metrics.enabled {
        return ApiError(StatusCode::NOT_FOUND, "metrics are off (metrics.enable=false)".into()).into_response();
    }
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let broker = ready.broker.clone();
    let _turn = app.heavy_work().await;
    // Reading every partition's offsets and sizes is file-system work.
    let text = tokio::task::spawn_blocking(move || {
        let now = scrape::registry(&broker, &broker.metrics);
        broker.metrics.encode(&now)
    })
    .await;
    match text {
        Ok(Ok(text)) if openmetrics => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Ok(Ok(text)) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            crate::metrics::to_classic_text(&text),
        )
            .into_response(),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "metrics could not be encoded\n").into_response(),
    }
}

/// Equal without telling by its timing how much of a guess was right.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= (x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0)) as usize;
    }
    diff == 0
}

/// The token a request carries: bearer header, cookie, or `?token=`.
fn presented_token(headers: &HeaderMap, query: Option<&str>) -> (Option<String>, bool) {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        // The scheme's name is case-insensitive (RFC 7235).
        if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
            return (Some(v[7..].trim().to_string()), false);
        }
    }
    if let Some(t) = query.and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .map(percent_decode)
    }) {
        return (Some(t), true);
    }
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(&format!("{TOKEN_COOKIE}=")).map(percent_decode));
    (cookie, false)
}

/// Minimal %XX decoding (tokens in URLs and cookies).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn refuse(status: StatusCode, message: &str) -> Response {
    ApiError(status, message.to_string()).into_response()
}

/// Host check, token, read-only, the write header, and the log of writes.
async fn guard(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    if app.0.loopback {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let name = host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let local =
            name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !local && !host.is_empty() {
            return refuse(
                StatusCode::MISDIRECTED_REQUEST,
                "this endpoint answers requests to localhost only",
            );
        }
    }
    // The login page's style sheet is no secret.
    let open = path == "/metrics" || path == "/health" || path == "/assets/app.css";
    let mut set_cookie = None;
    if let (Some(expected), false) = (&app.0.token, open) {
        let (token, from_query) = presented_token(request.headers(), request.uri().query());
        match token {
            Some(t) if same_secret(&t, expected) => {
                if from_query {
                    set_cookie = Some(format!(
                        "{TOKEN_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
                        percent_encode(&t)
                    ));
                }
            }
            _ => {
                if path.starts_with("/api/") {
                    return refuse(
                        StatusCode::UNAUTHORIZED,
                        "a console token is required (Authorization: Bearer TOKEN)",
                    );
                }
                return (StatusCode::UNAUTHORIZED, axum::response::Html(assets::LOGIN_PAGE)).into_response();
            }
        }
    }
    let writes = !matches!(method, Method::GET | Method::HEAD);
    if writes {
        if app.0.read_only {
            return refuse(StatusCode::FORBIDDEN, "the console is read-only (console.read.only)");
        }
        if !request.headers().contains_key(WRITE_HEADER) {
            return refuse(
                StatusCode::FORBIDDEN,
                "changing requests must carry the X-Strom-Console header",
            );
        }
    }
    let mut response = next.run(request).await;
    if writes {
        tracing::info!(target: "strom::console", peer = %peer, method = %method, path = %path, status = response.status().as_u16(), "console action");
    }
    if let Some(cookie) = set_cookie.and_then(|c| c.parse().ok()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("", "abc"));
        assert!(same_secret("", ""));
    }

    #[test]
    fn tokens_come_from_header_query_or_cookie() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=b; strom_console_token=s%20t".parse().unwrap());
        assert_eq!(presented_token(&h, None), (Some("s t".into()), false));
        assert_eq!(presented_token(&h, Some("x=1&token=q")), (Some("q".into()), true));
        h.insert(header::AUTHORIZATION, "Bearer hdr".parse().unwrap());
        assert_eq!(presented_token(&h, Some("token=q")), (Some("hdr".into()), false));
        assert_eq!(percent_decode(&percent_encode("a b/é")), "a b/é");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
