#!/usr/bin/env python3
"""bench/smoke: runs uffdgc-bench quickly and checks its --json output.

usage: bench_smoke.py UFFDGC_BENCH JSON_OUT

Checks: exit status 0; the JSON is an array of one object per run with every key that
docs/benchmarks.md documents; a bad option exits with status 2 and names the option."""
import json
import subprocess
import sys

TOP = ["workload", "backend", "backend_requested", "kernel", "threads", "heap_max_bytes",
       "wall_s", "mutator_cpu_s", "gc_cpu_s", "gc_cycles", "pause_us", "pause_kind_us",
       "stall_us", "unit_us", "compaction", "live_bytes_peak", "rss_peak_bytes",
       "rss_after_gc_bytes", "shmem_peak_bytes", "vma_peak", "verify"]
DIST = {"pause_us": ["count", "p50", "p95", "p99", "max"],
        "stall_us": ["count", "p50", "p99", "max"],
        "unit_us": ["count", "p50", "p99", "max"]}
COMPACTION = ["pages_total", "pages_in_place", "pages_slid_whole", "pages_recycled",
              "pages_fresh", "pages_by_mutator", "pages_by_gc", "copy_ioctls", "move_ioctls",
              "continue_ioctls", "zeropage_ioctls", "madvise_calls", "bytes_copied",
              "concurrent_s", "breakdown_s"]
BREAKDOWN = ["forwarding", "memcpy", "map", "madvise", "wait"]


def fail(message):
    print("bench/smoke: FAIL: " + message)
    sys.exit(1)


def need(obj, keys, where):
    for key in keys:
        if key not in obj:
            fail("%s: missing key %r" % (where, key))


def main():
    bench, out = sys.argv[1], sys.argv[2]
    run = subprocess.run([bench, "--workload", "gcbench", "--backend", "stw", "--scale", "1",
                          "--verify", "--json", out], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True, timeout=280)
    print(run.stdout)
    if run.returncode != 0:
        fail("uffdgc-bench exited with status %d" % run.returncode)
    with open(out) as f:
        rows = json.load(f)
    if not isinstance(rows, list) or len(rows) != 1:
        fail("expected a JSON array with one run, got %r" % type(rows))
    row = rows[0]
    need(row, TOP, "run")
    for key, fields in DIST.items():
        need(row[key], fields, key)
    need(row["pause_kind_us"], ["mark", "compact"], "pause_kind_us")
    for kind in ("mark", "compact"):
        need(row["pause_kind_us"][kind], ["count", "p50", "p99", "max"], kind)
    need(row["compaction"], COMPACTION, "compaction")
    need(row["compaction"]["breakdown_s"], BREAKDOWN, "breakdown_s")
    need(row["verify"], ["cycles_checked", "failures"], "verify")
    if row["workload"] != "gcbench" or row["backend"] != "stw":
        fail("unexpected workload/backend %s/%s" % (row["workload"], row["backend"]))
    if row["gc_cycles"] < 1 or row["wall_s"] <= 0:
        fail("implausible gc_cycles %r / wall_s %r" % (row["gc_cycles"], row["wall_s"]))
    if row["verify"]["failures"] != 0:
        fail("verification failures: %r" % row["verify"])

    bad = subprocess.run([bench, "--heap", "lots"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True)
    if bad.returncode != 2 or "--heap" not in bad.stderr:
        fail("a bad --heap value should exit 2 naming it; got %d: %s"
             % (bad.returncode, bad.stderr.strip()))
    print("bench/smoke: OK (%d cycles, %.2f s)" % (row["gc_cycles"], row["wall_s"]))


if __name__ == "__main__":
    main()
