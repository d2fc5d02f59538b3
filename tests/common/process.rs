//! The real `strom` binary as a child process, and a small tmpfs to fill up: what
//! the fault tests need beyond an in-process broker.
#![allow(dead_code)]

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A port free on 127.0.0.1 that no other test of this binary was given: the
/// kernel may hand the same free port to two tests picking at once, and the
/// second broker, unable to listen, would go unnoticed while the first answers
/// its probe (CI once saw that test's connections reset when the first stopped).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if GIVEN.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return port;
        }
    }
}

pub struct BrokerProcess {
    pub child: Child,
    /// The loopback address it listens on (127.0.0.1 unless a test chose one).
    pub host: std::net::Ipv4Addr,
    pub port: u16,
    /// Where the broker's log lines (stderr and stdout) go.
    pub log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl BrokerProcess {
    /// Start the binary on `dir` with a free port and wait until it accepts.
    pub fn spawn(dir: &Path, extra: &[&str]) -> BrokerProcess {
        Self::spawn_on(dir, free_port(), extra)
    }

    pub fn spawn_on(dir: &Path, port: u16, extra: &[&str]) -> BrokerProcess {
        Self::spawn_logging_to(dir, port, extra, None)
    }

    /// Like `spawn_on`, with the broker's output going to `output` (e.g.
    /// /dev/full) instead of a log file.
    pub fn spawn_logging_to(dir: &Path, port: u16, extra: &[&str], output: Option<&Path>) -> BrokerProcess {
        Self::spawn_at(std::net::Ipv4Addr::LOCALHOST, dir, port, extra, output)
    }

    /// Start the binary listening on `host:port` (any 127.x.y.z: several
    /// brokers of one cluster can each keep their own address across restarts).
    pub fn spawn_at(
        host: std::net::Ipv4Addr,
        dir: &Path,
        port: u16,
        extra: &[&str],
        output: Option<&Path>,
    ) -> BrokerProcess {
        let listener = format!("{host}:{port}");
        let listen = ["--listen", &listener, "--advertised-listener", &listener];
        Self::spawn_in(None, host, port, &listen, dir, extra, output)
    }

    /// Start the binary with `listen` (its listener arguments), inside the
    /// network namespace `netns` if one is given (`ip netns exec` runs it in
    /// place: the child's pid is the broker's); wait until `host:port` accepts.
    pub fn spawn_in(
        netns: Option<&str>,
        host: std::net::Ipv4Addr,
        port: u16,
        listen: &[&str],
        dir: &Path,
        extra: &[&str],
        output: Option<&Path>,
    ) -> BrokerProcess {
        let log_dir = tempfile::tempdir().unwrap();
        let log = output.map_or_else(|| log_dir.path().join("strom.log"), Path::to_path_buf);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_strom")]);
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_strom")),
        };
        let child = command
            .args(listen)
            .arg("--data-dir")
            .arg(dir)
            .args(extra)
            // STROM_TEST_LOG=info (say) for more of the brokers' logs.
            .env(
                "RUST_LOG",
                std::env::var("STROM_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env("NO_COLOR", "1")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut broker = BrokerProcess {
            child,
            host,
            port,
            log,
            _log_dir: log_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect((host, port)).is_err() {
            if let Ok(Some(status)) = broker.child.try_wait() {
                panic!("broker exited with {status}: {}", broker.log_text());
            }
            assert!(Instant::now() < deadline, "broker did not start: {}", broker.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
        broker
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.host, self.port))
    }

    pub fn bootstrap(&self) -> String {
        self.addr().to_string()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no clean shutdown.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then wait (at most 30 s) for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "broker did not exit after SIGTERM: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tmpfs of a fixed size, mounted on a temporary directory, to run out of space
/// on. Mounting needs root: without it (and outside CI) the test that asked is
/// skipped with a note; in CI (`CI` set) it fails instead.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must be able to mount a tmpfs (run as root)"
            );
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        Some(Tmpfs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }

    /// Fill the file system to the last byte.
    pub fn fill(&self) {
        let mut f = std::fs::File::create(self.filler()).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        loop {
            if f.write_all(&chunk).is_err() {
                break;
            }
        }
        let small = [0u8; 512];
        while f.write_all(&small).is_ok() {}
        while f.write_all(&[0u8]).is_ok() {}
    }

    /// Give the space back.
    pub fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Run the strom binary; (success, stdout, stderr).
pub async fn strom_cli(args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_strom"))
            .args(&args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    })
    .await
    .unwrap()
}
