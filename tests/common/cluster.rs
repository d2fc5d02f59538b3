//! Three strom processes on 127.0.1.1–3 sharing one etcd (tests/common/etcd.rs):
//! the harness of the cluster tests.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::etcd::Etcd;
use super::netns;
use super::process::{free_port, BrokerProcess};
use super::wire::*;

/// One cluster at a time: three etcd members and three brokers are a lot for
/// two cores.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a broker's lease lives without renewal in these tests.
/// Long enough for anything a cluster test waits for.
pub const LONG: Duration = Duration::from_secs(30);

pub const SESSION_MS: u64 = 3_000;

pub fn host(node: i32) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1, node as u8)
}

pub struct Cluster {
    pub store: String,
    pub port: u16,
    /// Each broker's HTTP endpoint (/metrics) listens on its address at this port.
    pub http_port: u16,
    pub dirs: Vec<tempfile::TempDir>,
    /// More `serve` arguments for every broker (`{node}` in one becomes its id).
    pub extra: Vec<String>,
    pub brokers: Vec<Option<BrokerProcess>>,
    pub layout: Layout,
}

/// Where a cluster's brokers listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One PLAINTEXT listener on 127.0.1.n.
    Loopback,
    /// Besides, a SASL_PLAINTEXT listener on 127.0.3.n (same port).
    WithSasl,
    /// Besides, an SSL listener on 127.0.3.n (same port).
    WithTls,
    /// Each broker on a host of its own (tests/common/netns.rs).
    Netns,
}

/// Broker `node`'s second listener: SASL_PLAINTEXT in [`Layout::WithSasl`], SSL
/// in [`Layout::WithTls`].
pub fn sasl_addr(node: i32, port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(127, 0, 3, node as u8), port))
}

impl Cluster {
    /// `n` brokers, node ids 1..=n, their metadata under `/strom-test/<prefix>`.
    pub fn start(etcd: &Etcd, prefix: &str, n: usize) -> Cluster {
        Cluster::start_with(etcd, prefix, n, &[])
    }

    /// [`Cluster::start`] with more `serve` arguments for every broker.
    pub fn start_with(etcd: &Etcd, prefix: &str, n: usize, extra: &[&str]) -> Cluster {
        Cluster::start_as(Layout::Loopback, etcd, prefix, n, extra)
    }

    /// [`Cluster::start_with`], the brokers listening as `layout` says (for
    /// [`Layout::Netns`] a [`netns::Netns`] must exist).
    pub fn start_as(layout: Layout, etcd: &Etcd, prefix: &str, n: usize, extra: &[&str]) -> Cluster {
        let mut c = Cluster {
            store: etcd.store(&format!("strom-test/{prefix}")),
            port: free_port(),
            http_port: free_port(),
            dirs: (0..n).map(|_| tempfile::tempdir().unwrap()).collect(),
            extra: extra.iter().map(|a| a.to_string()).collect(),
            brokers: (0..n).map(|_| None).collect(),
            layout,
        };
        for node in 1..=n as i32 {
            c.spawn(node);
        }
        c
    }

    pub fn args(&self, node: i32) -> Vec<String> {
        vec![
            "--metadata-store".into(),
            self.store.clone(),
            "--node-id".into(),
            node.to_string(),
            "--override".into(),
            format!("broker.session.timeout.ms={SESSION_MS}"),
            "--override".into(),
            "broker.heartbeat.interval.ms=500".into(),
            "--override".into(),
            "replica.lag.time.max.ms=1000".into(),
            "--http-listen".into(),
            format!("{}:{}", self.host(node), self.http_port),
        ]
        .into_iter()
        // `{node}` in an extra argument is the broker's id (`rack-{node}`).
        .chain(self.extra.iter().map(|a| a.replace("{node}", &node.to_string())))
        .collect()
    }

