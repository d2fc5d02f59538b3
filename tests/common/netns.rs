//! Brokers on hosts of their own, made with network namespaces, so a test can
//! cut one network link of a broker and keep the others: the network
//! partitions of the cluster tests (`tests/cluster_netns.rs`).
//!
//! Each broker `n` runs in the namespace `strom-n<n>` with three interfaces,
//! each a veth pair whose other end is a port of a bridge in the test's own
//! namespace:
//!
//! | network | bridge    | broker `n`     | the test's side           |
//! |---------|-----------|----------------|---------------------------|
//! | clients | `strom-c` | 10.77.1.(10+n) | 10.77.1.1 (clients)       |
//! | peers   | `strom-p` | 10.77.2.(10+n) | —                         |
//! | etcd    | `strom-e` | 10.77.3.(10+n) | 10.77.3.1 (etcd members)  |
//!
//! A broker's CLIENT listener is on the first, its PEER listener (the
//! inter-broker one: replication, AlterPartition, WriteTxnMarkers) on the
//! second, and it reaches etcd over the third. Cutting a link is `ip link set
//! … down` on the bridge's end of it. (The kernels here have no `tc` qdiscs,
//! so one link per kind of traffic stands in for per-address filters.)
//!
//! Needs root (CAP_NET_ADMIN) and iproute2. Without them a test is skipped
//! with a note, except in CI (`CI` set), where that is a failure.

use std::net::Ipv4Addr;
use std::process::Command;

pub const NODES: i32 = 3;

/// The links of a broker a test can cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Clients,
    Peers,
    Etcd,
}

impl Link {
    const ALL: [Link; 3] = [Link::Clients, Link::Peers, Link::Etcd];

    fn subnet(self) -> u8 {
        match self {
            Link::Clients => 1,
            Link::Peers => 2,
            Link::Etcd => 3,
        }
    }

    fn bridge(self) -> &'static str {
        match self {
            Link::Clients => "strom-c",
            Link::Peers => "strom-p",
            Link::Etcd => "strom-e",
        }
    }

    /// The bridge's end of broker `node`'s veth (at most 15 characters).
    fn outer(self, node: i32) -> String {
        format!("{}{node}", self.bridge())
    }

    /// The broker's end, inside its namespace.
    fn inner(self) -> &'static str {
        match self {
            Link::Clients => "clients",
            Link::Peers => "peers",
            Link::Etcd => "etcd",
        }
    }
}

/// The namespaces and bridges, removed on drop.
pub struct Netns {
    _private: (),
}

pub fn namespace(node: i32) -> String {
    format!("strom-n{node}")
}

/// Broker `node`'s address on `link`'s network.
pub fn address(node: i32, link: Link) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, link.subnet(), 10 + node as u8)
}

/// The test's own address on the etcd network, where the etcd members listen.
pub const ETCD_HOST: Ipv4Addr = Ipv4Addr::new(10, 77, 3, 1);

fn ip(args: &[&str]) -> bool {
    Command::new("ip").args(args).output().is_ok_and(|o| o.status.success())
}

fn must(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    /// The three brokers' hosts and the networks between them; None (skipped)
    /// where namespaces cannot be made, outside CI.
    pub fn create() -> Option<Netns> {
        remove_all();
        if !ip(&["netns", "add", &namespace(1)]) {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI needs network namespaces (root and iproute2) for the partition tests"
            );
            eprintln!("skipped: cannot make a network namespace (run as root with iproute2)");
            return None;
        }
        let net = Netns { _private: () };
        for link in Link::ALL {
            must(&["link", "add", link.bridge(), "type", "bridge"]);
            must(&["link", "set", link.bridge(), "up"]);
        }
        must(&["addr", "add", "10.77.1.1/24", "dev", Link::Clients.bridge()]);
        must(&["addr", "add", &format!("{ETCD_HOST}/24"), "dev", Link::Etcd.bridge()]);
        for node in 1..=NODES {
            let ns = namespace(node);
            if node > 1 {
                must(&["netns", "add", &ns]);
            }
            must(&["-n", &ns, "link", "set", "lo", "up"]);
            for link in Link::ALL {
                let outer = link.outer(node);
                must(&[
                    "link",
                    "add",
                    &outer,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    link.inner(),
                    "netns",
                    &ns,
                ]);
                must(&["link", "set", &outer, "master", link.bridge(), "up"]);
                let inner_address = format!("{}/24", address(node, link));
                must(&["-n", &ns, "addr", "add", &inner_address, "dev", link.inner()]);
                must(&["-n", &ns, "link", "set", link.inner(), "up"]);
            }
        }
        Some(net)
    }

    /// Cut broker `node`'s `link`: nothing passes it until [`Netns::heal`].
    pub fn cut(&self, node: i32, link: Link) {
        must(&["link", "set", &link.outer(node), "down"]);
    }

    pub fn heal(&self, node: i32, link: Link) {
        must(&["link", "set", &link.outer(node), "up"]);
    }
}

/// `serve` arguments for broker `node`: its CLIENT and PEER listeners on
/// `port`, PEER the inter-broker one.
pub fn listener_args(node: i32, port: u16) -> Vec<String> {
    let listeners = format!(
        "CLIENT://{}:{port},PEER://{}:{port}",
        address(node, Link::Clients),
        address(node, Link::Peers)
    );
    vec![
        "--listen".into(),
        listeners.clone(),
        "--advertised-listener".into(),
        listeners,
        "--override".into(),
        "listener.security.protocol.map=CLIENT:PLAINTEXT,PEER:PLAINTEXT".into(),
        "--override".into(),
        "inter.broker.listener.name=PEER".into(),
    ]
}

/// Leftovers of an earlier run (killed before its drop) go first.
fn remove_all() {
    for node in 1..=NODES {
        ip(&["netns", "del", &namespace(node)]);
        for link in Link::ALL {
            ip(&["link", "del", &link.outer(node)]);
        }
    }
    for link in Link::ALL {
        ip(&["link", "del", link.bridge()]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        remove_all();
    }
}
