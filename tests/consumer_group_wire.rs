//! The consumer group protocol (KIP-848) at the byte level: Kafka's request
//! checks and error codes, epochs, static members, the describe and list APIs,
//! commits by member epoch, deletion.

mod common;

use common::wire::{create, create_topic, Wire};
use common::TestBroker;
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strom::config::Config;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn fast(c: &mut Config) {
    c.group.consumer.heartbeat_interval_ms = 200;
    c.group.consumer.session_timeout_ms = 1500;
    c.group.consumer.max_size = 3;
}

/// A first heartbeat (join) of `member` subscribing to `topics`.
fn join(group: &str, member: &str, topics: &[&str]) -> ConsumerGroupHeartbeatRequest {
    let mut hb = ConsumerGroupHeartbeatRequest::default();
    hb.group_id = GroupId(s(group));
    hb.member_id = s(member);
    hb.member_epoch = 0;
    hb.rebalance_timeout_ms = 5_000;
    hb.subscribed_topic_names = Some(topics.iter().map(|t| TopicName(s(t))).collect());
    hb.topic_partitions = Some(vec![]);
    hb
}

/// A plain heartbeat (nothing changed) at `epoch`.
fn beat(group: &str, member: &str, epoch: i32) -> ConsumerGroupHeartbeatRequest {
    let mut hb = ConsumerGroupHeartbeatRequest::default();
    hb.group_id = GroupId(s(group));
    hb.member_id = s(member);
    hb.member_epoch = epoch;
    hb.rebalance_timeout_ms = -1;
    hb
}

fn owned(topic: uuid::Uuid, partitions: &[i32]) -> Option<Vec<TopicPartitions>> {
    let mut tp = TopicPartitions::default();
    tp.topic_id = topic;
    tp.partitions = partitions.to_vec();
    Some(if partitions.is_empty() { vec![] } else { vec![tp] })
}

fn partitions(r: &ConsumerGroupHeartbeatResponse) -> Option<Vec<i32>> {
    r.assignment.as_ref().map(|a| {
        let mut all: Vec<i32> = a.topic_partitions.iter().flat_map(|t| t.partitions.clone()).collect();
        all.sort();
        all
    })
}

#[tokio::test]
async fn request_checks_answer_kafkas_codes() {
    let broker = TestBroker::start_with(fast).await;
    let mut w = Wire::connect(broker.addr()).await;
    create_topic(&mut w, "cgw-checks", 2, &[]).await;
    let code = |r: &ConsumerGroupHeartbeatResponse| r.error_code;
    // v1: the client names itself.
    assert_eq!(
        code(&w.call(1, &join("g", "", &["cgw-checks"])).await),
        42,
        "INVALID_REQUEST"
    );
    let mut r = join("g", "m", &["cgw-checks"]);
    r.rebalance_timeout_ms = -1;
    assert_eq!(code(&w.call(1, &r).await), 42);
    let mut r = join("g", "m", &["cgw-checks"]);
    r.topic_partitions = None;
    assert_eq!(code(&w.call(1, &r).await), 42);
    let mut r = join("g", "m", &[]);
    r.subscribed_topic_names = None;
    assert_eq!(code(&w.call(1, &r).await), 42);
    let mut r = join("g", "m", &["cgw-checks"]);
    r.instance_id = Some(s("  "));
    assert_eq!(code(&w.call(1, &r).await), 42);
    assert_eq!(
        code(&w.call(1, &beat("g", "m", -2)).await),
        42,
        "-2 needs an instance id"
    );
    assert_eq!(code(&w.call(1, &beat("g", "m", -3)).await), 42);
    assert_eq!(code(&w.call(1, &join("", "m", &["cgw-checks"])).await), 42);
    let mut r = join("g", "m", &["cgw-checks"]);
    r.server_assignor = Some(s("sticky"));
    let refused = w.call(1, &r).await;
    assert_eq!(code(&refused), 112, "UNSUPPORTED_ASSIGNOR");
    assert!(refused.error_message.is_some());
    let mut r = join("g", "m", &[]);
    r.subscribed_topic_regex = Some(s("(unclosed"));
    assert_eq!(code(&w.call(1, &r).await), 128, "INVALID_REGULAR_EXPRESSION");
    let mut r = join("g", "m", &[]);
    r.subscribed_topic_regex = Some(s("(a)\\1"));
    assert_eq!(code(&w.call(1, &r).await), 128, "RE2 has no backreferences");
    // A heartbeat for a group that does not exist.
    assert_eq!(
        code(&w.call(1, &beat("nowhere", "m", 3)).await),
        69,
        "GROUP_ID_NOT_FOUND"
    );
    // v0: an empty member id on join is named by the broker.
    let named = w.call(0, &join("v0", "", &["cgw-checks"])).await;
    assert_eq!(code(&named), 0);
    assert!(named.member_id.as_ref().is_some_and(|m| !m.is_empty()));
    // The connection is still good.
    assert_eq!(code(&w.call(1, &join("ok", "m", &["cgw-checks"])).await), 0);
}

