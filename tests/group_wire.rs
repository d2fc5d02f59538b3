//! Group APIs at the byte level: every advertised version, errors, durability of
//! committed offsets, the internal topic.

mod common;

use bytes::Bytes;
use common::wire::Wire;
use common::TestBroker;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strom::config::Config;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn fast(c: &mut Config) {
    c.group.initial_rebalance_delay_ms = 0;
}

fn join_request(group: &str, member: &str) -> JoinGroupRequest {
    let mut p = JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = Bytes::from_static(b"\0\0\0\0\0\0");
    let mut j = JoinGroupRequest::default();
    j.group_id = GroupId(s(group));
    j.session_timeout_ms = 10_000;
    j.rebalance_timeout_ms = 10_000;
    j.member_id = s(member);
    j.protocol_type = s("consumer");
    j.protocols = vec![p];
    j
}

/// Join as the only member: (member id, generation).
async fn join_alone(w: &mut Wire, group: &str, version: i16) -> (String, i32) {
    let mut r = w.call(version, &join_request(group, "")).await;
    if version >= 4 {
        assert_eq!(r.error_code, 79, "v{version}: MEMBER_ID_REQUIRED first");
        r = w.call(version, &join_request(group, r.member_id.as_str())).await;
    }
    assert_eq!(r.error_code, 0, "JoinGroup v{version}");
    assert_eq!(r.leader, r.member_id);
    (r.member_id.to_string(), r.generation_id)
}

fn commit_request(group: &str, topic: &str, offset: i64, metadata: &str) -> OffsetCommitRequest {
    let mut p = OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = offset;
    p.committed_metadata = Some(s(metadata));
    let mut t = OffsetCommitRequestTopic::default();
    t.name = TopicName(s(topic));
    t.partitions = vec![p];
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(s(group));
    r.generation_id_or_member_epoch = -1;
    r.topics = vec![t];
    r
}

/// (offset, metadata) committed for partition 0 of `topic`, at any version.
async fn fetch_committed(w: &mut Wire, version: i16, group: &str, topic: &str) -> (i64, String) {
    let mut req = OffsetFetchRequest::default();
    if version >= 8 {
        let mut g = OffsetFetchRequestGroup::default();
        g.group_id = GroupId(s(group));
        g.topics = None; // all partitions
        req.groups = vec![g];
        let r = w.call(version, &req).await;
        // Asking for all partitions lists only those with a committed offset.
        return match r.groups[0].topics.iter().find(|t| t.name.as_str() == topic) {
            Some(t) => (
                t.partitions[0].committed_offset,
                t.partitions[0].metadata.as_ref().unwrap().to_string(),
            ),
            None => (-1, String::new()),
        };
    }
    req.group_id = GroupId(s(group));
    let mut t = OffsetFetchRequestTopic::default();
    t.name = TopicName(s(topic));
    t.partition_indexes = vec![0];
    req.topics = Some(vec![t]);
    let r = w.call(version, &req).await;
    let p = &r.topics[0].partitions[0];
    (p.committed_offset, p.metadata.as_ref().unwrap().to_string())
}

async fn topic(w: &mut Wire, name: &str) {
    let mut t = MetadataRequestTopic::default();
    t.name = Some(TopicName(s(name)));
    let mut m = MetadataRequest::default();
    m.topics = Some(vec![t]);
    assert_eq!(w.call(12, &m).await.topics[0].error_code, 0);
}

