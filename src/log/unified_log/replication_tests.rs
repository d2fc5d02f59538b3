//! Unit tests of what replication needs from a partition log: a follower's copy
//! of the leader's batches is the leader's log byte for byte, and truncation
//! leaves a log that goes on exactly as if the cut batches had never been
//! written (offsets, producer state, aborted transactions, epochs, after a crash).
use super::epoch_tests::entries as epochs;
use super::tests::{config, read_all};
use super::txn_tests::{batch_of, marker, verified};
use super::*;
use crate::log::check::check_partition;
use crate::record::batch::tests::sample_batch;
use crate::record::control::MarkerType;

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 300,
        ..config()
    }
}

fn open(dir: &Path, clean: bool) -> UnifiedLog {
    UnifiedLog::open("t", 0, dir, small_segments(), clean, 0).unwrap()
}

/// Every byte of the log from `from` on, as a fetch would read it.
fn bytes_from(p: &UnifiedLog, from: i64) -> Vec<u8> {
    let mut all = Vec::new();
    let mut offset = from;
    loop {
        let bytes = p.read(offset, 1 << 20).unwrap();
        if bytes.is_empty() {
            return all;
        }
        for (_, h) in batch::Batches::new(&bytes) {
            offset = h.last_offset() + 1;
        }
        all.extend_from_slice(&bytes);
    }
}

/// The segment files (name, bytes) of a partition directory.
fn segment_files(dir: &Path) -> Vec<(i64, Vec<u8>)> {
    list_segments(dir)
        .unwrap()
        .into_iter()
        .map(|b| (b, std::fs::read(segment::segment_path(dir, b, "log")).unwrap()))
        .collect()
}

/// A leader's log with plain, idempotent and transactional batches (one
/// aborted), a leader change, and several segments.
fn leader_log(dir: &Path) -> UnifiedLog {
    let p = open(dir, true);
    for i in 0..4 {
        p.append(&sample_batch(3, 1_000 + i), 0).unwrap();
    }
    p.append(&batch_of(7, 0, 2, false), 0).unwrap();
    verified(&p, &batch_of(8, 0, 2, true)).unwrap();
    p.append_marker(8, 0, marker(MarkerType::Abort), 0).unwrap();
    p.start_leader_epoch(2).unwrap();
    p.append(&batch_of(7, 2, 2, false), 0).unwrap();
    for i in 0..3 {
        p.append(&sample_batch(2, 2_000 + i), 0).unwrap();
    }
    p
}

