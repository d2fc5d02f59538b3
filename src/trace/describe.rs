//! Requests and responses as the trace shows them: Produce and Fetch with
//! their partitions, offsets, sizes and (when asked) records; the login's
//! secrets never; every other message as its decoded fields, compacted.
//!
//! Messages arrive as [`Message`] (any decoded kafka-protocol message); the few
//! that get a description of their own are picked out by type.

use std::any::Any;
use std::fmt::{Debug, Write};
use std::sync::LazyLock;

use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, FetchResponse,
    MetadataResponse, ProduceRequest, ProduceResponse, SaslAuthenticateRequest, SaslAuthenticateResponse,
};
use regex::Regex;

use crate::protocol::response::Splices;
use crate::record::batch::Batches;
use crate::record::records::{walk, Walk};

/// A decoded request or response of any API.
pub trait Message: Debug + Any + Send {
    fn as_any(&self) -> &dyn Any;
}

impl<T: Debug + Any + Send> Message for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The longest description of a message without one of its own.
const MAX_GENERIC: usize = 1000;
/// Records shown per partition, and characters per key or value.
const MAX_RECORDS: usize = 20;
const MAX_FIELD: usize = 120;

/// Kafka's name of an error code; NONE for 0.
pub fn code_name(code: i16) -> String {
    if code == 0 {
        "NONE".into()
    } else {
        crate::metrics::error_name(code)
    }
}

/// A request described, and the topics it names (for the topic filter).
pub struct Described {
    pub text: String,
    pub topics: Vec<String>,
}

/// Describe a request. `topic_name` resolves topic ids (Fetch v13+).
pub fn request(message: &dyn Message, records: bool, topic_name: &dyn Fn(&uuid::Uuid) -> Option<String>) -> Described {
    let any = message.as_any();
    if let Some(r) = any.downcast_ref::<ProduceRequest>() {
        return produce_request(r, records);
    }
    if let Some(r) = any.downcast_ref::<FetchRequest>() {
        return fetch_request(r, topic_name);
    }
    if let Some(r) = any.downcast_ref::<SaslAuthenticateRequest>() {
        return plain(format!("{} bytes of credentials (not shown)", r.auth_bytes.len()));
    }
    if let Some(r) = any.downcast_ref::<AlterUserScramCredentialsRequest>() {
        let users: Vec<String> = r
            .upsertions
            .iter()
            .map(|u| format!("upsert {}", u.name.as_str()))
            .chain(r.deletions.iter().map(|d| format!("delete {}", d.name.as_str())))
            .collect();
        return plain(format!("{} (salted passwords not shown)", users.join(", ")));
    }
    if let Some(r) = any.downcast_ref::<ApiVersionsRequest>() {
        return plain(format!(
            "client software {} {}",
            clean(r.client_software_name.as_str()),
            clean(r.client_software_version.as_str())
        ));
    }
    let raw = redact_configs(&format!("{message:?}"));
    Described {
        topics: topics_in(&raw),
        text: compact(&raw),
    }
}

/// A name from a client, safe for one log line: control characters escaped.
pub fn clean(name: &str) -> String {
    if name.chars().any(char::is_control) {
        name.escape_debug().to_string()
    } else {
        name.to_string()
    }
}

/// Config values whose names say they are secret (passwords, keys, JAAS
/// lines, as Kafka's PASSWORD configs) replaced, wherever a request or
/// response carries `name: "…", … value: Some("…")`.
fn redact_configs(raw: &str) -> String {
    static SECRET: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"(name: "[^"]*(?:password|jaas|secret|\.key"|credential|token)[^"]*"[^}]*?value: )Some\("(?:[^"\\]|\\.)*"\)"#)
            .expect("valid")
    });
    SECRET.replace_all(raw, "${1}Some(\"(redacted)\")").into_owned()
}

/// Describe a response; `splices` resolves a fetch's records to their files.
pub fn response(message: &dyn Message, splices: Option<&Splices>, records: bool) -> String {
    let any = message.as_any();
    if let Some(r) = any.downcast_ref::<ProduceResponse>() {
        return produce_response(r);
    }
    if let Some(r) = any.downcast_ref::<FetchResponse>() {
        return fetch_response(r, splices, records);
    }
    if let Some(r) = any.downcast_ref::<SaslAuthenticateResponse>() {
        return format!(
            "{} {} ({} bytes of the server's answer not shown)",
            code_name(r.error_code),
            r.error_message.as_deref().unwrap_or(""),
            r.auth_bytes.len()
        );
    }
    if let Some(r) = any.downcast_ref::<ApiVersionsResponse>() {
        return format!("{}, {} APIs served", code_name(r.error_code), r.api_keys.len());
    }
    if let Some(r) = any.downcast_ref::<MetadataResponse>() {
        return metadata_response(r);
    }
    compact(&redact_configs(&format!("{message:?}")))
}