    pub fn spawn(&mut self, node: i32) {
        let args = self.args(node);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let dir = self.dirs[node as usize - 1].path().join("data");
        let b = match self.layout {
            Layout::Netns => {
                let listen = netns::listener_args(node, self.port);
                let listen: Vec<&str> = listen.iter().map(String::as_str).collect();
                let ns = netns::namespace(node);
                BrokerProcess::spawn_in(Some(&ns), self.host(node), self.port, &listen, &dir, &args, None)
            }
            Layout::WithSasl | Layout::WithTls => {
                let second = if self.layout == Layout::WithTls {
                    "SSL"
                } else {
                    "SASL_PLAINTEXT"
                };
                let listeners = format!(
                    "PLAINTEXT://{},{second}://{}",
                    self.addr(node),
                    sasl_addr(node, self.port)
                );
                let listen = ["--listen", &listeners, "--advertised-listener", &listeners];
                BrokerProcess::spawn_in(None, host(node), self.port, &listen, &dir, &args, None)
            }
            Layout::Loopback => BrokerProcess::spawn_at(host(node), &dir, self.port, &args, None),
        };
        self.brokers[node as usize - 1] = Some(b);
    }

    /// Where clients reach broker `node`.
    pub fn host(&self, node: i32) -> Ipv4Addr {
        match self.layout {
            Layout::Netns => netns::address(node, netns::Link::Clients),
            Layout::Loopback | Layout::WithSasl | Layout::WithTls => host(node),
        }
    }

    pub fn addr(&self, node: i32) -> SocketAddr {
        SocketAddr::from((self.host(node), self.port))
    }

    pub fn broker(&mut self, node: i32) -> &mut BrokerProcess {
        self.brokers[node as usize - 1].as_mut().expect("running")
    }

    /// Stop every running broker cleanly.
    pub fn terminate_all(&mut self) {
        for b in self.brokers.iter_mut().flatten() {
            b.terminate();
        }
    }

    /// Send broker `node` a signal (`-STOP`, `-CONT`).
    pub fn signal(&mut self, node: i32, signal: &str) {
        let pid = self.broker(node).child.id().to_string();
        std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
    }

    pub fn stop(&mut self, node: i32) -> Option<BrokerProcess> {
        self.brokers[node as usize - 1].take()
    }
}

/// (the brokers Metadata lists as (id, host, port), the cluster id) from `addr`.
pub async fn listed(addr: SocketAddr) -> (Vec<(i32, String, i32)>, String) {
    let mut w = Wire::connect(addr).await;
    let m = w.call(12, &metadata_request(&[])).await;
    let mut brokers: Vec<(i32, String, i32)> = m
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.host.to_string(), b.port))
        .collect();
    brokers.sort();
    (brokers, m.cluster_id.map(|c| c.to_string()).unwrap_or_default())
}