#[test]
fn a_follower_copy_is_the_leaders_log_byte_for_byte() {
    let (ld, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = leader_log(ld.path());
    let follower = open(fd.path(), true);
    // Copied in two fetches, the second starting where the first ended.
    let all = bytes_from(&leader, 0);
    let half = batch::Batches::new(&all).nth(5).map(|(pos, _)| pos).unwrap();
    let first = follower.append_as_follower(&all[..half + 10], 0).unwrap();
    assert_eq!(first.first_offset, 0);
    assert_eq!(
        first.batches, 5,
        "the partial batch at the end waits for the next fetch"
    );
    let rest = bytes_from(&leader, follower.log_end_offset());
    follower.append_as_follower(&rest, 0).unwrap();
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(
        segment_files(fd.path()),
        segment_files(ld.path()),
        "same segments, same bytes"
    );
    assert_eq!(epochs(&follower), epochs(&leader));
    assert_eq!(follower.producers(), leader.producers());
    assert_eq!(
        follower.aborted_transactions(0, i64::MAX),
        leader.aborted_transactions(0, i64::MAX)
    );
    assert_eq!(follower.last_stable_offset(), leader.last_stable_offset());
    // Nothing to append is fine; the follower's log survives a crash as is.
    assert_eq!(follower.append_as_follower(&[], 0).unwrap().batches, 0);
    drop(follower);
    let again = open(fd.path(), false);
    assert_eq!(again.log_end_offset(), leader.log_end_offset());
    assert_eq!(epochs(&again), epochs(&leader));
    assert_eq!(again.producers(), leader.producers());
}

#[test]
fn a_follower_refuses_damaged_or_misplaced_batches_whole() {
    let (ld, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = leader_log(ld.path());
    let follower = open(fd.path(), true);
    let all = bytes_from(&leader, 0);
    let mut bad = all.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    assert!(matches!(
        follower.append_as_follower(&bad, 0),
        Err(Error::CorruptMessage(_))
    ));
    assert_eq!(follower.log_end_offset(), 0, "nothing of a bad response is written");
    follower.append_as_follower(&all, 0).unwrap();
    let again = follower.append_as_follower(&all, 0);
    assert!(matches!(again, Err(Error::InvalidRecord(_))), "below the log end");
    // Out of order within one response.
    let fd2 = tempfile::tempdir().unwrap();
    let other = open(fd2.path(), true);
    let second = batch::Batches::new(&all).nth(1).unwrap().0;
    let mut swapped = all[second..second * 2].to_vec();
    swapped.extend_from_slice(&all[..second]);
    assert!(matches!(
        other.append_as_follower(&swapped, 0),
        Err(Error::CorruptMessage(_))
    ));
}

#[test]
fn truncation_cuts_whole_batches_and_the_log_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let p = leader_log(dir.path());
    let leo = p.log_end_offset();
    let segments_before = p.segment_count();
    assert!(segments_before > 2, "the test needs several segments");
    // Mid-batch: the batch holding the offset goes whole.
    assert_eq!(p.truncate_to(leo - 1, 0).unwrap(), leo - 2);
    assert_eq!(read_all(&p, 0).last(), Some(&(leo - 4)));
    // Into an earlier segment (offset 4 is in the second batch, based at 3).
    assert_eq!(p.truncate_to(4, 0).unwrap(), 3);
    assert_eq!(p.segment_count(), 1);
    assert_eq!(read_all(&p, 0), vec![0]);
    assert_eq!(epochs(&p), vec![(0, 0)], "epoch 2 began past the cut");
    assert!(p.producers().is_empty(), "no producer wrote below 3");
    assert_eq!(p.aborted_transactions(0, i64::MAX), vec![]);
    // At the end or past it: nothing to do.
    assert_eq!(p.truncate_to(3, 0).unwrap(), 3);
    assert_eq!(p.truncate_to(99, 0).unwrap(), 3);
    // The log goes on at the cut, at the leader epoch it has.
    assert_eq!(p.append(&sample_batch(2, 5), 0).unwrap().base_offset, 3);
    assert_eq!(read_all(&p, 0), vec![0, 3]);
    let check = check_partition(dir.path()).unwrap();
    assert!(!check.is_damaged(), "{:?}", check.findings);
    // A crash right after: the same log.
    drop(p);
    let p = open(dir.path(), false);
    assert_eq!((p.log_end_offset(), read_all(&p, 0)), (5, vec![0, 3]));
}

#[test]
fn a_cut_producer_batch_is_new_again_and_a_kept_one_still_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), true);
    let first = batch_of(7, 0, 2, false);
    let second = batch_of(7, 2, 2, false);
    p.append(&sample_batch(10, 1), 0).unwrap();
    assert_eq!(p.append(&first, 0).unwrap().base_offset, 10);
    assert_eq!(p.append(&second, 0).unwrap().base_offset, 12);
    p.truncate_to(12, 0).unwrap();
    // The retry of the kept batch is acknowledged with its offset, not written.
    assert_eq!(p.append(&first, 0).unwrap().base_offset, 10);
    assert_eq!(p.log_end_offset(), 12);
    // The cut one is written again, where it now belongs.
    assert_eq!(p.append(&second, 0).unwrap().base_offset, 12);
    assert_eq!(p.log_end_offset(), 14);
    // A sequence that skips the cut one would be out of order.
    let p2dir = tempfile::tempdir().unwrap();
    let q = open(p2dir.path(), true);
    q.append(&first, 0).unwrap();
    q.append(&second, 0).unwrap();
    q.truncate_to(2, 0).unwrap();
    let third = batch_of(7, 4, 2, false);
    assert!(matches!(q.append(&third, 0), Err(Error::OutOfOrderSequence { .. })));
}

#[test]
fn a_cut_aborted_transaction_leaves_no_trace_and_an_open_one_holds_the_lso() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), true);
    p.append(&sample_batch(2, 1), 0).unwrap();
    verified(&p, &batch_of(8, 0, 2, true)).unwrap();
    let marker_at = p.log_end_offset();
    p.append_marker(8, 0, marker(MarkerType::Abort), 0).unwrap();
    assert_eq!(p.aborted_transactions(0, i64::MAX).len(), 1);
    assert_eq!(p.last_stable_offset(), p.log_end_offset());
    // Cut the marker: the transaction is open again and holds the LSO at its start.
    p.truncate_to(marker_at, 0).unwrap();
    assert_eq!(p.aborted_transactions(0, i64::MAX), vec![]);
    assert_eq!(p.last_stable_offset(), 2);
    // Cut the transaction too: the LSO follows the log end.
    p.truncate_to(2, 0).unwrap();
    assert_eq!(p.last_stable_offset(), 2);
    assert!(p.producers().is_empty());
}