#[tokio::test]
async fn epochs_fencing_revocation_and_leaving() {
    let broker = TestBroker::start_with(fast).await;
    let mut w = Wire::connect(broker.addr()).await;
    create_topic(&mut w, "cgw-epochs", 4, &[]).await;
    let topic = create(&mut w, "cgw-epochs", 4).await;
    let a = w.call(1, &join("e", "a", &["cgw-epochs"])).await;
    assert_eq!(a.error_code, 0);
    assert_eq!(a.member_epoch, 1);
    assert_eq!(a.heartbeat_interval_ms, 200);
    assert_eq!(partitions(&a), Some(vec![0, 1, 2, 3]));
    // Nothing new: no assignment in the answer.
    let again = w.call(1, &beat("e", "a", 1)).await;
    assert_eq!(
        (again.error_code, again.member_epoch, again.assignment.is_none()),
        (0, 1, true)
    );
    // Epochs ahead of the group, or too far behind: FENCED_MEMBER_EPOCH.
    assert_eq!(w.call(1, &beat("e", "a", 5)).await.error_code, 110);
    assert_eq!(
        w.call(1, &beat("e", "unknown", 1)).await.error_code,
        25,
        "UNKNOWN_MEMBER_ID"
    );

    // b joins: the target gives it two, but a holds them until it revokes.
    let b = w.call(1, &join("e", "b", &["cgw-epochs"])).await;
    assert_eq!(b.error_code, 0);
    assert_eq!(b.member_epoch, 2);
    assert_eq!(partitions(&b), Some(vec![]), "nothing until a revoked");
    let a = w.call(1, &beat("e", "a", 1)).await;
    assert_eq!(a.member_epoch, 1, "a keeps its epoch while it revokes");
    let kept = partitions(&a).expect("a smaller assignment");
    assert_eq!(kept.len(), 2);
    // A heartbeat that does not confirm changes nothing; b still waits.
    let b2 = w.call(1, &beat("e", "b", 2)).await;
    assert!(b2.assignment.is_none() || partitions(&b2) == Some(vec![]));
    // a confirms (owns only what it kept): epoch 2.
    let mut confirm = beat("e", "a", 1);
    confirm.topic_partitions = owned(topic, &kept);
    let a = w.call(1, &confirm).await;
    assert_eq!((a.error_code, a.member_epoch), (0, 2));
    // Now b gets the other two.
    let b3 = w.call(1, &beat("e", "b", 2)).await;
    let got = partitions(&b3).expect("b's partitions");
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|p| !kept.contains(p)));
    // A lost response: a one epoch behind, owning what it has, is accepted.
    let mut behind = beat("e", "a", 1);
    behind.topic_partitions = owned(topic, &kept);
    assert_eq!(w.call(1, &behind).await.error_code, 0);
    // Without owned partitions it is fenced.
    assert_eq!(w.call(1, &beat("e", "a", 1)).await.error_code, 110);

    // b leaves; a gets everything at the next epoch.
    let left = w.call(1, &beat("e", "b", -1)).await;
    assert_eq!((left.error_code, left.member_epoch), (0, -1));
    let a = w.call(1, &beat("e", "a", 2)).await;
    assert_eq!(partitions(&a), Some(vec![0, 1, 2, 3]));
    assert_eq!(a.member_epoch, 3, "the leave moved the group to epoch 3");
    // A silent member is expired after the session (1.5 s).
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    assert_eq!(w.call(1, &beat("e", "a", 3)).await.error_code, 25);
}

