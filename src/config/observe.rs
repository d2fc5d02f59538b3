//! Settings of the windows into a running broker: the HTTP endpoint (metrics,
//! health, the web console), the protocol trace and the metrics' labels.

use std::net::SocketAddr;

use clap::Args;

use super::{ConfigError, Props};

/// Where the HTTP endpoint listens unless told otherwise: loopback only.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:9644";

/// Flags of `strom serve` for the HTTP endpoint, the console and the trace.
#[derive(Debug, Clone, Default, Args)]
pub struct ObserveArgs {
    /// The HTTP endpoint (/metrics, /health, the web console), HOST:PORT or
    /// `none` (http.listeners)  [default: 127.0.0.1:9644]
    #[arg(long = "http-listen", env = "STROM_HTTP_LISTEN")]
    pub http_listen: Option<String>,
    /// A bearer token the console and its API require (console.auth.token);
    /// /metrics and /health stay open
    #[arg(long = "console-token", env = "STROM_CONSOLE_TOKEN")]
    pub console_token: Option<String>,
    /// Show the console without any action that changes something
    /// (console.read.only)
    #[arg(long = "console-read-only", env = "STROM_CONSOLE_READ_ONLY")]
    pub console_read_only: bool,
    /// Log every request and response, decoded, under the `strom::trace` target
    /// (trace.protocol.enable)
    #[arg(long = "trace-protocol", env = "STROM_TRACE_PROTOCOL")]
    pub trace_protocol: bool,
    /// Show record keys and values in the trace (trace.records.enable)
    #[arg(long = "trace-records", env = "STROM_TRACE_RECORDS")]
    pub trace_records: bool,
    /// Trace only clients whose client id contains this (trace.filter.client)
    #[arg(long = "trace-client", env = "STROM_TRACE_CLIENT")]
    pub trace_client: Option<String>,
    /// Trace only these APIs, comma separated, e.g. Produce,Fetch (trace.filter.apis)
    #[arg(long = "trace-apis", env = "STROM_TRACE_APIS")]
    pub trace_apis: Option<String>,
    /// Trace only requests naming this topic (trace.filter.topic)
    #[arg(long = "trace-topic", env = "STROM_TRACE_TOPIC")]
    pub trace_topic: Option<String>,
}

/// What the trace shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceFilter {
    /// A substring of the client id.
    pub client: Option<String>,
    /// API names (as Kafka spells them: Produce, Fetch, ...), any case; empty = all.
    pub apis: Vec<String>,
    /// Requests that name this topic.
    pub topic: Option<String>,
}

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct ObserveConfig {
    /// None: no HTTP endpoint.
    pub http_listen: Option<SocketAddr>,
    /// The address was asked for (not the default): failing to bind it stops
    /// the broker, where the default's failure is only logged (a second broker
    /// on the machine still starts).
    pub http_listen_explicit: bool,
    pub console_token: Option<String>,
    pub console_read_only: bool,
    pub trace_protocol: bool,
    pub trace_records: bool,
    pub trace_filter: TraceFilter,
    /// Count anything at all (metrics.enable; off only to measure what
    /// counting costs): /metrics answers 404 when off.
    pub metrics_enabled: bool,
    /// Series labelled by topic and partition (metrics.partition.series.enable).
    pub partition_series: bool,
    /// Series labelled by consumer group (metrics.group.series.enable).
    pub group_series: bool,
}

impl Default for ObserveConfig {
    /// What a broker built in code (tests, embedding) gets: no HTTP endpoint,
    /// no trace, every series.
    fn default() -> Self {
        ObserveConfig {
            http_listen: None,
            http_listen_explicit: true,
            console_token: None,
            console_read_only: false,
            trace_protocol: false,
            trace_records: false,
            trace_filter: TraceFilter::default(),
            metrics_enabled: true,
            partition_series: true,
            group_series: true,
        }
    }
}

fn flag(cli: bool, props: &Props<'_>, key: &'static str) -> Result<bool, ConfigError> {
    Ok(cli || props.parse::<bool>(key)?.unwrap_or(false))
}

/// Parse a comma separated API list.
pub fn parse_apis(list: &str) -> Vec<String> {
    list.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

pub(super) fn resolve(args: &ObserveArgs, p: &Props<'_>) -> Result<ObserveConfig, ConfigError> {
    let asked = args.http_listen.clone().or(p.string("http.listeners"));
    let http_listen_explicit = asked.is_some();
    let listen = asked.unwrap_or_else(|| DEFAULT_HTTP_LISTEN.to_string());
    let listen = listen.trim();
    // Kafka-style `http://host:port` is accepted as well as `host:port`.
    let bare = listen.strip_prefix("http://").unwrap_or(listen);
    let http_listen = match bare {
        "" | "none" | "off" => None,
        addr => Some(
            addr.parse()
                .map_err(|e: std::net::AddrParseError| ConfigError::Invalid {
                    key: "http.listeners",
                    value: addr.to_string(),
                    reason: format!("{e}: expected HOST:PORT with an IP address, or none"),
                })?,
        ),
    };
    let console_token = args.console_token.clone().or(p.string("console.auth.token"));
    // An empty token would quietly mean "no token": refuse it.
    if console_token.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(ConfigError::Invalid {
            key: "console.auth.token",
            value: String::new(),
            reason: "an empty token protects nothing; leave it unset for no token".into(),
        });
    }
    Ok(ObserveConfig {
        http_listen,
        http_listen_explicit,
        console_token,
        console_read_only: flag(args.console_read_only, p, "console.read.only")?,
        trace_protocol: flag(args.trace_protocol, p, "trace.protocol.enable")?,
        trace_records: flag(args.trace_records, p, "trace.records.enable")?,
        trace_filter: TraceFilter {
            client: args.trace_client.clone().or(p.string("trace.filter.client")),
            apis: parse_apis(
                &args
                    .trace_apis
                    .clone()
                    .or(p.string("trace.filter.apis"))
                    .unwrap_or_default(),
            ),
            topic: args.trace_topic.clone().or(p.string("trace.filter.topic")),
        },
        metrics_enabled: p.parse("metrics.enable")?.unwrap_or(true),
        partition_series: p.parse("metrics.partition.series.enable")?.unwrap_or(true),
        group_series: p.parse("metrics.group.series.enable")?.unwrap_or(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_console_token_is_refused_and_none_turns_http_off() {
        let props = std::collections::HashMap::new();
        let p = Props(&props);
        let empty = ObserveArgs {
            console_token: Some(String::new()),
            ..Default::default()
        };
        assert!(resolve(&empty, &p).is_err());
        let off = ObserveArgs {
            http_listen: Some("none".into()),
            ..Default::default()
        };
        let c = resolve(&off, &p).unwrap();
        assert!(c.http_listen.is_none());
        let default = resolve(&ObserveArgs::default(), &p).unwrap();
        assert_eq!(default.http_listen, Some(DEFAULT_HTTP_LISTEN.parse().unwrap()));
        assert!(!default.http_listen_explicit);
    }
}