/// Every error code in a response (the metrics' `strom_request_errors_total`).
pub fn error_codes(message: &dyn Message, out: &mut Vec<i16>) {
    let any = message.as_any();
    // The two hot paths are walked; Debug of a fetch would print its records.
    if let Some(r) = any.downcast_ref::<ProduceResponse>() {
        out.extend(
            r.responses
                .iter()
                .flat_map(|t| t.partition_responses.iter())
                .map(|p| p.error_code),
        );
        return;
    }
    if let Some(r) = any.downcast_ref::<FetchResponse>() {
        out.push(r.error_code);
        out.extend(
            r.responses
                .iter()
                .flat_map(|t| t.partitions.iter())
                .map(|p| p.error_code),
        );
        return;
    }
    if let Some(r) = any.downcast_ref::<MetadataResponse>() {
        // Large (every partition of every topic): walked, not printed.
        for t in &r.topics {
            out.push(t.error_code);
            out.extend(t.partitions.iter().map(|p| p.error_code));
        }
        return;
    }
    static CODE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\berror_code: (-?\d+)").expect("valid"));
    let raw = format!("{message:?}");
    out.extend(CODE.captures_iter(&raw).filter_map(|c| c[1].parse::<i16>().ok()));
}

fn plain(text: String) -> Described {
    Described {
        text,
        topics: Vec::new(),
    }
}

/// The topic names a message's Debug text holds.
fn topics_in(raw: &str) -> Vec<String> {
    static TOPIC: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r#"\b(?:name|topic|topic_name): (?:Some\()?"((?:[^"\\]|\\.)*)""#).expect("valid"));
    let mut topics: Vec<String> = TOPIC.captures_iter(raw).map(|c| c[1].to_string()).collect();
    topics.sort();
    topics.dedup();
    topics
}

/// A message's Debug text without what says nothing: empty tagged fields, nil
/// topic ids, struct names of list items; cut at [`MAX_GENERIC`].
fn compact(raw: &str) -> String {
    static NOISE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(, )?unknown_tagged_fields: \{\}|(, )?topic_id: 00000000-0000-0000-0000-000000000000")
            .expect("valid")
    });
    static ITEM: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b[A-Z][A-Za-z0-9]* \{ ").expect("valid"));
    let text = NOISE.replace_all(raw, "");
    let text = ITEM.replace_all(&text, "{ ");
    let text = text.replace("{ , ", "{ ").replace("{  }", "{}");
    // Error codes with Kafka's names: `error_code: 79 MEMBER_ID_REQUIRED`.
    static CODE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\berror_code: (-?[1-9]\d*)").expect("valid"));
    let text = CODE.replace_all(&text, |c: &regex::Captures<'_>| {
        let name = c[1].parse::<i16>().map(code_name).unwrap_or_default();
        format!("error_code: {} {name}", &c[1])
    });
    cut(&text, MAX_GENERIC)
}

fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &text[..end], text.len() - end)
}

/// A key or value for the eye: UTF-8 text quoted, anything else as hex.
fn show(bytes: Option<&[u8]>) -> String {
    match bytes {
        None => "null".into(),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => format!("{:?}", cut(s, MAX_FIELD)),
            Err(_) => {
                let mut hex = String::from("0x");
                for byte in b.iter().take(MAX_FIELD / 2) {
                    let _ = write!(hex, "{byte:02x}");
                }
                if b.len() > MAX_FIELD / 2 {
                    hex.push('…');
                }
                hex
            }
        },
    }
}

