#!/usr/bin/env python3
"""Medians of the runs scripts/bench-compare.sh left in a results directory, as the
Markdown tables of docs/BENCHMARKS.md."""

import glob
import json
import os
import statistics
import sys

out = sys.argv[1] if len(sys.argv) > 1 else "target/bench-results"

limits = {}
with open(os.path.join(out, "limits.txt")) as f:
    for line in f:
        if line.startswith("#"):
            print(line.strip().lstrip("# "))
            continue
        key, value = line.split()
        limits[key] = float(value)


def runs(broker, label):
    files = sorted(glob.glob(os.path.join(out, f"{broker}.{label}.*.json")))
    return [json.load(open(f))["runs"][0] for f in files]


def median(broker, label, field, sub=None):
    rs = runs(broker, label)
    if not rs:
        return None
    values = [(r[field][sub] if sub else r[field]) for r in rs if r[field] is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=0):
    return "–" if v is None else f"{v:,.{digits}f}"


def ratio(a, b):
    return "–" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


print()
print("| machine limit | value |")
print("|---|---|")
if "fio_buffered_write_kBps" in limits:
    print(f"| fio sequential write, buffered + final fsync | {limits['fio_buffered_write_kBps'] / 1000:,.0f} MB/s |")
    print(f"| fio sequential write, O_DIRECT | {limits['fio_direct_write_kBps'] / 1000:,.0f} MB/s |")
    print(f"| fio 16 KiB write + fdatasync, p50 / p99 | {limits['fio_fdatasync_p50_us']:.0f} / {limits['fio_fdatasync_p99_us']:.0f} µs |")
if "iperf3_loopback_bps" in limits:
    print(f"| iperf3 loopback TCP | {limits['iperf3_loopback_bps'] / 8e6:,.0f} MB/s |")

brokers = ["strom"] + (["tansu"] if runs("tansu", "produce-acks1") else [])
n = len(runs("strom", "produce-acks1"))
print()
print(f"Medians of {n} runs, 1 KiB records, one partition:")
print()
print("| measurement | " + " | ".join(brokers) + (" | strom / tansu |" if len(brokers) > 1 else " |"))
print("|---|" + "---|" * len(brokers) + ("---|" if len(brokers) > 1 else ""))
rows = [
    ("producer acks=1, linger 5 ms (msg/s)", "produce-acks1", "msgs_per_sec", None, 0),
    ("producer acks=1 (MB/s)", "produce-acks1", "mb_per_sec", None, 0),
    ("producer acks=all, fsync per request (msg/s)", "produce-acksall", "msgs_per_sec", None, 0),
    ("consumer from the start (MB/s)", "consume", "mb_per_sec", None, 0),
    ("consumer from the start (msg/s)", "consume", "msgs_per_sec", None, 0),
    ("end-to-end at half the acks=1 rate: rate (msg/s)", "latency", "msgs_per_sec", None, 0),
    ("  p50 (ms)", "latency", "latency_ms", "p50", 2),
    ("  p99 (ms)", "latency", "latency_ms", "p99", 2),
    ("  p99.9 (ms)", "latency", "latency_ms", "p999", 2),
    ("  max (ms)", "latency", "latency_ms", "max", 2),
]
for title, label, field, sub, digits in rows:
    values = [median(b, label, field, sub) for b in brokers]
    line = f"| {title} | " + " | ".join(fmt(v, digits) for v in values) + " |"
    if len(brokers) > 1:
        line += f" {ratio(values[0], values[1])} |"
    print(line)

acks1 = median("strom", "produce-acks1", "msgs_per_sec")
acksall = median("strom", "produce-acksall", "msgs_per_sec")
print()
print(f"strom acks=all / acks=1: {ratio(acksall, acks1)}")
for key in ("strom_startup_ms", "strom_idle_rss_kB", "tansu_idle_rss_kB"):
    if key in limits:
        print(f"{key}: {limits[key]:,.0f}")

sweep = [(p, median("strom", f"partitions-{p}", "msgs_per_sec")) for p in (1, 10, 100, 1000)]
if sweep[0][1]:
    print()
    print("| partitions | strom msg/s | relative to 1 partition |")
    print("|---|---|---|")
    for p, v in sweep:
        print(f"| {p} | {fmt(v)} | {ratio(v, sweep[0][1])} |")

sustained = runs("strom", "sustained")
if sustained:
    s = sustained[0]
    print()
    line = f"sustained: {s['bytes'] / 1e9:.1f} GB in {s['seconds']:.1f} s = {s['mb_per_sec']:,.0f} MB/s"
    if "fio_buffered_write_kBps" in limits:
        line += f", {s['mb_per_sec'] * 1000 / limits['fio_buffered_write_kBps']:.0%} of fio buffered"
    print(line)
