//! Unit tests of the log manager: topics, ids, deletion, the directory lock.

use super::*;
use crate::record::batch::tests::sample_batch;

/// What a data directory holds besides the broker's `.lock` file.
fn entries_besides_the_lock(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name() != ".lock")
        .count()
}

#[test]
fn a_data_directory_serves_one_broker_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let first = LogManager::open(dir.path(), LogConfig::default(), 0).unwrap();
    assert!(LogManager::open(dir.path(), LogConfig::default(), 0).is_err());
    drop(first);
    LogManager::open(dir.path(), LogConfig::default(), 0).unwrap();
}

#[test]
fn topic_names_follow_kafkas_rules() {
    assert!(validate_topic_name("orders.created_v1-2").is_ok());
    for bad in ["", ".", "..", "a b", "ü", &"x".repeat(250)] {
        assert!(
            matches!(validate_topic_name(bad), Err(Error::InvalidTopic { .. })),
            "{bad}"
        );
    }
}

#[test]
fn topics_persist_with_their_ids() {
    let dir = tempfile::tempdir().unwrap();
    let m = LogManager::open(dir.path(), LogConfig::default(), 0).unwrap();
    let t = m.create_topic("a-b", 3, &BTreeMap::new(), 0).unwrap();
    assert!(matches!(
        m.create_topic("a-b", 1, &BTreeMap::new(), 0),
        Err(Error::TopicAlreadyExists(_))
    ));
    assert!(matches!(
        m.create_topic("z", 0, &BTreeMap::new(), 0),
        Err(Error::InvalidPartitions(0))
    ));
    m.partition("a-b", 2).unwrap().append(&sample_batch(2, 0), 0).unwrap();
    m.close().unwrap();
    drop(m);
    let m = LogManager::open(dir.path(), LogConfig::default(), 0).unwrap();
    assert!(!dir.path().join(CLEAN_SHUTDOWN_FILE).exists());
    let again = m.topic("a-b").unwrap();
    assert_eq!(again.id, t.id);
    assert_eq!(again.partitions.len(), 3);
    assert_eq!(m.partition("a-b", 2).unwrap().log_end_offset(), 2);
    assert!(m.topic_by_id(&t.id).is_some());
    assert!(matches!(
        m.partition("a-b", 3),
        Err(Error::UnknownTopicOrPartition { .. })
    ));
}

#[test]
fn topics_with_the_longest_names_are_deleted_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let m = LogManager::open(dir.path(), LogConfig::default(), 0).unwrap();
    let name = "n".repeat(249);
    m.create_topic(&name, 2, &BTreeMap::new(), 0).unwrap();
    m.partition(&name, 1).unwrap().append(&sample_batch(2, 0), 0).unwrap();
    m.delete_topic(&name).unwrap();
    assert!(m.topic(&name).is_none());
    assert_eq!(entries_besides_the_lock(dir.path()), 0);
    m.create_topic(&name, 2, &BTreeMap::new(), 0).unwrap();
    assert_eq!(m.partition(&name, 1).unwrap().log_end_offset(), 0, "no old records");
    m.delete_topic(&name).unwrap();
    m.close().unwrap();
    drop(m);
    let m = LogManager::open(dir.path(), LogConfig::default(), 0).unwrap();
    assert!(m.topic(&name).is_none(), "deleted for good");
}

#[test]
fn a_deletion_that_cannot_finish_leaves_the_whole_topic() {
    let dir = tempfile::tempdir().unwrap();
    let m = LogManager::open(dir.path(), LogConfig::default(), 0).unwrap();
    m.create_topic("stays", 3, &BTreeMap::new(), 0).unwrap();
    m.partition("stays", 0).unwrap().append(&sample_batch(2, 0), 0).unwrap();
    // Partition 2's rename fails: its directory is gone from under the broker.
    let p2 = dir.path().join("stays-2");
    std::fs::rename(&p2, dir.path().join("elsewhere")).unwrap();
    assert!(m.delete_topic("stays").is_err());
    std::fs::rename(dir.path().join("elsewhere"), &p2).unwrap();
    assert!(m.topic("stays").is_some());
    assert!(dir.path().join("stays-0").exists() && dir.path().join("stays-1").exists());
    assert_eq!(m.partition("stays", 0).unwrap().log_end_offset(), 2);
    m.delete_topic("stays").unwrap();
}

