"""confluent-kafka transactions against strom: init_transactions, commit and
abort as a read_committed consumer sees them, and consume-transform-produce with
send_offsets_to_transaction (the group's offset moves only with a committed
transaction)."""
import os
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BROKER = os.environ.get("STROM_BROKER", "localhost:9092")


def create(*topics):
    admin = AdminClient({"bootstrap.servers": BROKER})
    futures = admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1) for t in topics])
    for f in futures.values():
        f.result(timeout=30)


def transactional(txn_id):
    p = Producer({"bootstrap.servers": BROKER, "transactional.id": txn_id, "linger.ms": 5})
    p.init_transactions(30)
    return p


def consumer(group, **extra):
    return Consumer({"bootstrap.servers": BROKER, "group.id": group, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "isolation.level": "read_committed", **extra})


def take(c, n, timeout=30):
    got = []
    deadline = time.time() + timeout
    while len(got) < n:
        assert time.time() < deadline, f"only {len(got)} of {n} records"
        m = c.poll(0.2)
        if m is None:
            continue
        assert m.error() is None, m.error()
        got.append(m.value().decode())
    return got


def read_committed(topic):
    c = consumer(f"reader-{uuid.uuid4().hex[:6]}", **{"enable.partition.eof": True})
    c.assign([TopicPartition(topic, 0, 0)])
    values = []
    deadline = time.time() + 30
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            c.close()
            return values  # end of partition
        values.append(m.value().decode())
    raise AssertionError(f"no end of partition; read {values}")


def test_commit_and_abort():
    topic = f"py-txn-{uuid.uuid4().hex[:8]}"
    create(topic)
    p = transactional(f"py-txn-{uuid.uuid4().hex[:6]}")
    for rnd, commit in [(0, True), (1, False), (2, True)]:
        p.begin_transaction()
        for i in range(3):
            p.produce(topic, f"r{rnd}-{i}".encode(), partition=0)
        p.flush(30)
        (p.commit_transaction if commit else p.abort_transaction)(30)
    assert read_committed(topic) == ["r0-0", "r0-1", "r0-2", "r2-0", "r2-1", "r2-2"]


def test_consume_transform_produce():
    src, dst = f"py-in-{uuid.uuid4().hex[:8]}", f"py-out-{uuid.uuid4().hex[:8]}"
    group = f"py-ctp-{uuid.uuid4().hex[:6]}"
    create(src, dst)
    plain = Producer({"bootstrap.servers": BROKER})
    for i in range(10):
        plain.produce(src, f"in-{i}".encode(), partition=0)
    plain.flush(30)

    c = consumer(group)
    c.subscribe([src])
    p = transactional(f"py-processor-{uuid.uuid4().hex[:6]}")
    for n, commit in [(6, True), (4, False)]:
        records = take(c, n)
        p.begin_transaction()
        for r in records:
            p.produce(dst, f"{r}-out".encode(), partition=0)
        p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 30)
        (p.commit_transaction if commit else p.abort_transaction)(30)
    committed = c.committed([TopicPartition(src, 0)], timeout=10)
    assert committed[0].offset == 6
    c.close()
    assert read_committed(dst) == [f"in-{i}-out" for i in range(6)]
