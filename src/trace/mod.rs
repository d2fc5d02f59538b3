//! The protocol trace: every request and its response, decoded, as readable
//! text — "how Kafka works" on the wire, for any client.
//!
//! Off, it costs one atomic load per request. On (`--trace-protocol`, or the
//! console's toggle), each request that passes the filters is described when it
//! arrives and completed with its response: one block of two lines, written to
//! the log under the `strom::trace` target and sent to the console's live trace
//! page.

pub mod describe;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::config::observe::{ObserveConfig, TraceFilter};

/// One request and its response, as the trace shows them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceEvent {
    pub seq: u64,
    /// When the response was ready, ms since the epoch.
    pub time_ms: i64,
    pub peer: String,
    pub client_id: String,
    pub api: &'static str,
    pub version: i16,
    pub correlation_id: i32,
    pub request_bytes: usize,
    pub response_bytes: usize,
    pub latency_us: u64,
    /// The request, described.
    pub request: String,
    /// The response, described ("no response" for acks=0).
    pub response: String,
    /// Non-zero error codes of the response, by Kafka's names.
    pub errors: Vec<String>,
}

impl TraceEvent {
    /// The block written to the log.
    pub fn text(&self) -> String {
        format!(
            "{peer} {client:?} {api} v{version} #{corr}\n  → {request} ({req_bytes} B)\n  ← {response} ({resp_bytes} B, {ms:.3} ms)",
            peer = self.peer,
            client = self.client_id,
            api = self.api,
            version = self.version,
            corr = self.correlation_id,
            request = self.request,
            req_bytes = self.request_bytes,
            response = self.response,
            resp_bytes = self.response_bytes,
            ms = self.latency_us as f64 / 1000.0,
        )
    }
}

/// The trace's switch, filters and subscribers.
pub struct Tracer {
    on: AtomicBool,
    records: AtomicBool,
    filter: RwLock<TraceFilter>,
    seq: AtomicU64,
    live: broadcast::Sender<Arc<TraceEvent>>,
}

/// How many events a slow console subscriber may fall behind before it is told
/// it missed some.
const LIVE_BUFFER: usize = 4096;

impl Tracer {
    pub fn new(config: &ObserveConfig) -> Tracer {
        Tracer {
            on: AtomicBool::new(config.trace_protocol),
            records: AtomicBool::new(config.trace_records),
            filter: RwLock::new(config.trace_filter.clone()),
            seq: AtomicU64::new(0),
            live: broadcast::channel(LIVE_BUFFER).0,
        }
    }

    /// Whether requests are traced at all (the only cost when off).
    #[inline]
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    pub fn records(&self) -> bool {
        self.records.load(Ordering::Relaxed)
    }

    /// Turn the trace on or off, and say whether records are shown.
    pub fn set(&self, on: bool, records: bool) {
        self.on.store(on, Ordering::Relaxed);
        self.records.store(records, Ordering::Relaxed);
        tracing::info!(on, records, "protocol trace switched");
    }

    pub fn filter(&self) -> TraceFilter {
        self.filter.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_filter(&self, filter: TraceFilter) {
        *self.filter.write().unwrap_or_else(|e| e.into_inner()) = filter;
    }

    /// Whether a request of `api` from `client_id` naming `topics` is shown.
    pub fn wants(&self, api: &str, client_id: Option<&str>, topics: &[String]) -> bool {
        let f = self.filter.read().unwrap_or_else(|e| e.into_inner());
        if !f.apis.is_empty() && !f.apis.iter().any(|a| a.eq_ignore_ascii_case(api)) {
            return false;
        }
        if let Some(c) = &f.client {
            if !client_id.unwrap_or("").contains(c.as_str()) {
                return false;
            }
        }
        match &f.topic {
            Some(t) => topics.iter().any(|x| x == t),
            None => true,
        }
    }

    /// Log an event and hand it to the console's subscribers.
    pub fn emit(&self, mut event: TraceEvent) {
        event.seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(target: "strom::trace", "{}", event.text());
        // No subscriber is not an error.
        let _ = self.live.send(Arc::new(event));
    }

    /// Events from now on, for the console's live trace.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<TraceEvent>> {
        self.live.subscribe()
    }
}
