"""confluent-kafka (librdkafka 2.x) against the secured broker of
scripts/lib/secure-strom.sh: a SCRAM user and ACLs made with the AdminClient,
then used over SASL_SSL; refusals as Kafka words them."""
import os
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

BROKER = os.environ.get("STROM_SECURE_BROKER")
pytestmark = pytest.mark.skipif(not BROKER, reason="no secured strom (STROM_SECURE_BROKER)")


def settings(mechanism, user, password):
    return {
        "bootstrap.servers": BROKER,
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": os.environ.get("STROM_SECURE_CA", ""),
        "sasl.mechanisms": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }


@pytest.fixture(scope="module")
def admin():
    return AdminClient(settings("PLAIN", "admin", "admin-secret"))


def test_scram_user_and_prefixed_acls_from_the_admin_client(admin):
    user = f"dave-{uuid.uuid4().hex[:6]}"
    prefix = f"py-{uuid.uuid4().hex[:6]}-"
    topic = prefix + "orders"
    admin.create_topics([NewTopic(topic, 1)])[topic].result(timeout=30)
    cred = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    done = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(user, cred, b"dave-secret")])
    done[user].result(timeout=30)
    described = admin.describe_user_scram_credentials([user])[user].result(timeout=30)
    assert [(c.mechanism, c.iterations) for c in described.scram_credential_infos] == [
        (ScramMechanism.SCRAM_SHA_512, 8192)
    ]
    principal = f"User:{user}"
    acls = [
        AclBinding(ResourceType.TOPIC, prefix, ResourcePatternType.PREFIXED, principal, "*", op, AclPermissionType.ALLOW)
        for op in (AclOperation.WRITE, AclOperation.READ)
    ]
    acls.append(
        AclBinding(ResourceType.GROUP, user, ResourcePatternType.LITERAL, principal, "*", AclOperation.READ, AclPermissionType.ALLOW)
    )
    for f in admin.create_acls(acls).values():
        f.result(timeout=30)
    found = admin.describe_acls(
        AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, principal, None, AclOperation.ANY, AclPermissionType.ANY)
    ).result(timeout=30)
    assert len(found) == 3

    # The new user logs in with SCRAM and uses what the ACLs allow.
    p = Producer(settings("SCRAM-SHA-512", user, "dave-secret"))
    errors = []
    for i in range(10):
        p.produce(topic, value=b"%d" % i, on_delivery=lambda e, m: e and errors.append(e))
    assert p.flush(30) == 0 and not errors
    c = Consumer({**settings("SCRAM-SHA-512", user, "dave-secret"), "group.id": user, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = []
    deadline = time.time() + 30
    while len(got) < 10 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(int(m.value()))
    c.close()
    assert got == list(range(10))

    # Elsewhere: TOPIC_AUTHORIZATION_FAILED.
    p.produce("not-" + topic, value=b"x", on_delivery=lambda e, m: e and errors.append(e))
    p.flush(15)
    assert errors and errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    # Deleted ACLs and user: the login fails.
    deleted = admin.delete_acls([
        AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, principal, None, AclOperation.ANY, AclPermissionType.ANY)
    ])
    assert sum(len(f.result(timeout=30)) for f in deleted.values()) == 3
    admin.alter_user_scram_credentials([UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_512)])[user].result(timeout=30)
    late = AdminClient(settings("SCRAM-SHA-512", user, "dave-secret"))
    with pytest.raises(KafkaException):
        late.list_topics(timeout=5)


def test_a_non_super_user_may_not_change_acls():
    alice = AdminClient(settings("PLAIN", "alice", "alice-secret"))
    binding = AclBinding(
        ResourceType.TOPIC, "x", ResourcePatternType.LITERAL, "User:alice", "*", AclOperation.ALL, AclPermissionType.ALLOW
    )
    with pytest.raises(KafkaException) as refused:
        alice.create_acls([binding])[binding].result(timeout=30)
    assert refused.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
