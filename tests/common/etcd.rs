//! A three-member etcd cluster as processes on loopback addresses
//! (127.0.2.1–3, ports picked free), each with its own data directory: the
//! metadata store of the cluster tests. The binary is Debian's `etcd-server`
//! (`/usr/bin/etcd`, or `STROM_ETCD`). Without it a test is skipped with a
//! note, except in CI (`CI` set), where that is a failure: no silent green.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Member {
    name: String,
    host: Ipv4Addr,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

pub struct Etcd {
    members: Vec<Member>,
    dir: tempfile::TempDir,
    binary: PathBuf,
}

impl Etcd {
    /// Start `n` members and wait until the cluster answers; None (skipped)
    /// when there is no etcd binary outside CI.
    pub fn start(n: usize) -> Option<Etcd> {
        Etcd::start_at(n, |i| Ipv4Addr::new(127, 0, 2, i as u8))
    }

    /// [`Etcd::start`] with member `i` (1..=n) listening on `host(i)`.
    pub fn start_at(n: usize, host: impl Fn(usize) -> Ipv4Addr) -> Option<Etcd> {
        let binary = std::env::var_os("STROM_ETCD")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"));
        if !binary.exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI needs etcd ({}): scripts/test.sh installs Debian's etcd-server",
                binary.display()
            );
            eprintln!("skipped: no etcd at {} (apt-get install etcd-server)", binary.display());
            return None;
        }
        // A port free on 127.0.0.1 may be taken on a member's own address (an
        // outgoing connection of another test's etcd there), and any port can
        // be taken between picking it and etcd binding it: a member that
        // cannot listen exits, and the cluster is started again on new ports.
        let mut failures = Vec::new();
        for _ in 0..3 {
            // Held until every port is picked, so that no two are the same.
            let mut held = Vec::new();
            let mut free_port_on = |host: Ipv4Addr| {
                let listener = std::net::TcpListener::bind((host, 0)).unwrap();
                let port = listener.local_addr().unwrap().port();
                held.push(listener);
                port
            };
            let members = (1..=n)
                .map(|i| Member {
                    name: format!("e{i}"),
                    host: host(i),
                    client_port: free_port_on(host(i)),
                    peer_port: free_port_on(host(i)),
                    child: None,
                })
                .collect();
            drop(held);
            let mut etcd = Etcd {
                members,
                dir: tempfile::tempdir().unwrap(),
                binary: binary.clone(),
            };
            for i in 0..n {
                etcd.launch(i);
            }
            match etcd.wait_ready() {
                Ok(()) => return Some(etcd),
                Err(why) => failures.push(why),
            }
        }
        panic!("etcd did not start: {}", failures.join("\n---\n"));
    }

    fn launch(&mut self, i: usize) {
        let cluster: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}=http://{}:{}", m.name, m.host, m.peer_port))
            .collect();
        let m = &self.members[i];
        let peer = format!("http://{}:{}", m.host, m.peer_port);
        let client = format!("http://{}:{}", m.host, m.client_port);
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", m.name))).unwrap();
        let child = Command::new(&self.binary)
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(self.dir.path().join(&m.name))
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--initial-cluster", &cluster.join(",")])
            .args([
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                "strom-test",
            ])
            .args(["--heartbeat-interval", "100", "--election-timeout", "1000"])
            .args(["--unsafe-no-fsync", "--logger", "zap", "--log-level", "warn"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.members[i].child = Some(child);
    }

    /// Until a key can be written through every running member; the logs if
    /// a member exits first, or after 30 s.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        for i in 0..self.members.len() {
            while let Some(child) = self.members[i].child.as_mut() {
                if child.try_wait().is_ok_and(|exited| exited.is_some()) {
                    return Err(format!("{} exited: {}", self.members[i].name, self.logs()));
                }
                let m = &self.members[i];
                let ok = Command::new("etcdctl")
                    .env("ETCDCTL_API", "3")
                    .args(["--endpoints", &format!("http://{}:{}", m.host, m.client_port)])
                    .args(["--command-timeout", "2s", "put", "/strom-test-ready", "1"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if ok {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(format!("not ready in 30 s: {}", self.logs()));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// `host:port,…` of every member, for `etcd://…`.
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}:{}", m.host, m.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `etcd://…/<prefix>` for one test's brokers.
    pub fn store(&self, prefix: &str) -> String {
        format!("etcd://{}/{prefix}", self.endpoints())
    }

    /// `etcdctl` against the running members: its output (panics if it fails).
    pub fn ctl(&self, args: &[&str]) -> String {
        let endpoints: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.child.is_some())
            .map(|m| format!("http://{}:{}", m.host, m.client_port))
            .collect();
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &endpoints.join(",")])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// SIGSTOP / SIGCONT a member: frozen, it holds its connections open and
    /// answers nothing.
    pub fn signal(&self, i: usize, signal: &str) {
        if let Some(child) = &self.members[i].child {
            Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status()
                .unwrap();
        }
    }

    pub fn kill9(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start a killed member again on its data directory.
    pub fn restart(&mut self, i: usize) {
        self.launch(i);
        if let Err(why) = self.wait_ready() {
            panic!("etcd did not restart: {why}");
        }
    }

    fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| std::fs::read_to_string(self.dir.path().join(format!("{}.log", m.name))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill9(i);
        }
    }
}