/// Batches and records of a record set: a count, and with `records` each one.
fn record_set(data: &[u8], records: bool, out: &mut String) {
    let (mut batches, mut count, mut first, mut last) = (0, 0i64, None, 0i64);
    let mut shown = Vec::new();
    for (at, header) in Batches::new(data) {
        batches += 1;
        count += header.records_count.max(0) as i64;
        first.get_or_insert(header.base_offset);
        last = header.last_offset();
        if records && shown.len() < MAX_RECORDS && !header.is_control() {
            let batch = &data[at..at + header.total_size()];
            let _ = walk(batch, &header, 32 << 20, |r| {
                shown.push(format!(
                    "      @{} key={} value={}",
                    header.base_offset + r.offset_delta as i64,
                    show(r.key),
                    show(r.value)
                ));
                Ok(if shown.len() < MAX_RECORDS {
                    Walk::Continue
                } else {
                    Walk::Stop
                })
            });
        }
    }
    let _ = write!(out, "{batches} batch(es), {count} record(s), {} B", data.len());
    if let Some(first) = first.filter(|&f| f >= 0 && (f, last) != (0, count - 1)) {
        let _ = write!(out, ", offsets {first}..={last}");
    }
    for line in shown {
        out.push('\n');
        out.push_str(&line);
    }
}

fn produce_request(r: &ProduceRequest, records: bool) -> Described {
    let mut out = format!("acks={} timeout={}ms", r.acks, r.timeout_ms);
    if let Some(id) = &r.transactional_id {
        let _ = write!(out, " transactional_id={:?}", id.as_str());
    }
    let mut topics = Vec::new();
    for t in &r.topic_data {
        topics.push(t.name.to_string());
        for p in &t.partition_data {
            let _ = write!(out, "; {}[{}]: ", clean(t.name.as_str()), p.index);
            match &p.records {
                Some(data) => record_set(data, records, &mut out),
                None => out.push_str("no records"),
            }
        }
    }
    Described { text: out, topics }
}

fn produce_response(r: &ProduceResponse) -> String {
    let mut parts = Vec::new();
    for t in &r.responses {
        for p in &t.partition_responses {
            let mut s = format!("{}[{}]: {}", clean(t.name.as_str()), p.index, code_name(p.error_code));
            if p.error_code == 0 {
                let _ = write!(s, " base_offset={}", p.base_offset);
            } else if let Some(m) = &p.error_message {
                let _ = write!(s, " {:?}", m.as_str());
            }
            parts.push(s);
        }
    }
    with_throttle(parts.join("; "), r.throttle_time_ms)
}

fn with_throttle(text: String, throttle_ms: i32) -> String {
    if throttle_ms > 0 {
        format!("{text} throttled {throttle_ms} ms")
    } else {
        text
    }
}

fn fetch_request(r: &FetchRequest, topic_name: &dyn Fn(&uuid::Uuid) -> Option<String>) -> Described {
    let isolation = if r.isolation_level == 1 {
        "read_committed"
    } else {
        "read_uncommitted"
    };
    let mut out = format!(
        "max_wait={}ms min_bytes={} max_bytes={} {isolation}",
        r.max_wait_ms, r.min_bytes, r.max_bytes
    );
    if r.session_id != 0 || r.session_epoch > 0 {
        let _ = write!(out, " session={}/{}", r.session_id, r.session_epoch);
    }
    let mut topics = Vec::new();
    for t in &r.topics {
        let name = if t.topic.is_empty() {
            topic_name(&t.topic_id).unwrap_or_else(|| t.topic_id.to_string())
        } else {
            clean(t.topic.as_str())
        };
        for p in &t.partitions {
            let _ = write!(out, "; {name}[{}]@{}", p.partition, p.fetch_offset);
        }
        topics.push(name);
    }
    if r.topics.is_empty() {
        out.push_str("; no partitions (session unchanged)");
    }
    Described { text: out, topics }
}

fn fetch_response(r: &FetchResponse, splices: Option<&Splices>, records: bool) -> String {
    let mut out = code_name(r.error_code);
    for t in &r.responses {
        let name = if t.topic.is_empty() {
            t.topic_id.to_string()
        } else {
            clean(t.topic.as_str())
        };
        for p in &t.partitions {
            let _ = write!(
                out,
                "; {name}[{}]: {} hw={} lso={} start={}",
                p.partition_index,
                code_name(p.error_code),
                p.high_watermark,
                p.last_stable_offset,
                p.log_start_offset
            );
            let Some(data) = p.records.as_ref().filter(|d| !d.is_empty()) else {
                continue;
            };
            out.push_str(", ");
            // A stand-in for a file range: read it back only to show records.
            match splices.and_then(|s| s.slice_for(data)) {
                Some(slice) if records => match slice.read() {
                    Ok(bytes) => record_set(&bytes, true, &mut out),
                    Err(e) => {
                        let _ = write!(out, "{} B (unreadable: {e})", slice.len);
                    }
                },
                Some(slice) => {
                    let _ = write!(out, "{} B of records", slice.len);
                }
                None => record_set(data, records, &mut out),
            }
        }
    }
    with_throttle(out, r.throttle_time_ms)
}