#[test]
fn starting_over_empties_the_log_at_any_offset() {
    let dir = tempfile::tempdir().unwrap();
    let p = leader_log(dir.path());
    p.truncate_fully_and_start_at(500, 0).unwrap();
    assert_eq!((p.log_start_offset(), p.log_end_offset()), (500, 500));
    assert_eq!(epochs(&p), vec![]);
    assert!(p.producers().is_empty());
    assert_eq!(p.segment_count(), 1);
    // The leader's batches from 500 on continue it.
    let ld = tempfile::tempdir().unwrap();
    let leader = open(ld.path(), true);
    leader.truncate_fully_and_start_at(500, 0).unwrap();
    leader.append(&sample_batch(3, 1), 0).unwrap();
    p.append_as_follower(&bytes_from(&leader, 500), 0).unwrap();
    assert_eq!(p.log_end_offset(), 503);
    drop(p);
    let p = open(dir.path(), false);
    assert_eq!((p.log_start_offset(), p.log_end_offset()), (500, 503));
    // A cut below the log start starts over too.
    assert_eq!(p.truncate_to(100, 0).unwrap(), 100);
    assert_eq!((p.log_start_offset(), p.log_end_offset()), (100, 100));
}

/// xorshift64*, seeded: the model test's choices, the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// (base offset, leader epoch) of every batch, and (epoch, start offset) of the cache.
type Shape = (Vec<(i64, i32)>, Vec<(i32, i64)>);

/// (base offset, leader epoch) of every batch, and the epoch cache (without
/// an epoch a leader began but wrote nothing in yet: followers learn epochs
/// from batches).
fn shape(p: &UnifiedLog) -> Shape {
    let bytes = bytes_from(p, p.log_start_offset());
    let batches = batch::Batches::new(&bytes)
        .map(|(_, h)| (h.base_offset, h.partition_leader_epoch))
        .collect();
    let leo = p.log_end_offset();
    let epochs = epochs(p).into_iter().filter(|(_, start)| *start < leo).collect();
    (batches, epochs)
}

/// Bring `follower` in line with `leader` the way a fetcher does: ask where the
/// follower's latest epoch ended on the leader, cut the follower there (in one
/// or more rounds), then copy what follows.
fn catch_up(leader: &UnifiedLog, follower: &UnifiedLog) {
    for _round in 0..10 {
        let Some(epoch) = follower.lock().epochs.latest_epoch() else {
            break;
        };
        let (leader_epoch, leader_end) = leader.end_offset_for_epoch(epoch);
        let leo = follower.log_end_offset();
        if leader_epoch == -1 {
            follower
                .truncate_fully_and_start_at(leader.log_start_offset(), 0)
                .unwrap();
            break;
        }
        let (local_epoch, local_end) = follower.end_offset_for_epoch(leader_epoch);
        if local_epoch != leader_epoch {
            follower.truncate_to(local_end.min(leo), 0).unwrap();
            continue;
        }
        follower.truncate_to(local_end.min(leader_end).min(leo), 0).unwrap();
        break;
    }
    let rest = bytes_from(leader, follower.log_end_offset());
    follower.append_as_follower(&rest, 0).unwrap();
}