#[tokio::test]
async fn every_version_of_the_group_apis() {
    let broker = TestBroker::start_with(fast).await;
    let mut w = Wire::connect(broker.addr()).await;
    topic(&mut w, "gv").await;
    for v in 0..=4i16 {
        let mut req = FindCoordinatorRequest::default();
        if v >= 4 {
            req.coordinator_keys = vec![s("g")];
            let r = w.call(v, &req).await;
            assert_eq!((r.coordinators[0].error_code, r.coordinators[0].node_id.0), (0, 0));
        } else {
            req.key = s("g");
            let r = w.call(v, &req).await;
            assert_eq!((r.error_code, r.node_id.0), (0, 0), "FindCoordinator v{v}");
            assert_eq!(r.port, broker.addr().port() as i32);
        }
    }
    for v in 0..=9i16 {
        let group = format!("join-v{v}");
        let (member, generation) = join_alone(&mut w, &group, v).await;
        let mut sync = SyncGroupRequest::default();
        sync.group_id = GroupId(s(&group));
        sync.member_id = s(&member);
        sync.generation_id = generation;
        let sync_v = v.min(5);
        if sync_v >= 5 {
            sync.protocol_type = Some(s("consumer"));
            sync.protocol_name = Some(s("range"));
        }
        let mut a = kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment::default();
        a.member_id = s(&member);
        a.assignment = Bytes::from_static(b"assigned");
        sync.assignments = vec![a];
        let r = w.call(sync_v, &sync).await;
        assert_eq!(
            (r.error_code, &r.assignment[..]),
            (0, &b"assigned"[..]),
            "SyncGroup v{sync_v}"
        );
        let mut hb = HeartbeatRequest::default();
        hb.group_id = GroupId(s(&group));
        hb.member_id = s(&member);
        hb.generation_id = generation;
        assert_eq!(w.call(v.min(4), &hb).await.error_code, 0, "Heartbeat v{}", v.min(4));
        let leave_v = v.min(5);
        let mut leave = LeaveGroupRequest::default();
        leave.group_id = GroupId(s(&group));
        if leave_v >= 3 {
            let mut m = MemberIdentity::default();
            m.member_id = s(&member);
            leave.members = vec![m];
            let r = w.call(leave_v, &leave).await;
            assert_eq!((r.error_code, r.members[0].error_code), (0, 0));
        } else {
            leave.member_id = s(&member);
            assert_eq!(w.call(leave_v, &leave).await.error_code, 0, "LeaveGroup v{leave_v}");
        }
    }
    for v in 2..=9i16 {
        let group = format!("commit-v{v}");
        let r = w
            .call(v, &commit_request(&group, "gv", 40 + v as i64, &format!("meta-{v}")))
            .await;
        assert_eq!(r.topics[0].partitions[0].error_code, 0, "OffsetCommit v{v}");
        let fetch_v = v.max(1);
        assert_eq!(
            fetch_committed(&mut w, fetch_v, &group, "gv").await,
            (40 + v as i64, format!("meta-{v}"))
        );
    }
    assert_eq!(fetch_committed(&mut w, 1, "commit-v5", "gv").await.0, 45);
    for v in 0..=5i16 {
        let mut req = DescribeGroupsRequest::default();
        req.groups = vec![GroupId(s("commit-v3")), GroupId(s("nope"))];
        let r = w.call(v, &req).await;
        assert_eq!(r.groups[0].group_state.as_str(), "Empty", "DescribeGroups v{v}");
        assert_eq!(r.groups[1].group_state.as_str(), "Dead");
    }
    for v in 0..=5i16 {
        let mut req = ListGroupsRequest::default();
        if v >= 4 {
            req.states_filter = vec![s("Empty")];
        }
        if v >= 5 {
            req.types_filter = vec![s("Classic")];
        }
        let r = w.call(v, &req).await;
        assert!(
            r.groups.iter().any(|g| g.group_id.as_str() == "commit-v2"),
            "ListGroups v{v}"
        );
    }
    // v5's type filter: every group here is classic, none is a consumer group
    // of the new protocol (KIP-848).
    let mut req = ListGroupsRequest::default();
    req.types_filter = vec![s("consumer")];
    assert!(w.call(5, &req).await.groups.is_empty());
    req.types_filter = vec![];
    let r = w.call(5, &req).await;
    assert!(r.groups.iter().all(|g| g.group_type.as_str() == "classic"));
    let mut od = OffsetDeleteRequest::default();
    od.group_id = GroupId(s("commit-v9"));
    let mut t = OffsetDeleteRequestTopic::default();
    t.name = TopicName(s("gv"));
    t.partitions = vec![OffsetDeleteRequestPartition::default()];
    od.topics = vec![t];
    let r = w.call(0, &od).await;
    assert_eq!((r.error_code, r.topics[0].partitions[0].error_code), (0, 0));
    assert_eq!(fetch_committed(&mut w, 9, "commit-v9", "gv").await.0, -1);
    for v in 0..=2i16 {
        let mut req = DeleteGroupsRequest::default();
        req.groups_names = vec![GroupId(s(&format!("commit-v{}", v + 2)))];
        assert_eq!(w.call(v, &req).await.results[0].error_code, 0, "DeleteGroups v{v}");
    }
}

