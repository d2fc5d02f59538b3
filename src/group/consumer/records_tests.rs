//! Round trips of every record through its bytes, Kafka's bytes for one, and
//! damaged values.

use super::*;

fn round_trip(r: ConsumerRecord) {
    let key = r.key().unwrap();
    let mut k = ByteReader::new(&key);
    let kind = k.i16().unwrap();
    let back = ConsumerRecord::decode(kind, &mut k, r.value()).unwrap();
    assert_eq!(back, r);
}

#[test]
fn every_record_round_trips() {
    let t = Uuid::from_bytes([3; 16]);
    let a = Assignment::from([(t, [0, 2, 5].into_iter().collect())]);
    let g = "orders-service".to_string();
    round_trip(ConsumerRecord::Metadata {
        group: g.clone(),
        epoch: Some(7),
    });
    round_trip(ConsumerRecord::PartitionMetadata {
        group: g.clone(),
        topics: Some(vec![("orders".into(), TopicMeta { id: t, partitions: 6 })]),
    });
    for classic in [
        None,
        Some(ClassicMember {
            session_timeout_ms: 10_000,
            protocols: vec![
                ("range".into(), Bytes::from_static(b"\x00\x01sub")),
                ("x".into(), Bytes::new()),
            ],
        }),
    ] {
        round_trip(ConsumerRecord::MemberMetadata {
            group: g.clone(),
            member: "m-1".into(),
            value: Some(MemberMetadataValue {
                instance_id: Some("i".into()),
                rack_id: None,
                client_id: "rdkafka".into(),
                client_host: "/127.0.0.1".into(),
                subscribed_topic_names: vec!["a".into(), "b".into()],
                subscribed_topic_regex: Some("orders.*".into()),
                rebalance_timeout_ms: 300_000,
                server_assignor: Some("uniform".into()),
                classic,
            }),
        });
    }
    round_trip(ConsumerRecord::TargetAssignmentMetadata {
        group: g.clone(),
        epoch: Some(7),
    });
    round_trip(ConsumerRecord::TargetAssignmentMember {
        group: g.clone(),
        member: "m-1".into(),
        partitions: Some(a.clone()),
    });
    round_trip(ConsumerRecord::CurrentMemberAssignment {
        group: g.clone(),
        member: "m-1".into(),
        value: Some(Reconciled {
            epoch: 7,
            previous_epoch: 6,
            state: MemberState::UnrevokedPartitions,
            assigned: a.clone(),
            pending_revocation: Assignment::from([(t, [1].into_iter().collect())]),
        }),
    });
    for r in ConsumerRecord::member_tombstones(&g, "m-1")
        .into_iter()
        .chain(ConsumerRecord::group_tombstones(&g))
    {
        assert!(r.value().is_none());
        round_trip(r);
    }
}

#[test]
fn kafkas_bytes_for_the_group_epoch() {
    // ConsumerGroupMetadataValue v0 with epoch 5: version, epoch, no tags.
    let r = ConsumerRecord::Metadata {
        group: "g".into(),
        epoch: Some(5),
    };
    assert_eq!(&r.value().unwrap()[..], &[0, 0, 0, 0, 0, 5, 0]);
    assert_eq!(&r.key().unwrap()[..], &[0, 3, 0, 1, b'g']);
}

#[test]
fn damaged_values_are_errors_not_panics() {
    let r = ConsumerRecord::CurrentMemberAssignment {
        group: "g".into(),
        member: "m".into(),
        value: Some(Reconciled {
            epoch: 1,
            previous_epoch: 0,
            state: MemberState::Stable,
            assigned: Assignment::from([(Uuid::nil(), [0, 1].into_iter().collect())]),
            pending_revocation: Assignment::new(),
        }),
    };
    let full = r.value().unwrap();
    for cut in 0..full.len() {
        let key = r.key().unwrap();
        let mut k = ByteReader::new(&key);
        let kind = k.i16().unwrap();
        let _ = ConsumerRecord::decode(kind, &mut k, Some(full.slice(..cut)));
    }
}
