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

/// Who a member is and what it supports: the one description of a member that
/// a JoinGroup brings, the group keeps, and `__consumer_offsets` stores (Kafka's
/// MemberMetadata, less the group's view of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberProfile {
    pub member_id: String,
    /// Static membership (KIP-345).
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// The protocols it supports with their metadata, in its order of preference.
    pub protocols: Vec<(String, Bytes)>,
}

/// Who sends a SyncGroup, Heartbeat or OffsetCommit: the member id, its static
/// instance id, and the generation it believes is current (−1 for a simple
/// consumer's commit).
#[derive(Debug, Clone, Copy)]
pub struct MemberRef<'a> {
    pub member_id: &'a str,
    pub instance: Option<&'a str>,
    pub generation_id: i32,
}

impl<'a> MemberRef<'a> {
    pub fn new(member_id: &'a str, instance: Option<&'a str>, generation_id: i32) -> Self {
        MemberRef {
            member_id,
            instance,
            generation_id,
        }
    }
}

/// What a member asked for when joining.
#[derive(Debug, Clone)]
pub struct JoinArgs {
    pub profile: MemberProfile,
    pub protocol_type: String,
    /// JoinGroup v4+: a new member must first be given an id (KIP-394).
    pub require_known_member_id: bool,
}

/// A member as the group keeps it: its profile, its assignment, the requests it
/// is waiting on, and its session.
#[derive(Debug)]
pub struct Member {
    pub profile: MemberProfile,
    pub assignment: Bytes,
    pub awaiting_join: Option<oneshot::Sender<Result<JoinResult, Error>>>,
    pub awaiting_sync: Option<oneshot::Sender<Result<SyncResult, Error>>>,
    /// When the member is expired unless it heartbeats (ms since the epoch).
    pub heartbeat_deadline: i64,
}

impl Member {
    /// A member with `profile` (its id already assigned) and no assignment yet.
    pub fn new(profile: MemberProfile, now: i64) -> Member {
        Member {
            heartbeat_deadline: now + profile.session_timeout_ms as i64,
            profile,
            assignment: Bytes::new(),
            awaiting_join: None,
            awaiting_sync: None,
        }
    }

    pub fn id(&self) -> &str {
        &self.profile.member_id
    }

    /// Take what a rejoin may change: everything but the member's ids.
    pub fn update(&mut self, profile: &MemberProfile) {
        let (member_id, instance) = (
            std::mem::take(&mut self.profile.member_id),
            self.profile.group_instance_id.take(),
        );
        self.profile = MemberProfile {
            member_id,
            group_instance_id: instance,
            ..profile.clone()
        };
    }

    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.profile
            .protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    pub fn touch(&mut self, now: i64) {
        self.heartbeat_deadline = now + self.profile.session_timeout_ms as i64;
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