/// A model run: two replicas trade leadership, each new leader at a higher
/// epoch and sometimes without the old leader's last batches (they were never
/// replicated), with crashes and restarts in between. After every catch-up the
/// follower's log is the leader's: the same batches at the same offsets with
/// the same epochs, and the same epoch cache.
#[test]
fn replicas_converge_whatever_leaders_come_and_go() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut logs: Vec<UnifiedLog> = dirs.iter().map(|d| open(d.path(), true)).collect();
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    let (mut leader, mut epoch) = (0usize, 0i32);
    let mut converged = 0;
    for step in 0..1_500 {
        let follower = 1 - leader;
        let choice = rng.below(100);
        for (i, l) in logs.iter().enumerate() {
            let (batches, cache) = shape(l);
            let mut from_batches: Vec<(i32, i64)> = Vec::new();
            for (base, e) in batches {
                if from_batches.last().is_none_or(|(last, _)| *last != e) {
                    from_batches.push((e, base));
                }
            }
            assert_eq!(cache, from_batches, "replica {i} before step {step} ({choice})");
        }
        match choice {
            0..=49 => {
                let n = 1 + rng.below(4) as i32;
                logs[leader].append(&sample_batch(n, 1_000), 0).unwrap();
            }
            50..=69 => {
                catch_up(&logs[leader], &logs[follower]);
                assert_eq!(shape(&logs[follower]), shape(&logs[leader]));
                converged += 1;
            }
            70..=84 => {
                // The follower becomes leader at a new epoch; the old leader's
                // batches it lacks were never acknowledged as replicated.
                epoch += 1;
                leader = follower;
                logs[leader].start_leader_epoch(epoch).unwrap();
            }
            85..=92 => {
                // The leader loses an unreplicated tail (what the follower has
                // stays: that much could have been acknowledged), and goes on
                // at a new epoch.
                let leo = logs[leader].log_end_offset();
                let start = logs[leader].log_start_offset();
                let cut = start + rng.below((leo - start + 1) as u64) as i64;
                let replicated = logs[follower].log_end_offset().min(leo);
                logs[leader].truncate_to(cut.max(replicated), 0).unwrap();
                epoch += 1;
                logs[leader].start_leader_epoch(epoch).unwrap();
            }
            _ => {
                // A crash (or a clean restart) of one replica.
                let which = rng.below(2) as usize;
                let clean = rng.below(2) == 0;
                if clean {
                    logs[which].close().unwrap();
                }
                let reopened = {
                    let old = logs.remove(which);
                    drop(old);
                    open(dirs[which].path(), clean)
                };
                logs.insert(which, reopened);
            }
        }
    }
    catch_up(&logs[leader], &logs[1 - leader]);
    assert_eq!(shape(&logs[1 - leader]), shape(&logs[leader]));
    assert!(converged > 100, "the run caught up {converged} times");
    for (i, dir) in dirs.iter().enumerate() {
        let check = check_partition(dir.path()).unwrap();
        assert!(!check.is_damaged(), "replica {i}: {:?}", check.findings);
    }
}

#[test]
fn a_replicated_high_watermark_bounds_what_consumers_and_retention_see() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), true);
    for i in 0..6 {
        p.append(&sample_batch(2, 1_000 + i), 0).unwrap();
    }
    assert_eq!(p.high_watermark(), 12, "a single replica: the log end");
    assert_eq!(p.replicate_high_watermark(4), 4);
    assert_eq!(p.offsets(), (0, 4));
    // Reads stop at the high watermark; between it and the log end is empty,
    // past the log end out of range.
    let read = p
        .read_slice_below(0, 1 << 20, p.high_watermark())
        .unwrap()
        .unwrap()
        .read()
        .unwrap();
    let last = batch::Batches::new(&read).last().unwrap().1;
    assert_eq!(last.last_offset(), 3);
    assert!(p.read_slice_below(6, 1 << 20, p.high_watermark()).unwrap().is_none());
    assert!(p.read_slice_below(13, 1 << 20, p.high_watermark()).is_err());
    assert_eq!(p.last_stable_offset(), 4);
    // Nothing above it may be deleted.
    assert!(matches!(p.delete_records(6), Err(Error::OffsetOutOfRange { .. })));
    assert_eq!(p.delete_records(-1).unwrap(), 4);
    // A leader's only goes up; a follower's follows the leader's, within its log.
    assert!(p.maybe_increment_high_watermark(8));
    assert!(!p.maybe_increment_high_watermark(6));
    assert_eq!(p.high_watermark(), 8);
    assert_eq!(p.update_high_watermark(100), 12, "never past the log end");
    assert_eq!(p.update_high_watermark(2), 4, "never below the log start");
    p.update_high_watermark(10);
    // A truncation keeps it within the log.
    p.truncate_to(6, 0).unwrap();
    assert_eq!(p.high_watermark(), 6);
    // Retention keeps what is not replicated yet.
    let q_dir = tempfile::tempdir().unwrap();
    let q = UnifiedLog::open(
        "t",
        0,
        q_dir.path(),
        LogConfig {
            retention_ms: 0,
            ..small_segments()
        },
        true,
        0,
    )
    .unwrap();
    for i in 0..8 {
        q.append(&sample_batch(2, 1 + i), 0).unwrap();
    }
    q.replicate_high_watermark(0);
    assert_eq!(
        q.apply_retention(1_000_000).unwrap(),
        0,
        "nothing replicated: nothing deleted"
    );
    q.maybe_increment_high_watermark(16);
    assert!(q.apply_retention(1_000_000).unwrap() > 0);
}