#[tokio::test]
async fn static_members_and_group_size() {
    let broker = TestBroker::start_with(fast).await;
    let mut w = Wire::connect(broker.addr()).await;
    create_topic(&mut w, "cgw-static", 2, &[]).await;
    let mut a = join("st", "a1", &["cgw-static"]);
    a.instance_id = Some(s("instance-a"));
    let first = w.call(1, &a).await;
    assert_eq!(first.error_code, 0);
    // Another process with the same instance id while a1 is there.
    let mut dup = join("st", "a2", &["cgw-static"]);
    dup.instance_id = Some(s("instance-a"));
    assert_eq!(w.call(1, &dup).await.error_code, 111, "UNRELEASED_INSTANCE_ID");
    // A heartbeat naming an instance id nobody holds (Kafka: "unknown").
    let mut wrong = beat("st", "a1", first.member_epoch);
    wrong.instance_id = Some(s("instance-b"));
    assert_eq!(w.call(1, &wrong).await.error_code, 25, "UNKNOWN_MEMBER_ID");
    // a1 leaves for a while (−2) and comes back as a2: same partitions, same epoch.
    let mut away = beat("st", "a1", -2);
    away.instance_id = Some(s("instance-a"));
    let gone = w.call(1, &away).await;
    assert_eq!((gone.error_code, gone.member_epoch), (0, -2));
    let back = w.call(1, &dup).await;
    assert_eq!(back.error_code, 0);
    assert_eq!(partitions(&back), partitions(&first));
    assert_eq!(back.member_epoch, first.member_epoch, "no rebalance");
    // The replaced incarnation is fenced.
    let mut old = beat("st", "a1", first.member_epoch);
    old.instance_id = Some(s("instance-a"));
    assert_eq!(w.call(1, &old).await.error_code, 82, "FENCED_INSTANCE_ID");
    // group.consumer.max.size = 3.
    for m in ["b", "c"] {
        assert_eq!(w.call(1, &join("st", m, &["cgw-static"])).await.error_code, 0);
    }
    assert_eq!(
        w.call(1, &join("st", "d", &["cgw-static"])).await.error_code,
        81,
        "GROUP_MAX_SIZE_REACHED"
    );
}

