//! Results: one `Run` per benchmark, printed as a table or as JSON.

use std::fmt::Write;

use serde::Serialize;

#[derive(Serialize, Debug)]
pub struct Report {
    pub bootstrap: String,
    pub runs: Vec<Run>,
}

#[derive(Serialize, Debug, Clone)]
pub struct Run {
    /// e.g. "produce acks=1".
    pub name: String,
    pub topic: String,
    /// The parameters the run used, as `key=value` words.
    pub params: Vec<String>,
    /// Records delivered (produce) or received (consume, latency).
    pub records: u64,
    /// Bytes of record values.
    pub bytes: u64,
    /// Wall time of the measured part.
    pub seconds: f64,
    pub msgs_per_sec: f64,
    /// 10^6 bytes of record values per second.
    pub mb_per_sec: f64,
    /// Records that failed (delivery errors, or records missing at the consumer).
    pub errors: u64,
    /// End-to-end latency, for the latency run.
    pub latency_ms: Option<Latency>,
    /// The broker's CPU seconds (user + system) over the measured part, when known.
    pub broker_cpu_s: Option<f64>,
    /// `broker_cpu_s` per 10^9 bytes of record values.
    pub broker_cpu_s_per_gb: Option<f64>,
}

impl Run {
    pub fn new(name: String, topic: String, params: Vec<String>, records: u64, bytes: u64, seconds: f64) -> Run {
        let seconds = seconds.max(1e-9);
        Run {
            name,
            topic,
            params,
            records,
            bytes,
            seconds,
            msgs_per_sec: records as f64 / seconds,
            mb_per_sec: bytes as f64 / seconds / 1e6,
            errors: 0,
            latency_ms: None,
            broker_cpu_s: None,
            broker_cpu_s_per_gb: None,
        }
    }

    /// With the broker's CPU seconds over the measured part.
    pub fn with_broker_cpu(mut self, seconds: Option<f64>) -> Run {
        self.broker_cpu_s = seconds;
        self.broker_cpu_s_per_gb = seconds
            .filter(|_| self.bytes > 0)
            .map(|s| s / (self.bytes as f64 / 1e9));
        self
    }
}

/// Percentiles of the end-to-end latency, in milliseconds.
#[derive(Serialize, Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    /// From latencies in microseconds; None when there are none.
    pub fn from_micros(mut samples: Vec<u64>) -> Option<Latency> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        // Nearest rank: the smallest sample with at least q of all samples at or below it.
        let at = |q: f64| {
            let rank = (q * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1] as f64 / 1000.0
        };
        let sum: u128 = samples.iter().map(|&s| s as u128).sum();
        Some(Latency {
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: *samples.last().expect("not empty") as f64 / 1000.0,
            mean: sum as f64 / samples.len() as f64 / 1000.0,
        })
    }
}

impl Report {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "broker {}", self.bootstrap);
        let _ = writeln!(
            out,
            "{:<22} {:>10} {:>8} {:>12} {:>9} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
            "run",
            "records",
            "seconds",
            "msg/s",
            "MB/s",
            "errors",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "cpu s",
            "cpu s/GB"
        );
        for r in &self.runs {
            let lat = |f: fn(&Latency) -> f64| {
                r.latency_ms
                    .as_ref()
                    .map(|l| format!("{:.2}", f(l)))
                    .unwrap_or_default()
            };
            let cpu = |v: Option<f64>| v.map(|s| format!("{s:.3}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "{:<22} {:>10} {:>8.2} {:>12.0} {:>9.1} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
                r.name,
                r.records,
                r.seconds,
                r.msgs_per_sec,
                r.mb_per_sec,
                r.errors,
                lat(|l| l.p50),
                lat(|l| l.p99),
                lat(|l| l.p999),
                lat(|l| l.max),
                cpu(r.broker_cpu_s),
                cpu(r.broker_cpu_s_per_gb),
            );
        }
        for r in &self.runs {
            let _ = writeln!(out, "  {}: topic {} {}", r.name, r.topic, r.params.join(" "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let l = Latency::from_micros((1..=1000).collect()).unwrap();
        assert_eq!(l.p50, 0.5);
        assert_eq!(l.p99, 0.99);
        assert_eq!(l.p999, 0.999);
        assert_eq!(l.max, 1.0);
        assert!((l.mean - 0.5005).abs() < 1e-9);
        let one = Latency::from_micros(vec![2500]).unwrap();
        assert_eq!((one.p50, one.p999, one.max), (2.5, 2.5, 2.5));
        assert_eq!(Latency::from_micros(vec![]), None);
    }

    #[test]
    fn rates_come_from_records_bytes_and_time() {
        let r = Run::new("produce".into(), "t".into(), vec![], 2000, 2_048_000, 2.0);
        assert_eq!(r.msgs_per_sec, 1000.0);
        assert_eq!(r.mb_per_sec, 1.024);
        let report = Report {
            bootstrap: "b:1".into(),
            runs: vec![r],
        };
        assert!(report.to_table().contains("produce"));
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["runs"][0]["records"], 2000);
        assert_eq!(json["runs"][0]["broker_cpu_s"], serde_json::Value::Null);
    }

    #[test]
    fn broker_cpu_is_per_gb_of_record_values() {
        let r = Run::new("consume".into(), "t".into(), vec![], 1000, 500_000_000, 1.0).with_broker_cpu(Some(0.2));
        assert_eq!((r.broker_cpu_s, r.broker_cpu_s_per_gb), (Some(0.2), Some(0.4)));
        let report = Report {
            bootstrap: "b:1".into(),
            runs: vec![r],
        };
        assert!(report.to_table().contains("0.400"));
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["runs"][0]["broker_cpu_s_per_gb"], 0.4);
        let none = Run::new("c".into(), "t".into(), vec![], 0, 0, 1.0).with_broker_cpu(Some(0.1));
        assert_eq!((none.broker_cpu_s, none.broker_cpu_s_per_gb), (Some(0.1), None));
    }
}
