//! Once a second, what the broker did in that second (bytes in and out,
//! records in, requests) and each topic's high watermarks: the console's
//! throughput sparklines and message rates.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use super::App;

/// Five minutes of seconds.
const KEEP: usize = 300;
/// Seconds a topic's message rate is averaged over.
const RATE_WINDOW: usize = 10;

/// One second of the broker's work.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// End of the second, ms since the epoch.
    pub time_ms: i64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub messages_in: u64,
    pub requests: u64,
}

#[derive(Default)]
pub struct Samples {
    seconds: Mutex<VecDeque<Sample>>,
    /// Per topic, the sum of its high watermarks at each of the last seconds.
    topic_ends: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl Samples {
    pub fn recent(&self) -> Vec<Sample> {
        self.seconds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect()
    }

    /// Records per second appended to `topic` lately.
    pub fn topic_rate(&self, topic: &str) -> f64 {
        let ends = self.topic_ends.lock().unwrap_or_else(|e| e.into_inner());
        match ends.get(topic) {
            Some(e) if e.len() >= 2 => {
                let (first, last) = (e[0], e[e.len() - 1]);
                (last - first).max(0) as f64 / (e.len() - 1) as f64
            }
            _ => 0.0,
        }
    }
}

/// Sample every second until shutdown.
pub fn spawn_sampler(app: App, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut last = [0u64; 4];
        let mut first = true;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
            let Some(ready) = app.0.ready.get() else {
                continue;
            };
            let t = &ready.broker.metrics.totals;
            let now = [
                t.bytes_in.load(Ordering::Relaxed),
                t.bytes_out.load(Ordering::Relaxed),
                t.messages_in.load(Ordering::Relaxed),
                t.requests.load(Ordering::Relaxed),
            ];
            if !first {
                let d = |i: usize| now[i].saturating_sub(last[i]);
                let mut seconds = ready.samples.seconds.lock().unwrap_or_else(|e| e.into_inner());
                seconds.push_back(Sample {
                    time_ms: crate::util::clock::now_ms(),
                    bytes_in: d(0),
                    bytes_out: d(1),
                    messages_in: d(2),
                    requests: d(3),
                });
                while seconds.len() > KEEP {
                    seconds.pop_front();
                }
            }
            (last, first) = (now, false);
            let mut ends = ready.samples.topic_ends.lock().unwrap_or_else(|e| e.into_inner());
            let topics = ready.broker.logs.topics();
            ends.retain(|name, _| topics.iter().any(|t| &t.name == name));
            for topic in topics {
                let sum: i64 = topic.partitions.iter().map(|p| p.high_watermark()).sum();
                let e = ends.entry(topic.name.clone()).or_default();
                e.push_back(sum);
                while e.len() > RATE_WINDOW + 1 {
                    e.pop_front();
                }
            }
        }
    });
}
