"""confluent-kafka (librdkafka 2.16) with group.protocol=consumer (KIP-848) against
strom: two consumers share a topic and read every record once, and the
AdminClient lists and describes the group as a consumer-protocol group (tools that
get this wrong show such groups as DEAD or UNKNOWN)."""
import os
import time
import uuid

from confluent_kafka import Consumer, ConsumerGroupState, ConsumerGroupType, Producer
from confluent_kafka.admin import AdminClient, NewTopic

BROKER = os.environ.get("STROM_BROKER", "localhost:9092")


def consumer(group, topic):
    c = Consumer(
        {
            "bootstrap.servers": BROKER,
            "group.id": group,
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
        }
    )
    c.subscribe([topic])
    return c


def test_two_consumers_share_a_topic_and_admin_sees_a_consumer_group():
    admin = AdminClient({"bootstrap.servers": BROKER})
    topic = f"py-848-{uuid.uuid4().hex[:8]}"
    group = f"py-848-group-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])[topic].result(30)
    p = Producer({"bootstrap.servers": BROKER})
    for i in range(200):
        p.produce(topic, key=str(i), value=f"order-{i}", partition=i % 4)
    assert p.flush(30) == 0

    members = [consumer(group, topic), consumer(group, topic)]
    seen = []
    deadline = time.time() + 60
    while len(seen) < 200 and time.time() < deadline:
        for c in members:
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                seen.append((m.partition(), m.offset()))
    assert len(seen) == 200, f"read {len(seen)} of 200"
    assert len(set(seen)) == 200, "every record once"
    # Both members own partitions once the group settled.
    deadline = time.time() + 30
    while time.time() < deadline and not all(len(c.assignment()) == 2 for c in members):
        for c in members:
            c.poll(0.1)
    assert sorted(len(c.assignment()) for c in members) == [2, 2]

    listed = admin.list_consumer_groups(types={ConsumerGroupType.CONSUMER}).result(30)
    mine = [g for g in listed.valid if g.group_id == group]
    assert mine and mine[0].type == ConsumerGroupType.CONSUMER
    assert mine[0].state == ConsumerGroupState.STABLE
    classic_only = admin.list_consumer_groups(types={ConsumerGroupType.CLASSIC}).result(30)
    assert group not in [g.group_id for g in classic_only.valid]

    described = admin.describe_consumer_groups([group])[group].result(30)
    assert described.type == ConsumerGroupType.CONSUMER
    assert described.state == ConsumerGroupState.STABLE
    assert len(described.members) == 2
    assigned = sorted(tp.partition for m in described.members for tp in m.assignment.topic_partitions)
    assert assigned == [0, 1, 2, 3]
    for c in members:
        c.close()