#[tokio::test]
async fn describe_list_commit_and_delete() {
    let broker = TestBroker::start_with(fast).await;
    let mut w = Wire::connect(broker.addr()).await;
    create_topic(&mut w, "cgw-admin", 2, &[]).await;
    let topic = create(&mut w, "cgw-admin", 2).await;
    let a = w.call(1, &join("adm", "a", &["cgw-admin"])).await;
    assert_eq!(a.member_epoch, 1);

    // ConsumerGroupDescribe: epochs, assignor, member with assignment and target.
    let mut d = ConsumerGroupDescribeRequest::default();
    d.group_ids = vec![GroupId(s("adm")), GroupId(s("missing"))];
    for version in [0, 1] {
        let described = w.call(version, &d).await;
        let g = &described.groups[0];
        assert_eq!(g.error_code, 0);
        assert_eq!(g.group_state.as_str(), "Stable");
        assert_eq!((g.group_epoch, g.assignment_epoch), (1, 1));
        assert_eq!(g.assignor_name.as_str(), "uniform");
        let m = &g.members[0];
        assert_eq!(m.member_id.as_str(), "a");
        assert_eq!(m.member_epoch, 1);
        assert_eq!(m.subscribed_topic_names[0].as_str(), "cgw-admin");
        assert_eq!(m.assignment.topic_partitions[0].topic_name.as_str(), "cgw-admin");
        assert_eq!(m.assignment.topic_partitions[0].topic_id, topic);
        assert_eq!(m.target_assignment.topic_partitions[0].partitions.len(), 2);
        if version >= 1 {
            assert_eq!(m.member_type, 1);
        }
        assert_eq!(described.groups[1].error_code, 69);
    }
    // DescribeGroups: Dead below v6, GROUP_ID_NOT_FOUND from v6.
    let mut dg = DescribeGroupsRequest::default();
    dg.groups = vec![GroupId(s("adm"))];
    let old = w.call(5, &dg).await;
    assert_eq!(
        (old.groups[0].error_code, old.groups[0].group_state.as_str()),
        (0, "Dead")
    );
    let new = w.call(6, &dg).await;
    assert_eq!(new.groups[0].error_code, 69);
    // ListGroups: type "consumer", filter by type.
    let mut lg = ListGroupsRequest::default();
    lg.types_filter = vec![s("consumer")];
    let listed = w.call(5, &lg).await;
    assert!(listed.groups.iter().any(|g| g.group_id.as_str() == "adm"
        && g.group_type.as_str() == "consumer"
        && g.protocol_type.as_str() == "consumer"
        && g.group_state.as_str() == "Stable"));
    lg.types_filter = vec![s("classic")];
    assert!(!w.call(5, &lg).await.groups.iter().any(|g| g.group_id.as_str() == "adm"));

    // OffsetCommit v9 by member epoch.
    let commit = |epoch: i32, member: &str| {
        let mut p = OffsetCommitRequestPartition::default();
        p.partition_index = 0;
        p.committed_offset = 7;
        let mut t = OffsetCommitRequestTopic::default();
        t.name = TopicName(s("cgw-admin"));
        t.partitions = vec![p];
        let mut c = OffsetCommitRequest::default();
        c.group_id = GroupId(s("adm"));
        c.member_id = s(member);
        c.generation_id_or_member_epoch = epoch;
        c.topics = vec![t];
        c
    };
    let code = |r: OffsetCommitResponse| r.topics[0].partitions[0].error_code;
    assert_eq!(code(w.call(9, &commit(1, "a")).await), 0);
    assert_eq!(code(w.call(9, &commit(0, "a")).await), 113, "STALE_MEMBER_EPOCH");
    assert_eq!(code(w.call(9, &commit(2, "a")).await), 110, "FENCED_MEMBER_EPOCH");
    assert_eq!(code(w.call(9, &commit(1, "x")).await), 25, "UNKNOWN_MEMBER_ID");
    assert_eq!(
        code(w.call(9, &commit(-1, "")).await),
        25,
        "an admin commit needs an empty group"
    );
    // OffsetFetch v9: a member's stale epoch; no member: no check.
    let fetch = |member: Option<&str>, epoch: i32| {
        let mut g = OffsetFetchRequestGroup::default();
        g.group_id = GroupId(s("adm"));
        g.member_id = member.map(s);
        g.member_epoch = epoch;
        g.topics = None;
        let mut f = OffsetFetchRequest::default();
        f.groups = vec![g];
        f
    };
    let ok = w.call(9, &fetch(None, -1)).await;
    assert_eq!(ok.groups[0].error_code, 0);
    assert_eq!(ok.groups[0].topics[0].partitions[0].committed_offset, 7);
    assert_eq!(w.call(9, &fetch(Some("a"), 0)).await.groups[0].error_code, 113);
    assert_eq!(w.call(9, &fetch(Some("zz"), 1)).await.groups[0].error_code, 25);

    // OffsetDelete refuses a subscribed topic; DeleteGroups a group with members.
    let mut od = OffsetDeleteRequest::default();
    od.group_id = GroupId(s("adm"));
    let mut t = OffsetDeleteRequestTopic::default();
    t.name = TopicName(s("cgw-admin"));
    let mut p = OffsetDeleteRequestPartition::default();
    p.partition_index = 0;
    t.partitions = vec![p];
    od.topics = vec![t];
    let deleted = w.call(0, &od).await;
    assert_eq!(
        deleted.topics[0].partitions[0].error_code, 86,
        "GROUP_SUBSCRIBED_TO_TOPIC"
    );
    let mut del = DeleteGroupsRequest::default();
    del.groups_names = vec![GroupId(s("adm"))];
    assert_eq!(w.call(2, &del).await.results[0].error_code, 68, "NON_EMPTY_GROUP");
    assert_eq!(w.call(1, &beat("adm", "a", -1)).await.error_code, 0);
    assert_eq!(w.call(2, &del).await.results[0].error_code, 0);
    let after = w.call(9, &fetch(None, -1)).await;
    assert!(after.groups[0].topics.is_empty(), "offsets went with the group");
    let mut d = ConsumerGroupDescribeRequest::default();
    d.group_ids = vec![GroupId(s("adm"))];
    assert_eq!(w.call(1, &d).await.groups[0].error_code, 69);
}