#[test]
fn deleted_topics_leave_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let m = LogManager::open(dir.path(), LogConfig::default(), 0).unwrap();
    m.create_topic("gone", 2, &BTreeMap::new(), 0).unwrap();
    m.delete_topic("gone").unwrap();
    assert!(m.topic("gone").is_none());
    assert_eq!(entries_besides_the_lock(dir.path()), 0);
    assert!(m.delete_topic("gone").is_err());
    // An interrupted deletion is finished at start.
    std::fs::create_dir(dir.path().join("x-0.abc-delete")).unwrap();
    drop(m);
    LogManager::open(dir.path(), LogConfig::default(), 0).unwrap();
    assert!(!dir.path().join("x-0.abc-delete").exists());
}

#[test]
fn a_clusters_broker_holds_any_partitions_of_a_topic() {
    let dir = tempfile::tempdir().unwrap();
    let m = LogManager::open(dir.path(), LogConfig::default(), 0).unwrap();
    let t = m.create_topic("sparse", 6, &BTreeMap::new(), 0).unwrap();
    t.partitions[2].append(&sample_batch(2, 0), 0).unwrap();
    let id = t.id;
    drop(t);
    m.close().unwrap();
    drop(m);
    // Partitions 1, 3 and 4 moved to other brokers: 0, 2 and 5 are left.
    for p in [1, 3, 4] {
        std::fs::remove_dir_all(dir.path().join(format!("sparse-{p}"))).unwrap();
    }
    let single = LogManager::open(dir.path(), LogConfig::default(), 0).unwrap();
    assert!(
        single.topic("sparse").is_none(),
        "a single broker skips a topic with holes"
    );
    drop(single);
    let m = LogManager::open_with_layout(dir.path(), LogConfig::default(), 0, LogLayout::Sparse).unwrap();
    let t = m.topic("sparse").unwrap();
    assert_eq!(t.id, id);
    let held: Vec<i32> = t.partitions.iter().map(|p| p.index).collect();
    assert_eq!(held, vec![0, 2, 5]);
    assert_eq!(t.partition(2).map(|p| p.log_end_offset()), Some(2));
    assert!(t.partition(3).is_none());
    assert!(matches!(
        m.partition("sparse", 4),
        Err(Error::UnknownTopicOrPartition { .. })
    ));
    assert_eq!(m.partition("sparse", 5).unwrap().index, 5);
}

#[test]
fn replicated_high_watermarks_are_checkpointed_in_kafkas_file() {
    let dir = tempfile::tempdir().unwrap();
    let m = LogManager::open(dir.path(), LogConfig::default(), 0).unwrap();
    let t = m.create_topic("hw", 2, &BTreeMap::new(), 0).unwrap();
    for _ in 0..3 {
        t.partitions[1].append(&sample_batch(2, 0), 0).unwrap();
    }
    m.checkpoint_high_watermarks().unwrap();
    assert!(
        !dir.path().join(REPLICATION_CHECKPOINT).exists(),
        "a single broker has nothing to checkpoint"
    );
    t.partitions[1].replicate_high_watermark(4);
    t.partitions[0].replicate_high_watermark(0);
    m.checkpoint_high_watermarks().unwrap();
    let text = std::fs::read_to_string(dir.path().join(REPLICATION_CHECKPOINT)).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..2], &["0", "2"]);
    lines[2..].sort();
    assert_eq!(&lines[2..], &["hw 0 0", "hw 1 4"]);
    let read = m.checkpointed_high_watermarks();
    assert_eq!(read.get(&("hw".to_string(), 1)), Some(&4));
    std::fs::write(dir.path().join(REPLICATION_CHECKPOINT), "0\n1\nhw x 4\n").unwrap();
    assert!(m.checkpointed_high_watermarks().is_empty(), "a damaged file is ignored");
}
