//! The broker's CPU time (Linux): utime + stime of its process from /proc/PID/stat,
//! read before and after a measured phase, so a run can report the broker's CPU
//! seconds per GB of record values it moved.

use std::fs;
use std::net::ToSocketAddrs;

/// The broker's CPU seconds at the start of a measured phase; `None` inside when
/// there is no broker process to read.
pub struct Meter(Option<(u32, f64)>);

impl Meter {
    pub fn start(pid: Option<u32>) -> Meter {
        Meter(pid.and_then(|pid| Some((pid, cpu_seconds(pid)?))))
    }

    /// The broker's CPU seconds since `start`.
    pub fn elapsed(&self) -> Option<f64> {
        let (pid, start) = self.0?;
        Some(cpu_seconds(pid)? - start)
    }
}

/// User + system CPU seconds process `pid` (all its threads) has used so far.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let ticks = stat_ticks(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    // SAFETY: sysconf only reads a constant of the system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(ticks as f64 / if hz > 0 { hz as f64 } else { 100.0 })
}

/// utime + stime (fields 14 and 15, in clock ticks) of a /proc/PID/stat line. The
/// command name (field 2) sits in parentheses and may hold spaces and ')' itself,
/// so the fields are counted from after the last ')', where field 3 starts.
fn stat_ticks(stat: &str) -> Option<u64> {
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The pid of the process listening on the first bootstrap server, when that is a
/// loopback address of this host: the listening socket's inode from
/// /proc/net/tcp{,6}, then the process with an fd linked to `socket:[inode]`.
pub fn find_broker(bootstrap: &str) -> Option<u32> {
    let addrs: Vec<_> = bootstrap.split(',').next()?.trim().to_socket_addrs().ok()?.collect();
    if addrs.is_empty() || !addrs.iter().all(|a| a.ip().is_loopback()) {
        return None;
    }
    let sockets: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| fs::read_to_string(table).ok())
        .flat_map(|table| listening_inodes(&table, addrs[0].port()))
        .map(|inode| format!("socket:[{inode}]"))
        .collect();
    if sockets.is_empty() {
        return None;
    }
    for process in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = process.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(fds) = fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if fs::read_link(fd.path()).is_ok_and(|link| sockets.iter().any(|s| link.as_os_str() == s.as_str())) {
                return Some(pid);
            }
        }
    }
    None
}

/// The inodes of the sockets listening (state 0A) on `port` in a /proc/net/tcp or
/// tcp6 table: `sl local_address rem_address st ... inode`, ports in hex.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            if local_port != port || *f.get(3)? != "0A" {
                return None;
            }
            f.get(9)?.parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_last_parenthesis() {
        let tail = "S 1 2 3 4 5 6 7 8 9 10 1234 56 0 0 20 0 9 0 100 2000 300";
        assert_eq!(stat_ticks(&format!("4242 (strom) {tail}")), Some(1290));
        assert_eq!(stat_ticks(&format!("4242 (a) b (c)) d) {tail}")), Some(1290));
        assert_eq!(stat_ticks("4242 (strom) S 1 2"), None);
        assert_eq!(stat_ticks("no parenthesis"), None);
        // This process has a stat line that parses.
        assert!(cpu_seconds(std::process::id()).is_some());
    }

    #[test]
    fn listening_sockets_are_found_by_port() {
        let table =
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
            0: 00000000:2384 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5551 1 0\n   \
            1: 0100007F:2384 0100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 5552 1 0\n   \
            2: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5553 1 0\n";
        assert_eq!(listening_inodes(table, 9092), vec![5551]);
        assert_eq!(listening_inodes(table, 8080), vec![5553]);
        assert_eq!(listening_inodes(table, 1), Vec::<u64>::new());
    }
}
