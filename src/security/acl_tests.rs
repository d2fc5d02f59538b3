//! The authorizer's rules, as Kafka's StandardAuthorizer decides them.
use super::*;

fn acl(t: ResourceType, name: &str, p: PatternType, who: &str, op: Operation, perm: Permission) -> AclBinding {
    AclBinding {
        resource_type: t,
        resource_name: name.into(),
        pattern_type: p,
        principal: who.into(),
        host: "*".into(),
        operation: op,
        permission: perm,
    }
}

#[test]
fn kafkas_rules_decide() {
    use Operation::*;
    use PatternType::*;
    use Permission::*;
    use ResourceType::*;
    let dir = tempfile::tempdir().unwrap();
    let auth = Authorizer::open(dir.path(), true, &["User:admin".into()], false).unwrap();
    auth.create(&[
        acl(Topic, "orders-", Prefixed, "User:alice", Write, Allow),
        acl(Topic, "orders-secret", Literal, "User:alice", All, Deny),
        acl(Topic, "*", Literal, "User:*", Describe, Allow),
        acl(Group, "shop", Literal, "User:bob", Read, Allow),
        acl(Topic, "audit", Literal, "User:bob", AlterConfigs, Allow),
    ])
    .unwrap();
    let (alice, bob, admin) = (
        Principal::user("alice"),
        Principal::user("bob"),
        Principal::user("admin"),
    );
    let local: std::net::IpAddr = [127, 0, 0, 1].into();
    let can = |p: &Principal, op, t, n: &str| auth.authorize(p, local, op, t, n);
    assert!(can(&alice, Write, Topic, "orders-eu"));
    assert!(!can(&alice, Read, Topic, "orders-eu"));
    assert!(!can(&alice, Write, Topic, "payments"));
    // DENY wins over the prefixed ALLOW, for every operation.
    assert!(!can(&alice, Write, Topic, "orders-secret"));
    assert!(!can(&alice, Describe, Topic, "orders-secret"));
    // WRITE implies DESCRIBE; the wildcard lets everyone describe.
    assert!(can(&bob, Describe, Topic, "anything"));
    assert!(can(&bob, Read, Group, "shop"));
    assert!(can(&bob, Describe, Group, "shop"));
    assert!(can(&bob, DescribeConfigs, Topic, "audit"));
    // No ACL on the resource: allow.everyone.if.no.acl.found (false here).
    assert!(!can(&bob, Read, Group, "other"));
    assert!(can(&admin, Alter, Cluster, "kafka-cluster"));
    let open = Authorizer::open(dir.path(), true, &[], true).unwrap();
    assert!(open.authorize(&bob, local, Read, Group, "other"));
    assert!(
        !open.authorize(&alice, local, Read, Group, "shop"),
        "ACLs exist on shop: alice has none"
    );
    // Hosts: an IPv4 peer seen through an IPv6 socket is the IPv4 address;
    // IPv6 in any notation.
    auth.create(&[AclBinding {
        host: "127.0.0.1".into(),
        ..acl(Topic, "hosted", Literal, "User:bob", Read, Deny)
    }])
    .unwrap();
    auth.create(&[acl(Topic, "hosted", Literal, "User:*", Read, Allow)])
        .unwrap();
    let mapped: std::net::IpAddr = "::ffff:127.0.0.1".parse().unwrap();
    assert!(!auth.authorize(&bob, mapped, Read, Topic, "hosted"));
    assert!(auth.authorize(&bob, "10.0.0.9".parse().unwrap(), Read, Topic, "hosted"));
    assert!(host_matches("0:0:0:0:0:0:0:1", "::1".parse().unwrap()));
    // An idempotent producer: WRITE on some topic, unless denied there too.
    assert!(auth.authorize_any(&alice, local, Write, Topic));
    auth.create(&[acl(Topic, "orders", Prefixed, "User:alice", Write, Deny)])
        .unwrap();
    assert!(!auth.authorize_any(&alice, local, Write, Topic));
    // Kept across a reopen; deleted by filter.
    let again = Authorizer::open(dir.path(), true, &[], false).unwrap();
    assert_eq!(again.describe(&AclFilter::default()).len(), 8);
    let matching = again.describe(&AclFilter {
        resource_type: Some(Topic),
        resource_name: Some("orders-eu".into()),
        pattern: PatternFilter::Match,
        ..AclFilter::default()
    });
    assert_eq!(
        matching.len(),
        3,
        "the prefixed orders- and orders, and *: {matching:?}"
    );
    let removed = again
        .delete(&[AclFilter {
            principal: Some("User:alice".into()),
            ..AclFilter::default()
        }])
        .unwrap();
    assert_eq!(removed[0].len(), 3);
    assert_eq!(again.describe(&AclFilter::default()).len(), 5);
}

#[test]
fn authorized_operations_are_bits() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Authorizer::open(dir.path(), true, &[], false).unwrap();
    auth.create(&[acl(
        ResourceType::Topic,
        "t",
        PatternType::Literal,
        "User:a",
        Operation::Read,
        Permission::Allow,
    )])
    .unwrap();
    let bits = auth.authorized_operations(
        &Principal::user("a"),
        [10, 0, 0, 1].into(),
        ResourceType::Topic,
        "t",
        &[Operation::Read, Operation::Write, Operation::Describe],
    );
    assert_eq!(bits, (1 << 3) | (1 << 8));
}
