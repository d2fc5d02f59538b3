//! What every request leaves behind besides its response: its latency and error
//! codes in the metrics, and, while the protocol trace is on, its decoded
//! request and response.

use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::messages::ApiKey;

use super::{CodecError, RequestContext, Respond};
use crate::broker::Broker;
use crate::protocol::response::ResponseFrame;
use crate::trace::describe::{self, Described, Message};
use crate::trace::TraceEvent;

/// A request on its way through its handler.
pub struct Observation {
    started: Instant,
    api: ApiKey,
    name: &'static str,
    request_bytes: usize,
    /// The request described, when the trace is on and its filters want it.
    traced: Option<Described>,
}

impl Observation {
    /// A decoded request of `api` (its key and name) and `size` bytes, arriving.
    pub fn start(
        broker: &Arc<Broker>,
        ctx: &RequestContext,
        (api, name): (ApiKey, &'static str),
        size: usize,
        request: &dyn Message,
    ) -> Observation {
        let tracer = &broker.tracer;
        let traced = if tracer.is_on() {
            let topic_name = |id: &uuid::Uuid| broker.logs.topic_by_id(id).map(|t| t.name.clone());
            let described = describe::request(request, tracer.records(), &topic_name);
            tracer
                .wants(name, ctx.client_id.as_deref(), &described.topics)
                .then_some(described)
        } else {
            None
        };
        Observation {
            started: Instant::now(),
            api,
            name,
            request_bytes: size,
            traced,
        }
    }

    /// The handler's result: counted, traced, then framed.
    pub fn finish<R: Respond>(
        self,
        broker: &Broker,
        ctx: &RequestContext,
        response: R,
    ) -> Result<Option<ResponseFrame>, CodecError> {
        let mut codes = Vec::new();
        let message = response.message();
        if let Some(m) = message.filter(|_| broker.metrics.enabled || self.traced.is_some()) {
            describe::error_codes(m, &mut codes);
        }
        let response_text = self.traced.as_ref().map(|_| match message {
            Some(m) => describe::response(m, response.splices(), broker.tracer.records()),
            None => "no response (acks=0)".to_string(),
        });
        let frame = response.respond(self.api, ctx);
        let elapsed = self.started.elapsed();
        broker
            .metrics
            .request_done(self.name, ctx.api_version, elapsed.as_secs_f64(), &codes);
        if let (Some(request), Some(response)) = (self.traced, response_text) {
            broker.tracer.emit(TraceEvent {
                seq: 0,
                time_ms: crate::util::clock::now_ms(),
                peer: ctx.peer.to_string(),
                client_id: ctx.client_id.clone().unwrap_or_default(),
                api: self.name,
                version: ctx.wire_version,
                correlation_id: ctx.correlation_id,
                request_bytes: self.request_bytes,
                response_bytes: frame.as_ref().ok().and_then(|f| f.as_ref()).map_or(0, |f| f.len()),
                latency_us: elapsed.as_micros() as u64,
                request: cut(request.text),
                response: cut(response),
                errors: codes
                    .iter()
                    .filter(|&&c| c != 0)
                    .map(|&c| describe::code_name(c))
                    .collect(),
            });
        }
        frame
    }
}

/// The most of one description the trace keeps (a produce of thousands of
/// partitions would otherwise be one line of megabytes).
const MAX_DESCRIPTION: usize = 16 * 1024;

fn cut(mut text: String) -> String {
    if text.len() > MAX_DESCRIPTION {
        let mut end = MAX_DESCRIPTION;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let more = text.len() - end;
        text.truncate(end);
        text.push_str(&format!("… ({more} more bytes)"));
    }
    text
}
