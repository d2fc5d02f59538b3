//! What keeps clients from taking the broker down by numbers: connections per
//! address (`max.connections.per.ip`), and the memory of requests being read and
//! decoded (`queued.max.request.bytes`). The total connection count
//! (`max.connections`) is the listener's semaphore.
//!
//! Request memory is reserved before a frame is read: its size for Produce (whose
//! records stay in the frame's buffer), and a multiple of it for every other API,
//! whose decoded form can be many times the bytes (a Metadata request of empty
//! topic names decodes to ~40 bytes of structs per 2 bytes of wire). A connection
//! whose reservation must wait stops reading, and TCP pushes back on its client.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
    request_bytes: Arc<Semaphore>,
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
        let max = config
            .queued_max_request_bytes
            .min(Semaphore::MAX_PERMITS)
            .min(u32::MAX as usize);
        Arc::new(ServerLimits {
            request_bytes: Arc::new(Semaphore::new(max)),
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

    /// Memory to reserve for a request of `size` bytes of api `api_key` (0 for a
    /// small one).
    pub fn reservation(&self, api_key: i16, size: usize) -> Result<u32, RequestTooLarge> {
        if size <= SMALL_REQUEST {
            return Ok(0);
        }
        let need = if api_key == PRODUCE {
            size
        } else {
            size.saturating_mul(DECODE_FACTOR)
        };
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

    /// Wait until `bytes` of request memory are free and take them (None for
    /// nothing to reserve).
    pub async fn reserve(&self, bytes: u32) -> Option<OwnedSemaphorePermit> {
        if bytes == 0 {
            return None;
        }
        self.request_bytes.clone().acquire_many_owned(bytes).await.ok()
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
        assert_eq!(limits.reservation(0, 60 << 20).unwrap(), 60 << 20);
        assert_eq!(limits.reservation(3, 4096).unwrap(), 0, "small requests need none");
        assert_eq!(limits.reservation(3, 1 << 20).unwrap(), 64 << 20);
        assert!(limits.reservation(3, (1 << 20) + 1).is_err());
        assert!(limits.reservation(0, 65 << 20).is_err());
    }
}
