//! What keeps clients from taking the broker down by numbers: connections per
//! address (`max.connections.per.ip`), and the memory of requests being read and
//! decoded (`queued.max.request.bytes`). The total connection count
//! (`max.connections`) is the listener's semaphore.
//!
//! Request memory works as Kafka's memory pool does. Once a frame's size and API
//! are known, its whole cost is reserved before the rest of it is read: its size
//! for Produce (whose records stay in the frame's buffer), and 64 times its size
//! for every other API, whose decoded form can be that much larger (a Metadata
//! request of empty topic names decodes to ~40 bytes of structs per 2 bytes of
//! wire). A connection that cannot have its reservation stops reading, holding
//! nothing, and TCP pushes back on its client; nobody waits while holding, so
//! the pool cannot deadlock. Like Kafka's non-strict pool, a reservation is
//! granted whenever any memory is free, so the pool may be overdrawn by one
//! request and a request never waits for a fragment that never comes. A request
//! that could never fit closes its connection; one that is not sent in time
//! (see `connection.rs`) gives its reservation back. Requests of at most 4 KiB
//! need none.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::config::Config;

/// Memory reserved per wire byte of a request that is not a Produce.
pub const DECODE_FACTOR: usize = 64;
/// Requests this small (ApiVersions, Heartbeat, Metadata of a few topics) need no
/// reservation, so that clients stalled in huge requests, holding all of it, cannot
/// stop everyone else's small ones: 10,000 connections decoding one each at once
/// take at most 2.5 GiB.
const SMALL_REQUEST: usize = 4096;
const PRODUCE: i16 = 0;

pub struct ServerLimits {
    /// Request memory still free; below zero while overdrawn.
    request_bytes: Mutex<i64>,
    request_bytes_freed: Notify,
    request_bytes_max: usize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    per_ip_max: usize,
    per_ip_overrides: HashMap<IpAddr, usize>,
}

/// A connection's place in its address's count, given back when dropped.
pub struct IpSlot {
    limits: Arc<ServerLimits>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut per_ip = self.limits.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// Why a request cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("a {size}-byte request of api {api_key} needs {need} bytes, more than queued.max.request.bytes ({max})")]
pub struct RequestTooLarge {
    size: usize,
    api_key: i16,
    need: usize,
    max: usize,
}

impl ServerLimits {
    pub fn new(config: &Config) -> Arc<ServerLimits> {
        let max = config.queued_max_request_bytes.min(u32::MAX as usize);
        Arc::new(ServerLimits {
            request_bytes: Mutex::new(max as i64),
            request_bytes_freed: Notify::new(),
            request_bytes_max: max,
            per_ip: Mutex::new(HashMap::new()),
            per_ip_max: config.max_connections_per_ip,
            per_ip_overrides: config.max_connections_per_ip_overrides.clone(),
        })
    }

    /// Count a new connection from `ip`; None when the address has its maximum.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        // A client reaching an IPv6 listener over IPv4 counts as its IPv4 address.
        let ip = ip.to_canonical();
        let max = self.per_ip_overrides.get(&ip).copied().unwrap_or(self.per_ip_max);
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = per_ip.entry(ip).or_insert(0);
        if *n >= max {
            if *n == 0 {
                per_ip.remove(&ip);
            }
            return None;
        }
        *n += 1;
        Some(IpSlot {
            limits: self.clone(),
            ip,
        })
    }

    /// The memory a whole request of `size` bytes of api `api_key` holds while it
    /// is read and decoded (0 for a small one); an error if that is more than
    /// there is at all.
    pub fn cost(&self, api_key: i16, size: usize) -> Result<u32, RequestTooLarge> {
        if size <= SMALL_REQUEST {
            return Ok(0);
        }
        let need = self.cost_of_bytes(api_key, size) as usize;
        if need > self.request_bytes_max {
            return Err(RequestTooLarge {
                size,
                api_key,
                need,
                max: self.request_bytes_max,
            });
        }
        Ok(need as u32)
    }

    /// The memory `bytes` received of a request of api `api_key` stand for.
    pub fn cost_of_bytes(&self, api_key: i16, bytes: usize) -> u32 {
        let need = if api_key == PRODUCE {
            bytes
        } else {
            bytes.saturating_mul(DECODE_FACTOR)
        };
        need.min(u32::MAX as usize) as u32
    }

    /// Wait until some request memory is free, then take `bytes` of it (none for
    /// 0), given back when the reservation is dropped.
    pub async fn reserve(self: &Arc<Self>, bytes: u32) -> Option<Reservation> {
        if bytes == 0 {
            return None;
        }
        loop {
            let freed = self.request_bytes_freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut free = self.request_bytes.lock().unwrap_or_else(|e| e.into_inner());
                if *free > 0 {
                    *free -= bytes as i64;
                    return Some(Reservation {
                        limits: self.clone(),
                        bytes,
                    });
                }
            }
            freed.await;
        }
    }
}

/// Request memory taken from the pool, given back when dropped.
pub struct Reservation {
    limits: Arc<ServerLimits>,
    bytes: u32,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        *self.limits.request_bytes.lock().unwrap_or_else(|e| e.into_inner()) += self.bytes as i64;
        self.limits.request_bytes_freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_counted_with_their_overrides() {
        let mut config = Config::for_dir("/nonexistent");
        config.max_connections_per_ip = 2;
        let special: IpAddr = "10.0.0.9".parse().unwrap();
        config.max_connections_per_ip_overrides.insert(special, 0);
        let limits = ServerLimits::new(&config);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = limits.admit(ip).unwrap();
        let _b = limits.admit(ip).unwrap();
        assert!(limits.admit(ip).is_none());
        drop(a);
        assert!(limits.admit(ip).is_some());
        assert!(limits.admit(special).is_none());
        assert!(limits.admit("127.0.0.2".parse().unwrap()).is_some());
    }

    #[test]
    fn non_produce_requests_reserve_their_decoded_size() {
        let mut config = Config::for_dir("/nonexistent");
        config.queued_max_request_bytes = 64 << 20;
        let limits = ServerLimits::new(&config);
        assert_eq!(limits.cost(0, 60 << 20).unwrap(), 60 << 20);
        assert_eq!(limits.cost(3, 4096).unwrap(), 0, "small requests need none");
        assert_eq!(limits.cost(3, 1 << 20).unwrap(), 64 << 20);
        assert!(limits.cost(3, (1 << 20) + 1).is_err());
        assert!(limits.cost(0, 65 << 20).is_err());
    }
}
