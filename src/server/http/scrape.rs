//! The series read from the broker's state at scrape time: partitions, offsets,
//! log sizes (Kafka's ReplicaManager and Log metrics, kafka_exporter's topic
//! series) and consumer group positions and lag (kafka_exporter's names).

use std::collections::BTreeMap;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::broker::Broker;
use crate::metrics::{Labels, Metrics};

fn gauges() -> Family<Labels, Gauge> {
    Family::default()
}

fn set(family: &Family<Labels, Gauge>, labels: Labels, value: i64) {
    family.get_or_create(&labels).set(value);
}

fn tp(topic: &str, partition: i32) -> Labels {
    vec![("topic", topic.to_string()), ("partition", partition.to_string())]
}

/// A fresh registry holding what the broker's state says now.
pub fn registry(broker: &Broker, metrics: &Metrics) -> Registry {
    let mut r = Registry::default();
    let topics = broker.logs.topics();
    let partitions: usize = topics.iter().map(|t| t.partitions.len()).sum();
    let one = |name: &str, help: &str, value: i64| {
        let g = Gauge::<i64>::default();
        g.set(value);
        (name.to_string(), help.to_string(), g)
    };
    // One broker leads every partition and is the controller; a cluster's
    // broker answers from the cluster's metadata.
    let (led, under_replicated) = broker.replicas.leader_counts();
    let controller = !broker.metadata.is_cluster() || broker.controller.is_active();
    let offline = match broker.metadata.image() {
        Some(image) if controller => image
            .topics()
            .iter()
            .flat_map(|t| t.partitions.values())
            .filter(|p| p.record.leader < 0)
            .count(),
        _ => 0,
    };
    for (name, help, g) in [
        one(
            "kafka_server_replicamanager_partitioncount",
            "Partitions on this broker",
            partitions as i64,
        ),
        one(
            "kafka_server_replicamanager_leadercount",
            "Partitions this broker leads",
            led as i64,
        ),
        one(
            "kafka_server_replicamanager_underreplicatedpartitions",
            "Partitions led here with replicas out of sync",
            under_replicated as i64,
        ),
        one(
            "kafka_controller_kafkacontroller_activecontrollercount",
            "1 on the broker that is the active controller",
            i64::from(controller),
        ),
        one(
            "kafka_controller_kafkacontroller_offlinepartitionscount",
            "Partitions without a leader (on the active controller)",
            offline as i64,
        ),
        one(
            "kafka_brokers",
            "Brokers in the cluster",
            broker.metadata.broker_count() as i64,
        ),
    ] {
        r.register(name, help, g);
    }

    // Per topic and partition: offsets and sizes.
    let topic_partitions = gauges();
    let current = gauges();
    let oldest = gauges();
    let size = gauges();
    let mut high_watermarks = BTreeMap::new();
    for t in &topics {
        set(
            &topic_partitions,
            vec![("topic", t.name.clone())],
            t.partitions.len() as i64,
        );
        for p in &t.partitions {
            let (start, hw) = (p.log_start_offset(), p.high_watermark());
            high_watermarks.insert((t.name.clone(), p.index), hw);
            if metrics.partition_series {
                set(&current, tp(&t.name, p.index), hw);
                set(&oldest, tp(&t.name, p.index), start);
                set(&size, tp(&t.name, p.index), p.size_bytes() as i64);
            }
        }
    }
    r.register("kafka_topic_partitions", "Partitions of each topic", topic_partitions);
    if metrics.partition_series {
        r.register(
            "kafka_topic_partition_current_offset",
            "High watermark of each partition",
            current,
        );
        r.register(
            "kafka_topic_partition_oldest_offset",
            "Log start offset of each partition",
            oldest,
        );
        r.register("kafka_log_log_size", "Bytes of each partition's log", size);
    }

    if metrics.group_series {
        register_groups(&mut r, broker, &high_watermarks);
    }
    crate::metrics::process::register(&mut r);
    r
}

/// kafka_exporter's consumer group series: committed offset and lag per
/// partition, lag per topic, members per group.
fn register_groups(r: &mut Registry, broker: &Broker, high_watermarks: &BTreeMap<(String, i32), i64>) {
    let current = gauges();
    let lag = gauges();
    let lag_sum = gauges();
    let members = gauges();
    let shards = broker.groups.shards();
    let groups = shards
        .iter()
        .flat_map(|s| s.list().into_iter().map(move |(g, _, _)| (s, g)));
    for (shard, group) in groups {
        let description = shard.describe(&group);
        set(
            &members,
            vec![("consumergroup", group.clone())],
            description.members.len() as i64,
        );
        let mut per_topic: BTreeMap<String, i64> = BTreeMap::new();
        for ((topic, partition), committed) in shard.fetch_offsets(&group, None, false) {
            let Ok(Some(committed)) = committed else {
                continue;
            };
            let Some(&hw) = high_watermarks.get(&(topic.clone(), partition)) else {
                continue;
            };
            let behind = (hw - committed.offset).max(0);
            let labels = vec![
                ("consumergroup", group.clone()),
                ("topic", topic.clone()),
                ("partition", partition.to_string()),
            ];
            set(&current, labels.clone(), committed.offset);
            set(&lag, labels, behind);
            *per_topic.entry(topic).or_default() += behind;
        }
        for (topic, sum) in per_topic {
            set(&lag_sum, vec![("consumergroup", group.clone()), ("topic", topic)], sum);
        }
    }
    r.register(
        "kafka_consumergroup_current_offset",
        "Committed offset of a group on a partition",
        current,
    );
    r.register(
        "kafka_consumergroup_lag",
        "High watermark minus the committed offset",
        lag,
    );
    r.register(
        "kafka_consumergroup_lag_sum",
        "A group's lag summed over a topic",
        lag_sum,
    );
    r.register("kafka_consumergroup_members", "Members of a group", members);
}
