"""confluent-kafka's AdminClient against strom: create a topic with configs,
describe it, alter its configs incrementally, add partitions, delete records,
delete it."""
import os
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
)

BROKER = os.environ.get("STROM_BROKER", "localhost:9092")


@pytest.fixture(scope="module")
def admin():
    return AdminClient({"bootstrap.servers": BROKER})


def wait(futures):
    return {k: f.result(timeout=30) for k, f in futures.items()}


def topic_configs(admin, topic):
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return wait(admin.describe_configs([resource]))[resource]


def test_the_admin_scenario(admin):
    topic = f"py-admin-{uuid.uuid4().hex[:8]}"

    # Create with configs.
    wait(admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1,
                                       config={"retention.ms": "3600000", "cleanup.policy": "delete"})]))
    metadata = admin.list_topics(timeout=10)
    assert topic in metadata.topics
    assert len(metadata.topics[topic].partitions) == 2

    # Describe: overrides come from the topic, the rest from defaults.
    configs = topic_configs(admin, topic)
    assert configs["retention.ms"].value == "3600000"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["max.message.bytes"].value == "1048588"

    # Alter incrementally: SET one, DELETE another, APPEND to a list.
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.bytes", "1048576", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
    ])
    wait(admin.incremental_alter_configs([resource]))
    configs = topic_configs(admin, topic)
    assert configs["retention.bytes"].value == "1048576"
    assert configs["retention.ms"].value == "604800000"
    assert configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["cleanup.policy"].value == "compact,delete"

    # An invalid value is refused.
    bad = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(Exception):
        wait(admin.incremental_alter_configs([bad]))

    # Create partitions.
    wait(admin.create_partitions([NewPartitions(topic, 4)]))
    assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 4

    # Delete records: the low watermark moves.
    producer = Producer({"bootstrap.servers": BROKER})
    for i in range(20):
        producer.produce(topic, key=f"k{i}", value=f"v{i}", partition=3)
    assert producer.flush(30) == 0
    deleted = wait(admin.delete_records([TopicPartition(topic, 3, 12)]))
    assert list(deleted.values())[0].low_watermark == 12
    consumer = Consumer({"bootstrap.servers": BROKER, "group.id": f"py-{topic}"})
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 3), timeout=10)
    assert (low, high) == (12, 20)
    consumer.close()

    # Describe the cluster and the broker's configs.
    cluster = admin.describe_cluster().result(timeout=30)
    assert len(cluster.nodes) == 1
    broker = ConfigResource(ConfigResource.Type.BROKER, str(cluster.nodes[0].id))
    broker_configs = wait(admin.describe_configs([broker]))[broker]
    assert broker_configs["log.message.format.version"].is_read_only
    assert not broker_configs["log.retention.ms"].is_read_only

    # A dynamic broker config: set on this broker, seen by the topic as its
    # default, then deleted again.
    wait(admin.incremental_alter_configs([ConfigResource(ConfigResource.Type.BROKER, str(cluster.nodes[0].id), incremental_configs=[
        ConfigEntry("log.retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)])]))
    broker_configs = wait(admin.describe_configs([broker]))[broker]
    assert broker_configs["log.retention.ms"].value == "7200000"
    assert broker_configs["log.retention.ms"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    assert topic_configs(admin, topic)["retention.ms"].value == "7200000"
    wait(admin.incremental_alter_configs([ConfigResource(ConfigResource.Type.BROKER, str(cluster.nodes[0].id), incremental_configs=[
        ConfigEntry("log.retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])]))
    assert topic_configs(admin, topic)["retention.ms"].value == "604800000"
    # Kafka's read-only broker configs are refused.
    with pytest.raises(Exception):
        wait(admin.incremental_alter_configs([ConfigResource(ConfigResource.Type.BROKER, str(cluster.nodes[0].id), incremental_configs=[
            ConfigEntry("num.partitions", "3", incremental_operation=AlterConfigOpType.SET)])]))

    # Delete.
    wait(admin.delete_topics([topic]))
    deadline = time.time() + 10
    while topic in admin.list_topics(timeout=10).topics and time.time() < deadline:
        time.sleep(0.1)
    assert topic not in admin.list_topics(timeout=10).topics
