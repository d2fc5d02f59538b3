//! A member of a classic consumer group, and what a join or sync gives it back.

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::error::Error;

/// The answer to a JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    pub member_id: String,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    /// Only the leader gets the members and their metadata, to compute assignments.
    pub members: Vec<JoinedMember>,
    /// KIP-814: the (static) leader keeps the current assignment.
    pub skip_assignment: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// The answer to a SyncGroup: this member's assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

/// Either an answer now, or one that arrives when the rebalance gets there.
#[derive(Debug)]
pub enum Pending<T> {
    Ready(Result<T, Error>),
    Wait(oneshot::Receiver<Result<T, Error>>),
}

impl<T> Pending<T> {
    /// The answer, waiting for it if need be. A member removed while waiting
    /// (expired, left, fenced) gets UNKNOWN_MEMBER_ID.
    pub async fn resolve(self, member_id: &str) -> Result<T, Error> {
        match self {
            Pending::Ready(r) => r,
            Pending::Wait(rx) => rx
                .await
                .unwrap_or_else(|_| Err(Error::UnknownMemberId(member_id.to_string()))),
        }
    }
}

/// What a member asked for when joining.
#[derive(Debug, Clone)]
pub struct JoinArgs {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new member must first be given an id (KIP-394).
    pub require_known_member_id: bool,
}

#[derive(Debug)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// In the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub awaiting_join: Option<oneshot::Sender<Result<JoinResult, Error>>>,
    pub awaiting_sync: Option<oneshot::Sender<Result<SyncResult, Error>>>,
    /// When the member is expired unless it heartbeats (ms since the epoch).
    pub heartbeat_deadline: i64,
}

impl Member {
    pub fn new(member_id: String, args: &JoinArgs, now: i64) -> Member {
        Member {
            member_id,
            group_instance_id: args.group_instance_id.clone(),
            client_id: args.client_id.clone(),
            client_host: args.client_host.clone(),
            session_timeout_ms: args.session_timeout_ms,
            rebalance_timeout_ms: args.rebalance_timeout_ms,
            protocols: args.protocols.clone(),
            assignment: Bytes::new(),
            awaiting_join: None,
            awaiting_sync: None,
            heartbeat_deadline: now + args.session_timeout_ms as i64,
        }
    }

    /// Take what a rejoin may change.
    pub fn update(&mut self, args: &JoinArgs) {
        self.client_id = args.client_id.clone();
        self.client_host = args.client_host.clone();
        self.session_timeout_ms = args.session_timeout_ms;
        self.rebalance_timeout_ms = args.rebalance_timeout_ms;
        self.protocols = args.protocols.clone();
    }

    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    pub fn touch(&mut self, now: i64) {
        self.heartbeat_deadline = now + self.session_timeout_ms as i64;
    }

    /// Answer a waiting JoinGroup or SyncGroup with an error (the member was
    /// fenced, or a new rebalance began).
    pub fn fail_waiters(&mut self, join: impl Fn() -> Error, sync: impl Fn() -> Error) {
        if let Some(tx) = self.awaiting_join.take() {
            let _ = tx.send(Err(join()));
        }
        if let Some(tx) = self.awaiting_sync.take() {
            let _ = tx.send(Err(sync()));
        }
    }
}