#[tokio::test]
async fn the_consumer_protocol_can_be_turned_off() {
    let broker = TestBroker::start_with(|c| c.group.consumer.enabled = false).await;
    let mut w = Wire::connect(broker.addr()).await;
    create_topic(&mut w, "cgw-off", 1, &[]).await;
    let r = w.call(1, &join("off", "m", &["cgw-off"])).await;
    assert_eq!(r.error_code, 35, "UNSUPPORTED_VERSION");
    // Not offered either, so clients stay on the classic protocol.
    let versions = w.call(3, &ApiVersionsRequest::default()).await;
    assert!(!versions.api_keys.iter().any(|k| k.api_key == 68 || k.api_key == 69));
    assert!(versions.api_keys.iter().any(|k| k.api_key == 11), "JoinGroup");
}

#[tokio::test]
async fn a_join_that_cannot_be_written_leaves_no_member_behind() {
    let broker = TestBroker::start_with(fast).await;
    let mut w = Wire::connect(broker.addr()).await;
    create_topic(&mut w, "cgw-ghost", 2, &[]).await;
    // An id too long for the record's key.
    let long = "m".repeat(40_000);
    assert_eq!(w.call(1, &join("ghost", &long, &["cgw-ghost"])).await.error_code, 42);
    // A subscription whose record is larger than a batch may be: refused, and
    // the member it would have added is not there.
    let names: Vec<String> = (0..8_000).map(|i| format!("cgw-ghost-{i:0>200}")).collect();
    let mut huge = join("ghost", "big", &[]);
    huge.subscribed_topic_names = Some(
        names
            .iter()
            .map(|n| TopicName(s(n)))
            .chain([TopicName(s("cgw-ghost"))])
            .collect(),
    );
    let refused = w.call(1, &huge).await;
    assert_eq!(refused.error_code, 10, "MESSAGE_TOO_LARGE");
    // A real member gets both partitions: nobody else holds them.
    let real = w.call(1, &join("ghost", "real", &["cgw-ghost"])).await;
    assert_eq!(real.error_code, 0);
    assert_eq!(partitions(&real), Some(vec![0, 1]));
    let mut d = ConsumerGroupDescribeRequest::default();
    d.group_ids = vec![GroupId(s("ghost"))];
    assert_eq!(w.call(1, &d).await.groups[0].members.len(), 1);
}

#[tokio::test]
async fn a_classic_join_that_cannot_be_written_leaves_no_member_behind() {
    use bytes::BufMut;
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::protocol::Encodable;
    let broker = TestBroker::start_with(fast).await;
    let mut w = Wire::connect(broker.addr()).await;
    create_topic(&mut w, "cgw-cghost", 2, &[]).await;
    let first = w.call(1, &join("cghost", "a", &["cgw-cghost"])).await;
    assert_eq!(partitions(&first), Some(vec![0, 1]));
    // A classic member whose subscription is larger than a record batch may be.
    let mut sub = ConsumerProtocolSubscription::default();
    sub.topics = vec![s("cgw-cghost")];
    sub.user_data = Some(bytes::Bytes::from(vec![7u8; 2 << 20]));
    let mut meta = bytes::BytesMut::new();
    meta.put_i16(1);
    sub.encode(&mut meta, 1).unwrap();
    let mut range = JoinGroupRequestProtocol::default();
    range.name = s("range");
    range.metadata = meta.freeze();
    let mut j = JoinGroupRequest::default();
    j.group_id = GroupId(s("cghost"));
    j.member_id = s("classic-1");
    j.session_timeout_ms = 10_000;
    j.rebalance_timeout_ms = 10_000;
    j.protocol_type = s("consumer");
    j.protocols = vec![range];
    let refused = w.call(5, &j).await;
    assert_eq!(refused.error_code, 10, "MESSAGE_TOO_LARGE");
    // a keeps both partitions: no ghost took one.
    let a = w.call(1, &beat("cghost", "a", first.member_epoch)).await;
    assert_eq!(a.error_code, 0);
    assert_eq!(a.member_epoch, first.member_epoch);
    assert!(a.assignment.is_none(), "nothing changed for a");
    let mut d = ConsumerGroupDescribeRequest::default();
    d.group_ids = vec![GroupId(s("cghost"))];
    assert_eq!(w.call(1, &d).await.groups[0].members.len(), 1);
}