fn metadata_response(r: &MetadataResponse) -> String {
    let brokers: Vec<String> = r
        .brokers
        .iter()
        .map(|b| format!("{}@{}:{}", b.node_id.0, b.host.as_str(), b.port))
        .collect();
    let topics: Vec<String> = r
        .topics
        .iter()
        .map(|t| {
            let name = clean(t.name.as_ref().map_or("?", |n| n.as_str()));
            if t.error_code == 0 {
                format!("{name} ({} partitions)", t.partitions.len())
            } else {
                format!("{name} {}", code_name(t.error_code))
            }
        })
        .collect();
    format!(
        "brokers [{}] controller {} topics [{}]",
        brokers.join(", "),
        r.controller_id.0,
        topics.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::{MetadataRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn generic_messages_are_compacted_and_name_their_topics() {
        let mut t = MetadataRequestTopic::default();
        t.name = Some(TopicName(StrBytes::from_static_str("orders")));
        let mut r = MetadataRequest::default();
        r.topics = Some(vec![t]);
        let d = request(&r, false, &|_| None);
        assert_eq!(d.topics, vec!["orders".to_string()]);
        assert!(!d.text.contains("unknown_tagged_fields"), "{}", d.text);
        assert!(!d.text.contains("00000000-"), "{}", d.text);
        assert!(d.text.contains("\"orders\""), "{}", d.text);
    }

    #[test]
    fn secret_config_values_and_control_characters_are_not_logged() {
        use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
        use kafka_protocol::messages::IncrementalAlterConfigsRequest;
        let mut c = AlterableConfig::default();
        c.name = StrBytes::from_static_str("ssl.keystore.password");
        c.value = Some(StrBytes::from_static_str("KEYSTORE-SECRET"));
        let mut ok = AlterableConfig::default();
        ok.name = StrBytes::from_static_str("retention.ms");
        ok.value = Some(StrBytes::from_static_str("1000"));
        let mut res = AlterConfigsResource::default();
        res.configs = vec![c, ok];
        let mut r = IncrementalAlterConfigsRequest::default();
        r.resources = vec![res];
        let d = request(&r, false, &|_| None);
        assert!(!d.text.contains("KEYSTORE-SECRET"), "{}", d.text);
        assert!(
            d.text.contains("(redacted)") && d.text.contains("\"1000\""),
            "{}",
            d.text
        );
        assert_eq!(clean("a\nINFO forged"), "a\\nINFO forged");
    }

    #[test]
    fn credentials_are_never_shown() {
        let mut r = SaslAuthenticateRequest::default();
        r.auth_bytes = bytes::Bytes::from_static(b"\0alice\0secret");
        let d = request(&r, true, &|_| None);
        assert!(!d.text.contains("secret"), "{}", d.text);
    }

    #[test]
    fn produce_shows_partitions_counts_and_records_when_asked() {
        use crate::record::records::{build_batch, NewRecord};
        use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        let batch = build_batch(
            &[NewRecord {
                key: Some(bytes::Bytes::from_static(b"k1")),
                value: Some(bytes::Bytes::from_static(b"{\"orderId\":1}")),
                timestamp: 1,
                ..Default::default()
            }],
            None,
        );
        let mut p = PartitionProduceData::default();
        p.index = 2;
        p.records = Some(batch.into());
        let mut t = TopicProduceData::default();
        t.name = TopicName(StrBytes::from_static_str("orders"));
        t.partition_data.push(p);
        let mut r = ProduceRequest::default();
        r.acks = -1;
        r.topic_data.push(t);
        let d = request(&r, false, &|_| None);
        assert!(d.text.contains("orders[2]: 1 batch(es), 1 record(s)"), "{}", d.text);
        assert!(!d.text.contains("orderId"));
        let d = request(&r, true, &|_| None);
        assert!(d.text.contains(r#"key="k1" value="{\"orderId\":1}""#), "{}", d.text);
        assert_eq!(d.topics, vec!["orders".to_string()]);
    }

    #[test]
    fn error_codes_are_found_in_any_response() {
        let mut r = kafka_protocol::messages::HeartbeatResponse::default();
        r.error_code = 27;
        let mut codes = Vec::new();
        error_codes(&r, &mut codes);
        assert_eq!(codes, vec![27]);
        assert_eq!(code_name(27), "REBALANCE_IN_PROGRESS");
    }
}
