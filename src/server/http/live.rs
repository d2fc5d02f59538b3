//! The console's live views, as server-sent events: a topic's tail and the
//! protocol trace (with its switch and filters).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::stream::Stream;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::{unknown_topic, ApiResult};
use super::{ApiError, App, Ready};
use crate::config::observe::{parse_apis, TraceFilter};
use crate::log::browse::{self, BrowsedRecord};

#[derive(Deserialize)]
pub(super) struct TailQuery {
    partition: Option<i32>,
}

/// Records behind the high watermark past which a tail skips ahead (and says
/// so) rather than replay them all.
const TAIL_CATCH_UP: i64 = 100_000;
/// Records one step of a tail reads.
const TAIL_STEP: usize = 500;

fn event(kind: &str, data: &impl serde::Serialize) -> Event {
    Event::default()
        .event(kind)
        .data(serde_json::to_string(data).unwrap_or_else(|_| "null".into()))
}

/// Server-sent events: every record appended from now on (`record`), and a
/// `notice` whenever records are skipped (removed by retention before they
/// were read, or a backlog too long to replay).
pub(super) async fn tail(
    State(app): State<App>,
    Path(name): Path<String>,
    Query(q): Query<TailQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let ready = app.ready()?;
    let live = app.live_view()?;
    let topic = ready.broker.logs.topic(&name).ok_or_else(|| unknown_topic(&name))?;
    let positions: BTreeMap<i32, i64> = topic
        .partitions
        .iter()
        .filter(|p| q.partition.is_none_or(|want| want == p.index))
        .map(|p| (p.index, p.high_watermark()))
        .collect();
    let broker = ready.broker.clone();
    struct Tail {
        _live: tokio::sync::OwnedSemaphorePermit,
        broker: Arc<crate::broker::Broker>,
        name: String,
        positions: BTreeMap<i32, i64>,
        pending: std::collections::VecDeque<Event>,
        ended: bool,
    }
    let state = Tail {
        _live: live,
        broker,
        name,
        positions,
        pending: [event("notice", &json!({"message": "tailing from the high watermark"}))].into(),
        ended: false,
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(e) = s.pending.pop_front() {
                return Some((Ok(e), s));
            }
            if s.ended || *s.broker.shutting_down.borrow() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            let Some(topic) = s.broker.logs.topic(&s.name) else {
                s.pending
                    .push_back(event("notice", &json!({"message": "the topic was deleted"})));
                s.ended = true;
                continue;
            };
            let mut positions = s.positions.clone();
            let stopping = s.broker.shutting_down.clone();
            let step = tokio::task::spawn_blocking(move || {
                let mut events = Vec::new();
                let stop = || *stopping.borrow();
                let mut reading = browse::Reading { stop: &stop, unreadable: Vec::new() };
                // Each partition gets its share of a step, so a busy one does
                // not starve the others.
                let share = (TAIL_STEP / positions.len().max(1)).max(50);
                for log in &topic.partitions {
                    let mut budget = share;
                    let Some(pos) = positions.get_mut(&log.index) else {
                        continue;
                    };
                    let (start, hw) = (log.log_start_offset(), log.high_watermark());
                    if *pos < start {
                        events.push(event("notice", &json!({"partition": log.index, "skipped": start - *pos,
                            "message": format!("{} record(s) of partition {} were removed by retention before they could be shown", start - *pos, log.index)})));
                        *pos = start;
                    }
                    if hw - *pos > TAIL_CATCH_UP {
                        let to = hw - TAIL_STEP as i64;
                        events.push(event("notice", &json!({"partition": log.index, "skipped": to - *pos,
                            "message": format!("{} record(s) of partition {} skipped to keep up", to - *pos, log.index)})));
                        *pos = to;
                    }
                    let read = browse::read_records(log, (*pos, hw), log.index, &mut reading, |r: BrowsedRecord| {
                        events.push(event("record", &r));
                        budget -= 1;
                        if budget == 0 {
                            crate::record::records::Walk::Stop
                        } else {
                            crate::record::records::Walk::Continue
                        }
                    });
                    match read {
                        Ok(next) => *pos = next,
                        Err(e) => events.push(event("notice", &json!({"message": format!("partition {}: {e}", log.index)}))),
                    }
                }
                for u in reading.unreadable.drain(..) {
                    events.push(event("notice", &json!({"message": format!("passed over a batch that cannot be read: {u}")})));
                }
                (events, positions)
            })
            .await;
            if let Ok((events, positions)) = step {
                s.positions = positions;
                s.pending.extend(events);
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn trace_json(ready: &Ready) -> Value {
    let t = &ready.broker.tracer;
    let f = t.filter();
    json!({"on": t.is_on(), "records": t.records(),
           "filter": {"client": f.client, "apis": f.apis.join(","), "topic": f.topic}})
}

pub(super) async fn trace_state(State(app): State<App>) -> ApiResult {
    Ok(Json(trace_json(app.ready()?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TraceSettings {
    on: bool,
    #[serde(default)]
    records: bool,
    client: Option<String>,
    apis: Option<String>,
    topic: Option<String>,
}

pub(super) async fn set_trace(State(app): State<App>, Json(s): Json<TraceSettings>) -> ApiResult {
    let ready = app.ready()?;
    let blank = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    ready.broker.tracer.set_filter(TraceFilter {
        client: blank(s.client),
        apis: parse_apis(&s.apis.unwrap_or_default()),
        topic: blank(s.topic),
    });
    ready.broker.tracer.set(s.on, s.records);
    Ok(Json(trace_json(ready)))
}

/// The trace, live: `trace` events, and a `notice` when this page fell so far
/// behind that events were dropped for it (the broker never waits for it).
pub(super) async fn trace_stream(
    State(app): State<App>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let ready = app.ready()?;
    let live = app.live_view()?;
    let rx = ready.broker.tracer.subscribe();
    let stream = futures_util::stream::unfold((rx, live), |(mut rx, live)| async move {
        use tokio::sync::broadcast::error::RecvError;
        let e = match rx.recv().await {
            Ok(ev) => event("trace", &*ev),
            Err(RecvError::Lagged(n)) => event(
                "notice",
                &json!({"message": format!("{n} trace event(s) dropped: this page fell behind")}),
            ),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(e), (rx, live)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
