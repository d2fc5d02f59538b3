//! Where a new partition's replicas go: spread over the running brokers so
//! that leaders are balanced and, when brokers name racks, each partition's
//! replicas sit in as many racks as there are (simplified from Kafka's
//! rack-aware assignment).

use crate::error::{Error, Result};

/// A broker that can hold replicas: its id and rack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: i32,
    pub rack: Option<String>,
}

/// The brokers ordered so that consecutive ones are in different racks where
/// possible: the first of each rack, then the second of each, and so on
/// (racks and brokers in id order; brokers without a rack form one "rack").
fn rack_alternated(brokers: &[Candidate]) -> Vec<Candidate> {
    let mut racks: std::collections::BTreeMap<Option<&str>, Vec<&Candidate>> = Default::default();
    let mut sorted: Vec<&Candidate> = brokers.iter().collect();
    sorted.sort_by_key(|b| b.id);
    for b in sorted {
        racks.entry(b.rack.as_deref()).or_default().push(b);
    }
    let deepest = racks.values().map(Vec::len).max().unwrap_or(0);
    (0..deepest)
        .flat_map(|round| racks.values().filter_map(move |r| r.get(round).copied()))
        .cloned()
        .collect()
}

/// Replicas for partitions `first..first + count` with `replication_factor`
/// each, over `brokers`, starting at `start` (random per topic, so leaders of
/// different topics do not all pile on one broker). Replica lists come
/// preferred leader first.
pub fn assign(
    brokers: &[Candidate],
    first: i32,
    count: i32,
    replication_factor: i16,
    start: usize,
) -> Result<Vec<Vec<i32>>> {
    let n = brokers.len();
    let rf = usize::try_from(replication_factor).unwrap_or(0);
    if rf == 0 || rf > n {
        return Err(Error::InvalidReplicationFactor(replication_factor));
    }
    let ordered = rack_alternated(brokers);
    let racks = {
        let mut r: Vec<Option<&str>> = ordered.iter().map(|b| b.rack.as_deref()).collect();
        r.sort();
        r.dedup();
        r.len()
    };
    let mut out = Vec::new();
    for p in first..first.saturating_add(count) {
        let p = usize::try_from(p).unwrap_or(0);
        let lead = (start + p) % n;
        let mut replicas = vec![ordered[lead].clone()];
        // Followers after the leader, shifted each round of n partitions so
        // that one broker's followers are not always the same brokers.
        let shift = if n > 1 { (p / n) % (n - 1) } else { 0 };
        let mut pending: Vec<usize> = (0..n.saturating_sub(1))
            .map(|k| (lead + 1 + (shift + k) % (n - 1)) % n)
            .collect();
        while replicas.len() < rf {
            let used: Vec<Option<&str>> = replicas.iter().map(|b| b.rack.as_deref()).collect();
            let racks_left = used.len() < racks;
            // A broker in a rack not used yet while there are such racks, else the next one.
            let pick = pending
                .iter()
                .position(|i| !racks_left || !used.contains(&ordered[*i].rack.as_deref()))
                .unwrap_or(0);
            replicas.push(ordered[pending.remove(pick)].clone());
        }
        out.push(replicas.into_iter().map(|b| b.id).collect());
    }
    Ok(out)
}

/// Check assignments given in a request: each a non-empty list of distinct
/// brokers that are registered, all of one length.
pub fn check_assignments(assignments: &[Vec<i32>], registered: &[i32]) -> Result<()> {
    let Some(first) = assignments.first() else {
        return Err(Error::InvalidRequest("no assignments".into()));
    };
    for a in assignments {
        let mut distinct = a.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if a.is_empty() || distinct.len() != a.len() || a.len() != first.len() {
            return Err(Error::InvalidReplicaAssignment(
                "each partition needs the same number of distinct brokers".into(),
            ));
        }
        if let Some(b) = a.iter().find(|b| !registered.contains(b)) {
            return Err(Error::InvalidReplicaAssignment(format!("broker {b} is not registered")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brokers(racks: &[(i32, &str)]) -> Vec<Candidate> {
        racks
            .iter()
            .map(|(id, r)| Candidate {
                id: *id,
                rack: (!r.is_empty()).then(|| r.to_string()),
            })
            .collect()
    }

    #[test]
    fn leaders_spread_and_replicas_cover_the_racks() {
        let six = brokers(&[(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "c")]);
        let rack = |id: i32| six.iter().find(|b| b.id == id).unwrap().rack.clone();
        let a = assign(&six, 0, 12, 3, 4).unwrap();
        assert_eq!(a.len(), 12);
        let mut leaders = std::collections::BTreeMap::new();
        for replicas in &a {
            *leaders.entry(replicas[0]).or_insert(0) += 1;
            let mut r: Vec<_> = replicas.iter().map(|b| rack(*b)).collect();
            r.sort();
            r.dedup();
            assert_eq!(r.len(), 3, "one replica per rack: {replicas:?}");
            let mut d = replicas.clone();
            d.sort();
            d.dedup();
            assert_eq!(d.len(), 3);
        }
        assert!(leaders.values().all(|n| *n == 2), "two leaders each: {leaders:?}");
    }

    #[test]
    fn without_racks_and_at_the_limits() {
        let three = brokers(&[(1, ""), (2, ""), (3, "")]);
        let a = assign(&three, 0, 6, 1, 0).unwrap();
        assert_eq!(a, vec![vec![1], vec![2], vec![3], vec![1], vec![2], vec![3]]);
        // Partitions added later carry on where the first ones left off.
        assert_eq!(assign(&three, 6, 1, 1, 0).unwrap(), vec![vec![1]]);
        assert_eq!(assign(&three, 0, 3, 3, 0).unwrap().len(), 3);
        for rf in [0, 4, -1] {
            assert_eq!(assign(&three, 0, 1, rf, 0).unwrap_err().wire_code(), 38);
        }
        assert_eq!(assign(&[], 0, 1, 1, 0).unwrap_err().wire_code(), 38);
    }

    #[test]
    fn given_assignments_are_checked() {
        let ok = check_assignments(&[vec![1, 2], vec![2, 3]], &[1, 2, 3]);
        assert!(ok.is_ok());
        for bad in [
            vec![vec![1, 1]],
            vec![vec![1], vec![1, 2]],
            vec![vec![4]],
            vec![vec![]],
            vec![],
        ] {
            assert!(check_assignments(&bad, &[1, 2, 3]).is_err(), "{bad:?}");
        }
    }
}