#[tokio::test]
async fn group_errors_are_kafkas() {
    let broker = TestBroker::start_with(fast).await;
    let mut w = Wire::connect(broker.addr()).await;
    topic(&mut w, "ge").await;
    let (member, generation) = join_alone(&mut w, "busy", 5).await;
    // DeleteGroups: non-empty, unknown.
    let mut del = DeleteGroupsRequest::default();
    del.groups_names = vec![GroupId(s("busy")), GroupId(s("never"))];
    let r = w.call(2, &del).await;
    assert_eq!((r.results[0].error_code, r.results[1].error_code), (68, 69));
    // Simple commit to a group with members: refused.
    let r = w.call(8, &commit_request("busy", "ge", 1, "")).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 25, "UNKNOWN_MEMBER_ID");
    // Unknown topic in a commit.
    let r = w.call(8, &commit_request("free", "no-such-topic", 1, "")).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 3);
    // Metadata over offset.metadata.max.bytes.
    let r = w.call(8, &commit_request("free", "ge", 1, &"x".repeat(5000))).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 12);
    // Heartbeat with a stale generation, an unknown member.
    let mut hb = HeartbeatRequest::default();
    hb.group_id = GroupId(s("busy"));
    hb.member_id = s(&member);
    hb.generation_id = generation + 5;
    assert_eq!(w.call(4, &hb).await.error_code, 22);
    hb.member_id = s("ghost");
    hb.generation_id = generation;
    assert_eq!(w.call(4, &hb).await.error_code, 25);
    // Joining with an incompatible protocol type.
    let mut other = join_request("busy", "");
    other.protocol_type = s("connect");
    assert_eq!(w.call(5, &other).await.error_code, 23, "INCONSISTENT_GROUP_PROTOCOL");
    // Empty group id.
    assert_eq!(
        w.call(5, &join_request("", "")).await.error_code,
        24,
        "INVALID_GROUP_ID"
    );
    // A static member id longer than older responses can carry (flexible v6+
    // allows it): refused, so it cannot make its group unanswerable.
    let mut long = join_request("busy", "");
    long.group_instance_id = Some(s(&"i".repeat(40_000)));
    assert_eq!(w.call(7, &long).await.error_code, 42, "INVALID_REQUEST");
    assert_eq!(
        w.call(4, &hb).await.error_code,
        25,
        "the connection and group still answer"
    );
}

#[tokio::test]
async fn committed_offsets_and_metadata_survive_restart_and_topic_deletion_drops_them() {
    let mut broker = TestBroker::start_with(fast).await;
    let mut w = Wire::connect(broker.addr()).await;
    topic(&mut w, "kept").await;
    topic(&mut w, "doomed").await;
    w.call(8, &commit_request("svc", "kept", 1234, "checkpoint {\"batch\":7}"))
        .await;
    w.call(8, &commit_request("svc", "doomed", 99, "")).await;
    drop(w);
    broker.restart(fast).await;
    let mut w = Wire::connect(broker.addr()).await;
    assert_eq!(
        fetch_committed(&mut w, 7, "svc", "kept").await,
        (1234, "checkpoint {\"batch\":7}".to_string())
    );
    assert_eq!(fetch_committed(&mut w, 7, "svc", "doomed").await.0, 99);
    let mut del = DeleteTopicsRequest::default();
    del.topic_names = vec![TopicName(s("doomed"))];
    assert_eq!(w.call(4, &del).await.responses[0].error_code, 0);
    assert_eq!(fetch_committed(&mut w, 7, "svc", "doomed").await.0, -1);
    drop(w);
    broker.restart(fast).await;
    let mut w = Wire::connect(broker.addr()).await;
    assert_eq!(
        fetch_committed(&mut w, 7, "svc", "doomed").await.0,
        -1,
        "the drop is durable"
    );
    assert_eq!(fetch_committed(&mut w, 7, "svc", "kept").await.0, 1234);
}

#[tokio::test]
async fn the_internal_topic_is_flagged_and_closed_to_clients() {
    let broker = TestBroker::start().await;
    let mut w = Wire::connect(broker.addr()).await;
    let mut all = MetadataRequest::default();
    all.topics = None;
    let r = w.call(12, &all).await;
    // Listed with all topics, flagged internal (as Kafka; clients filter).
    let offsets = r
        .topics
        .iter()
        .find(|t| t.name.as_ref().unwrap().as_str() == "__consumer_offsets")
        .expect("listed with all topics");
    assert!(offsets.is_internal);
    let mut t = MetadataRequestTopic::default();
    t.name = Some(TopicName(s("__consumer_offsets")));
    let mut named = MetadataRequest::default();
    named.topics = Some(vec![t]);
    let r = w.call(12, &named).await;
    assert!(r.topics[0].is_internal);
    let mut pd = PartitionProduceData::default();
    pd.index = 0;
    pd.records = Some(common::wire::batch(1, -1, 0, 0));
    let mut td = TopicProduceData::default();
    td.name = TopicName(s("__consumer_offsets"));
    td.partition_data = vec![pd];
    let mut produce = ProduceRequest::default();
    produce.acks = 1;
    produce.topic_data = vec![td];
    let r = w.call(9, &produce).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 17);
}
