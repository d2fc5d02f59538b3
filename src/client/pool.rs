//! Connections from this broker to others, kept between calls: a call that
//! finds one idle uses it instead of paying TCP, TLS and a SASL login again
//! (a transaction's markers and verifications are calls to other brokers,
//! several per transaction). Kafka's brokers likewise keep a channel to each
//! broker they talk to.

use std::collections::HashMap;
use std::sync::Mutex;

use kafka_protocol::protocol::Request;

use super::{Bootstrap, Client, ClientError};
use crate::config::cluster::InterBroker;

/// At most this many idle connections are kept per broker (as many calls to
/// one broker can be under way at once; more just connect).
const IDLE_PER_BROKER: usize = 4;

/// Idle connections by address, opened on the inter-broker listener.
pub struct BrokerConnections {
    inter: InterBroker,
    client_id: &'static str,
    idle: Mutex<HashMap<String, Vec<Client>>>,
}

impl BrokerConnections {
    pub fn new(inter: InterBroker, client_id: &'static str) -> BrokerConnections {
        BrokerConnections {
            inter,
            client_id,
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// Send `request` to the broker at `addr` and wait for its answer. An idle
    /// connection is tried first; if it fails (the other broker restarted and
    /// closed it meanwhile), a new one is made. A connection goes back to the
    /// idle ones only after a whole answer; one dropped mid-call (a caller's
    /// timeout) is closed, never reused out of step.
    pub async fn call<R: Request>(&self, addr: &str, version: i16, request: &R) -> Result<R::Response, ClientError> {
        let kept = self.lock().get_mut(addr).and_then(Vec::pop);
        if let Some(mut client) = kept {
            if let Ok(answer) = client.call(version, request).await {
                self.keep(addr, client);
                return Ok(answer);
            }
        }
        let mut client = Client::connect(&Bootstrap::to_broker(addr, &self.inter)).await?;
        client.set_client_id(self.client_id);
        let answer = client.call(version, request).await?;
        self.keep(addr, client);
        Ok(answer)
    }

    fn keep(&self, addr: &str, client: Client) {
        let mut idle = self.lock();
        let kept = idle.entry(addr.to_string()).or_default();
        if kept.len() < IDLE_PER_BROKER {
            kept.push(client);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Client>>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn idle_to(&self, addr: &str) -> usize {
        self.lock().get(addr).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader};
    use kafka_protocol::protocol::{Decodable, Encodable};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// Answer ApiVersions v0 requests on `stream` until it closes, or until
    /// `answers` have been given (then close it).
    async fn serve(mut stream: TcpStream, answers: usize) {
        for _ in 0..answers {
            let mut size = [0u8; 4];
            if stream.read_exact(&mut size).await.is_err() {
                return;
            }
            let mut request = vec![0u8; i32::from_be_bytes(size) as usize];
            stream.read_exact(&mut request).await.unwrap();
            let header = RequestHeader::decode(&mut bytes::Bytes::from(request), 1).unwrap();
            let mut body = bytes::BytesMut::new();
            let mut h = ResponseHeader::default();
            h.correlation_id = header.correlation_id;
            h.encode(&mut body, 0).unwrap();
            ApiVersionsResponse::default().encode(&mut body, 0).unwrap();
            stream.write_all(&(body.len() as i32).to_be_bytes()).await.unwrap();
            stream.write_all(&body).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_connection_is_reused_and_a_closed_one_replaced() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = tokio::spawn(async move {
            let mut count = 0;
            // The first connection answers twice, then closes; the next stays.
            for answers in [2, usize::MAX] {
                let (stream, _) = listener.accept().await.unwrap();
                count += 1;
                tokio::spawn(serve(stream, answers));
            }
            count
        });
        let pool = BrokerConnections::new(InterBroker::default(), "test");
        for _ in 0..4 {
            pool.call(&addr, 0, &ApiVersionsRequest::default()).await.unwrap();
            assert_eq!(pool.idle_to(&addr), 1);
        }
        // Two connections for four calls: the second replaced the closed one.
        assert_eq!(accepted.await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_broker_that_is_gone_is_an_error_and_nothing_is_kept() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let pool = BrokerConnections::new(InterBroker::default(), "test");
        assert!(pool.call(&addr, 0, &ApiVersionsRequest::default()).await.is_err());
        assert_eq!(pool.idle_to(&addr), 0);
    }
}