/// Wait until the broker at `addr` lists exactly `nodes`; how long it took.
pub async fn until_listed(c: &Cluster, addr: SocketAddr, nodes: &[i32], within: Duration) -> Duration {
    let started = Instant::now();
    let expected: Vec<(i32, String, i32)> = nodes
        .iter()
        .map(|&n| (n, c.host(n).to_string(), c.port as i32))
        .collect();
    loop {
        let (brokers, _) = listed(addr).await;
        if brokers == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{addr} lists {brokers:?}, not {expected:?} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The controller id each of `nodes` reports in Metadata, once they agree on one
/// that is not `not` (and is alive); within `within`.
pub async fn agreed_controller(c: &Cluster, nodes: &[i32], not: i32, within: Duration) -> i32 {
    let started = Instant::now();
    loop {
        let mut seen = Vec::new();
        for &n in nodes {
            let mut w = Wire::connect(c.addr(n)).await;
            seen.push(w.call(12, &metadata_request(&[])).await.controller_id.0);
        }
        if seen.iter().all(|id| *id == seen[0] && *id != not && nodes.contains(id)) {
            return seen[0];
        }
        assert!(started.elapsed() < within, "no agreed controller: {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One partition as a broker's Metadata tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Told {
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub epoch: i32,
    pub isr: Vec<i32>,
    pub offline: Vec<i32>,
}

pub type TopicView = Option<BTreeMap<i32, Told>>;

/// Each partition of `topic` as the broker `node` tells it, by partition; None
/// while it does not know the topic.
pub async fn partitions(c: &Cluster, node: i32, topic: &str) -> TopicView {
    let mut w = Wire::connect(c.addr(node)).await;
    let mut request = metadata_request(&[topic]);
    request.allow_auto_topic_creation = false;
    let m = w.call(12, &request).await;
    let t = &m.topics[0];
    (t.error_code == 0).then(|| {
        t.partitions
            .iter()
            .map(|p| {
                let told = Told {
                    leader: p.leader_id.0,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    epoch: p.leader_epoch,
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                    offline: p.offline_replicas.iter().map(|b| b.0).collect(),
                };
                (p.partition_index, told)
            })
            .collect()
    })
}

/// Wait until every broker of `nodes` tells `topic` as `check` wants it; the
/// view of the last one.
pub async fn until_told(c: &Cluster, nodes: &[i32], topic: &str, check: impl Fn(&TopicView) -> bool) -> TopicView {
    let started = Instant::now();
    loop {
        let mut views = Vec::new();
        for &n in nodes {
            views.push(partitions(c, n, topic).await);
        }
        if views.iter().all(&check) {
            return views.pop().flatten();
        }
        assert!(started.elapsed() < LONG, "{topic} as told: {views:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The partition directories of `topic` in broker `node`'s data directory.
pub fn local_partitions(c: &Cluster, node: i32, topic: &str) -> Vec<i32> {
    let dir = c.dirs[node as usize - 1].path().join("data");
    let mut found: Vec<i32> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| {
                    e.ok()?
                        .file_name()
                        .to_str()?
                        .strip_prefix(&format!("{topic}-"))?
                        .parse()
                        .ok()
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// Waits until `node` holds exactly `expected` replicas of `topic` on disk.
/// A broker publishes a metadata image before its applier creates the
/// replicas, so what every broker tells can run ahead of the directories.
pub async fn until_local(c: &Cluster, node: i32, topic: &str, expected: &[i32]) {
    let started = Instant::now();
    loop {
        let found = local_partitions(c, node, topic);
        if found == expected {
            return;
        }
        assert!(
            started.elapsed() < LONG,
            "broker {node} holds {found:?} of {topic}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn bootstrap(c: &Cluster, nodes: &[i32]) -> String {
    nodes
        .iter()
        .map(|n| c.addr(*n).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// `n` brokers started, every one listing all of them, and the controller they
/// agree on.
pub async fn ready(etcd: &Etcd, prefix: &str, n: usize) -> (Cluster, i32) {
    ready_with(etcd, prefix, n, &[]).await
}

/// [`ready`] with more `serve` arguments for every broker.
pub async fn ready_with(etcd: &Etcd, prefix: &str, n: usize, extra: &[&str]) -> (Cluster, i32) {
    until_ready(Cluster::start_with(etcd, prefix, n, extra)).await
}

/// Every broker of `c` listing all of them, and the controller they agree on.
pub async fn until_ready(c: Cluster) -> (Cluster, i32) {
    let n = c.brokers.len();
    let nodes: Vec<i32> = (1..=n as i32).collect();
    for node in &nodes {
        until_listed(&c, c.addr(*node), &nodes, LONG).await;
    }
    let controller = agreed_controller(&c, &nodes, -1, LONG).await;
    (c, controller)
}

/// Produce one batch to the broker the cluster tells leads the partition.
/// Its metadata cache tells the news before its replicas have taken it, so
/// NOT_LEADER_OR_FOLLOWER (and, before the replica exists at all,
/// UNKNOWN_TOPIC_OR_PARTITION) is retried for a while, as a client would.
pub async fn produce_at_leader(wire: &mut Wire, topic: &str, partition: i32, records: Bytes) -> (i16, i64) {
    let started = Instant::now();
    loop {
        match produce(wire, topic, partition, records.clone()).await {
            (3 | 6, _) if started.elapsed() < LONG => tokio::time::sleep(Duration::from_millis(100)).await,
            answer => return answer,
        }
    }
}
