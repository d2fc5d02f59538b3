//! The server-side assignors of KIP-848: the broker, not a client, decides which
//! member consumes which partition. Both are sticky: a member keeps what it had
//! in the previous target assignment as far as balance allows, so a rebalance
//! moves as few partitions as it can.
//!
//! - `uniform` (the default): every member gets as many partitions as the others,
//!   give or take one, over all the topics it subscribes to.
//! - `range`: per topic, members (in member-id order) get equal ranges of
//!   partitions, so members subscribed to co-partitioned topics get the same
//!   partition numbers of each.
//!
//! Pure functions of their input: no clock, no I/O.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// Partitions by topic id: what a member is assigned.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The names Kafka gives its two server assignors (`group.remote.assignor`).
pub const UNIFORM: &str = "uniform";
pub const RANGE: &str = "range";

/// What an assignor needs to know about one member.
#[derive(Debug, Clone)]
pub struct MemberSpec<'a> {
    pub member_id: &'a str,
    /// Ids of the (existing) topics it subscribes to.
    pub topics: BTreeSet<Uuid>,
    /// Its partitions in the previous target assignment.
    pub previous: &'a Assignment,
}

/// Compute a target assignment of `topics` (id → partition count) to `members`.
pub fn assign(
    assignor: &str,
    members: &[MemberSpec<'_>],
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    match assignor {
        RANGE => range(members, topics),
        _ => uniform(members, topics),
    }
}

/// Partition count of every member, by index.
fn loads(out: &[Assignment]) -> Vec<usize> {
    out.iter().map(|a| a.values().map(BTreeSet::len).sum()).collect()
}

fn uniform(members: &[MemberSpec<'_>], topics: &BTreeMap<Uuid, i32>) -> BTreeMap<String, Assignment> {
    let mut out: Vec<Assignment> = vec![Assignment::new(); members.len()];
    let mut taken: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    // 1. Stickiness: keep what each member had, if it still subscribes to the
    //    topic and the partition still exists (and nobody else kept it).
    for (i, m) in members.iter().enumerate() {
        for (topic, parts) in m.previous {
            let Some(&count) = topics.get(topic).filter(|_| m.topics.contains(topic)) else {
                continue;
            };
            for &p in parts.iter().filter(|&&p| p < count) {
                if taken.insert((*topic, p)) {
                    out[i].entry(*topic).or_default().insert(p);
                }
            }
        }
    }
    // 2. Every free partition to the least loaded member subscribed to its
    //    topic (ties: the first in member order, which is member-id order).
    let mut load = loads(&out);
    for (topic, &count) in topics {
        let subscribers: Vec<usize> = (0..members.len())
            .filter(|&i| members[i].topics.contains(topic))
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        for p in 0..count {
            if taken.contains(&(*topic, p)) {
                continue;
            }
            let Some(&i) = subscribers.iter().min_by_key(|&&i| (load[i], i)) else {
                continue;
            };
            out[i].entry(*topic).or_default().insert(p);
            load[i] += 1;
        }
    }
    // 3. Balance: while a member has two or more partitions more than another
    //    member that could take one of them, move one (the highest-numbered of
    //    its topic, so the kept ones are the older). Each move lowers the sum of
    //    squared loads, so this ends; each pass looks at every partition once.
    loop {
        let mut moved = false;
        let mut order: Vec<usize> = (0..members.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(load[i]));
        for from in order {
            // Nobody can take from a member at most one above the least loaded.
            if load[from] <= load.iter().copied().min().unwrap_or(0) + 1 {
                continue;
            }
            let candidates: Vec<(Uuid, i32)> = out[from]
                .iter()
                .flat_map(|(t, ps)| ps.iter().rev().map(move |p| (*t, *p)))
                .collect();
            for (topic, p) in candidates {
                let to = (0..members.len())
                    .filter(|&j| j != from && members[j].topics.contains(&topic) && load[j] + 1 < load[from])
                    .min_by_key(|&j| (load[j], j));
                let Some(to) = to else { continue };
                if let Some(ps) = out[from].get_mut(&topic) {
                    ps.remove(&p);
                    if ps.is_empty() {
                        out[from].remove(&topic);
                    }
                }
                out[to].entry(topic).or_default().insert(p);
                load[from] -= 1;
                load[to] += 1;
                moved = true;
                if load[from] <= load.iter().copied().min().unwrap_or(0) + 1 {
                    break;
                }
            }
        }
        if !moved {
            break;
        }
    }
    members.iter().map(|m| m.member_id.to_string()).zip(out).collect()
}

fn range(members: &[MemberSpec<'_>], topics: &BTreeMap<Uuid, i32>) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.to_string(), Assignment::new()))
        .collect();
    for (topic, &count) in topics {
        let mut subscribers: Vec<&MemberSpec<'_>> = members.iter().filter(|m| m.topics.contains(topic)).collect();
        if subscribers.is_empty() || count <= 0 {
            continue;
        }
        subscribers.sort_by_key(|m| m.member_id);
        let n = subscribers.len();
        let base = count as usize / n;
        let extra = count as usize % n;
        // Member k's range, as a fresh range assignment would give it.
        let range_of = |k: usize| {
            let start = k * base + k.min(extra);
            let len = base + usize::from(k < extra);
            (start as i32)..((start + len) as i32)
        };
        // Stickiness: a member keeps previous partitions of the topic up to its
        // quota; the members given the `extra` partitions are those that
        // already held more than `base`, then the first in order.
        let mut quota: Vec<usize> = vec![base; n];
        let mut held: Vec<Vec<i32>> = subscribers
            .iter()
            .map(|m| {
                m.previous
                    .get(topic)
                    .map(|ps| ps.iter().copied().filter(|&p| p < count).collect())
                    .unwrap_or_default()
            })
            .collect();
        let mut extras_left = extra;
        let mut by_held: Vec<usize> = (0..n).collect();
        by_held.sort_by_key(|&k| (std::cmp::Reverse(held[k].len()), k));
        for &k in &by_held {
            if extras_left > 0 && held[k].len() > base {
                quota[k] += 1;
                extras_left -= 1;
            }
        }
        for q in quota.iter_mut() {
            if extras_left > 0 && *q == base {
                *q += 1;
                extras_left -= 1;
            }
        }
        let mut taken: BTreeSet<i32> = BTreeSet::new();
        let mut given: Vec<BTreeSet<i32>> = vec![BTreeSet::new(); n];
        for k in 0..n {
            // Prefer keeping the partitions of the member's own range.
            let own = range_of(k);
            held[k].sort_by_key(|p| (!own.contains(p), *p));
            for &p in &held[k] {
                if given[k].len() < quota[k] && taken.insert(p) {
                    given[k].insert(p);
                }
            }
        }
        // The rest, in order, to members below quota: first their own range.
        for k in 0..n {
            for p in range_of(k) {
                if given[k].len() < quota[k] && !taken.contains(&p) {
                    taken.insert(p);
                    given[k].insert(p);
                }
            }
        }
        let mut free = (0..count).filter(|p| !taken.contains(p));
        for k in 0..n {
            while given[k].len() < quota[k] {
                let Some(p) = free.next() else { break };
                given[k].insert(p);
            }
        }
        for (k, m) in subscribers.iter().enumerate() {
            if !given[k].is_empty() {
                if let Some(a) = out.get_mut(m.member_id) {
                    a.insert(*topic, std::mem::take(&mut given[k]));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    fn spec<'a>(id: &'a str, topics: &[Uuid], previous: &'a Assignment) -> MemberSpec<'a> {
        MemberSpec {
            member_id: id,
            topics: topics.iter().copied().collect(),
            previous,
        }
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(BTreeSet::len).sum()
    }

    /// Every partition of `topics` is given exactly once.
    fn assert_complete(out: &BTreeMap<String, Assignment>, topics: &BTreeMap<Uuid, i32>) {
        let mut seen = BTreeSet::new();
        for a in out.values() {
            for (t, ps) in a {
                for p in ps {
                    assert!(seen.insert((*t, *p)), "{t}-{p} given twice");
                }
            }
        }
        let all: usize = topics.values().map(|&c| c as usize).sum();
        assert_eq!(seen.len(), all);
    }

    #[test]
    fn both_assignors_balance_six_partitions_over_three_members() {
        let t = topic(1);
        let topics = BTreeMap::from([(t, 6)]);
        let none = Assignment::new();
        for assignor in [UNIFORM, RANGE] {
            let members = [spec("a", &[t], &none), spec("b", &[t], &none), spec("c", &[t], &none)];
            let out = assign(assignor, &members, &topics);
            assert_complete(&out, &topics);
            assert!(out.values().all(|a| count(a) == 2), "{assignor}: {out:?}");
        }
        let members = [spec("a", &[t], &none), spec("b", &[t], &none), spec("c", &[t], &none)];
        let out = assign(RANGE, &members, &topics);
        assert_eq!(out["a"][&t], BTreeSet::from([0, 1]));
        assert_eq!(out["c"][&t], BTreeSet::from([4, 5]));
    }

    #[test]
    fn uniform_is_sticky_when_a_member_joins_and_leaves() {
        let t = topic(1);
        let topics = BTreeMap::from([(t, 6)]);
        let none = Assignment::new();
        let first = assign(UNIFORM, &[spec("a", &[t], &none), spec("b", &[t], &none)], &topics);
        let out = assign(
            UNIFORM,
            &[
                spec("a", &[t], &first["a"]),
                spec("b", &[t], &first["b"]),
                spec("c", &[t], &none),
            ],
            &topics,
        );
        assert_complete(&out, &topics);
        assert!(out.values().all(|a| count(a) == 2));
        // a and b each gave up exactly one partition, kept the rest.
        for m in ["a", "b"] {
            assert!(
                out[m][&t].is_subset(&first[m][&t]),
                "{m} moved: {:?} -> {:?}",
                first[m],
                out[m]
            );
        }
        // c leaves: its two partitions are spread, nothing else moves.
        let after = assign(
            UNIFORM,
            &[spec("a", &[t], &out["a"]), spec("b", &[t], &out["b"])],
            &topics,
        );
        assert_complete(&after, &topics);
        for m in ["a", "b"] {
            assert!(out[m][&t].is_subset(&after[m][&t]));
            assert_eq!(count(&after[m]), 3);
        }
    }

    #[test]
    fn uniform_balances_different_subscriptions() {
        let (t1, t2) = (topic(1), topic(2));
        let topics = BTreeMap::from([(t1, 4), (t2, 4)]);
        let none = Assignment::new();
        // a reads both, b only t1, c only t2.
        let out = assign(
            UNIFORM,
            &[
                spec("a", &[t1, t2], &none),
                spec("b", &[t1], &none),
                spec("c", &[t2], &none),
            ],
            &topics,
        );
        assert_complete(&out, &topics);
        let loads: Vec<usize> = out.values().map(count).collect();
        assert!(
            loads.iter().max().unwrap() - loads.iter().min().unwrap() <= 1,
            "{out:?}"
        );
        assert!(!out["b"].contains_key(&t2) && !out["c"].contains_key(&t1));
    }

    #[test]
    fn range_keeps_members_ranges_and_co_partitions() {
        let (t1, t2) = (topic(1), topic(2));
        let topics = BTreeMap::from([(t1, 5), (t2, 5)]);
        let none = Assignment::new();
        let out = assign(
            RANGE,
            &[spec("a", &[t1, t2], &none), spec("b", &[t1, t2], &none)],
            &topics,
        );
        assert_complete(&out, &topics);
        assert_eq!(out["a"][&t1], out["a"][&t2]);
        assert_eq!(out["a"][&t1], BTreeSet::from([0, 1, 2]));
        // A third member: a and b keep what fits their new quota.
        let again = assign(
            RANGE,
            &[
                spec("a", &[t1, t2], &out["a"]),
                spec("b", &[t1, t2], &out["b"]),
                spec("c", &[t1, t2], &none),
            ],
            &topics,
        );
        assert_complete(&again, &topics);
        for m in ["a", "b"] {
            assert!(
                again[m][&t1].is_subset(&out[m][&t1]),
                "{m}: {:?} -> {:?}",
                out[m],
                again[m]
            );
        }
        // Per topic 2, 2 and 1 (range balances each topic, not the total).
        for t in [t1, t2] {
            let mut sizes: Vec<usize> = again.values().map(|a| a.get(&t).map_or(0, BTreeSet::len)).collect();
            sizes.sort();
            assert_eq!(sizes, [1, 2, 2]);
        }
    }

    #[test]
    fn partitions_of_unsubscribed_or_shrunk_topics_are_dropped() {
        let t = topic(1);
        let previous = Assignment::from([(t, BTreeSet::from([0, 1, 7])), (topic(9), BTreeSet::from([0]))]);
        let topics = BTreeMap::from([(t, 2)]);
        for assignor in [UNIFORM, RANGE] {
            let out = assign(assignor, &[spec("a", &[t], &previous)], &topics);
            assert_eq!(out["a"], Assignment::from([(t, BTreeSet::from([0, 1]))]));
        }
    }

    #[test]
    fn no_members_or_no_topics() {
        let topics = BTreeMap::from([(topic(1), 3)]);
        assert!(assign(UNIFORM, &[], &topics).is_empty());
        let none = Assignment::new();
        let out = assign(UNIFORM, &[spec("a", &[], &none)], &topics);
        assert!(out["a"].is_empty());
    }
}
